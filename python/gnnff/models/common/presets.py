"""Size presets (small | medium | paper) merged with explicit builder options."""

from typing import Dict


def resolve_preset(model: str, presets: Dict[str, Dict], preset: str, options: Dict) -> Dict:
    """Preset values overridden by every option that is not None; clear error for bad names."""
    if preset not in presets:
        raise ValueError(f"{model}: unknown preset {preset!r}; choose one of {sorted(presets)}")
    resolved = dict(presets[preset])
    for key, value in options.items():
        if key not in resolved:
            raise ValueError(f"{model}: preset {preset!r} has no option {key!r}")
        if value is not None:
            resolved[key] = value
    return resolved

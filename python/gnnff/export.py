"""Export a ForceModel to the TorchScript file that pair_style gnnff and the ASE calculator load.

The file carries the model contract's metadata as extra files (gnnff/contract.py). Export happens
on CPU; the pair style moves the model to its device when it loads it.
"""

import json
import os
import tempfile
from typing import Dict, Optional, Tuple

import torch

from gnnff import contract
from gnnff.models import features

DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64"}


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype the model computes in: the energy model's first floating tensor decides."""
    inner = getattr(model, "energy_model", model)
    tensors = [*inner.parameters(), *inner.buffers(), *model.parameters(), *model.buffers()]
    for t in tensors:
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


def export_model(model: torch.nn.Module, path: str, lineage: Optional[Dict] = None) -> Dict[str, str]:
    """Script ``model`` (a ForceModel) and save it to ``path`` with its metadata; return them."""
    dtype = model_dtype(model)
    if dtype not in DTYPE_NAMES:
        raise ValueError(f"models are exported in float32 or float64, this one is {dtype}")
    metadata = contract.make_metadata(
        r_max=model.r_max,
        interaction_range=model.interaction_range,
        type_names=model.type_names,
        dtype=DTYPE_NAMES[dtype],
        model_name=model.model_name,
        lineage=json.dumps(lineage or {}, sort_keys=True),
    )
    was_training = model.training
    model = model.eval().cpu()
    try:
        features.set_recording(model, False)
    except ValueError:
        pass  # analytic reference models expose no features
    scripted = torch.jit.script(model)
    # write atomically: a half-written model file must never replace a good one
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gnnff-export-", suffix=".pt", dir=folder)
    os.close(fd)
    try:
        torch.jit.save(scripted, tmp, _extra_files=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    model.train(was_training)
    return metadata


def load_exported(path: str, device: str = "cpu") -> Tuple[torch.jit.ScriptModule, Dict[str, object]]:
    """Load an exported model and its decoded metadata; clear errors for files that are not."""
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist; export one with `gnnff export`")
    extra = {k: "" for k in contract.REQUIRED_KEYS}
    try:
        module = torch.jit.load(path, map_location=device, _extra_files=extra)
    except Exception as err:  # torch raises RuntimeError subclasses for corrupt archives
        raise ValueError(
            f"{path!r} is not a readable TorchScript file ({type(err).__name__}); "
            "re-export it with `gnnff export CHECKPOINT -o model.pt`"
        ) from err
    # torch returns extra files as bytes
    extra = {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in extra.items()}
    metadata = contract.parse_metadata(extra, source=repr(path))
    return module, metadata

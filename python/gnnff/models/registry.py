"""Model builders by name. A builder is a plain function whose keyword arguments are the config
schema of that model; it returns a ForceModel. ``gnnff train`` looks models up here."""

import difflib
import inspect
from typing import Callable, Dict

import torch

_BUILDERS: Dict[str, Callable[..., torch.nn.Module]] = {}


def register_model(name: str):
    """Decorator: make a builder available as ``model: {name: NAME, ...}`` in configs."""

    def decorate(builder):
        if name in _BUILDERS:
            raise ValueError(f"model name {name!r} is registered twice")
        _BUILDERS[name] = builder
        return builder

    return decorate


def available_models():
    _import_builtin_models()
    return sorted(_BUILDERS)


def build_model(name: str, **kwargs) -> torch.nn.Module:
    """Build a registered model; unknown names or keyword arguments name the closest valid one."""
    _import_builtin_models()
    if name not in _BUILDERS:
        close = difflib.get_close_matches(name, _BUILDERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown model {name!r}{hint}; available: {sorted(_BUILDERS)}")
    builder = _BUILDERS[name]
    params = inspect.signature(builder).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params:
                close = difflib.get_close_matches(key, list(params), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"model {name!r} has no option {key!r}{hint}; options: {sorted(params)}")
    return builder(**kwargs)


def _import_builtin_models():
    # importing the modules runs their @register_model decorators
    import importlib

    for module in ("pair_mlp", "allegro", "nequip", "gemnet_t", "analytic"):
        try:
            importlib.import_module(f"gnnff.models.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"gnnff.models.{module}":
                raise

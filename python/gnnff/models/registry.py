"""Model builders by name. A builder is a plain function whose keyword arguments are the config
schema of that model; it returns a ForceModel. ``gnnff train`` looks models up here."""

import torch

from gnnff.registry import Registry

_MODELS = Registry(
    "model",
    [f"gnnff.models.{m}" for m in ("pair_mlp", "allegro", "nequip", "gemnet_t", "analytic")],
)


def register_model(name: str):
    """Decorator: make a builder available as ``model: {name: NAME, ...}`` in configs."""
    return _MODELS.register(name)


def available_models():
    return _MODELS.names()


def model_builder(name: str):
    """The builder of a registered model (its keyword arguments are the model's options)."""
    return _MODELS.builder(name)


def build_model(name: str, **kwargs) -> torch.nn.Module:
    """Build a registered model; unknown names or keyword arguments name the closest valid one."""
    return _MODELS.build(name, **kwargs)

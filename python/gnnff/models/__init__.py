"""gnnff models: energy models wrapped by ForceModel, built by name from configs."""

from gnnff.models.registry import available_models, build_model, register_model
from gnnff.models.wrapper import ForceModel

__all__ = ["ForceModel", "available_models", "build_model", "register_model"]

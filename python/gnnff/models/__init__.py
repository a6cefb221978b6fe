"""gnnff models: energy models (gnnff.models.base.EnergyModel) wrapped by ForceModel, built by name
from configs."""

from gnnff.models.base import EnergyModel
from gnnff.models.registry import available_models, build_model, register_model
from gnnff.models.wrapper import ForceModel

__all__ = ["EnergyModel", "ForceModel", "available_models", "build_model", "register_model"]

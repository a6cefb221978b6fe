"""The edge-feature interface through which training-loss terms read a model's internals.

Every energy model (gnnff.models.base.EnergyModel) declares ``edge_feature_irreps: List[str]``
(one e3nn irreps string per layer it exposes, set by ``declare_edge_features``) and a
``record_edge_features: bool`` attribute, False by default. While it is True the model writes
``data[keys.edge_feature_key(i)]`` of shape (E, Irreps(edge_feature_irreps[i]).dim) for each
layer i. While it is False nothing extra is computed or kept, so inference and export pay
nothing for the interface. These functions take a ForceModel (or the energy model itself).
"""

from typing import Dict, List, Tuple

import torch

from gnnff import keys
from gnnff.models.base import energy_model_of

__all__ = ["collect", "edge_feature_irreps", "energy_model_of", "set_recording"]


def edge_feature_irreps(model: torch.nn.Module) -> List[str]:
    energy_model = energy_model_of(model)
    irreps = getattr(energy_model, "edge_feature_irreps", None)
    if irreps is None:
        raise ValueError(
            f"{type(energy_model).__name__} does not expose edge features: give it "
            "`edge_feature_irreps` and `record_edge_features` (subclass gnnff.models.base.EnergyModel)"
        )
    return list(irreps)


def set_recording(model: torch.nn.Module, on: bool) -> None:
    """Switch recording of per-layer edge features on or off."""
    edge_feature_irreps(model)  # raises a clear error for models without the interface
    energy_model_of(model).record_edge_features = bool(on)


def collect(
    data: Dict[str, torch.Tensor], model: torch.nn.Module
) -> List[Tuple[str, torch.Tensor]]:
    """(irreps, features) for every exposed layer found in a model's output dict."""
    found = []
    for layer, irreps in enumerate(edge_feature_irreps(model)):
        key = keys.edge_feature_key(layer)
        if key in data:
            found.append((irreps, data[key]))
    return found

"""The edge-feature interface through which training-loss terms read a model's internals.

Every energy model (gnnff.models.base.EnergyModel) declares ``edge_feature_irreps: List[str]``
(one e3nn irreps string per layer it exposes, set by ``declare_edge_features``) and a
``record_edge_features: bool`` attribute, False by default. While it is True the model writes
``data[keys.edge_feature_key(i)]`` for each layer i, in the layout the model declares in
``edge_feature_layouts[i]`` (gnnff.models.base: "e3nn" (E, Irreps(irreps).dim), or the layout the
model computes in, so that recording is a dict entry and no copy). While it is False nothing extra
is computed or kept, so inference and export pay nothing for the interface. These functions take
a ForceModel (or the energy model itself); ``collect`` and ``to_e3nn`` return the e3nn layout.
"""

from typing import Dict, List, Optional, Tuple

import torch

from gnnff import keys
from gnnff.models.base import CHANNEL_MAJOR_SUFFIX, energy_model_of

__all__ = [
    "collect",
    "edge_feature_irreps",
    "edge_feature_layouts",
    "energy_model_of",
    "layer_parts",
    "set_recording",
    "to_e3nn",
]


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


def edge_feature_layouts(model: torch.nn.Module) -> List[str]:
    """The layout of each exposed layer ("e3nn" for models that do not declare one)."""
    n = len(edge_feature_irreps(model))
    layouts = getattr(energy_model_of(model), "edge_feature_layouts", None)
    return list(layouts) if layouts else ["e3nn"] * n


def layer_parts(data: Dict[str, torch.Tensor], layer: int, layout: str) -> List[torch.Tensor]:
    """The recorded tensor(s) of one layer as stored: one, or two for "scalars+channel_major"."""
    key = keys.edge_feature_key(layer)
    if layout == "scalars+channel_major":
        return [data[key], data[key + CHANNEL_MAJOR_SUFFIX]]
    return [data[key]]


def _dims_after_scalars(irreps: str, layout: str) -> Tuple[int, List[int]]:
    """(number of leading scalar channels kept apart, component dims of the rest)."""
    from e3nn import o3

    parsed = list(o3.Irreps(irreps))
    skip = 1 if layout == "scalars+channel_major" else 0
    return (parsed[0].mul if skip else 0), [ir.dim for _, ir in parsed[skip:]]


def to_e3nn(
    parts: List[torch.Tensor], irreps: str, layout: str, edges: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """(E, Irreps(irreps).dim) e3nn-layout features of one layer from its stored parts.

    ``edges`` (optional, indices) selects edges first, in the stored layout: the conversion then
    touches only those rows (what the decorrelation measure does on a subsample of edges)."""
    from gnnff.models.common.channel_layout import channel_major_to_irreps, component_rows_to_irreps

    if layout == "e3nn":
        x = parts[0]
        return x if edges is None else x.index_select(0, edges)
    if layout == "component_rows":
        x = parts[0] if edges is None else parts[0].index_select(0, edges)
        return component_rows_to_irreps(x, _dims_after_scalars(irreps, layout)[1])
    if layout == "scalars+channel_major":
        scalars, v = parts
        if edges is not None:
            scalars, v = scalars.index_select(0, edges), v.index_select(2, edges)
        dims = _dims_after_scalars(irreps, layout)[1]
        return torch.cat([scalars, channel_major_to_irreps(v, dims)], dim=1)
    raise ValueError(f"unknown edge-feature layout {layout!r}")


def collect(
    data: Dict[str, torch.Tensor], model: torch.nn.Module
) -> List[Tuple[str, torch.Tensor]]:
    """(irreps, features in e3nn layout (E, dim)) for every exposed layer in a model's output."""
    found = []
    layouts = edge_feature_layouts(model)
    for layer, irreps in enumerate(edge_feature_irreps(model)):
        if keys.edge_feature_key(layer) in data:
            parts = layer_parts(data, layer, layouts[layer])
            found.append((irreps, to_e3nn(parts, irreps, layouts[layer])))
    return found

"""EnergyModel: the declared interface of every gnnff energy model (the module ForceModel wraps).

An energy model is a ``torch.nn.Module`` whose ``forward(data) -> data`` reads
``keys.EDGE_VECTORS`` (E, 3) Å, ``keys.ATOM_TYPE`` (N,) and ``keys.EDGE_INDEX`` (2, E) and writes
``keys.ATOMIC_ENERGY_RAW`` (N,) eV; ForceModel adds the per-type scale/shift and takes forces and
virial by autograd. Subclassing EnergyModel declares, in one place, what the rest of gnnff asks of it:

* **edge features** (read by training-loss terms through gnnff.models.features):
  ``self.declare_edge_features(irreps, layouts)`` in ``__init__`` (one e3nn irreps string per
  exposed layer, and the layout the model stores it in); then ``forward`` writes
  ``data[self.edge_feature_keys[k]]`` only while ``self.record_edge_features`` is True (off by
  default: inference pays nothing). Layouts (``gnnff.models.features`` converts them, and the
  decorrelation measure reads them as they are, so recording costs no copy):

  - ``"e3nn"`` (default): (E, Irreps(irreps[k]).dim), e3nn "mul_ir" order;
  - ``"component_rows"``: (E, D, mul), every irrep with the same mul, D = sum of 2l+1
    (``channel_layout.component_rows``; NequIP's messages);
  - ``"scalars+channel_major"``: the leading ``S x 0e`` block as (E, S) under
    ``edge_feature_keys[k]`` and the rest, one mul for every irrep, channel-major (mul, D, E)
    under ``edge_feature_keys[k] + "_channel_major"`` (``channel_layout.channel_major``; Allegro);
* **its head**: ``HEAD_MODULES``, the names of the submodules that map features to energies
  (fine-tuning trains them at the full learning rate and the rest, the backbone, at
  ``backbone_lr_factor``), so no other module guesses them from naming patterns;
* **its initial weights come from a ``torch.Generator``** when its builder takes a ``seed``:
  ``seeded_generator(seed)``, passed down to ``common.init.linear``/``embedding`` and the like,
  never ``torch.manual_seed`` (which would reseed, or consume, the caller's global RNG).

Everything here is plain attributes, so subclasses script with TorchScript (``gnnff export``).
"""

from typing import List, Optional, Sequence

import torch

from gnnff import keys

#: how a model may store a recorded layer (see module doc)
EDGE_FEATURE_LAYOUTS = ("e3nn", "component_rows", "scalars+channel_major")
#: suffix of the second key of a "scalars+channel_major" layer
CHANNEL_MAJOR_SUFFIX = "_channel_major"


class EnergyModel(torch.nn.Module):
    """Base of gnnff energy models: edge-feature declaration and head naming (see module doc)."""

    #: submodules (attribute names, or dotted paths) that form the output head; "" = none
    HEAD_MODULES: Sequence[str] = ()

    def __init__(self):
        super().__init__()
        self.edge_feature_irreps: List[str] = []
        # keys precomputed: TorchScript cannot call keys.edge_feature_key (it reads a global)
        self.edge_feature_keys: List[str] = []
        self.edge_feature_layouts: List[str] = []
        self.record_edge_features: bool = False

    def declare_edge_features(
        self, irreps: Sequence[str], layouts: Optional[Sequence[str]] = None
    ) -> None:
        """Expose one layer of edge features per entry of ``irreps`` (e3nn irreps strings), each
        stored in the layout named by ``layouts`` (default: all ``"e3nn"``; see module doc)."""
        self.edge_feature_irreps = [str(i) for i in irreps]
        self.edge_feature_keys = [
            keys.edge_feature_key(k) for k in range(len(self.edge_feature_irreps))
        ]
        layouts = ["e3nn"] * len(self.edge_feature_irreps) if layouts is None else list(layouts)
        bad = [x for x in layouts if x not in EDGE_FEATURE_LAYOUTS]
        if len(layouts) != len(self.edge_feature_irreps) or bad:
            raise ValueError(
                f"edge-feature layouts {layouts} must give one of {list(EDGE_FEATURE_LAYOUTS)} "
                f"per declared layer ({len(self.edge_feature_irreps)})"
            )
        self.edge_feature_layouts = layouts


def energy_model_of(model: torch.nn.Module) -> torch.nn.Module:
    """The energy model inside a ForceModel (or DDP-wrapped ForceModel), or the model itself."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(inner, "energy_model", inner)


def head_modules(model: torch.nn.Module) -> List[str]:
    """Names (below ``energy_model.``) of the head submodules the energy model declares.

    Raises ValueError for a model that does not declare them or names one it does not have.
    """
    energy_model = energy_model_of(model)
    names = list(getattr(energy_model, "HEAD_MODULES", ()))
    if not names:
        raise ValueError(
            f"{type(energy_model).__name__} does not name its head modules: give the class "
            "HEAD_MODULES (see gnnff/models/base.py) or list them in init_from.head"
        )
    owned = dict(energy_model.named_modules())
    owned.update(dict(energy_model.named_parameters()))
    missing = [n for n in names if n not in owned]
    if missing:
        raise ValueError(
            f"{type(energy_model).__name__}.HEAD_MODULES names {missing}, which it does not have; "
            f"its submodules: {sorted(n for n in owned if n and '.' not in n)}"
        )
    return names


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator for initial weights; the same seed gives the same weights, and the global
    RNG (torch.manual_seed) is neither read nor changed."""
    return torch.Generator().manual_seed(int(seed))

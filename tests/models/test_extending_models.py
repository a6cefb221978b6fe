"""docs/extending.md, "A model" and "A loss term", done for real: a model and a loss term defined
here, outside the package, registered by their decorators alone, then run through the physics
battery, export, fine-tuning's head, and one epoch of `Trainer` that uses both by name."""

from typing import Dict, List, Optional

import ase.io
import pytest
import torch

from gnnff import keys
from gnnff.models.base import EnergyModel, seeded_generator
from gnnff.models.common.init import embedding, linear
from gnnff.models.common.radial import BesselBasis, PolynomialCutoff
from gnnff.models.registry import available_models, build_model, register_model
from gnnff.models.wrapper import ForceModel
from gnnff.testing import EnergyModelBattery, check_export, check_per_type_parameters
from gnnff.training.loss_terms import LossTerm, available_loss_terms, register_loss_term


# ---- the model of docs/extending.md (the same code) ----------------------------------------
class RadialPairEnergy(EnergyModel):
    """E_i = 1/2 sum_j w . (b(r_ij) u(r_ij) * e[t_i] * e[t_j]): a pair potential on a Bessel basis."""

    HEAD_MODULES = ("readout",)

    def __init__(
        self, n_types: int, r_max: float, n_basis: int, generator: Optional[torch.Generator] = None
    ):
        super().__init__()
        self.basis = BesselBasis(r_max, n_basis, trainable=False)
        self.cutoff = PolynomialCutoff(r_max)
        self.type_embedding = embedding(n_types, n_basis, generator)  # per-type weights live here
        self.readout = linear(n_basis, 1, False, generator)
        self.declare_edge_features([f"{n_basis}x0e"])

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        vec, types = data[keys.EDGE_VECTORS], data[keys.ATOM_TYPE]
        centre, neighbour = data[keys.EDGE_INDEX][0], data[keys.EDGE_INDEX][1]
        r = torch.linalg.norm(vec, dim=-1)
        emb = self.type_embedding.weight
        h = (
            self.basis(r)
            * self.cutoff(r).unsqueeze(-1)
            * emb[types[centre]]
            * emb[types[neighbour]]
        )
        if self.record_edge_features:
            data[self.edge_feature_keys[0]] = h
        edge_energy = 0.5 * self.readout(h).squeeze(-1)
        atomic = torch.zeros(types.shape[0], dtype=vec.dtype, device=vec.device)
        data[keys.ATOMIC_ENERGY_RAW] = atomic.index_add(0, centre, edge_energy)
        return data


@register_model("radial_pair")
def radial_pair(
    type_names: List[str], r_max: float = 4.0, n_basis: int = 8, seed: int = 0
) -> ForceModel:
    """A Bessel pair potential (Å, eV); ``seed`` fixes the initial weights."""
    energy = RadialPairEnergy(len(type_names), r_max, n_basis, seeded_generator(seed))
    return ForceModel(
        energy, list(type_names), r_max=r_max, interaction_range=r_max, model_name="radial_pair"
    )


# ---- the loss term of docs/extending.md -------------------------------------------------------
class MaxForceError(LossTerm):
    """weight x the largest force-component error of the batch (eV/Å)."""

    calls = 0  # counts forward passes, for the test below

    def __init__(self, weight: float):
        super().__init__()
        self.weight = float(weight)

    def forward(self, pred, batch, model):
        MaxForceError.calls += 1
        return self.weight * (pred[keys.FORCES] - batch[keys.FORCES]).abs().max()


@register_loss_term("max_force_error")
def max_force_error(weight: float = 0.1) -> LossTerm:
    return MaxForceError(weight)


# ---- what the docs promise ----------------------------------------------------------------
class TestRadialPairBattery(EnergyModelBattery):
    def make_model(self, dtype):
        return build_model("radial_pair", type_names=["Si", "C"], r_max=3.5, n_basis=6, seed=1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_registered_model_exports_and_declares_what_gnnff_asks(tmp_path, dtype):
    assert "radial_pair" in available_models()
    model = build_model("radial_pair", type_names=["Si", "C"], r_max=3.5, n_basis=6)
    meta = check_export(model, tmp_path / "radial_pair.pt", dtype)
    assert meta["model_name"] == "radial_pair" and meta["interaction_range"] == 3.5
    check_per_type_parameters(lambda names: build_model("radial_pair", type_names=names))
    from gnnff.training.finetune import default_head

    assert default_head(model) == ["readout"]
    with pytest.raises(
        ValueError, match="radial_pair' has no option 'nbasis' \\(did you mean 'n_basis'\\?\\)"
    ):
        build_model("radial_pair", type_names=["Si"], nbasis=4)


def test_registered_model_and_loss_term_train_by_name(tmp_path):
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "training"))
    from training_helpers import emt_structures, small_config

    from gnnff.training.config import resolve_config
    from gnnff.training.trainer import Trainer

    assert "max_force_error" in available_loss_terms()
    ase.io.write(tmp_path / "d.extxyz", emt_structures(4, seed=3))
    config = small_config(
        str(tmp_path / "d.extxyz"), str(tmp_path / "run"), training={"max_epochs": 1}
    )
    config["model"] = {
        "name": "radial_pair",
        "type_names": ["Cu", "Al"],
        "r_max": 4.0,
        "n_basis": 6,
    }
    config["loss"] = {"forces": {"weight": 10.0}, "max_force_error": {"weight": 0.5}}
    MaxForceError.calls = 0
    trainer = Trainer(resolve_config(config))
    trainer.run()
    assert MaxForceError.calls > 0
    assert "train_loss_max_force_error" in trainer.history[-1]
    assert trainer.history[-1]["train_loss_max_force_error"] > 0

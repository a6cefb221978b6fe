"""NequIP: the physics battery (float64 + float32), builder contract and export."""

import pytest
import torch

from gnnff.models.registry import build_model
from gnnff.testing import EnergyModelBattery, check_export, check_per_type_parameters

TYPES = ["Si", "C"]
R_MAX = 3.5


def small(**kw):
    torch.manual_seed(0)
    return build_model("nequip", type_names=TYPES, r_max=R_MAX, preset="small", **kw)


class TestNequIPBattery(EnergyModelBattery):
    def make_model(self, dtype):
        return small()


class TestNequIPFullParity(EnergyModelBattery):
    """parity=True, l_max=2: odd scalars (tanh) and pseudo-vectors inside the gates."""

    def make_model(self, dtype):
        return small(parity=True, l_max=2, n_layers=2, num_features=4)

    test_translation = test_permutation = test_separability = test_batching = None
    test_virial_finite_strain = test_ghost_atoms = test_forces_finite_difference = None


def test_message_passing_interaction_range():
    model = small(n_layers=3)
    assert model.interaction_range == pytest.approx(3 * R_MAX)
    assert model.model_name == "nequip"


def test_edge_features_are_per_layer_messages():
    model = small(n_layers=2, l_max=1, num_features=8)
    irreps = model.energy_model.edge_feature_irreps
    assert len(irreps) == 2
    assert irreps == [str(b.tp.irreps_out) for b in model.energy_model.blocks]


def test_presets_and_overrides():
    paper = build_model("nequip", type_names=TYPES, r_max=5.0, preset="paper")
    assert len(paper.energy_model.blocks) == 5
    assert paper.interaction_range == pytest.approx(25.0)
    with pytest.raises(ValueError, match="unknown preset 'tiny'"):
        build_model("nequip", type_names=TYPES, r_max=5.0, preset="tiny")
    with pytest.raises(ValueError, match="polynomial cutoff order p must be >= 2"):
        build_model("nequip", type_names=TYPES, r_max=5.0, polynomial_p=1)


def test_per_type_parameters_live_in_type_embedding():
    check_per_type_parameters(lambda names: build_model("nequip", type_names=names, r_max=R_MAX))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_export_roundtrip(tmp_path, dtype):
    meta = check_export(small(n_layers=2), tmp_path / "nequip.pt", dtype)
    assert meta["interaction_range"] == pytest.approx(2 * R_MAX)

"""Allegro: the physics battery (float64 + float32), builder contract, export, and negative
controls showing the battery catches broken models."""

import pytest
import torch

from gnnff import keys
from gnnff.models.registry import build_model
from gnnff.testing import (
    EnergyModelBattery,
    check_cutoff_smoothness,
    check_e3nn_equivariance,
    check_export,
    check_forces_finite_difference,
    check_per_type_parameters,
    check_rotation_reflection,
)

TYPES = ["Si", "C"]
R_MAX = 3.5


def small(**kw):
    torch.manual_seed(0)
    return build_model("allegro", type_names=TYPES, r_max=R_MAX, preset="small", **kw)


class TestAllegroBattery(EnergyModelBattery):
    def make_model(self, dtype):
        return small()


class TestAllegroFullParity(EnergyModelBattery):
    """parity=True, two layers, l_max=2: pseudo-tensors inside, still E(3)-invariant energy."""

    def make_model(self, dtype):
        return small(parity=True, n_layers=2, l_max=2)

    # the full battery runs on the default small model; here the symmetry-critical checks
    test_translation = test_permutation = test_separability = test_batching = None
    test_virial_finite_strain = test_ghost_atoms = test_forces_finite_difference = None


class TestAllegroDenseTrack(EnergyModelBattery):
    """scalar_track 'dense' (with its variance-preserving MLP init): the whole battery; its
    cutoff check failed while the environment bias was not multiplied by u(r)."""

    def make_model(self, dtype):
        return small(n_layers=2, scalar_track="dense")


def test_dense_track_reads_all_latents_and_default_is_unchanged():
    residual, dense = small(n_layers=2), small(n_layers=2, scalar_track="dense")
    latent = residual.energy_model.readout.in_dim
    # dense: layer k's latent MLP reads k + 1 latents plus the product's scalars; the readout all
    layers = dense.energy_model.layers
    assert [layer.latent_mlp.in_dim - layer.n_scalars for layer in layers] == [latent, 2 * latent]
    assert dense.energy_model.readout.in_dim == 3 * latent
    # the presets keep the residual track: same parameter names and shapes as before the option
    assert [
        layer.latent_mlp.in_dim - layer.n_scalars for layer in residual.energy_model.layers
    ] == [
        latent,
        latent,
    ]
    with pytest.raises(ValueError, match="scalar_track must be 'residual' or 'dense'"):
        small(scalar_track="densenet")
    with pytest.raises(ValueError, match="unknown MLP init 'he'"):
        from gnnff.models.common.mlp import ScalarMLP

        ScalarMLP([4, 4], init="he")


def test_variance_preserving_init_keeps_activations_order_one():
    from gnnff.models.common.mlp import ScalarMLP

    torch.manual_seed(0)
    x = torch.randn(4096, 64, dtype=torch.float64)
    for init, low, high in (("torch", 0.0, 0.2), ("variance_preserving", 0.5, 2.0)):
        torch.manual_seed(1)
        mlp = ScalarMLP([64, 64, 64, 64], init=init).double()
        std = float(mlp(x).std())
        assert low < std < high, (init, std)


def test_strictly_local_interaction_range():
    model = small(n_layers=3)
    assert model.interaction_range == model.r_max == R_MAX
    assert model.model_name == "allegro"


def test_edge_features_documented_layout():
    model = small(n_layers=2, l_max=1, num_channels=4, latent_dim=16)
    # entries 0..n_layers-1 = [latent, equivariant] entering each layer, last = final latent
    assert model.energy_model.edge_feature_irreps == ["16x0e+4x0e+4x1o", "16x0e+4x0e+4x1o", "16x0e"]


def test_presets_and_overrides():
    medium = build_model("allegro", type_names=TYPES, r_max=5.0, preset="medium")
    assert len(medium.energy_model.layers) == 2
    tuned = build_model("allegro", type_names=TYPES, r_max=5.0, preset="medium", n_layers=1)
    assert len(tuned.energy_model.layers) == 1
    with pytest.raises(ValueError, match="unknown preset 'huge'.*medium"):
        build_model("allegro", type_names=TYPES, r_max=5.0, preset="huge")
    with pytest.raises(ValueError, match="no option 'nlayers'.*did you mean 'n_layers'"):
        build_model("allegro", type_names=TYPES, r_max=5.0, nlayers=2)
    with pytest.raises(ValueError, match="n_layers >= 1"):
        build_model("allegro", type_names=TYPES, r_max=5.0, n_layers=0)


def test_per_type_parameters_live_in_type_embedding():
    check_per_type_parameters(lambda names: build_model("allegro", type_names=names, r_max=R_MAX))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_export_roundtrip(tmp_path, dtype):
    meta = check_export(small(), tmp_path / "allegro.pt", dtype)
    assert meta["interaction_range"] == R_MAX


# ---- negative controls: the battery must fail on broken models ------------------------------
class _NotRotationInvariant(torch.nn.Module):
    """Adds a term depending on the x component of edge vectors: breaks rotation invariance."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.edge_feature_irreps = inner.edge_feature_irreps
        self.record_edge_features = False

    def forward(self, data):
        data = self.inner(data)
        extra = torch.zeros_like(data[keys.ATOMIC_ENERGY_RAW]).index_add(
            0, data[keys.EDGE_INDEX][0], data[keys.EDGE_VECTORS][:, 0] ** 2
        )
        data[keys.ATOMIC_ENERGY_RAW] = data[keys.ATOMIC_ENERGY_RAW] + 0.1 * extra
        return data


class _HardCutoff(_NotRotationInvariant):
    """Adds 1/r per edge with no envelope: energy jumps when an atom crosses r_max."""

    def forward(self, data):
        data = self.inner(data)
        r = torch.linalg.norm(data[keys.EDGE_VECTORS], dim=-1)
        extra = torch.zeros_like(data[keys.ATOMIC_ENERGY_RAW]).index_add(
            0, data[keys.EDGE_INDEX][0], 1.0 / r
        )
        data[keys.ATOMIC_ENERGY_RAW] = data[keys.ATOMIC_ENERGY_RAW] + extra
        return data


def test_battery_catches_broken_models():
    model = small()
    model.energy_model = _NotRotationInvariant(model.energy_model)
    with pytest.raises(AssertionError, match="after rotation"):
        check_rotation_reflection(model, torch.float64)
    with pytest.raises(
        AssertionError, match="energy not equivariant"
    ):  # e3nn's check catches it too
        check_e3nn_equivariance(model, torch.float64)
    model = small()
    model.energy_model = _HardCutoff(model.energy_model)
    with pytest.raises(AssertionError, match="energy jumps"):
        check_cutoff_smoothness(model, torch.float64)


def test_battery_catches_wrong_forces(monkeypatch):
    model = small().double().eval()
    forward = type(model).forward

    def scaled_forces(self, data):
        out = forward(self, data)
        out[keys.FORCES] = out[keys.FORCES] * 1.001  # a 0.1 % force error must be caught
        return out

    monkeypatch.setattr(type(model), "forward", scaled_forces)
    with pytest.raises(AssertionError, match="finite differences"):
        check_forces_finite_difference(model, torch.float64)


def test_the_old_constant_environment_bias_steps_at_r_max_and_the_battery_sees_it():
    # env_bias "constant" (checkpoints of version 1): a neighbour's bias share of Gamma_i does
    # not vanish at r_max; the battery's crossing check (1e-7 Å either side) must catch it
    with pytest.raises(AssertionError, match="energy steps by"):
        check_cutoff_smoothness(small(n_layers=2, env_bias="constant"), torch.float64)
    check_cutoff_smoothness(small(n_layers=2), torch.float64)  # the default, "cutoff": smooth
    with pytest.raises(ValueError, match="env_bias must be 'cutoff' or 'constant'"):
        small(env_bias="none")
    with pytest.raises(ValueError, match="use env_bias: cutoff with scalar_track: dense"):
        small(scalar_track="dense", env_bias="constant")


def test_a_version_1_checkpoint_keeps_its_constant_bias_and_resuming_it_names_the_fix():
    from ase.build import bulk

    from gnnff.calculator import GnnffCalculator
    from gnnff.model_io import model_from_checkpoint
    from gnnff.training.checkpoint import check_same_model

    config = {"name": "allegro", "type_names": TYPES, "r_max": R_MAX, "n_layers": 2}
    old = small(n_layers=2, env_bias="constant").double()
    with torch.no_grad():  # trained-like biases, so that the two forms differ clearly
        for name, p in old.named_parameters():
            if name.endswith("env_weights.bias"):
                p.normal_(0.0, 1.0)
    state = {"format": "gnnff-checkpoint", "model_config": config, "dtype": "float64"}
    state["model_state"] = old.state_dict()

    atoms = bulk("Si", "diamond", a=5.43).repeat(2)
    atoms.rattle(0.05, seed=1)
    energy = {}
    for version in (1, 2):
        model = model_from_checkpoint(dict(state, version=version))
        assert model.energy_model.env_bias_cutoff == (version == 2)
        atoms.calc = GnnffCalculator(model=model)
        energy[version] = atoms.get_potential_energy()
    atoms.calc = GnnffCalculator(model=old)
    assert energy[1] == pytest.approx(atoms.get_potential_energy(), rel=1e-12, abs=1e-12)
    assert abs(energy[2] - energy[1]) > 1e-6  # the new default is another function

    with pytest.raises(ValueError, match="add env_bias: constant to the model: section"):
        check_same_model(dict(state, version=1), config, "last.pt")
    check_same_model(dict(state, version=1), dict(config, env_bias="constant"), "last.pt")
    check_same_model(dict(state, version=2), config, "last.pt")

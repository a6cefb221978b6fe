"""pair_mlp: a state_dict saved before it moved onto gnnff.models.common's Bessel basis and cutoff
(tests/data/legacy/pair_mlp_state_v0.pt, made by make_pair_mlp_state_v0.py at commit 9d310ec)
still loads and gives the numbers it gave then."""

import os

import pytest
import torch
from model_zoo import small

from gnnff.models.registry import build_model
from gnnff.testing import EnergyModelBattery

LEGACY = os.path.join(os.path.dirname(__file__), "..", "data", "legacy", "pair_mlp_state_v0.pt")
# float64: the old and new code must do the same arithmetic (a float32-rounded frequency would
# show at ~1e-8); float32: the same operations, but kernels round differently across CPUs, and
# the forces' sums carry it: 1.9e-6 of the largest force on an Intel Xeon against the file made
# on an AMD EPYC (2026-12-01), so 1e-5, five times that spread
RTOL = {"float64": 1e-12, "float32": 1e-5}


@pytest.fixture(scope="module")
def legacy():
    return torch.load(LEGACY, weights_only=False)


def test_seeded_build_reproduces_the_saved_weights(legacy):
    fresh = build_model("pair_mlp", **legacy["options"]).state_dict()
    saved = legacy["state_dict"]
    assert set(fresh) == set(saved)
    for name, value in saved.items():
        if name.startswith("per_type_energy"):  # set by hand when the file was made
            continue
        assert fresh[name].dtype == value.dtype, name
        assert torch.equal(fresh[name], value), (
            f"{name} differs from the weights seed {legacy['options']['seed']} gave"
        )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("structure", ["crystal", "cluster"])
def test_saved_state_dict_loads_and_gives_the_saved_results(legacy, structure, dtype):
    model = build_model("pair_mlp", **legacy["options"])
    model.load_state_dict(legacy["state_dict"])  # strict: every saved name still exists
    model = model.to(getattr(torch, dtype)).eval()
    graph = {
        k: (v.to(getattr(torch, dtype)) if v.is_floating_point() else v)
        for k, v in legacy["graphs"][structure].items()
    }
    out = model(graph)
    for key, expected in legacy["results"][f"{structure}/{dtype}"].items():
        got = out[key].detach()
        assert got.dtype == expected.dtype
        scale = float(expected.abs().max())
        error = float((got - expected).abs().max())
        assert error <= RTOL[dtype] * scale, f"{key}: {error:.3e} > {RTOL[dtype]:.0e} x {scale:.3e}"


class TestPairMLPBattery(EnergyModelBattery):
    def make_model(self, dtype):
        return small("pair_mlp")


class TestPairMLPRadialOnlyBattery(EnergyModelBattery):
    """angular=False: only the two-body part (a different forward path)."""

    def make_model(self, dtype):
        return small("pair_mlp", angular=False, num_layers=1)

    # the default model runs every check; here the ones the angular term could have masked
    test_permutation = test_separability = test_batching = test_ghost_atoms = None
    test_virial_finite_strain = test_e3nn_equivariance = None

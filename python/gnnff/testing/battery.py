"""The physics battery as a pytest base class, and ``run_all`` for scripts.

``class TestMyModel(EnergyModelBattery)`` with ``make_model(self, dtype)`` returning a small,
seeded ForceModel (>= 2 types): pytest collects every ``test_*`` below, each run in float64
(tight tolerances) and float32 (loose). A check that cannot apply to a model is switched off in
the subclass with ``test_name = None`` and a comment saying why.
"""

import pytest
import torch

from gnnff.testing.contract import check_torchscript
from gnnff.testing.derivatives import (
    check_forces_finite_difference,
    check_virial_finite_strain,
)
from gnnff.testing.helpers import Factory
from gnnff.testing.locality import (
    check_batching,
    check_cutoff_smoothness,
    check_ghost_atoms,
    check_separability,
)
from gnnff.testing.symmetry import (
    check_e3nn_equivariance,
    check_edge_feature_interface,
    check_permutation,
    check_rotation_reflection,
    check_translation,
)

ALL_CHECKS = (
    check_rotation_reflection,
    check_translation,
    check_permutation,
    check_e3nn_equivariance,
    check_forces_finite_difference,
    check_virial_finite_strain,
    check_separability,
    check_cutoff_smoothness,
    check_torchscript,
    check_edge_feature_interface,
    check_ghost_atoms,
    check_batching,
)


def run_all(factory: Factory, dtypes=(torch.float64, torch.float32)):
    """Run every check on fresh models from ``factory`` (for scripts; pytest uses the class)."""
    for dtype in dtypes:
        for check in ALL_CHECKS:
            check(factory(dtype), dtype)


class EnergyModelBattery:
    """Subclass as ``class TestMyModel(EnergyModelBattery)`` and define ``make_model(self, dtype)``.

    ``make_model`` must return a fresh, small ForceModel (seeded) whose type_names has >= 2
    elements; the battery moves it to ``dtype`` and eval mode.
    """

    #: False for models without layers (analytic potentials): they must declare no edge features
    has_edge_features = True

    def make_model(self, dtype: torch.dtype) -> torch.nn.Module:
        raise NotImplementedError

    @pytest.fixture(params=[torch.float64, torch.float32], ids=["float64", "float32"])
    def dtype(self, request):
        return request.param

    @pytest.fixture
    def model(self, dtype):
        return self.make_model(dtype)

    def test_rotation_reflection(self, model, dtype):
        check_rotation_reflection(model, dtype)

    def test_translation(self, model, dtype):
        check_translation(model, dtype)

    def test_permutation(self, model, dtype):
        check_permutation(model, dtype)

    def test_forces_finite_difference(self, model, dtype):
        check_forces_finite_difference(model, dtype)

    def test_virial_finite_strain(self, model, dtype):
        check_virial_finite_strain(model, dtype)

    def test_separability(self, model, dtype):
        check_separability(model, dtype)

    def test_cutoff_smoothness(self, model, dtype):
        check_cutoff_smoothness(model, dtype)

    def test_torchscript(self, model, dtype):
        check_torchscript(model, dtype)

    def test_e3nn_equivariance(self, model, dtype):
        check_e3nn_equivariance(model, dtype)

    def test_edge_feature_interface(self, model, dtype):
        check_edge_feature_interface(model, dtype, expect_features=self.has_edge_features)

    def test_ghost_atoms(self, model, dtype):
        check_ghost_atoms(model, dtype)

    def test_batching(self, model, dtype):
        check_batching(model, dtype)

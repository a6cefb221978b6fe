"""gnnff.models.common.radial: the Bessel basis against its formula, and old state dicts of a
fixed basis (GemNet-T stored n pi before the basis stored n pi / r_max) loading unchanged."""

import math

import pytest
import torch

from gnnff.models.common.radial import BesselBasis, PolynomialCutoff

R_MAX = 3.7


@pytest.mark.parametrize("trainable", [True, False])
def test_bessel_basis_is_the_formula(trainable):
    basis = BesselBasis(R_MAX, 5, trainable=trainable).double()
    r = torch.linspace(0.3, R_MAX, 11, dtype=torch.float64)
    n = torch.arange(1, 6, dtype=torch.float64)
    expected = (
        math.sqrt(2.0 / R_MAX) * torch.sin(n * math.pi * r.unsqueeze(-1) / R_MAX) / r.unsqueeze(-1)
    )
    # trainable frequencies start from float32-rounded n pi; the fixed ones are exact in float64
    tol = 1e-6 if trainable else 1e-14
    assert torch.allclose(basis(r), expected, rtol=0, atol=tol)
    assert isinstance(basis.frequencies, torch.nn.Parameter) == trainable


def test_fixed_basis_recomputes_its_frequencies_on_load():
    basis = BesselBasis(R_MAX, 4, trainable=False)
    old_convention = {"frequencies": torch.arange(1, 5, dtype=torch.float32) * math.pi}  # n pi
    basis.load_state_dict(old_convention)
    expected = (torch.arange(1, 5, dtype=torch.float64) * math.pi / R_MAX).float()  # n pi / r_max
    assert torch.equal(basis.frequencies, expected)
    with pytest.raises(RuntimeError, match="size mismatch"):
        basis.load_state_dict({"frequencies": torch.ones(6)})


def test_cutoff_is_one_at_zero_and_smooth_zero_at_r_max():
    cutoff = PolynomialCutoff(R_MAX, 6).double()
    r = torch.tensor([0.0, R_MAX, R_MAX + 0.5], dtype=torch.float64, requires_grad=True)
    u = cutoff(r)
    (grad,) = torch.autograd.grad(u.sum(), r)
    assert u.tolist() == [1.0, 0.0, 0.0]
    assert abs(float(grad[1])) < 1e-12
    with pytest.raises(ValueError, match="order p must be >= 2"):
        PolynomialCutoff(R_MAX, 1)

"""ScalarMLP.scaled: the MLP's output times a per-row factor, with the factor moved onto the last
layer's input when that layer has no bias (NequIP's radial weights times the cutoff). Checked
against the plain product in float64: values, the derivatives a force loss takes (first and
second), eager and scripted."""

import pytest
import torch

from gnnff.models.common.mlp import ScalarMLP


class Scaled(torch.nn.Module):
    """scaled() as a module's forward, so that TorchScript compiles it as the models call it."""

    def __init__(self, mlp: ScalarMLP):
        super().__init__()
        self.mlp = mlp

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.mlp.scaled(x, scale)


@pytest.mark.parametrize("bias", [False, True])
def test_scaled_equals_output_times_scale_with_derivatives(bias):
    torch.manual_seed(0)
    mlp = ScalarMLP([8, 16, 16, 40], bias=bias).double()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(30, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    scale = torch.rand(30, 1, dtype=torch.float64, generator=gen, requires_grad=True)
    reference = mlp(x) * scale
    weights = torch.randn(reference.shape, dtype=torch.float64, generator=gen)
    wrt = [x, scale] + list(mlp.parameters())
    first_ref = torch.autograd.grad((reference * weights).sum(), wrt, create_graph=True)
    second_ref = torch.autograd.grad(sum((g**2).sum() for g in first_ref), wrt)
    for fn in (mlp.scaled, torch.jit.script(Scaled(mlp))):
        out = fn(x, scale)
        assert torch.allclose(out, reference, rtol=1e-14, atol=1e-15)
        first = torch.autograd.grad((out * weights).sum(), wrt, create_graph=True)
        for a, b in zip(first, first_ref):
            assert torch.allclose(a, b, rtol=1e-13, atol=1e-14)
        second = torch.autograd.grad(sum((g**2).sum() for g in first), wrt)
        for a, b in zip(second, second_ref):
            assert torch.allclose(a, b, rtol=1e-12, atol=1e-13)


def test_scaled_moves_the_factor_inside_only_without_bias():
    """With a bias the last layer is not linear in its input: the factor stays on the output
    (a bias times the factor is what the output needs, not the bias alone)."""
    assert ScalarMLP([4, 8, 3], bias=False).scale_inside
    assert not ScalarMLP([4, 8, 3], bias=True).scale_inside

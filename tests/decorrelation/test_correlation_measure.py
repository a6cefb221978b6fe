"""The correlation measure (gnnff.training.correlation) against a slow loop reference, under
rotations, through gradcheck, and on degenerate input."""

import math

import pytest
import torch
from decorrelation_helpers import (
    equivariant_edge_features,
    irreps_string,
    reference_layer_correlation,
)

from gnnff.training import correlation

SPECS = [[(5, 0)], [(3, 0), (2, 1)], [(2, 0), (1, 1), (2, 2)], [(2, 1), (1, 0), (1, 3)]]


def _random_features(spec, n_edges, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    dim = sum(m * (2 * l + 1) for m, l in spec)
    mixing = torch.randn(dim, dim, generator=gen, dtype=dtype)  # correlated channels
    return torch.randn(n_edges, dim, generator=gen, dtype=dtype) @ mixing + torch.randn(
        dim, generator=gen, dtype=dtype
    )


@pytest.mark.parametrize("spec", SPECS, ids=irreps_string)
@pytest.mark.parametrize("reduction", correlation.REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fast_measure_equals_loop_reference(spec, reduction, dtype):
    x = _random_features(spec, 23, dtype, seed=len(spec))
    fast = correlation.layer_correlation(x, irreps_string(spec), reduction)
    slow = reference_layer_correlation(
        x.double().tolist(), spec, reduction, tiny=torch.finfo(dtype).tiny
    )
    assert 0.0 < slow <= 1.0
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    assert float(fast) == pytest.approx(slow, rel=tol, abs=tol)


def test_pearson_matrix_matches_torch_corrcoef():
    x = _random_features([(6, 0)], 40, torch.float64, seed=3)
    ours = correlation.pearson_matrix(x, variance_eps=0.0)
    assert torch.allclose(ours, torch.corrcoef(x.T), atol=1e-12)


def test_uncorrelated_and_perfectly_correlated_channels():
    t = torch.linspace(-1, 1, 50, dtype=torch.float64)
    same = torch.stack([t, 2 * t + 1, -3 * t], dim=1)  # |r| = 1 for every pair
    assert float(correlation.layer_correlation(same, "3x0e", variance_eps=0.0)) == pytest.approx(
        1.0, abs=1e-12
    )
    a, b = torch.meshgrid(t, t, indexing="ij")  # independent on a grid: r = 0 exactly
    grid = torch.stack([a.flatten(), b.flatten()], dim=1)
    assert float(correlation.layer_correlation(grid, "2x0e")) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("spec", [[(3, 0), (2, 1), (2, 2)], [(2, 0), (3, 1)]], ids=irreps_string)
def test_invariant_to_rotating_the_structure(spec):
    from e3nn import o3

    gen = torch.Generator().manual_seed(1)
    pos = torch.rand(12, 3, generator=gen, dtype=torch.float64) * 4
    i, j = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    mask = (i != j) & ((pos[i] - pos[j]).norm(dim=-1) < 3.0)
    edge_index = torch.stack([i[mask], j[mask]])
    torch.manual_seed(4)
    rotation = o3.rand_matrix(dtype=torch.float64)
    x = equivariant_edge_features(pos, edge_index, spec)
    x_rot = equivariant_edge_features(pos @ rotation.T, edge_index, spec)
    assert not torch.allclose(x, x_rot, atol=1e-3)  # the features themselves do rotate
    irreps = irreps_string(spec)
    for reduction in correlation.REDUCTIONS:
        before = correlation.layer_correlation(x, irreps, reduction)
        after = correlation.layer_correlation(x_rot, irreps, reduction)
        assert float(after) == pytest.approx(float(before), rel=1e-10)
    # negative control: treating the vector components as scalars is NOT invariant
    naive = correlation.pearson_matrix(x), correlation.pearson_matrix(x_rot)
    assert (naive[0] - naive[1]).abs().max() > 0.05
    invariant = [
        correlation.pearson_matrix(correlation.invariant_channels(f, irreps)) for f in (x, x_rot)
    ]
    assert torch.allclose(invariant[0], invariant[1], atol=1e-10)


@pytest.mark.parametrize("spec", [[(4, 0)], [(2, 0), (1, 1), (1, 2)]], ids=irreps_string)
@pytest.mark.parametrize("reduction", correlation.REDUCTIONS)
def test_gradcheck_float64(spec, reduction):
    x = _random_features(spec, 11, torch.float64, seed=5).requires_grad_(True)
    irreps = irreps_string(spec)
    assert torch.autograd.gradcheck(
        lambda f: correlation.layer_correlation(f, irreps, reduction), (x,)
    )
    assert torch.autograd.gradgradcheck(
        lambda f: correlation.layer_correlation(f, irreps, reduction), (x,)
    )


def test_zero_variance_channel_is_guarded():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(20, 4, generator=gen, dtype=torch.float64)
    x[:, 2] = 0.7  # constant over the batch (a dead ReLU, say)
    vec = torch.zeros(20, 3, dtype=torch.float64)  # a vector channel that is exactly zero
    features = torch.cat([x, vec], dim=1).requires_grad_(True)
    corr = correlation.pearson_matrix(correlation.invariant_channels(features, "4x0e+1x1o"))
    assert torch.isfinite(corr).all()
    assert torch.all(corr[2] == 0) and torch.all(
        corr[:, 4] == 0
    )  # dead channels correlate with nothing
    value = correlation.layer_correlation(features, "4x0e+1x1o")
    value.backward()
    assert torch.isfinite(features.grad).all()
    all_dead = torch.ones(10, 3, dtype=torch.float32, requires_grad=True)
    value = correlation.layer_correlation(all_dead, "3x0e")
    value.backward()
    assert float(value.detach()) == 0.0 and torch.isfinite(all_dead.grad).all()


def test_scale_invariance_and_degenerate_sizes():
    x = _random_features([(3, 0), (1, 1)], 30, torch.float64, seed=7)
    base = correlation.layer_correlation(x, "3x0e+1x1o", norm_eps=1e-30)
    assert float(
        correlation.layer_correlation(1e-4 * x, "3x0e+1x1o", norm_eps=1e-30)
    ) == pytest.approx(float(base), rel=1e-8)
    one_edge = torch.randn(1, 3, dtype=torch.float64, requires_grad=True)
    assert float(correlation.layer_correlation(one_edge, "3x0e").detach()) == 0.0
    assert float(correlation.layer_correlation(x[:, :1], "1x0e")) == 0.0  # one channel


def test_shape_and_irreps_errors_name_the_fix():
    x = torch.zeros(5, 7)
    with pytest.raises(ValueError, match=r"do not match irreps '2x0e\+1x1o'.*expected \(E, 5\)"):
        correlation.invariant_channels(x, "2x0e+1x1o")
    with pytest.raises(ValueError, match="cannot parse edge-feature irreps 'sixteen'.*'16x0e'"):
        correlation.invariant_channels(x, "sixteen")
    with pytest.raises(ValueError, match="unknown correlation reduction 'median'.*mean_square"):
        correlation.reduce_offdiagonal(torch.eye(3), "median")


def test_edge_subsample():
    assert correlation.subsample_edges(100, None, "cpu") is None
    assert correlation.subsample_edges(100, 200, "cpu") is None
    idx = correlation.subsample_edges(100, 30, "cpu")  # i.i.d. uniform draws (with replacement)
    assert (
        idx.shape == (30,)
        and idx.dtype == torch.long
        and 0 <= int(idx.min()) <= int(idx.max()) < 100
    )
    assert correlation.subsample_edges(100, 0.25, "cpu").shape == (25,)
    # a subsample of a large batch estimates the full-batch value
    x = _random_features([(6, 0)], 20000, torch.float64, seed=8)
    full = float(correlation.layer_correlation(x, "6x0e"))
    torch.manual_seed(0)
    part = float(
        correlation.layer_correlation(
            x, "6x0e", edge_index=correlation.subsample_edges(20000, 4000, "cpu")
        )
    )
    assert part == pytest.approx(full, rel=0.05)
    assert correlation.num_invariant_channels("3x0e+2x1o+1x2e") == 6 and math.isfinite(full)


def test_neighbouring_blocks_of_equal_l_and_mixed_parity():
    # 0e+0o and 1o+1e neighbours are merged into one block internally; values must not change
    irreps = "2x0e+1x0o+2x1o+1x1e+1x2e"
    blocks = [(2, 0), (1, 0), (2, 1), (1, 1), (1, 2)]
    x = _random_features(blocks, 19, torch.float64, seed=11).requires_grad_(True)
    for reduction in correlation.REDUCTIONS:
        fast = float(correlation.layer_correlation(x, irreps, reduction).detach())
        slow = reference_layer_correlation(
            x.detach().tolist(), blocks, reduction, tiny=torch.finfo(torch.float64).tiny
        )
        assert fast == pytest.approx(slow, rel=1e-10)
    assert torch.autograd.gradcheck(lambda f: correlation.layer_correlation(f, irreps), (x,))
    assert torch.autograd.gradgradcheck(lambda f: correlation.invariant_channels(f, irreps), (x,))

"""The fused decorrelation measure (gnnff.training.fused_correlation): the trainer's mean_square
path, which reads the layouts the models store (no copy at recording) and a subsample of edges.

Checked against independent computations: numpy's corrcoef of invariants computed in numpy from
e3nn-layout features (the layouts are built from them with explicit numpy reshapes), and the
composed, autograd-differentiated functions of correlation.py (values and gradients, float64).
The edge subsample is checked to estimate the full-batch value (its covariance exactly in
expectation, rho up to the O(1/k) bias of a squared sample correlation)."""

import itertools

import ase
import numpy as np
import pytest
import torch

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.models import build_model, features
from gnnff.models.base import CHANNEL_MAJOR_SUFFIX
from gnnff.training import correlation
from gnnff.training.fused_correlation import fused_mean_square_correlations
from gnnff.training.loss_terms import build_loss_term

# (irreps, blocks (mul, l)) of e3nn-layout test features
E3NN = ("3x0e+2x1o+2x1e+1x2e", [(3, 0), (2, 1), (2, 1), (1, 2)])
ROWS = ("4x0e+4x1o+4x1e+4x2e", [(4, 0), (4, 1), (4, 1), (4, 2)])  # one mul: component rows
SCM_SCALARS, SCM_V = 5, ("3x0e+3x1o+3x2e", [(3, 0), (3, 1), (3, 2)])


def _e3nn_numpy(blocks, n_edges, rng):
    """Random (E, D) features in e3nn layout with correlated channels (a shared latent)."""
    cols = []
    latent = rng.normal(size=(n_edges, 1))
    for mul, l in blocks:
        x = rng.normal(size=(n_edges, mul, 2 * l + 1)) + 0.8 * latent[:, :, None]
        cols.append(x.reshape(n_edges, mul * (2 * l + 1)))
    return np.concatenate(cols, axis=1)


def _rows_numpy(x, blocks):
    """e3nn (E, mul*D) -> (E, D, mul), by explicit per-block reshapes (independent of gnnff)."""
    out, start = [], 0
    for mul, l in blocks:
        d = 2 * l + 1
        out.append(x[:, start : start + mul * d].reshape(-1, mul, d).transpose(0, 2, 1))
        start += mul * d
    return np.ascontiguousarray(np.concatenate(out, axis=1))


def _invariants_numpy(x, blocks, norm_eps=1e-8):
    out, start = [], 0
    for mul, l in blocks:
        d = 2 * l + 1
        block = x[:, start : start + mul * d].reshape(-1, mul, d)
        out.append(block[:, :, 0] if l == 0 else np.sqrt((block**2).sum(-1) + norm_eps))
        start += mul * d
    return np.concatenate(out, axis=1)


def _rho_numpy(z):
    r = np.corrcoef(z, rowvar=False)
    c = r.shape[0]
    return (np.sum(r**2) - np.sum(np.diag(r) ** 2)) / (c * (c - 1))


def _layers(n_edges=400, seed=0):
    """Test layers in the three stored layouts (torch, float64) and their numpy references."""
    rng = np.random.default_rng(seed)
    x_e3nn = _e3nn_numpy(E3NN[1], n_edges, rng)
    x_rows = _e3nn_numpy(ROWS[1], n_edges, rng)
    scalars = _e3nn_numpy([(SCM_SCALARS, 0)], n_edges, rng)
    x_v = _e3nn_numpy(SCM_V[1], n_edges, rng)
    v_cmajor = np.ascontiguousarray(_rows_numpy(x_v, SCM_V[1]).transpose(2, 1, 0))  # (mul, D, E)
    t = torch.from_numpy
    layers = [
        (E3NN[0], "e3nn", [t(x_e3nn)]),
        (ROWS[0], "component_rows", [t(_rows_numpy(x_rows, ROWS[1]))]),
        (f"{SCM_SCALARS}x0e+{SCM_V[0]}", "scalars+channel_major", [t(scalars), t(v_cmajor)]),
        # the same with (mul, D, E) stored as a transposed (D, mul, E) buffer (Allegro's linear)
        (
            f"{SCM_SCALARS}x0e+{SCM_V[0]}",
            "scalars+channel_major",
            [t(scalars), t(np.ascontiguousarray(v_cmajor.transpose(1, 0, 2))).transpose(0, 1)],
        ),
    ]
    reference_invariants = [
        _invariants_numpy(x_e3nn, E3NN[1]),
        _invariants_numpy(x_rows, ROWS[1]),
        np.concatenate([scalars, _invariants_numpy(x_v, SCM_V[1])], axis=1),
    ]
    reference_invariants.append(reference_invariants[-1])
    return layers, reference_invariants


def test_fused_equals_numpy_corrcoef_of_the_invariants():
    layers, ref = _layers()
    # variance_eps = 0: R is the textbook Pearson matrix (the floor is sqrt(tiny) only)
    rho = fused_mean_square_correlations(layers, None, norm_eps=1e-8, variance_eps=0.0)
    for i, z in enumerate(ref):
        assert float(rho[i]) == pytest.approx(_rho_numpy(z), rel=1e-12)
        assert float(rho[i]) > 0.02  # the shared latent correlates the channels
    # a subsample (with repeated edges) is the same measure on the selected rows
    index = torch.tensor([0, 5, 5, 17, 3, 99, 250, 250, 250, 1, 42, 7])
    rho = fused_mean_square_correlations(layers, index, norm_eps=1e-8, variance_eps=0.0)
    for i, z in enumerate(ref):
        assert float(rho[i]) == pytest.approx(_rho_numpy(z[index.numpy()]), rel=1e-10)


@pytest.mark.parametrize("subsample", [False, True], ids=["all_edges", "subsample"])
def test_fused_values_and_gradients_equal_the_composed_functions(subsample):
    layers, _ = _layers(n_edges=300, seed=3)
    index = torch.randint(300, (120,), generator=torch.Generator().manual_seed(1))
    index = index if subsample else None
    leaves = [[p.clone().requires_grad_(True) for p in parts] for _, _, parts in layers]
    rho = fused_mean_square_correlations(
        [(irreps, layout, ps) for (irreps, layout, _), ps in zip(layers, leaves)], index
    )
    weights = torch.tensor([0.3, -1.2, 0.7, 2.0], dtype=torch.float64)
    (rho * weights).sum().backward()
    for i, ((irreps, layout, _), ps) in enumerate(zip(layers, leaves)):
        ref_leaves = [p.detach().clone().requires_grad_(True) for p in ps]
        x = features.to_e3nn(ref_leaves, irreps, layout, index)
        ref = correlation.layer_correlation(x, irreps)
        (ref * weights[i]).backward()
        assert float(rho[i].detach()) == pytest.approx(float(ref.detach()), rel=1e-12)
        for got, want in zip(ps, ref_leaves):
            assert got.grad.shape == want.shape
            torch.testing.assert_close(got.grad, want.grad, rtol=1e-10, atol=1e-14)


def test_fused_edge_cases():
    layers, _ = _layers(n_edges=50)
    one_channel = [("1x0e", "e3nn", [torch.randn(50, 1, dtype=torch.float64)])]
    assert float(fused_mean_square_correlations(one_channel)[0]) == 0.0
    one_edge = fused_mean_square_correlations(layers, torch.tensor([4]))
    assert torch.equal(one_edge, torch.zeros(4, dtype=torch.float64))
    dead = torch.zeros(50, 4, dtype=torch.float64, requires_grad=True)  # zero variance
    rho = fused_mean_square_correlations([("4x0e", "e3nn", [dead])])
    rho.sum().backward()
    assert float(rho[0]) == 0.0 and torch.isfinite(dead.grad).all()
    with pytest.raises(ValueError, match="stores 2 tensors, got 1"):
        fused_mean_square_correlations([layers[2][:2] + (layers[2][2][:1],)])


def test_edge_subsample_estimates_the_full_batch_measure():
    """i.i.d. draws: the subsample covariance (x k/(k-1)) is unbiased for the batch covariance,
    exactly (checked by enumerating every draw of k = 2 out of E = 5), and rho_k, a mean of
    squared sample correlations, converges to the full-batch rho with a bias of order 1/k."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(5, 3)) + rng.normal(size=(5, 1))
    full_cov = np.cov(z, rowvar=False, bias=True)
    draws = [(a, b) for a in range(5) for b in range(5)]  # all E^k equally likely draws
    mean_cov = np.mean([np.cov(z[list(d)], rowvar=False, bias=False) for d in draws], axis=0)
    np.testing.assert_allclose(mean_cov, full_cov, rtol=1e-12)

    layers, _ = _layers(n_edges=20000, seed=2)
    layers = layers[:3]
    full = fused_mean_square_correlations(layers).numpy()
    generator = torch.Generator().manual_seed(0)
    errors = {}
    for k in (64, 1024):
        values = np.stack(
            [
                fused_mean_square_correlations(
                    layers, torch.randint(20000, (k,), generator=generator)
                ).numpy()
                for _ in range(200)
            ]
        )
        mean, sem = values.mean(0), values.std(0) / np.sqrt(len(values))
        errors[k] = np.abs(mean - full)
        # bias of a mean squared sample correlation: about (1 - R^2)^2 / k <= 1 / k
        assert np.all(errors[k] <= 1.5 / k + 4 * sem), (k, mean, full, sem)
    assert np.all(errors[1024] < errors[64])


def _cluster(seed=0):
    rng = np.random.default_rng(seed)
    grid = np.array([[x, y, z] for x in range(4) for y in range(3) for z in range(3)], dtype=float)
    return ase.Atoms("Si36", positions=2.3 * grid + rng.normal(scale=0.15, size=grid.shape))


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("allegro", dict(l_max=2, n_layers=2, num_channels=4, latent_dim=8, mlp_hidden=8)),
        ("nequip", dict(l_max=2, parity=True)),
    ],
)
def test_models_record_their_own_layout_and_the_term_is_unchanged(name, kwargs):
    """allegro/nequip store the layers as computed (no copy); the term's value and parameter
    gradients equal the previous definition: the composed measure on e3nn-layout features."""
    torch.manual_seed(0)
    model = build_model(name, type_names=["Si"], r_max=3.5, **kwargs).double().train()
    features.set_recording(model, True)
    graph = atoms_to_graph(_cluster(), ["Si"], 3.5, dtype=torch.float64)
    layouts = features.edge_feature_layouts(model)
    assert set(layouts) <= {"component_rows", "scalars+channel_major", "e3nn"}
    assert any(layout != "e3nn" for layout in layouts)
    params = [p for p in model.parameters()]

    pred = model(dict(graph))
    if "scalars+channel_major" in layouts:
        assert keys.edge_feature_key(0) + CHANNEL_MAJOR_SUFFIX in pred
    term = build_loss_term("decorrelation", lambda_value=0.5, edge_subsample=None)
    value = term(pred, graph, model)
    got = torch.autograd.grad(value, params, allow_unused=True)

    pred = model(dict(graph))
    ref = 0.5 * sum(
        correlation.layer_correlation(x, irreps) for irreps, x in features.collect(pred, model)
    )
    want = torch.autograd.grad(ref, params, allow_unused=True)
    assert float(value.detach()) == pytest.approx(float(ref.detach()), rel=1e-12)
    assert sum(g is not None for g in got) > 0
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-13)
    # a subsample with repeated edges: the gradients the fused node sends into the model give
    # the same parameter gradients as the composed measure of the same rows
    n_edges = graph[keys.EDGE_INDEX].shape[1]
    index = torch.randint(n_edges, (n_edges // 2,), generator=torch.Generator().manual_seed(3))
    irreps = features.edge_feature_irreps(model)

    def measured(pred, fused, channels):
        """The measure of the index edges; ``channels``: channels drawn per layer (the fused
        node's draw replayed for the composed reference: one randperm per wider layer)."""
        parts = [features.layer_parts(pred, i, layouts[i]) for i in range(len(irreps))]
        torch.manual_seed(77)
        if fused:
            layers = list(zip(irreps, layouts, parts))
            return fused_mean_square_correlations(layers, index, channel_subsample=channels).sum()
        total = 0.0
        for ir, lay, ps in zip(irreps, layouts, parts):
            z = correlation.invariant_channels(features.to_e3nn(ps, ir, lay, index), ir)
            if channels is not None and z.shape[1] > channels:
                z = z[:, torch.randperm(z.shape[1])[:channels].sort().values]
            total = total + correlation.correlations_of_layers([z])[0]
        return total

    # the term alone, and with energy + forces (the hook adds the term's rows into the model's
    # gradient); all channels, and 3 drawn channels per layer (gathered components only)
    for with_model_loss, channels in itertools.product((False, True), (None, 3)):

        def loss(fused):
            pred = model(dict(graph))
            value = measured(pred, fused, channels)
            if not with_model_loss:
                return value
            return value + 1e-3 * pred[keys.TOTAL_ENERGY].sum() + pred[keys.FORCES].square().sum()

        got = torch.autograd.grad(loss(True), params, allow_unused=True)
        want = torch.autograd.grad(loss(False), params, allow_unused=True)
        for g, w in zip(got, want):
            assert (g is None) == (w is None)
            if g is not None:
                # sums over edges in another order: an element that cancels to ~0 keeps a
                # rounding error relative to the tensor's largest elements. Measured floor: the
                # composed reference alone, with the graph's edges permuted, moves allegro's
                # initial_weights.bias gradient by 4.6e-13 = 2.4e-12 of its largest element;
                # fused vs composed differ by 5.1e-13 there (env_bias cutoff)
                scale = float(w.abs().max())
                torch.testing.assert_close(g, w, rtol=1e-9, atol=max(1e-13, 1e-11 * scale))
    # the default term draws 1024 edges when the batch has more; here it has fewer: all edges
    assert graph[keys.EDGE_INDEX].shape[1] > 100
    default = build_loss_term("decorrelation", lambda_value=0.5)
    if graph[keys.EDGE_INDEX].shape[1] <= 1024:
        assert float(default(model(dict(graph)), graph, model)) == pytest.approx(
            float(ref), rel=1e-12
        )


def _drawn_channels(grad_columns: torch.Tensor) -> tuple:
    """Channels of an (E, C) scalar layer that got a gradient: the ones the measure drew."""
    return tuple(int(c) for c in torch.nonzero(grad_columns.abs().sum(0)).flatten())


def test_channel_subsample_is_the_measure_of_a_uniformly_drawn_sub_layer():
    """A layer wider than ``channel_subsample`` m is measured on m channels drawn uniformly
    without replacement: each draw's rho is numpy's rho of exactly those channels (the ones that
    receive a gradient), every m-subset is drawn about equally often, and the mean of rho over
    all m-subsets is the full layer's rho (with variance_eps = 0: R's entries do not depend on
    which other channels are measured), so the estimate is unbiased."""
    rng = np.random.default_rng(11)
    n_channels, m = 5, 3
    z = rng.normal(size=(300, n_channels)) + rng.normal(size=(300, 1)) * np.linspace(0.2, 1.5, 5)
    subsets = list(itertools.combinations(range(n_channels), m))
    by_subset = {s: _rho_numpy(z[:, list(s)]) for s in subsets}
    assert np.mean(list(by_subset.values())) == pytest.approx(_rho_numpy(z), rel=1e-12)
    assert np.ptp(list(by_subset.values())) > 0.05  # the draws differ: a real estimate

    counts = dict.fromkeys(subsets, 0)
    torch.manual_seed(0)
    draws = 1000
    for _ in range(draws):
        x = torch.from_numpy(z).requires_grad_(True)
        rho = fused_mean_square_correlations(
            [(f"{n_channels}x0e", "e3nn", [x])], None, variance_eps=0.0, channel_subsample=m
        )
        rho.sum().backward()
        drawn = _drawn_channels(x.grad)
        assert float(rho[0].detach()) == pytest.approx(by_subset[drawn], rel=1e-12)
        counts[drawn] += 1
    expected = draws / len(subsets)  # binomial sd ~9.5
    assert all(abs(c - expected) < 5 * np.sqrt(expected) for c in counts.values()), counts
    # a layer no wider than m, and channel_subsample None, measure every channel
    x = torch.from_numpy(z)
    for option in (n_channels, None):
        rho = fused_mean_square_correlations(
            [(f"{n_channels}x0e", "e3nn", [x])], None, variance_eps=0.0, channel_subsample=option
        )
        assert float(rho[0]) == pytest.approx(_rho_numpy(z), rel=1e-12)
    with pytest.raises(ValueError, match="channel_subsample must be None or >= 2"):
        fused_mean_square_correlations([(f"{n_channels}x0e", "e3nn", [x])], None, 1e-8, 0.0, 1)


def test_channel_subsample_gradients_equal_the_composed_measure_of_the_drawn_invariants():
    """Stored layouts with l > 0 channels (rows, channel-major, e3nn) and an edge subsample: the
    fused node's value and gradients equal autograd through the composed functions applied to
    the same drawn invariant channels (the draw replayed from the same RNG state: one randperm
    per wide layer, in layer order); narrow layers in the same call are measured whole."""
    layers, _ = _layers(n_edges=300, seed=4)
    index = torch.randint(300, (150,), generator=torch.Generator().manual_seed(2))
    m = 5
    leaves = [[p.clone().requires_grad_(True) for p in parts] for _, _, parts in layers]
    torch.manual_seed(123)
    rho = fused_mean_square_correlations(
        [(irreps, layout, ps) for (irreps, layout, _), ps in zip(layers, leaves)],
        index,
        channel_subsample=m,
    )
    weights = torch.tensor([0.3, -1.2, 0.7, 2.0], dtype=torch.float64)
    (rho * weights).sum().backward()

    torch.manual_seed(123)
    drawn_layers = 0
    for i, ((irreps, layout, _), ps) in enumerate(zip(layers, leaves)):
        ref_leaves = [p.detach().clone().requires_grad_(True) for p in ps]
        x = features.to_e3nn(ref_leaves, irreps, layout, index)
        z = correlation.invariant_channels(x, irreps)
        if z.shape[1] > m:
            drawn_layers += 1
            z = z[:, torch.randperm(z.shape[1])[:m].sort().values]
        (ref,) = correlation.correlations_of_layers([z], "mean_square")
        (ref * weights[i]).backward()
        assert float(rho[i].detach()) == pytest.approx(float(ref.detach()), rel=1e-12)
        for got, want in zip(ps, ref_leaves):
            torch.testing.assert_close(got.grad, want.grad, rtol=1e-10, atol=1e-14)
    assert drawn_layers == 4  # every test layer has 6-16 invariant channels


def test_the_term_draws_channels_only_for_its_gradient():
    """DecorrelationLoss: a training step with lambda > 0 measures m drawn channels of a wide
    layer (the gradient's cost); evaluation and lambda = 0 log the all-channel measure;
    max_square (a max is not estimated by a draw) always measures every channel; bad values
    are refused with the fix."""
    torch.manual_seed(0)
    model = build_model(
        "pair_mlp", type_names=["Si"], r_max=3.5, hidden=16, num_layers=2, angular=False
    ).double()
    features.set_recording(model, True)
    graph = atoms_to_graph(_cluster(), ["Si"], 3.5, dtype=torch.float64)
    pred = model(dict(graph))
    full = [
        float(correlation.layer_correlation(x.detach(), irreps))
        for irreps, x in features.collect(pred, model)
    ]
    term = build_loss_term("decorrelation", lambda_value=1.0, edge_subsample=None,
                           channel_subsample=4)  # fmt: skip
    assert term.channel_subsample == 4
    model.train()
    value = term(pred, graph, model)
    drawn = [float(term.batch_logs()[f"corr_layer{i}"]) for i in range(len(full))]
    assert value.requires_grad
    assert all(d != pytest.approx(f, rel=1e-9) for d, f in zip(drawn, full))
    model.eval()
    term(pred, graph, model)
    logged = [float(term.batch_logs()[f"corr_layer{i}"]) for i in range(len(full))]
    assert logged == pytest.approx(full, rel=1e-10)
    model.train()
    zero = build_loss_term("decorrelation", lambda_value=0.0, edge_subsample=None,
                           channel_subsample=4)  # fmt: skip
    zero(pred, graph, model)
    assert [zero.batch_logs()[f"corr_layer{i}"] for i in range(len(full))] == pytest.approx(full)
    worst = build_loss_term("decorrelation", reduction="max_square", lambda_value=1.0,
                            edge_subsample=None, channel_subsample=4)  # fmt: skip
    assert worst.channel_subsample is None
    with pytest.raises(ValueError, match="channel_subsample must be null .* or an int >= 2"):
        build_loss_term("decorrelation", channel_subsample=1)
    with pytest.raises(ValueError, match="channel_subsample must be null"):
        build_loss_term("decorrelation", channel_subsample=0.5)

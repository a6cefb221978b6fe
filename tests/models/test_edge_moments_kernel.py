"""gnnff::outer_index_add / gather_matvec / gather_vecmat (cpp/src/ops/edge_moments.cpp): against
loops that are obviously right, against finite differences to the second derivative, and
pair_mlp and allegro built with them against their pure-torch forms (energy, forces, and the
parameter gradient of a force loss, which training needs), eager and exported."""

import os

import pytest
import torch
from kernel_common import (  # noqa: F401 (operators: autouse fixture)
    assert_same_to_training_order,
    operators,
    two_type_graph,
)

from gnnff import keys, ops
from gnnff.export import export_model, load_exported
from gnnff.models.registry import build_model


def edges(n_atoms=5, n_edges=17, a=3, block=(0, 1, 1, 1), seed=0):
    gen = torch.Generator().manual_seed(seed)
    n_blocks = max(block) + 1
    x = torch.randn(n_edges, a, n_blocks, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.randn(n_edges, len(block), dtype=torch.float64, generator=gen, requires_grad=True)
    index = torch.randint(0, n_atoms, (n_edges,), generator=gen)
    g = torch.randn(n_atoms, a, len(block), dtype=torch.float64, generator=gen, requires_grad=True)
    return x, y, torch.tensor(block), index, g


# B = 4 and 9 take the unrolled loops, 3 and 5 the general ones; blocks in any order
@pytest.mark.parametrize(
    "block", [(0, 1, 1, 1), (0, 0, 0), (0, 1, 1, 1, 2, 2, 2, 2, 2), (1, 0, 2, 0, 1)]
)
def test_ops_equal_loops(block):
    x, y, block, index, g = edges(block=block)
    outer = torch.zeros(g.shape, dtype=torch.float64)
    matvec = torch.zeros(x.shape, dtype=torch.float64)
    vecmat = torch.zeros(y.shape, dtype=torch.float64)
    for e, i in enumerate(index.tolist()):
        for p in range(x.shape[1]):
            for q, l in enumerate(block.tolist()):
                outer[i, p, q] += x[e, p, l] * y[e, q]
                matvec[e, p, l] += g[i, p, q] * y[e, q]
                vecmat[e, q] += x[e, p, l] * g[i, p, q]
    n, n_blocks = g.shape[0], x.shape[2]
    gnnff = torch.ops.gnnff
    torch.testing.assert_close(gnnff.outer_index_add(x, y, block, index, n), outer)
    torch.testing.assert_close(gnnff.gather_matvec(g, y, block, index, n_blocks), matvec)
    torch.testing.assert_close(gnnff.gather_vecmat(g, x, block, index), vecmat)
    # float32 takes the same loops
    got = gnnff.outer_index_add(x.float(), y.float(), block, index, n)
    torch.testing.assert_close(got, outer.float())


def test_ops_against_finite_differences_to_second_order():
    x, y, block, index, g = edges(n_atoms=3, n_edges=6, a=2, block=(0, 1, 1), seed=1)
    n, n_blocks = g.shape[0], x.shape[2]
    cases = [
        (lambda x, y: torch.ops.gnnff.outer_index_add(x, y, block, index, n), (x, y)),
        (lambda g, y: torch.ops.gnnff.gather_matvec(g, y, block, index, n_blocks), (g, y)),
        (lambda g, x: torch.ops.gnnff.gather_vecmat(g, x, block, index), (g, x)),
    ]
    for fn, inputs in cases:
        assert torch.autograd.gradcheck(fn, inputs)
        assert torch.autograd.gradgradcheck(fn, inputs)


def test_bad_input_is_a_named_error():
    x, y, block, index, g = edges()
    gnnff = torch.ops.gnnff
    with pytest.raises(RuntimeError, match="outer_index_add: index 5 at edge"):
        gnnff.outer_index_add(x, y, block, torch.full_like(index, 5), 5)
    with pytest.raises(RuntimeError, match="gather_matvec: index"):
        gnnff.gather_matvec(g, y, block, index[:-1], 2)
    with pytest.raises(RuntimeError, match="gather_vecmat: g's dimension"):
        gnnff.gather_vecmat(g, y.unsqueeze(-1), block, index)
    with pytest.raises(RuntimeError, match="block 2 of column 3 is outside"):
        gnnff.outer_index_add(x, y, torch.tensor([0, 1, 1, 2]), index, 5)


BUILDS = {
    "pair_mlp": dict(seed=4),
    # issue 13's size and the medium preset (l_max 2, both parities: three l-blocks of weights)
    "allegro": dict(n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False),
    "allegro_medium": dict(preset="medium"),
}


def build(name: str, kernel: bool):
    with ops.use_kernels(kernel):
        torch.manual_seed(3)
        model = build_model(
            name.split("_medium")[0], type_names=["Si", "O"], r_max=3.5, **BUILDS[name]
        ).double()
    assert model.energy_model.use_kernel == kernel
    return model


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_model_with_kernel_equals_torch_form_to_training_order(name):
    data = two_type_graph()
    assert data[keys.EDGE_INDEX].shape[1] > 40
    assert_same_to_training_order(build(name, True), build(name, False), data)


@pytest.mark.parametrize("name", ["pair_mlp", "allegro"])
def test_exported_model_calls_the_kernel_and_equals_eager(tmp_path, name):
    path = os.path.join(tmp_path, f"{name}.pt")
    export_model(build(name, True), path)
    loaded, _ = load_exported(path)
    assert "gnnff::outer_index_add" in str(loaded.inlined_graph)
    data = two_type_graph()
    eager = build(name, False)(dict(data))
    got = loaded(dict(data))
    torch.testing.assert_close(got[keys.FORCES], eager[keys.FORCES], rtol=1e-12, atol=1e-12)

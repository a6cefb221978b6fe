"""GemNet-T: the physics battery (gnnff.testing) plus checks of its own machinery.

Independent truths: brute-force Python loops for triplets and reverse edges, the receptive field
measured by moving single atoms of a chain, and the preset sizes of the GemNet reference code.
"""

import itertools

import numpy as np
import pytest
import torch
from ase import Atoms

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.models.gemnet.graph_ops import (
    gather_rows,
    gather_rows_or_zero,
    reverse_edges,
    triplet_partners,
)
from gnnff.models.registry import build_model
from gnnff.testing import EnergyModelBattery, random_cluster, random_crystal

R_MAX = 3.0


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared 2-core box: threads only add contention
    yield
    torch.set_num_threads(threads)


def small_gemnet(**kw):
    options = dict(type_names=["Si", "C"], preset="small", r_max=R_MAX, seed=0)
    options.update(kw)
    return build_model("gemnet_t", **options)


class TestGemNetTBattery(EnergyModelBattery):
    def make_model(self, dtype):
        return small_gemnet()


def tiny_cell():
    """Two atoms in a skewed periodic cell shorter than r_max: many images of each neighbour."""
    cell = 2.7 * np.eye(3) + np.array([[0.0, 0.3, 0.1], [0.2, 0.0, -0.1], [0.1, 0.2, 0.0]])
    return Atoms("SiC", scaled_positions=[[0.1, 0.0, 0.05], [0.55, 0.45, 0.5]], cell=cell, pbc=True)


def edge_vectors(graph):
    i, j = graph[keys.EDGE_INDEX]
    return graph[keys.POSITIONS][j] - graph[keys.POSITIONS][i] + graph[keys.EDGE_SHIFT]


@pytest.mark.parametrize("periodic", [False, True])
def test_triplets_match_brute_force(periodic):
    atoms = random_crystal(["Si", "C"]) if periodic else random_cluster(["Si", "C"], n_atoms=9)
    graph = atoms_to_graph(atoms, ["Si", "C"], R_MAX)
    centre = graph[keys.EDGE_INDEX][0]
    partner, valid = triplet_partners(centre, len(atoms))
    got = sorted((e, int(partner[e, k])) for e, k in valid.nonzero().tolist())
    want = sorted(
        (a, b)
        for a, b in itertools.permutations(range(centre.shape[0]), 2)
        if centre[a] == centre[b]
    )
    assert len(want) > 0
    assert got == want


@pytest.mark.parametrize("periodic", [False, True])
def test_reverse_edges_match_brute_force(periodic):
    # the periodic cell is shorter than 2 r_max: atoms meet several images of the same neighbour
    atoms = tiny_cell() if periodic else random_cluster(["Si", "C"], n_atoms=9)
    graph = atoms_to_graph(atoms, ["Si", "C"], R_MAX)
    vec = edge_vectors(graph)
    ei = graph[keys.EDGE_INDEX]
    swap = reverse_edges(ei, vec, len(atoms))
    if periodic:
        pairs = list(zip(ei[0].tolist(), ei[1].tolist()))
        assert len(set(pairs)) < len(pairs), "test needs repeated (i, j) pairs from periodic images"
    for e in range(ei.shape[1]):
        want = [
            f
            for f in range(ei.shape[1])
            if ei[0, f] == ei[1, e]
            and ei[1, f] == ei[0, e]
            and torch.allclose(vec[f], -vec[e], atol=1e-9)
        ]
        assert [int(swap[e])] == want


def test_missing_reverse_edge_is_flagged():
    ei = torch.tensor([[0, 1, 0], [1, 0, 2]])
    vec = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.5, 0.0]], dtype=torch.float64)
    assert reverse_edges(ei, vec, 3).tolist() == [1, 0, -1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index_shape", [(40,), (12, 7)])
def test_row_gathers_equal_advanced_indexing_bit_for_bit(dtype, index_shape):
    """The model's gathers (one index_select) give advanced indexing's values and, through a
    force-like double backward, its gradients exactly, repeated rows included."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(9, 5, dtype=dtype, generator=gen, requires_grad=True)
    index = torch.randint(0, 9, index_shape, generator=gen)
    weight = torch.randn(*index_shape, 5, dtype=dtype, generator=gen)
    results = []
    for gather in (lambda t: t[index], lambda t: gather_rows(t, index)):
        y = gather(x.sin())  # a non-leaf, as inside the model
        (g,) = torch.autograd.grad((y * weight).pow(2).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.pow(2).sum(), x)  # training through the forces
        results.append((y, g, gg))
    for got, want in zip(results[1], results[0]):
        assert got.shape == want.shape and torch.equal(got, want)
    swap = torch.tensor([3, -1, 0, 8, -1])
    rows = gather_rows_or_zero(x, swap)
    assert torch.equal(rows[[0, 2, 3]], x[[3, 0, 8]]) and not rows[[1, 4]].any()


def test_receptive_field_is_2n_plus_1_hops():
    """Moving atom k of a chain (neighbours only adjacent) changes E_0 iff k <= 2 n + 1."""
    for n_blocks in (1, 2):
        model = small_gemnet(type_names=["Si"], num_blocks=n_blocks).double()
        n = 2 * n_blocks + 4
        pos = np.zeros((n, 3))
        pos[:, 0] = np.arange(n) * 0.6 * R_MAX
        pos[:, 1] = 0.3 * np.sin(np.arange(n))

        def energy_0(p):
            out = model(atoms_to_graph(Atoms(f"Si{n}", positions=p), ["Si"], R_MAX))
            return out[keys.ATOMIC_ENERGY][0].item()

        e0 = energy_0(pos)

        def moves_e0(k):
            moved = pos.copy()
            moved[k, 1] += 0.2
            return abs(energy_0(moved) - e0) > 1e-14

        reach = 2 * n_blocks + 1
        assert moves_e0(reach), (
            f"atom {reach} hops away should reach atom 0 after {n_blocks} blocks"
        )
        assert not moves_e0(reach + 1), f"atom {reach + 1} hops away must not reach atom 0"
        assert model.interaction_range == pytest.approx((2 * n_blocks + 1) * R_MAX)


def test_md17_preset_matches_reference_sizes():
    model = build_model("gemnet_t", type_names=["H", "C", "O"], preset="md17")
    energy = model.energy_model
    assert model.r_max == 5.0 and len(energy.int_blocks) == 4
    assert energy.type_embedding.weight.shape == (3, 128)
    n_params = sum(p.numel() for p in model.parameters())
    assert 1.5e6 < n_params < 2.2e6  # the GemNet paper quotes ~1.9 M parameters for GemNet-T
    assert model.interaction_range == pytest.approx(9 * 5.0)


def test_isolated_atom_has_zero_raw_energy():
    model = small_gemnet().double()
    atoms = Atoms("SiC", positions=[[0, 0, 0], [10.0, 0, 0]])
    out = model(atoms_to_graph(atoms, ["Si", "C"], R_MAX))
    assert torch.allclose(out[keys.ATOMIC_ENERGY_RAW], torch.zeros(2, dtype=torch.float64))


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="unknown GemNet-T preset 'md22'.*choose one of"):
        build_model("gemnet_t", type_names=["H"], preset="md22")
    with pytest.raises(ValueError, match="num_blocks >= 1"):
        build_model("gemnet_t", type_names=["H"], preset="small", num_blocks=0)
    with pytest.raises(
        ValueError, match="has no option 'emb_size_atoms'.*did you mean 'emb_size_atom'"
    ):
        build_model("gemnet_t", type_names=["H"], emb_size_atoms=8)


def test_scale_factors_fit_once_on_first_training_batch():
    """GemNet's scaling factors: std(x * scale) = std(ref) on the first training batch, then fixed."""
    from gnnff.models.gemnet.layers import ScaleFactor

    model = small_gemnet().double()
    graph = atoms_to_graph(random_cluster(["Si", "C"], n_atoms=9), ["Si", "C"], R_MAX)
    factors = [m for m in model.modules() if isinstance(m, ScaleFactor)]
    assert (
        len(factors) == 3 * 2 + 3
    )  # per block: triplet rbf, triplet sum, atom update; 3 output blocks
    initial = [float(f.scale) for f in factors]
    model.eval()(dict(graph))
    assert not any(bool(f.fitted) for f in factors) and [float(f.scale) for f in factors] == initial

    seen = {}

    def record(module, inputs, output):
        seen[module] = (output.detach().std().item(), inputs[1].detach().std().item())

    hooks = [f.register_forward_hook(record) for f in factors]
    model.train()(dict(graph))
    assert all(bool(f.fitted) for f in factors)
    for f in factors:
        out_std, ref_std = seen[f]
        assert out_std == pytest.approx(ref_std, rel=1e-9)
    fitted = [float(f.scale) for f in factors]
    assert fitted != initial
    moved = atoms_to_graph(random_cluster(["Si", "C"], n_atoms=9, seed=5), ["Si", "C"], R_MAX)
    model(dict(moved))  # a second training batch does not refit
    assert [float(f.scale) for f in factors] == fitted
    for h in hooks:
        h.remove()
    # fitted values travel with the weights (checkpoints, fine-tuning, export)
    copy = small_gemnet().double()
    copy.load_state_dict(model.state_dict())
    assert [float(f.scale) for f in copy.modules() if isinstance(f, ScaleFactor)] == fitted

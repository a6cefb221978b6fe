"""gnnff::trilinear (cpp/src/ops/trilinear.cpp): Allegro's channel-wise tensor product as one
compiled pass, against the pure-torch form of the same product (itself checked against e3nn in
test_fused_tp.py) and against finite differences, to the second derivative that training on
forces needs; and the model, TorchScript file and LAMMPS-facing loaders that use it."""

import pytest
import torch
from kernel_common import operators  # noqa: F401 (autouse fixture)

from gnnff import ops
from gnnff.models.common.fused_tp import ChannelwiseTensorProduct
from gnnff.models.registry import build_model

ISSUE13 = dict(n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False)


def products(kernel: bool, **options):
    """The channel-wise products of a float64 allegro built with or without the operators."""
    with ops.use_kernels(kernel):
        torch.manual_seed(3)
        model = build_model("allegro", type_names=["Si", "O"], r_max=4.0, **options).double()
    tps = [m for m in model.modules() if isinstance(m, ChannelwiseTensorProduct)]
    assert tps and all(tp.use_kernel == kernel for tp in tps)
    return model, tps


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


@pytest.mark.parametrize("options", [dict(preset="small"), dict(preset="medium"), ISSUE13])
def test_kernel_equals_torch_form_to_second_order(options):
    _, fast = products(True, **options)
    _, reference = products(False, **options)
    gen = torch.Generator().manual_seed(0)
    for k, r in zip(fast, reference):
        x1 = torch.randn(k.mul, k.d1, 53, dtype=torch.float64, generator=gen, requires_grad=True)
        x2 = torch.randn(k.mul, k.d2, 53, dtype=torch.float64, generator=gen, requires_grad=True)
        assert_same_to_second_order(k, r, x1, x2, None, gen)


def assert_same_to_second_order(k, r, x1, x2, x2_index, gen):
    """Products k and r (same weights) agree in value, first and second derivatives."""
    out_k, out_r = k(x1, x2, x2_index), r(x1, x2, x2_index)
    assert rel(out_k, out_r) < 1e-13
    g = torch.randn(out_k.shape, dtype=torch.float64, generator=gen)
    first_k = torch.autograd.grad((out_k * g).sum(), [x1, x2, k.weight], create_graph=True)
    first_r = torch.autograd.grad((out_r * g).sum(), [x1, x2, r.weight], create_graph=True)
    for a, b in zip(first_k, first_r):
        assert rel(a, b) < 1e-13
    # a scalar of the first derivatives, differentiated again (the force loss's path)
    second_k = torch.autograd.grad(sum((d**2).sum() for d in first_k), [x1, x2, k.weight])
    second_r = torch.autograd.grad(sum((d**2).sum() for d in first_r), [x1, x2, r.weight])
    for a, b in zip(second_k, second_r):
        assert rel(a, b) < 1e-12


def test_kernel_against_finite_differences():
    _, (tp, *_) = products(True, preset="medium")
    gen = torch.Generator().manual_seed(1)
    x1 = torch.randn(tp.mul, tp.d1, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    x2 = torch.randn(tp.mul, tp.d2, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(tp, (x1, x2))
    assert torch.autograd.gradgradcheck(tp, (x1, x2))


def test_operators_on_strided_views_equal_contiguous_inputs():
    """Inputs with edges innermost but other strides (slices, autograd's gradients) are read in
    place; a view whose edges are not stride-1 is copied. Same numbers either way."""
    gen = torch.Generator().manual_seed(2)
    big_a = torch.randn(3, 6, 40, dtype=torch.float64, generator=gen)
    b = torch.randn(3, 2, 40, dtype=torch.float64, generator=gen)
    w = torch.randn(3, 5, dtype=torch.float64, generator=gen)
    ia, ib, io = (
        torch.tensor([0, 1, 2, 2, 0]),
        torch.tensor([1, 0, 1, 0, 0]),
        torch.tensor([0, 0, 1, 3, 3]),
    )
    a = big_a[:, 1:4]  # channel stride 240, component stride 40: not contiguous
    assert not a.is_contiguous()
    out = torch.ops.gnnff.trilinear(a, b, w, ia, ib, io, 4)
    expected = torch.zeros(3, 4, 40, dtype=torch.float64)
    for t in range(5):  # the definition, entry by entry
        expected[:, io[t]] += w[:, t, None] * a[:, ia[t]] * b[:, ib[t]]
    assert rel(out, expected) < 1e-15
    transposed = b.transpose(0, 1).contiguous().transpose(0, 1)  # edges still stride-1
    assert rel(torch.ops.gnnff.trilinear(a, transposed, w, ia, ib, io, 4), expected) < 1e-15
    edges_strided = torch.randn(3, 6, 80, dtype=torch.float64, generator=gen)[:, 1:4, ::2]
    assert (
        rel(
            torch.ops.gnnff.trilinear(edges_strided, b, w, ia, ib, io, 4),
            torch.ops.gnnff.trilinear(edges_strided.contiguous(), b, w, ia, ib, io, 4),
        )
        == 0.0
    )
    reduced = torch.ops.gnnff.trilinear_reduce(a, b, b, ia, ib, ib)
    by_hand = torch.stack([(a[:, ia[t]] * b[:, ib[t]] ** 2).sum(-1) for t in range(5)], 1)
    assert rel(reduced, by_hand) < 1e-14


def test_operators_refuse_bad_inputs_with_the_reason():
    a, b = torch.randn(2, 3, 5), torch.randn(2, 2, 5)
    w, i = torch.randn(2, 1), torch.tensor([0])
    with pytest.raises(RuntimeError, match="component index is outside"):
        torch.ops.gnnff.trilinear(a, b, w, torch.tensor([3]), i, i, 1)
    with pytest.raises(RuntimeError, match="equal channels and edges"):
        torch.ops.gnnff.trilinear(a, torch.randn(2, 2, 6), w, i, i, i, 1)
    with pytest.raises(RuntimeError, match="equal channels and edges"):
        torch.ops.gnnff.trilinear(a[:, 0], b, w, i, i, i, 1)  # 2-d: named, not an index error
    with pytest.raises(RuntimeError, match="equal channels and edges"):
        torch.ops.gnnff.trilinear_reduce(a, b, b[:, 0], i, i, i)
    with pytest.raises(RuntimeError, match="weights must be"):
        torch.ops.gnnff.trilinear(a, b, w[0], i, i, i, 1)
    with pytest.raises(RuntimeError, match="one floating dtype"):
        torch.ops.gnnff.trilinear(a, b.double(), w, i, i, i, 1)
    with pytest.raises(RuntimeError, match="int64 of length 1"):
        torch.ops.gnnff.trilinear(a, b, w, i.int(), i, i, 1)


def test_model_with_kernel_equals_torch_form_and_its_file_uses_the_operator(tmp_path):
    """Energy, forces and virial of a whole allegro, eager and exported: the operator changes
    only the summation order (float64: 1e-12); GNNFF_KERNELS=0's file needs no operator."""
    from ase.build import bulk

    from gnnff.data.graph import atoms_to_graph
    from gnnff.export import export_model, load_exported

    fast, _ = products(True, preset="medium")
    reference, _ = products(False, preset="medium")
    atoms = bulk("SiO", "rocksalt", a=4.6).repeat(2)
    atoms.rattle(0.05, seed=0)
    data = atoms_to_graph(atoms, ["Si", "O"], 4.0, dtype=torch.float64)
    got, want = fast(dict(data)), reference(dict(data))
    for key in ("total_energy", "forces", "virial"):
        assert rel(got[key], want[key]) < 1e-12, key
    for model, name in ((fast, "kernel.pt"), (reference, "torch.pt")):
        export_model(model, str(tmp_path / name))
    assert "ops.gnnff.trilinear" in _archived_code(tmp_path / "kernel.pt")
    assert "ops.gnnff" not in _archived_code(tmp_path / "torch.pt")
    module, _ = load_exported(str(tmp_path / "kernel.pt"))
    exported = module(dict(data))
    for key in ("total_energy", "forces", "virial"):
        assert rel(exported[key], want[key]) < 1e-12, key


@pytest.mark.parametrize(
    "options",
    [
        dict(preset="medium"),
        dict(ISSUE13, scalar_track="dense"),
        dict(preset="small", env_bias="constant"),
    ],
)
def test_model_training_gradients_with_kernel_equal_torch_form(options):
    """Through a whole allegro (both scalar tracks, both environment biases): forces and the
    parameter gradients of a force loss (the second derivative training on forces takes) equal
    the torch form's in float64."""
    from ase.build import bulk

    from gnnff.data.graph import atoms_to_graph

    fast, _ = products(True, **options)
    reference, _ = products(False, **options)
    atoms = bulk("SiO", "rocksalt", a=4.6).repeat(2)
    atoms.rattle(0.05, seed=1)
    data = atoms_to_graph(atoms, ["Si", "O"], 4.0, dtype=torch.float64)
    grads = []
    for model in (fast, reference):
        out = model(dict(data))
        loss = out["total_energy"].sum() + out["forces"].pow(2).sum()
        params = [p for p in model.parameters() if p.requires_grad]
        grads.append((out["forces"], torch.autograd.grad(loss, params, allow_unused=True)))
    assert rel(grads[0][0], grads[1][0]) < 1e-12
    for g_fast, g_ref in zip(grads[0][1], grads[1][1]):
        assert (g_fast is None) == (g_ref is None)
        if g_ref is not None:
            assert rel(g_fast, g_ref) < 1e-11


def _archived_code(path) -> str:
    """The TorchScript source stored in an exported file."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return "\n".join(archive.read(n).decode() for n in archive.namelist() if n.endswith(".py"))


def test_a_file_with_the_operator_and_no_library_gets_a_clear_error():
    err = RuntimeError("Unknown builtin op: gnnff::trilinear.\nCould not find any similar ops")
    message = ops.explain_missing_operator(err, "model.pt")
    assert "libgnnff_ops.so" in message and "GNNFF_KERNELS=0" in message
    assert ops.explain_missing_operator(RuntimeError("PytorchStreamReader failed"), "m.pt") is None


def test_switches_build_models_without_the_operator(monkeypatch):
    monkeypatch.setenv("GNNFF_KERNELS", "0")
    assert not ops.kernels_enabled()
    with ops.use_kernels(True):
        assert ops.kernels_enabled()
    monkeypatch.delenv("GNNFF_KERNELS")
    assert ops.kernels_enabled()
    model, tps = products(True, preset="small")
    with ops.without_kernels(model):
        assert not any(tp.use_kernel for tp in tps)
    assert all(tp.use_kernel for tp in tps)


def test_a_library_that_does_not_load_is_reported_and_the_torch_form_is_used(tmp_path):
    broken = tmp_path / "libgnnff_ops.so"
    broken.write_text("not a shared library")
    with pytest.warns(UserWarning, match="could not load its compiled operators"):
        assert ops._load_first([tmp_path / "absent.so", broken]) is False
    assert ops._load_first([tmp_path / "absent.so"]) is False


def test_operators_give_the_same_bits_on_one_and_two_threads():
    """Tasks own disjoint outputs (no shared accumulation), so the thread count does not change
    a result: MD and training stay reproducible when OMP_NUM_THREADS changes."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(16, 9, 3000, dtype=torch.float64, generator=gen)
    b = torch.randn(16, 17, 3000, dtype=torch.float64, generator=gen)
    w = torch.randn(16, 40, dtype=torch.float64, generator=gen)
    ia, ib, io = (torch.randint(0, n, (40,), generator=gen) for n in (9, 17, 17))
    atom = torch.sort(torch.randint(0, 100, (3000,), generator=gen)).values
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(
                (
                    torch.ops.gnnff.trilinear(a, b, w, ia, ib, io, 17),
                    torch.ops.gnnff.trilinear_reduce(a, b, b, ia, ib, ib),
                    # edges summed onto shared atoms, and read from them
                    torch.ops.gnnff.trilinear(a, b, w, ia, ib, io, 17, None, atom, 100),
                    torch.ops.gnnff.trilinear(a, b[:, :, :100], w, ia, ib, io, 17, atom),
                    torch.ops.gnnff.trilinear_reduce(a, b, b[:, :, :100], ia, ib, ib, atom),
                )
            )
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(x, y) for x, y in zip(*results))


def _indexed_operands(seed=4, dtype=torch.float64, edges=700, atoms=37):
    """A product whose b operand is read by atom: edges sorted by centre as the graph builders
    make them, except a few out of order (the operator must not rely on the order)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(3, 4, edges, dtype=dtype, generator=gen)
    b_atoms = torch.randn(3, 5, atoms, dtype=dtype, generator=gen)
    w = torch.randn(3, 9, dtype=dtype, generator=gen)
    index = torch.sort(torch.randint(0, atoms - 2, (edges,), generator=gen)).values
    index[[3, edges // 2, edges - 1]] = torch.tensor([atoms - 1, 0, 5])
    ia, ib, io = (torch.randint(0, n, (9,), generator=gen) for n in (4, 5, 6))
    return a, b_atoms, w, index, ia, ib, io


def test_indexed_forms_equal_the_gathered_and_scattered_per_edge_forms():
    """b read by atom equals b gathered onto the edges first; the scattered output equals the
    per-edge output summed onto the atoms (index_add); the reduction with c read by atom equals
    it on the gathered c. Strided atom operands (a transposed view) are read in place."""
    a, b_atoms, w, index, ia, ib, io = _indexed_operands()
    b_edges = b_atoms.index_select(2, index)
    T = torch.ops.gnnff.trilinear
    expected = T(a, b_edges, w, ia, ib, io, 6)
    assert rel(T(a, b_atoms, w, ia, ib, io, 6, index), expected) < 1e-15
    strided = b_atoms.permute(2, 0, 1).contiguous().permute(1, 2, 0)
    assert rel(T(a, strided, w, ia, ib, io, 6, index), expected) < 1e-15
    per_edge = T(a, b_edges, w, ia, ib, io, 6)
    summed = torch.zeros(3, 6, 37, dtype=torch.float64).index_add_(2, index, per_edge)
    scattered = T(a, b_edges, w, ia, ib, io, 6, None, index, 37)
    assert scattered.shape == (3, 6, 37) and rel(scattered, summed) < 1e-14
    c_atoms = torch.randn(3, 6, 37, dtype=torch.float64)
    reduced = torch.ops.gnnff.trilinear_reduce(a, b_edges, c_atoms, ia, ib, io, index)
    want = torch.ops.gnnff.trilinear_reduce(a, b_edges, c_atoms.index_select(2, index), ia, ib, io)
    assert rel(reduced, want) < 1e-14


def test_indexed_forms_against_finite_differences_to_second_order():
    """Every derivative of the indexed forms is another indexed form (gathered b, scattered
    output, gathered c): gradcheck and gradgradcheck through all three."""
    a, b_atoms, w, index, ia, ib, io = _indexed_operands(edges=40, atoms=7)
    a, b_atoms, w = (t.requires_grad_() for t in (a, b_atoms, w))
    c_atoms = torch.randn(3, 6, 7, dtype=torch.float64, requires_grad=True)

    def gathered(a, b, w):
        return torch.ops.gnnff.trilinear(a, b, w, ia, ib, io, 6, index)

    def scattered(a, b, w):
        return torch.ops.gnnff.trilinear(a, b, w, ia, io, ib, 5, None, index, 7)

    def reduced(a, b, c):
        return torch.ops.gnnff.trilinear_reduce(a, b, c, ia, ib, io, index)

    b_edges = torch.randn(3, 6, 40, dtype=torch.float64, requires_grad=True)
    for fn, args in (
        (gathered, (a, b_atoms, w)),
        (scattered, (a, b_edges, w)),
        (reduced, (a, b_atoms.index_select(2, index).detach().requires_grad_(), c_atoms)),
    ):
        assert torch.autograd.gradcheck(fn, args)
        assert torch.autograd.gradgradcheck(fn, args)


def test_indexed_product_module_equals_torch_form_to_second_order():
    """The channel-wise product with x2 read by atom (as Allegro reads its environment), kernel
    against torch form, values and first and second derivatives."""
    _, fast = products(True, preset="medium")
    _, reference = products(False, preset="medium")
    gen = torch.Generator().manual_seed(5)
    index = torch.sort(torch.randint(0, 11, (90,), generator=gen)).values
    for k, r in zip(fast, reference):
        x1 = torch.randn(k.mul, k.d1, 90, dtype=torch.float64, generator=gen, requires_grad=True)
        x2 = torch.randn(k.mul, k.d2, 11, dtype=torch.float64, generator=gen, requires_grad=True)
        assert_same_to_second_order(k, r, x1, x2, index, gen)


def test_indexed_forms_refuse_bad_indices_with_the_reason():
    a, b_atoms, w, index, ia, ib, io = _indexed_operands(edges=20, atoms=6)
    T = torch.ops.gnnff.trilinear
    with pytest.raises(RuntimeError, match="b_index is outside"):
        T(a, b_atoms[:, :, :3], w, ia, ib, io, 6, index)
    with pytest.raises(RuntimeError, match="one row per edge"):
        T(a, b_atoms, w, ia, ib, io, 6, index[:5])
    with pytest.raises(RuntimeError, match="cannot both be given"):
        T(a, b_atoms, w, ia, ib, io, 6, index, index, 6)
    b_edges = b_atoms.index_select(2, index)
    with pytest.raises(RuntimeError, match="needs its number of rows"):
        T(a, b_edges, w, ia, ib, io, 6, None, index)
    with pytest.raises(RuntimeError, match="equal channels and edges"):
        T(a, b_atoms, w, ia, ib, io, 6)  # atom rows without their index

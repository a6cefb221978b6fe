"""gnnff::uvu_contract (cpp/src/ops/uvu_contract.cpp), NequIP's convolution product: each of its
four forms against a loop that is obviously right, against finite differences to the second
derivative, and nequip built with it against its pure-torch form (energy, forces, and the
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
from gnnff.models.common.fused_tp import ShTensorProduct
from gnnff.models.registry import build_model

# entries z join input component nz_i[z] to output component nz_k[z]; output k belongs to
# path[k]; two paths share an input component, and output 2 sums two entries
NZ_K, NZ_I, PATH = (
    torch.tensor([0, 1, 2, 2, 3]),
    torch.tensor([0, 1, 0, 2, 2]),
    torch.tensor([0, 1, 1, 2]),
)
E, I, U, P, K, Z = 6, 3, 5, 3, 4, 5


def operands(dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def make(*shape):
        return torch.randn(*shape, dtype=dtype, generator=gen, requires_grad=True)

    return make(E, Z), make(E, I, U), make(E, P, U), make(E, K, U)


def contract(m, x, w, g):
    return torch.ops.gnnff.uvu_contract(m, x, w, g, NZ_K, NZ_I, PATH, I, P)


def test_each_form_equals_the_derivative_of_the_loop_sum():
    m, x, w, g = operands()
    # T = sum m[e,z] x[e,i(z),u] w[e,path[k(z)],u] g[e,k(z),u]; each form is dT/d(the left-out)
    outs = [torch.zeros(t.shape, dtype=torch.float64) for t in (m, x, w, g)]
    with torch.no_grad():
        for e in range(E):
            for z, (k, i) in enumerate(zip(NZ_K.tolist(), NZ_I.tolist())):
                p = int(PATH[k])
                for u in range(U):
                    outs[0][e, z] += x[e, i, u] * w[e, p, u] * g[e, k, u]
                    outs[1][e, i, u] += m[e, z] * w[e, p, u] * g[e, k, u]
                    outs[2][e, p, u] += m[e, z] * x[e, i, u] * g[e, k, u]
                    outs[3][e, k, u] += m[e, z] * x[e, i, u] * w[e, p, u]
    forms = [
        contract(None, x, w, g),
        contract(m, None, w, g),
        contract(m, x, None, g),
        contract(m, x, w, None),
    ]
    for got, want in zip(forms, outs):
        torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-13)
    # float32 runs the same loops
    m32, x32, w32 = (t.detach().float() for t in (m, x, w))
    got = torch.ops.gnnff.uvu_contract(m32, x32, w32, None, NZ_K, NZ_I, PATH, I, P)
    torch.testing.assert_close(got, outs[3].float())


def test_forms_against_finite_differences_to_second_order():
    m, x, w, g = operands(seed=1)
    cases = [
        (lambda m, x, w: contract(m, x, w, None), (m, x, w)),  # the forward
        (lambda m, w, g: contract(m, None, w, g), (m, w, g)),
        (lambda m, x, g: contract(m, x, None, g), (m, x, g)),
        (lambda x, w, g: contract(None, x, w, g), (x, w, g)),
    ]
    for fn, inputs in cases:
        assert torch.autograd.gradcheck(fn, inputs)
        assert torch.autograd.gradgradcheck(fn, inputs)


# atoms: x and g indexed by atoms (rows 0..3), edges pointing at them in no particular order
ATOMS = 4
X_INDEX, G_INDEX = torch.tensor([2, 0, 3, 2, 1, 0]), torch.tensor([1, 1, 0, 3, 3, 2])


def indexed(m, x, w, g):
    return torch.ops.gnnff.uvu_contract(
        m, x, w, g, NZ_K, NZ_I, PATH, I, P, X_INDEX, G_INDEX, ATOMS, ATOMS
    )


def test_indexed_forms_equal_the_per_edge_forms_gathered_and_summed():
    m, x_edges, w, g_edges = operands(seed=2)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(ATOMS, I, U, dtype=torch.float64, generator=gen, requires_grad=True)
    g = torch.randn(ATOMS, K, U, dtype=torch.float64, generator=gen, requires_grad=True)
    xe, ge = x.index_select(0, X_INDEX), g.index_select(0, G_INDEX)

    def summed(per_edge, index):
        return torch.zeros((ATOMS,) + per_edge.shape[1:], dtype=torch.float64).index_add(
            0, index, per_edge
        )

    pairs = [
        (indexed(m, x, w, None), summed(contract(m, xe, w, None), G_INDEX)),  # messages summed
        (indexed(m, None, w, g), summed(contract(m, None, w, ge), X_INDEX)),
        (indexed(m, x, None, g), contract(m, xe, None, ge)),
        (indexed(None, x, w, g), contract(None, xe, w, ge)),
    ]
    for got, want in pairs:
        torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-13)
    # and to the second derivative
    for fn, inputs in [
        (lambda m, x, w: indexed(m, x, w, None), (m, x, w)),
        (lambda m, w, g: indexed(m, None, w, g), (m, w, g)),
        (lambda x, w, g: indexed(None, x, w, g), (x, w, g)),
    ]:
        assert torch.autograd.gradcheck(fn, inputs)
        assert torch.autograd.gradgradcheck(fn, inputs)


def test_bad_input_is_a_named_error():
    m, x, w, g = operands()
    gnnff = torch.ops.gnnff
    with pytest.raises(RuntimeError, match="exactly one of m, x, w, g must be None, got 2"):
        gnnff.uvu_contract(m, x, None, None, NZ_K, NZ_I, PATH, I, P)
    with pytest.raises(RuntimeError, match="nz_i holds 3, outside"):
        gnnff.uvu_contract(m, x, w, None, NZ_K, NZ_I + 1, PATH, I, P)
    with pytest.raises(RuntimeError, match="operand x must be a CPU tensor of shape"):
        gnnff.uvu_contract(m, x[:, :2], w, None, NZ_K, NZ_I, PATH, I, P)
    with pytest.raises(RuntimeError, match="g_index holds 9, outside"):
        gnnff.uvu_contract(m, x, w, None, NZ_K, NZ_I, PATH, I, P, None, G_INDEX + 8, -1, 4)
    with pytest.raises(RuntimeError, match="needs its number of rows"):
        gnnff.uvu_contract(m, x, w, None, NZ_K, NZ_I, PATH, I, P, None, G_INDEX)


def build(kernel: bool, **options):
    with ops.use_kernels(kernel):
        torch.manual_seed(3)
        model = build_model("nequip", type_names=["Si", "O"], r_max=3.5, **options).double()
    products = [m for m in model.modules() if isinstance(m, ShTensorProduct)]
    assert products and all(m.use_kernel == kernel for m in products)
    return model


# issue 13's nequip size, and the medium preset (l_max 2, both parities: 15 paths per layer)
@pytest.mark.parametrize(
    "options",
    [dict(n_layers=2, l_max=1, num_features=8, parity=False), dict(preset="medium")],
    ids=["issue13_l1", "medium"],
)
def test_nequip_with_kernel_equals_torch_form_to_training_order(options):
    data = two_type_graph()
    assert data[keys.EDGE_INDEX].shape[1] > 40
    assert_same_to_training_order(build(True, **options), build(False, **options), data)


def test_exported_nequip_calls_the_kernel_and_equals_eager(tmp_path):
    path = os.path.join(tmp_path, "nequip.pt")
    export_model(build(True), path)
    loaded, _ = load_exported(path)
    assert "gnnff::uvu_contract" in str(loaded.inlined_graph)
    data = two_type_graph()
    eager = build(False)(dict(data))
    got = loaded(dict(data))
    torch.testing.assert_close(got[keys.FORCES], eager[keys.FORCES], rtol=1e-12, atol=1e-12)


def test_recording_the_messages_keeps_the_numbers():
    """With the decorrelation loss's recording on, nequip sums per-edge messages (which it
    records) instead of asking the operator for the sums: same energies, forces and gradients."""
    data = two_type_graph()
    models = {}
    for record in (False, True):
        models[record] = build(True, n_layers=2, l_max=1, num_features=8, parity=False)
        models[record].energy_model.record_edge_features = record
    summed, recorded = assert_same_to_training_order(models[False], models[True], data)
    key = models[True].energy_model.edge_feature_keys[0]
    assert key in recorded and key not in summed

"""The fused tensor products (gnnff.models.common.fused_tp) against the e3nn objects they replace
(same instructions, same weights), and the models built on them against results saved while the
models still ran e3nn's generic TensorProduct (tests/data/legacy/equivariant_state_v0.pt)."""

import os

import pytest
import torch
from e3nn import o3

from gnnff import keys
from gnnff.model_io import checkpoint_model_config
from gnnff.models.allegro import _channelwise_tp
from gnnff.models.common import allowed_irreps, spherical_harmonics_irreps
from gnnff.models.common.channel_layout import (
    ChannelLinear,
    channel_major,
    channel_major_to_irreps,
    component_rows,
    component_rows_to_irreps,
    irrep_dims,
    to_channel_layout,
    to_irreps_layout,
)
from gnnff.models.common.fused_tp import ChannelwiseTensorProduct, ShTensorProduct
from gnnff.models.common.precision import refresh_wigner_constants
from gnnff.models.nequip import _hidden_irreps, convolution_tp
from gnnff.models.registry import build_model

LEGACY = os.path.join(os.path.dirname(__file__), "..", "data", "legacy", "equivariant_state_v0.pt")
# relative to the largest |value|: float64 = the same sums in another order; float32 = e3nn and
# the fused kernels round differently (measured ~3e-6 on the legacy models)
TOL = {torch.float64: 1e-12, torch.float32: 2e-5}
CASES = [(1, False, 4), (2, True, 3), (2, False, 2)]  # (l_max, parity, channels)


def close(got, expected, dtype):
    got, expected = got.detach(), expected.detach()
    scale = float(expected.abs().max())
    error = float((got - expected).abs().max())
    assert error <= TOL[dtype] * scale, f"{error:.3e} > {TOL[dtype]:.0e} x {scale:.3e}"


def e3nn_in(dtype, module):
    """An e3nn module in ``dtype`` with exact (float64-computed) 3j tables."""
    module = module.to(dtype)
    refresh_wigner_constants(module)
    return module


def allegro_products(l_max, parity, mul):
    """Layer 0 (mul x Y with mul x Y) and layer 1 (layer 0's output with mul x Y) products."""
    sh = o3.Irreps([(mul, ir) for _, ir in spherical_harmonics_irreps(l_max)])
    first = _channelwise_tp(sh, sh, allowed_irreps(l_max, parity), mul)
    return [first, _channelwise_tp(first.irreps_out, sh, allowed_irreps(l_max, parity), mul)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("l_max,parity,mul", CASES)
def test_channelwise_product_equals_e3nn_values_and_gradients(l_max, parity, mul, dtype):
    torch.manual_seed(0)
    for tp in allegro_products(l_max, parity, mul):
        with torch.no_grad():
            tp.weight.normal_()  # every path visibly weighted
        fused = ChannelwiseTensorProduct(tp).to(dtype)
        tp = e3nn_in(dtype, tp)
        x1 = torch.randn(11, tp.irreps_in1.dim, dtype=dtype, requires_grad=True)
        x2 = torch.randn(11, tp.irreps_in2.dim, dtype=dtype, requires_grad=True)
        expected = tp(x1, x2)
        got = channel_major_to_irreps(
            fused(
                channel_major(x1, mul, irrep_dims(tp.irreps_in1)),
                channel_major(x2, mul, irrep_dims(tp.irreps_in2)),
            ),
            irrep_dims(tp.irreps_out),
        )
        close(got, expected, dtype)
        probe = torch.randn_like(expected)  # gradients (forces go through them) agree too
        g_exp = torch.autograd.grad((expected * probe).sum(), [x1, x2, tp.weight])
        g_got = torch.autograd.grad((got * probe).sum(), [x1, x2, fused.weight])
        for a, b in zip(g_got, g_exp):
            close(a, b, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("l_max,parity,mul", CASES)
def test_sh_product_equals_e3nn(l_max, parity, mul, dtype):
    torch.manual_seed(0)
    sh_irreps = spherical_harmonics_irreps(l_max)
    hidden = _hidden_irreps(mul, l_max, parity)
    for irreps_in in (o3.Irreps(f"{mul}x0e"), hidden):
        tp = convolution_tp(irreps_in, sh_irreps, hidden)
        fused = ShTensorProduct(tp).to(dtype)
        tp = e3nn_in(dtype, tp)
        x1 = torch.randn(9, tp.irreps_in1.dim, dtype=dtype, requires_grad=True)
        sh = o3.spherical_harmonics(
            sh_irreps, torch.randn(9, 3, dtype=dtype), True, normalization="component"
        )
        weights = torch.randn(9, tp.weight_numel, dtype=dtype, requires_grad=True)
        expected = tp(x1, sh, weights)
        got = component_rows_to_irreps(
            fused(component_rows(x1, mul, irrep_dims(tp.irreps_in1)), sh, weights),
            irrep_dims(tp.irreps_out),
        )
        close(got, expected, dtype)
        probe = torch.randn_like(expected)
        for a, b in zip(
            torch.autograd.grad((got * probe).sum(), [x1, weights]),
            torch.autograd.grad((expected * probe).sum(), [x1, weights]),
        ):
            close(a, b, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_channel_linear_equals_e3nn_linear(dtype):
    irreps = o3.Irreps("3x0e+3x1o+3x1e+3x2e")
    linear = o3.Linear(irreps, irreps)
    fused = ChannelLinear(linear).to(dtype)
    linear = linear.to(dtype)
    x = torch.randn(7, irreps.dim, dtype=dtype)
    got = channel_major_to_irreps(
        fused(channel_major(x, 3, irrep_dims(irreps))), irrep_dims(irreps)
    )
    close(got, linear(x), dtype)


def test_layouts_round_trip_and_reject_mixed_multiplicities():
    irreps = o3.Irreps("2x0e+2x1o+2x2e")
    x = torch.randn(5, irreps.dim)
    assert torch.equal(
        to_irreps_layout(to_channel_layout(x, 2, irrep_dims(irreps)), irrep_dims(irreps)), x
    )
    assert torch.equal(
        channel_major_to_irreps(channel_major(x, 2, irrep_dims(irreps)), irrep_dims(irreps)), x
    )
    assert torch.equal(
        component_rows_to_irreps(component_rows(x, 2, irrep_dims(irreps)), irrep_dims(irreps)), x
    )
    mixed = o3.TensorProduct("2x0e+3x1o", "2x0e", "2x0e", [(0, 0, 0, "uuu", True)])
    with pytest.raises(ValueError, match="one multiplicity"):
        ChannelwiseTensorProduct(mixed)


def test_float64_tables_are_exact_after_double():
    """.double() rebuilds the 3j tables in float64 instead of widening float32-rounded ones."""
    tp = allegro_products(2, True, 2)[0]
    fused = ChannelwiseTensorProduct(tp).double()
    exact = ChannelwiseTensorProduct(tp)._exact_constants()["paths"]
    assert torch.equal(fused.paths, exact)
    assert not torch.equal(fused.paths, exact.float().double())  # float32 rounding would show


@pytest.fixture(scope="module")
def legacy():
    return torch.load(LEGACY, weights_only=False)


def evaluate(model_name, entry, graph, dtype, edit=None):
    # saved before checkpoint version 2: the options of that time (allegro's constant env bias)
    options = checkpoint_model_config(
        {"model_config": dict(entry["options"], name=model_name), "version": 1}
    )
    model = build_model(**options)
    state = dict(entry["state_dict"])
    if edit is not None:
        state = edit(state)
    model.load_state_dict(state)  # strict: the e3nn-era names load (3j tables dropped, rebuilt)
    model = model.to(dtype).eval()
    data = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in graph.items()}
    return model(data)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("structure", ["crystal", "cluster"])
@pytest.mark.parametrize("model_name", ["allegro", "nequip"])
def test_e3nn_era_state_dict_gives_the_saved_results(legacy, model_name, structure, dtype):
    entry = legacy["models"][model_name]
    out = evaluate(model_name, entry, legacy["graphs"][structure], dtype)
    for key, expected in entry["results"][f"{structure}/{str(dtype)[6:]}"].items():
        close(out[key].detach(), expected, dtype)


@pytest.mark.parametrize(
    "model_name,weight",
    [
        ("allegro", "layers.1.tp.weight"),
        ("allegro", "layers.0.linear.weight"),
        ("nequip", "blocks.1.radial.net.4.weight"),
    ],
)
def test_saved_results_depend_on_the_tensor_products(legacy, model_name, weight):
    """Negative control: the legacy comparison would notice a wrong tensor product (a path weight
    set to zero changes the forces far beyond the tolerance)."""
    entry = legacy["models"][model_name]

    def zero_first_path(state):
        key = "energy_model." + weight
        state[key] = state[key].clone()
        state[key][: state[key].numel() // 4] = 0.0
        return state

    out = evaluate(model_name, entry, legacy["graphs"]["crystal"], torch.float64, zero_first_path)
    expected = entry["results"]["crystal/float64"][keys.FORCES]
    assert float((out[keys.FORCES].detach() - expected).abs().max()) > 1e-3 * float(
        expected.abs().max()
    )

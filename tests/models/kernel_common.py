"""What the tests of gnnff's compiled operators share: the fixture that loads the operators (or
says why it cannot), and a small two-type periodic graph to compare models on."""

from importlib import metadata

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def operators():
    """Load gnnff's operators; an installed gnnff always ships the library (CMake installs it next
    to _core), so only a bare source tree without an installed package may skip."""
    from gnnff import ops

    if not ops.load():
        try:
            metadata.distribution("gnnff")
        except metadata.PackageNotFoundError:
            pytest.skip("no installed gnnff: the compiled operators were never built")
        pytest.fail("gnnff is installed but libgnnff_ops.so was not found or not loaded")


def two_type_graph():
    """Two types in a rattled periodic cell, all directed pairs within 3.5 Å."""
    import ase

    from gnnff.data.graph import atoms_to_graph

    gen = torch.Generator().manual_seed(2)
    frac = torch.rand(10, 3, dtype=torch.float64, generator=gen).numpy()
    atoms = ase.Atoms("SiO" * 5, scaled_positions=frac, cell=[5.2, 5.0, 5.4], pbc=True)
    return atoms_to_graph(atoms, ["Si", "O"], r_max=3.5)


def assert_same_to_training_order(model_a, model_b, data):
    """Energies, per-atom energies and forces of two models on ``data`` to 1e-12, and the
    parameter gradients of a force loss (the path of training on forces) to 1e-11."""
    from gnnff import keys

    out = []
    for model in (model_a, model_b):
        result = model(dict(data, **{keys.POSITIONS: data[keys.POSITIONS].clone()}))
        params = [p for p in model.parameters() if p.requires_grad]
        loss = (result[keys.FORCES] ** 2).sum() + result[keys.TOTAL_ENERGY].sum()
        out.append((result, torch.autograd.grad(loss, params, allow_unused=True)))
    (res_a, grad_a), (res_b, grad_b) = out
    for key in (keys.TOTAL_ENERGY, keys.ATOMIC_ENERGY, keys.FORCES):
        torch.testing.assert_close(res_a[key], res_b[key], rtol=1e-12, atol=1e-12)
    for a, b in zip(grad_a, grad_b):
        if a is None or b is None:
            assert a is None and b is None
            continue
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-12)
    return res_a, res_b

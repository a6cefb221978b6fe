"""pair_mlp: forces are -dE/dx (finite differences), invariance, smoothness at r_max, scripting,
edge-feature interface."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.models import build_model, features

R_MAX = 3.5


def _model(**kwargs):
    model = build_model(
        "pair_mlp", type_names=["Si", "C"], r_max=R_MAX, hidden=16, **kwargs
    ).double()
    # nonzero shift/scale so that ForceModel's per-type terms are exercised too
    model.set_energy_reference(
        torch.tensor([-1.3, 0.7], dtype=torch.float64),
        torch.tensor([2.0, 0.5], dtype=torch.float64),
    )
    return model


def _structure(periodic=True, seed=0):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.numbers[[1, 5]] = 6
    atoms.rattle(0.15, seed=seed)
    if not periodic:
        atoms.pbc = False
    return atoms


def _energy(model, atoms):
    return float(
        model(atoms_to_graph(atoms, model.type_names, R_MAX))[keys.TOTAL_ENERGY].sum().detach()
    )


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("angular", [True, False])
def test_forces_are_minus_energy_gradient(periodic, angular):
    model, atoms = _model(angular=angular), _structure(periodic)
    forces = model(atoms_to_graph(atoms, model.type_names, R_MAX))[keys.FORCES].detach().numpy()
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (6, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        numeric = -(_energy(model, plus) - _energy(model, minus)) / (2 * h)
        assert forces[atom, axis] == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_energy_is_invariant_under_rotation_and_permutation():
    model, atoms = _model(), _structure(periodic=False)
    energy = _energy(model, atoms)
    rotated = atoms.copy()
    rotated.rotate(37.0, (1, 2, 3), center=(0, 0, 0))
    assert _energy(model, rotated) == pytest.approx(energy, rel=1e-12)
    order = np.random.default_rng(0).permutation(len(atoms))
    assert _energy(model, atoms[order]) == pytest.approx(energy, rel=1e-12)


def test_energy_and_forces_go_smoothly_to_zero_at_r_max():
    model = _model()

    def dimer(r):
        pair = Atoms("SiC", positions=[[0, 0, 0], [r, 0, 0]])
        out = model(atoms_to_graph(pair, model.type_names, R_MAX))
        return float(out[keys.TOTAL_ENERGY]), float(out[keys.FORCES][1, 0])

    isolated = -1.3 + 0.7  # per-type shifts only
    e_far, f_far = dimer(R_MAX + 0.01)
    e_near, f_near = dimer(R_MAX - 1e-3)
    assert e_far == pytest.approx(isolated, abs=1e-14) and f_far == 0.0
    assert abs(e_near - isolated) < 1e-9 and abs(f_near) < 1e-6


def test_script_equals_eager_and_features_are_recorded():
    model, atoms = _model(), _structure()
    graph = atoms_to_graph(atoms, model.type_names, R_MAX)
    scripted = torch.jit.script(model)
    eager_out, script_out = model(dict(graph)), scripted(dict(graph))
    torch.testing.assert_close(
        script_out[keys.FORCES], eager_out[keys.FORCES], rtol=1e-12, atol=1e-14
    )
    assert keys.edge_feature_key(0) not in eager_out
    assert features.edge_feature_irreps(model) == ["16x0e", "16x0e"]
    features.set_recording(model, True)
    found = features.collect(model(dict(graph)), model)
    n_edges = graph[keys.EDGE_INDEX].shape[1]
    assert [(irreps, tuple(f.shape)) for irreps, f in found] == [("16x0e", (n_edges, 16))] * 2


def test_per_type_parameters_live_in_type_embedding():
    model = _model()
    assert model.energy_model.type_embedding.weight.shape[0] == 2


def test_seed_fixes_initial_weights():
    a, b, c = (build_model("pair_mlp", type_names=["Si"], seed=s) for s in (1, 1, 2))
    assert torch.equal(a.energy_model.edge_layers[0].weight, b.energy_model.edge_layers[0].weight)
    assert not torch.equal(
        a.energy_model.edge_layers[0].weight, c.energy_model.edge_layers[0].weight
    )

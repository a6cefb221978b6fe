"""Layer-wise evaluation with a feature exchange between emulated ranks (gnnff.models.layerwise,
layerwise_domains) equals the whole-graph evaluation of the same NequIP model.

Truth: ForceModel.forward on gnnff's periodic graph (float64). Compared: energy, per-atom
energy, forces and virial, 1e-10 relative to the largest reference value. A control without the
reverse exchange of ghost-feature gradients must miss the forces (so the test sees them).
"""

import numpy as np
import pytest
import torch
from ase.build import bulk

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.models.layerwise import LayerwiseForceModel
from gnnff.models.layerwise_domains import decompose, evaluate_decomposed
from gnnff.models.registry import build_model

TYPES = ["Si", "Ge"]
R_MAX = 3.5
RTOL = 1e-10


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(5)
    m = (
        build_model("nequip", type_names=TYPES, r_max=R_MAX, preset="small", n_layers=3)
        .double()
        .eval()
    )
    m.set_energy_reference(torch.tensor([-4.3, -3.9]), torch.tensor([0.7, 1.2]))
    return m


def _structure(repeat, seed, vacuum_x=1.0):
    """Rattled triclinic Si/Ge diamond; vacuum_x > 1 stretches the cell along a, not the atoms."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Si", "diamond", a=5.5, cubic=True).repeat(repeat)
    atoms.symbols[rng.permutation(len(atoms))[: len(atoms) // 3]] = "Ge"
    atoms.set_cell(
        atoms.cell.array @ (np.eye(3) + 0.05 * rng.standard_normal((3, 3))), scale_atoms=True
    )
    atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
    atoms.wrap()
    if vacuum_x != 1.0:
        cell = atoms.cell.array.copy()
        cell[0] *= vacuum_x
        atoms.set_cell(cell, scale_atoms=False)
    return atoms


def _compare(model, atoms, grid, reverse_exchange=True):
    ref = model(atoms_to_graph(atoms, TYPES, model.r_max))
    types = np.array([TYPES.index(s) for s in atoms.get_chemical_symbols()])
    out = evaluate_decomposed(
        LayerwiseForceModel(model),
        atoms.positions,
        atoms.cell.array,
        types,
        grid,
        reverse_exchange=reverse_exchange,
    )
    errors = {}
    for name, key in [
        ("energy", keys.TOTAL_ENERGY),
        ("atomic_energy", keys.ATOMIC_ENERGY),
        ("forces", keys.FORCES),
        ("virial", keys.VIRIAL),
    ]:
        truth = ref[key].detach().numpy().reshape(np.shape(out[name]))
        errors[name] = np.abs(out[name] - truth).max() / np.abs(truth).max()
    return errors


CASES = {  # name -> (repeat, grid, stretch of a)
    "one rank": ((2, 1, 1), (1, 1, 1), 1.0),
    "two ranks": ((2, 1, 1), (2, 1, 1), 1.0),
    "four ranks 2x2": ((2, 2, 1), (2, 2, 1), 1.0),
    "cell shorter than 2 r_max, four ranks": ((1, 1, 1), (1, 2, 2), 1.0),
    "a rank without atoms": ((1, 1, 1), (4, 1, 1), 1.45),
}


@pytest.mark.parametrize("case", list(CASES))
def test_layerwise_equals_whole_graph(model, case):
    repeat, grid, stretch = CASES[case]
    atoms = _structure(repeat, seed=len(case), vacuum_x=stretch)
    errors = _compare(model, atoms, grid)
    assert max(errors.values()) < RTOL, errors


def test_case_geometry_is_what_it_claims(model):
    """The small-cell case is shorter than 2 r_max; the vacuum case leaves a rank empty."""
    small = _structure((1, 1, 1), seed=1)
    assert min(np.linalg.norm(small.cell.array, axis=1)) < 2 * R_MAX
    ranks = decompose(small.positions, small.cell.array, (1, 2, 2), R_MAX)
    # an atom's own periodic image is among its rank's ghosts
    assert any(np.isin(r.ghost_atom, r.owned).any() for r in ranks)
    empty = _structure((1, 1, 1), seed=1, vacuum_x=1.45)
    counts = [r.n_local for r in decompose(empty.positions, empty.cell.array, (4, 1, 1), R_MAX)]
    assert 0 in counts and sum(counts) == len(empty)


def test_without_reverse_exchange_forces_are_wrong(model):
    """Control: dropping the ghost-gradient exchange must break the forces, not the energy."""
    atoms = _structure((2, 2, 1), seed=3)
    errors = _compare(model, atoms, (2, 2, 1), reverse_exchange=False)
    assert errors["energy"] < RTOL
    assert errors["forces"] > 1e3 * RTOL, errors


def test_models_without_layerwise_form_are_refused():
    allegro = build_model("allegro", type_names=TYPES, r_max=R_MAX, preset="small")
    with pytest.raises(ValueError, match="comm shell"):
        LayerwiseForceModel(allegro)

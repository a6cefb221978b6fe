"""Starting structures: stoichiometry, coordination, bond lengths, molecule filters."""

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from gnnff.datagen import geometries


def test_cristobalite_is_corner_sharing_tetrahedra():
    cell = geometries.silica_cristobalite(1, si_o_bond=1.61)
    assert geometries.composition(cell) == {"O": 16, "Si": 8}
    i, j, d = neighbor_list("ijd", cell, 2.0)
    symbols = np.array(cell.get_chemical_symbols())
    coordination = np.bincount(i, minlength=len(cell))
    assert np.all(coordination[symbols == "Si"] == 4)  # SiO4 tetrahedra
    assert np.all(coordination[symbols == "O"] == 2)  # bridging oxygen
    np.testing.assert_allclose(d, 1.61, atol=1e-9)
    assert np.all(symbols[i] != symbols[j])  # only Si-O bonds within 2 Å


@pytest.mark.parametrize("ratio, expected_o", [(1.5, 48), (1.1, 35), (2.0, 64)])
def test_remove_oxygen_hits_ratio_and_depends_on_rng(ratio, expected_o):
    cell = geometries.silica_cristobalite((2, 2, 1))
    a = geometries.remove_oxygen(cell, ratio, np.random.default_rng(0))
    b = geometries.remove_oxygen(cell, ratio, np.random.default_rng(1))
    assert geometries.composition(a) == {"O": expected_o, "Si": 32}
    if ratio < 2.0:
        assert not np.allclose(a.positions, b.positions)


def test_remove_oxygen_rejects_impossible_ratio():
    with pytest.raises(ValueError, match="O/Si = 2.5 needs 20 O atoms but the cell has 16"):
        geometries.remove_oxygen(geometries.silica_cristobalite(1), 2.5, np.random.default_rng(0))


def test_silicon_vacancy_and_strain():
    rng = np.random.default_rng(3)
    assert len(geometries.silicon_vacancy(2, rng)) == 63
    crystal = geometries.silicon_crystal(2)
    strained = geometries.strained(crystal, 0.02, rng)
    e = np.linalg.solve(crystal.cell.array, strained.cell.array) - np.eye(3)
    assert np.abs(e).max() <= 0.02 and np.abs(e).max() > 0
    np.testing.assert_allclose(e, e.T, atol=1e-12)


def test_shipped_molecules_have_sane_bonds():
    assert {
        "aspirin",
        "ethanol",
        "naphthalene",
        "salicylic_acid",
        "malonaldehyde",
        "toluene",
        "uracil",
        "benzene",
    } <= set(geometries.md17_molecules())
    for name in geometries.md17_molecules():
        atoms = geometries.shipped_molecule(name)
        d = atoms.get_all_distances() + 10 * np.eye(len(atoms))
        assert d.min() > 0.9, name  # no clashes (shortest bond is C-H/O-H ~ 0.97-1.1 Å)
        assert np.all(d.min(axis=1) < 1.6), name  # every atom bonded to something
    with pytest.raises(ValueError, match="no shipped geometry for molecule 'caffeine'"):
        geometries.shipped_molecule("caffeine")


def test_pretraining_molecules_are_closed_shell_hcno():
    names = geometries.pretraining_molecules()
    assert len(names) >= 40
    for name in names:
        atoms = geometries.g2_molecule(name)
        assert set(atoms.get_chemical_symbols()) <= {"H", "C", "N", "O"}
        assert atoms.numbers.sum() % 2 == 0
    assert "CH3" not in names and "OH" not in names  # radicals are left out

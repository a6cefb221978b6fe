"""The GFN2-xTB engine: MD frames against fresh single points and finite differences."""

import numpy as np
import pytest

from gnnff.datagen import geometries, xtb_engine
from gnnff.datagen.tasks import TrajectoryTask, run_task, run_tasks


def ethanol_task(seed, n_frames=2):
    return TrajectoryTask(
        engine="xtb",
        engine_params={},
        atoms=geometries.shipped_molecule("ethanol"),
        temperature_K=500.0,
        seed=seed,
        n_frames=n_frames,
        interval_steps=5,
        n_equil_steps=5,
        timestep_fs=0.5,
        split="train",
        family="ethanol",
    )


def ethanol_frames(pool, seed=5):
    return pool.submit(run_task, ethanol_task(seed)).result()


def to_atoms(frame):
    from ase import Atoms

    return Atoms(numbers=frame["numbers"], positions=frame["positions"])


def test_md_frames_equal_fresh_single_point(xtb_pool):
    frames = ethanol_frames(xtb_pool)
    assert len(frames) == 2 and "stress" not in frames[0]
    for frame in frames:
        fresh = xtb_pool.submit(xtb_engine.single_point, to_atoms(frame)).result()
        # MD restarts the SCF from the previous step, a fresh call does not: SCF tolerance
        assert frame["energy"] == pytest.approx(fresh["energy"], abs=1e-6)
        np.testing.assert_allclose(frame["forces"], fresh["forces"], atol=2e-4)
    assert not np.allclose(frames[0]["positions"], frames[1]["positions"])


def test_forces_are_minus_energy_gradient(xtb_pool):
    atoms = geometries.shipped_molecule("malonaldehyde")
    atoms.rattle(0.05, seed=2)
    tight = {"accuracy": 0.01}
    forces = xtb_pool.submit(xtb_engine.single_point, atoms, tight).result()["forces"]
    h = 1e-3
    for i, k in [(0, 0), (2, 1), (5, 2), (8, 0)]:
        shifted = []
        for sign in (1, -1):
            a = atoms.copy()
            a.positions[i, k] += sign * h
            shifted.append(xtb_pool.submit(xtb_engine.single_point, a, tight).result()["energy"])
        fd = -(shifted[0] - shifted[1]) / (2 * h)
        assert forces[i, k] == pytest.approx(fd, abs=2e-4)


def test_same_seed_same_frames_other_seed_not():
    """Through the process pool, as generation runs it: one OpenMP thread per worker makes
    tblite bit-for-bit reproducible, whatever the number of workers."""
    a, b, c = run_tasks(
        [ethanol_task(9), ethanol_task(9), ethanol_task(10)], workers=2, progress=False
    )
    (a1,) = run_tasks([ethanol_task(9)], workers=1, progress=False)
    for other in (b, a1):
        np.testing.assert_array_equal(a[-1]["positions"], other[-1]["positions"])
        np.testing.assert_array_equal(a[-1]["forces"], other[-1]["forces"])
        assert a[-1]["energy"] == other[-1]["energy"]
    assert not np.allclose(a[-1]["positions"], c[-1]["positions"])


def test_shipped_geometries_are_xtb_minima(xtb_pool):
    for name in ("aspirin", "salicylic_acid", "naphthalene"):
        atoms = geometries.shipped_molecule(name)
        forces = xtb_pool.submit(xtb_engine.single_point, atoms).result()["forces"]
        # written with 6 decimals after a BFGS to 0.005 eV/Å
        assert np.abs(forces).max() < 0.02, name
    assert len(geometries.shipped_molecule("aspirin")) == 21
    assert geometries.shipped_molecule("aspirin").get_chemical_formula() == "C9H8O4"

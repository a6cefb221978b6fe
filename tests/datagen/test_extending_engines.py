"""docs/extending.md, "A data-generation engine", done for real: an engine defined here (ASE's
EMT with Langevin MD), registered by its decorator alone, generates a data set through
``generate`` in a spawned worker; its frames are checked against fresh EMT single points."""

import os

import ase.io
import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT

from gnnff.datagen import catalog, generate
from gnnff.datagen.engines import available_engines, engine, register_engine


# ---- the engine of docs/extending.md --------------------------------------------------------
@register_engine("emt")
class EmtEngine:
    """ASE's EMT (Cu, Al, ...; eV, Å) with Langevin MD; no engine parameters."""

    def run(self, task):
        from ase.md.langevin import Langevin

        atoms = task.atoms.copy()
        atoms.calc = EMT()
        rng = np.random.default_rng(task.seed)
        md = Langevin(
            atoms,
            task.timestep_fs * units.fs,
            temperature_K=task.temperature_K,
            friction=task.friction_per_fs / units.fs,
            rng=rng,
        )
        md.run(task.n_equil_steps)
        for k in range(task.n_frames):
            md.run(task.interval_steps)
            frame = {
                "numbers": atoms.numbers.copy(),
                "positions": atoms.positions.copy(),
                "cell": atoms.cell.array.copy(),
                "pbc": atoms.pbc.copy(),
                "energy": atoms.get_potential_energy(),
                "forces": atoms.get_forces(),
                "info": {
                    "temperature_K": atoms.get_temperature(),
                    "step": (k + 1) * task.interval_steps,
                },
            }
            if atoms.pbc.all():
                frame["stress"] = atoms.get_stress()
            yield frame

    def card(self, params):
        return {"name": "ASE EMT", "interface": "ase.calculators.emt.EMT", "units": "metal"}

    def integrator(self, plan):
        return f"ASE Langevin, friction {plan.friction_per_fs} 1/fs"


def emt_plan():
    fcc = catalog.Family(
        "fcc", lambda rng: bulk("Cu", "fcc", a=3.6, cubic=True), description="fcc Cu, 4 atoms"
    )
    return catalog.DatasetPlan(
        "cu_emt",
        "Cu with EMT (test)",
        "emt",
        {},
        timestep_fs=2.0,
        interval_steps=5,
        n_equil_steps=5,
        runs=[catalog.Run("train", fcc, 300.0, 3)],
    )


def test_registered_engine_generates_a_data_set_in_a_worker(tmp_path):
    assert "emt" in available_engines()
    card = generate("cu_emt", "small", 3, str(tmp_path), workers=1, progress=False, plan=emt_plan())
    assert card["engine"]["name"] == "ASE EMT" and card["md"]["integrator"].startswith(
        "ASE Langevin"
    )
    frames = ase.io.read(os.path.join(str(tmp_path), card["sets"]["train"]["file"]), index=":")
    assert len(frames) == 3
    for atoms in frames:
        fresh = atoms.copy()
        fresh.calc = EMT()
        assert atoms.get_potential_energy() == pytest.approx(fresh.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(atoms.get_forces(), fresh.get_forces(), atol=1e-6)


def test_misspelt_engine_is_named():
    assert {"emt", "lammps", "xtb"} <= set(available_engines())
    with pytest.raises(
        ValueError, match=r"unknown data-generation engine 'lamps' \(did you mean 'lammps'\?\)"
    ):
        engine("lamps")
    plan = emt_plan()
    plan.engine = "xtbb"
    with pytest.raises(ValueError, match="did you mean 'xtb'"):
        generate("cu_emt", "small", 0, "unused", workers=1, progress=False, plan=plan)

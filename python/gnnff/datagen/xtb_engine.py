"""GFN2-xTB (the ``tblite`` package, through its ASE calculator) as a reference engine.

Energies in eV, forces in eV/Å (tblite.ase converts from Hartree/Bohr). MD is ASE's Langevin
integrator with a numpy Generator seeded per trajectory, so a trajectory is a pure function of its
seed on one OpenMP thread (gnnff.datagen runs every trajectory with OMP_NUM_THREADS=1).

The SCF of each MD step starts from the previous step's density (tblite's default restart), a
fresh single point starts from scratch; ``accuracy=0.1`` (10x tighter than tblite's default)
keeps the two within ~1e-9 eV and ~3e-5 eV/Å, far below any model error.
"""

from typing import Dict, Iterator, Optional

import numpy as np
from ase import Atoms, units

from gnnff.datagen.engines import register_engine

XTB_DEFAULTS = {"method": "GFN2-xTB", "accuracy": 0.1, "electronic_temperature": 300.0}


def tblite_version() -> str:
    try:
        from importlib.metadata import version

        return version("tblite")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "unknown"


def make_calculator(params: Optional[Dict] = None):
    from gnnff.optional import import_optional

    TBLite = import_optional("tblite.ase", "GFN2-xTB reference data").TBLite

    settings = dict(XTB_DEFAULTS, **(params or {}))
    return TBLite(verbosity=0, **settings)


def _frame(atoms: Atoms, calc) -> Dict:
    frame = {
        "numbers": atoms.numbers.copy(),
        "positions": atoms.positions.copy(),
        "cell": atoms.cell.array.copy(),
        "pbc": atoms.pbc.copy(),
        "energy": float(calc.get_potential_energy(atoms)),
        "forces": np.array(calc.get_forces(atoms)),
        "info": {"temperature_K": float(atoms.get_temperature())},
    }
    if atoms.pbc.any():
        frame["stress"] = np.array(calc.get_stress(atoms))
    return frame


def single_point(atoms: Atoms, params: Optional[Dict] = None) -> Dict:
    """A fresh calculator (no SCF restart) evaluating one structure."""
    atoms = atoms.copy()
    atoms.set_velocities(np.zeros((len(atoms), 3)))
    calc = make_calculator(params)
    atoms.calc = calc
    return _frame(atoms, calc)


def run_md(
    atoms: Atoms,
    temperature_K: float,
    seed: int,
    n_frames: int,
    interval_steps: int,
    n_equil_steps: int,
    timestep_fs: float,
    friction_per_fs: float = 0.01,
    params: Optional[Dict] = None,
) -> Iterator[Dict]:
    """Langevin MD at ``temperature_K``; yields a frame every ``interval_steps`` after
    ``n_equil_steps`` of equilibration. Starts from Maxwell-Boltzmann velocities at 2T (see
    below) without net momentum or rotation; the centre of mass is kept fixed (FixCom) so that
    molecules do not drift."""
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

    atoms = atoms.copy()
    atoms.set_constraint(FixCom())
    calc = make_calculator(params)
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    # the start is an energy minimum: equipartition moves half of the kinetic energy into
    # potential energy within a few vibrations, so draw velocities at 2T to start near T
    thermalize_momenta(atoms, temperature_K=2.0 * temperature_K, rng=rng)
    Stationary(atoms)
    with np.errstate(invalid="ignore", divide="ignore"):  # linear molecules: one zero moment
        ZeroRotation(atoms)
    md = Langevin(
        atoms,
        timestep_fs * units.fs,
        temperature_K=temperature_K,
        friction=friction_per_fs / units.fs,
        fixcm=False,
        rng=rng,
    )
    if n_equil_steps:
        md.run(n_equil_steps)
    for k in range(n_frames):
        md.run(interval_steps)
        frame = _frame(atoms, calc)
        frame["info"]["step"] = (k + 1) * interval_steps
        frame["info"]["time_ps"] = (k + 1) * interval_steps * timestep_fs * 1e-3
        yield frame


@register_engine("xtb")
class XtbEngine:
    """GFN2-xTB through tblite; ``engine_params`` overrides XTB_DEFAULTS (method, accuracy,
    electronic_temperature in K)."""

    def run(self, task) -> Iterator[Dict]:
        return run_md(
            task.atoms,
            task.temperature_K,
            task.seed,
            task.n_frames,
            task.interval_steps,
            task.n_equil_steps,
            task.timestep_fs,
            friction_per_fs=task.friction_per_fs,
            params=task.engine_params,
        )

    def card(self, params: Dict) -> Dict:
        settings = dict(XTB_DEFAULTS, **params)
        return {
            "name": "tblite",
            "interface": "tblite.ase.TBLite",
            "version": tblite_version(),
            "method": settings["method"],
            "scf_accuracy": settings["accuracy"],
            "electronic_temperature_K": settings["electronic_temperature"],
            "charge": 0,
            "spin": "closed-shell singlet",
        }

    def integrator(self, plan) -> str:
        return (
            f"ASE Langevin, friction {plan.friction_per_fs} 1/fs, centre of mass "
            "fixed (FixCom), Maxwell-Boltzmann velocities at 2T from the minimum"
        )

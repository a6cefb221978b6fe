"""Starting structures: silicon crystals, silicon-oxide cells of any O:Si ratio, molecules.

Molecules of the MD17 kind are shipped as GFN2-xTB-relaxed ``structures/*.xyz`` (see
scripts/make_structures.py for how they were made); the broad pre-training set draws on the
G2 molecule collection that ASE ships (experimental/MP2 geometries).
"""

import os
from typing import List

import numpy as np
from ase import Atoms
from ase.build import bulk, molecule
from ase.collections import g2
from ase.data import atomic_numbers

STRUCTURE_DIR = os.path.join(os.path.dirname(__file__), "structures")
# G2 entries that are excited states or multireference cases a closed-shell GFN2-xTB run
# does not describe (singlet methylene, ozone)
_NOT_GROUND_STATE = {"CH2_s1A1d", "O3"}
SI_DIAMOND_A = 5.431  # Å, the lattice constant Stillinger-Weber was fitted to


def md17_molecules() -> List[str]:
    """Names of the shipped molecule geometries (file stems of structures/*.xyz)."""
    return sorted(f[:-4] for f in os.listdir(STRUCTURE_DIR) if f.endswith(".xyz"))


def shipped_molecule(name: str) -> Atoms:
    import ase.io

    path = os.path.join(STRUCTURE_DIR, f"{name}.xyz")
    if not os.path.exists(path):
        raise ValueError(
            f"no shipped geometry for molecule {name!r}; choose one of {md17_molecules()}"
        )
    atoms = ase.io.read(path)
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    return atoms


def silicon_crystal(repeat: int) -> Atoms:
    """Cubic diamond silicon, ``repeat``^3 conventional cells (8 atoms each)."""
    return bulk("Si", "diamond", a=SI_DIAMOND_A, cubic=True).repeat(repeat)


def silicon_vacancy(repeat: int, rng: np.random.Generator) -> Atoms:
    atoms = silicon_crystal(repeat)
    del atoms[int(rng.integers(len(atoms)))]
    return atoms


def strained(atoms: Atoms, max_strain: float, rng: np.random.Generator) -> Atoms:
    """A copy with a random symmetric strain (|e_ij| <= max_strain), for stress diversity."""
    e = rng.uniform(-max_strain, max_strain, size=(3, 3))
    e = 0.5 * (e + e.T)
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ (np.eye(3) + e), scale_atoms=True)
    return out


def silica_cristobalite(repeat, si_o_bond: float = 1.61) -> Atoms:
    """Idealised beta-cristobalite SiO2: Si on a diamond lattice, O at the middle of every
    Si-Si bond (straight Si-O-Si, Si-O = ``si_o_bond`` Å); 24 atoms per cubic cell.

    ``repeat`` is an int or a (nx, ny, nz) tuple."""
    a = 4.0 * 2.0 * si_o_bond / np.sqrt(3.0)  # Si-Si = a sqrt(3)/4 = 2 * Si-O
    si = bulk("Si", "diamond", a=a, cubic=True)
    frac_si = si.get_scaled_positions()
    bonds = []  # one O per nearest-neighbour Si pair (16 per cubic cell)
    for i, fi in enumerate(frac_si):
        for j, fj in enumerate(frac_si):
            d = fj - fi
            d -= np.round(d)
            if i < j and abs(np.linalg.norm(d * a) - a * np.sqrt(3) / 4) < 1e-6:
                bonds.append((fi + d / 2) % 1.0)
    frac = np.vstack([frac_si, np.array(bonds)])
    symbols = ["Si"] * len(frac_si) + ["O"] * len(bonds)
    cell = Atoms(symbols, scaled_positions=frac, cell=[a, a, a], pbc=True)
    return cell.repeat(repeat)


def remove_oxygen(atoms: Atoms, o_per_si: float, rng: np.random.Generator) -> Atoms:
    """SiO_x from SiO2 by deleting randomly chosen O atoms until O/Si is nearest ``o_per_si``."""
    symbols = np.array(atoms.get_chemical_symbols())
    n_si = int(np.sum(symbols == "Si"))
    oxygen = np.flatnonzero(symbols == "O")
    n_keep = int(round(o_per_si * n_si))
    if not 0 <= n_keep <= len(oxygen):
        raise ValueError(
            f"O/Si = {o_per_si} needs {n_keep} O atoms but the cell has {len(oxygen)}; "
            "ask for a ratio between 0 and the cell's own"
        )
    drop = rng.choice(oxygen, size=len(oxygen) - n_keep, replace=False)
    out = atoms.copy()
    del out[sorted(int(i) for i in drop)]
    return out


def composition(atoms: Atoms) -> dict:
    symbols = atoms.get_chemical_symbols()
    return {s: symbols.count(s) for s in sorted(set(symbols), key=lambda s: atomic_numbers[s])}


def pretraining_molecules(max_atoms: int = 12, elements=("H", "C", "N", "O")) -> List[str]:
    """Closed-shell neutral G2 molecules made of ``elements`` with 3..``max_atoms`` atoms.

    Radicals (initial magnetic moments in G2) and odd-electron species are left out because
    GFN2-xTB is run as a closed-shell singlet."""
    names = []
    for name in sorted(g2.names):
        atoms = molecule(name)
        if not 3 <= len(atoms) <= max_atoms:
            continue
        if not set(atoms.get_chemical_symbols()) <= set(elements):
            continue
        if np.any(atoms.get_initial_magnetic_moments() != 0) or atoms.numbers.sum() % 2:
            continue
        if name in _NOT_GROUND_STATE:
            continue
        names.append(name)
    return names


def g2_molecule(name: str) -> Atoms:
    atoms = molecule(name)
    atoms.set_initial_magnetic_moments(None)
    atoms.positions -= atoms.get_center_of_mass()
    return atoms

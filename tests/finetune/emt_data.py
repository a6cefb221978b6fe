"""Small labelled data sets for fine-tuning tests: ASE's EMT potential as the cheap reference.

"Broad" pre-training data: random clusters of several metals (every composition and geometry);
"target" data: rattled copies of one cluster of a subset of those elements, as a small MD-like set.
Energies in eV, forces in eV/Å (SinglePointCalculator), written as extxyz for the trainer.
"""

from typing import List, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write


def random_cluster(
    elements: Sequence[str],
    n_atoms: int,
    rng: np.random.Generator,
    min_dist: float = 2.2,
    box: float = 5.0,
) -> Atoms:
    pos: List[np.ndarray] = []
    while len(pos) < n_atoms:
        p = rng.uniform(0.0, box, 3)
        if all(np.linalg.norm(p - q) > min_dist for q in pos):
            pos.append(p)
    return Atoms(symbols=list(rng.choice(list(elements), n_atoms)), positions=np.array(pos))


def label(atoms: Atoms) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = EMT()
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


def broad_set(elements: Sequence[str], n_structures: int, seed: int, n_atoms=(4, 8)) -> List[Atoms]:
    rng = np.random.default_rng(seed)
    return [
        label(random_cluster(elements, int(rng.integers(n_atoms[0], n_atoms[1] + 1)), rng))
        for _ in range(n_structures)
    ]


def target_set(symbols: str, n_structures: int, seed: int, rattle: float = 0.15) -> List[Atoms]:
    """Rattled copies of one compact cluster (an fcc fragment)."""
    rng = np.random.default_rng(seed)
    fcc_fragment = [
        [0, 0, 0],
        [0.5, 0.5, 0],
        [0.5, 0, 0.5],
        [0, 0.5, 0.5],
        [1, 0, 0],
        [1, 0.5, 0.5],
        [0.5, 1, 0.5],
        [0.5, 0.5, 1],
    ]
    n = len(Atoms(symbols))
    base = Atoms(
        symbols, positions=3.61 * np.array(fcc_fragment[:n], dtype=float)
    )  # Cu lattice constant, Å
    out = []
    for _ in range(n_structures):
        atoms = base.copy()
        atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
        out.append(label(atoms))
    return out


def write_extxyz(structures: Sequence[Atoms], path: str) -> str:
    write(path, list(structures), format="extxyz")
    return path

"""One trajectory frame as the stability analyses see it (plain numpy, no ASE objects).

Readers (``lammps_dump``, ``extxyz``) yield :class:`Frame` objects one at a time so that a
trajectory of any length is analysed in constant memory. Atoms are always sorted by their id,
so that atom ``k`` of one frame is the same atom as atom ``k`` of another frame unless atoms
were lost (then ``ids`` tells which ones are left).
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class Frame:
    step: int  # MD step number (LAMMPS TIMESTEP item)
    ids: np.ndarray  # (N,) int64, ascending atom ids
    positions: np.ndarray  # (N, 3) float64 Cartesian, Å (unwrapped when the file had xu/ix)
    cell: np.ndarray  # (3, 3) float64 lattice vectors as rows, Å
    pbc: np.ndarray  # (3,) bool periodic directions
    origin: np.ndarray  # (3,) float64 lower corner of the box, Å
    types: Optional[np.ndarray] = None  # (N,) int64 LAMMPS atom types, when the file has them
    symbols: Optional[np.ndarray] = None  # (N,) str chemical symbols, when known
    velocities: Optional[np.ndarray] = None  # (N, 3) file units (Å/ps in metal)
    forces: Optional[np.ndarray] = None  # (N, 3) file units (eV/Å in metal)
    index: int = -1  # position of the frame in its file (0-based, damaged frames counted)

    @property
    def n_atoms(self) -> int:
        return len(self.ids)

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.cell)))

    def species(self) -> np.ndarray:
        """Labels used to group atoms into element pairs: symbols if known, else 'type<k>'."""
        if self.symbols is not None:
            return self.symbols
        if self.types is not None:
            return np.char.add("type", self.types.astype(str))
        return np.full(self.n_atoms, "X")

    def has_nonfinite(self) -> bool:
        arrays = [self.positions, self.velocities, self.forces, self.cell]
        return any(a is not None and not np.isfinite(a).all() for a in arrays)


def minimum_image(vectors: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """Shortest periodic image of each row of ``vectors`` (M, 3).

    Rounding fractional coordinates is exact for orthogonal boxes and for triclinic boxes as
    long as the vectors are shorter than half the smallest box width (true for bonds).
    """
    if not pbc.any():
        return vectors
    frac = np.linalg.solve(cell.T, vectors.T).T
    frac[:, pbc] -= np.round(frac[:, pbc])
    return frac @ cell

"""Pair distances within a cutoff (vesin neighbour lists; periodic, triclinic, any cutoff)."""

import sys

import numpy as np

from .frame import Frame

# vesin's threads: 0 = OMP_NUM_THREADS if set, else every core; the MPI driver sets 1 per rank
N_THREADS = 0


def pair_distances(frame: Frame, cutoff: float):
    """Each unordered pair (i, j) with distance < cutoff once: rows i, j and distance d.

    Periodic images count as separate pairs, as in a radial distribution function; positions
    may be unwrapped.
    """
    vesin = _import_vesin()
    box = frame.cell if frame.pbc.any() else np.zeros((3, 3))
    neighbours = vesin.NeighborList(cutoff=float(cutoff), full_list=False, n_threads=N_THREADS)
    i, j, d = neighbours.compute(np.ascontiguousarray(frame.positions, dtype=np.float64), box,
                                 [bool(p) for p in frame.pbc], "ijd")
    return i.astype(np.int64), j.astype(np.int64), d


def distances_only(frame: Frame, cutoff: float) -> np.ndarray:
    """Distances of all unordered pairs closer than cutoff (as pair_distances, without i, j)."""
    vesin = _import_vesin()
    box = frame.cell if frame.pbc.any() else np.zeros((3, 3))
    neighbours = vesin.NeighborList(cutoff=float(cutoff), full_list=False, n_threads=N_THREADS)
    (d,) = neighbours.compute(np.ascontiguousarray(frame.positions, dtype=np.float64), box,
                              [bool(p) for p in frame.pbc], "d")
    return d


def _import_vesin():
    """vesin without torch: vesin tries ``import torch`` only to accept torch tensors, which
    costs ~4 s; the analysis passes numpy arrays, so hide torch while vesin is first imported
    (when torch is already loaded, vesin sees it as usual)."""
    if "vesin" in sys.modules or "torch" in sys.modules:
        import vesin

        return vesin
    sys.modules["torch"] = None  # makes `import torch` raise ImportError inside vesin
    try:
        import vesin
    finally:
        del sys.modules["torch"]
    return vesin

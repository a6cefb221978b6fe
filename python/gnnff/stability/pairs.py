"""Pair distances within a cutoff (vesin neighbour lists; periodic, triclinic, any cutoff)."""

import sys

import numpy as np

from .frame import Frame

# vesin's threads: 0 = OMP_NUM_THREADS if set, else every core; the MPI driver sets 1 per rank
N_THREADS = 0


def pair_distances(frame: Frame, cutoff: float):
    """Each unordered pair (i, j) with distance < cutoff once: rows i, j and distance d.

    Periodic images count as separate pairs, as in a radial distribution function; positions
    may be unwrapped. The list is kept with the frame: a later request with a smaller cutoff
    (close contacts after the RDF) filters it instead of searching again.
    """
    cached = frame.__dict__.get("_pairs")
    if cached is not None and cached[0] >= cutoff:
        cached_cutoff, i, j, d = cached
        if cached_cutoff == cutoff:
            return i, j, d
        keep = d < cutoff
        return i[keep], j[keep], d[keep]
    vesin = _import_vesin()
    box = frame.cell if frame.pbc.any() else np.zeros((3, 3))
    neighbours = vesin.NeighborList(cutoff=float(cutoff), full_list=False, n_threads=N_THREADS)
    # copy=False: views into vesin's buffers, copied once below (they die with `neighbours`)
    i, j, d = neighbours.compute(
        np.ascontiguousarray(frame.positions, dtype=np.float64),
        box,
        [bool(p) for p in frame.pbc],
        "ijd",
        copy=False,
    )
    i, j, d = i.astype(np.int64), j.astype(np.int64), d.copy()
    del neighbours
    frame.__dict__["_pairs"] = (float(cutoff), i, j, d)
    return i, j, d


def forget_pairs(frame: Frame) -> None:
    """Drop the neighbour list kept with ``frame`` (once every criterion has seen it)."""
    frame.__dict__.pop("_pairs", None)


def distances_only(frame: Frame, cutoff: float) -> np.ndarray:
    """Distances of all unordered pairs closer than cutoff (as pair_distances, without i, j)."""
    return pair_distances(frame, cutoff)[2]


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

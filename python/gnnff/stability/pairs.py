"""Pair distances within a cutoff (vesin neighbour lists; periodic, triclinic, any cutoff).

One neighbour search per frame: the first request (g(r), 6 Å) searches, and a later request
for the same frame with a smaller cutoff (close contacts) filters that list instead of
searching again. The vesin ``NeighborList`` objects are kept from frame to frame, so the
millions of pairs of a large frame reuse the buffers of the previous frame instead of being
allocated, copied and freed again; :func:`distances_only` hands out a read-only view of those
buffers, :func:`pair_distances` small copies (the pairs within its cutoff).
"""

import sys
import weakref

import numpy as np

from .frame import Frame

# vesin's threads: 0 = OMP_NUM_THREADS if set, else every core; the MPI driver sets 1 per rank
N_THREADS = 0

_LISTS = {}  # (cutoff, n_threads) -> vesin.NeighborList, reused from frame to frame
_LAST = {}  # the last search: frame (weakref), cutoff, pairs (M, 2) and d (M,) views


def _search(frame: Frame, cutoff: float):
    """Pairs (M, 2) and distances (M,) of ``frame`` within at least ``cutoff``: views into
    vesin's buffers, valid until the next search with the same cutoff (see module docstring)."""
    last = _LAST.get("frame")
    if last is not None and last() is frame and _LAST["cutoff"] >= cutoff:
        return _LAST["cutoff"], _LAST["pairs"], _LAST["d"]
    _LAST.clear()
    key = (float(cutoff), int(N_THREADS))
    neighbours = _LISTS.get(key)
    if neighbours is None:
        if len(_LISTS) >= 4:  # a few cutoffs per analysis; do not collect them across analyses
            _LISTS.clear()
        vesin = _import_vesin()
        neighbours = vesin.NeighborList(cutoff=key[0], full_list=False, n_threads=key[1])
        _LISTS[key] = neighbours
    box = frame.cell if frame.pbc.any() else np.zeros((3, 3))
    # copy=False: views into the buffers that the next compute() of `neighbours` overwrites
    found, d = neighbours.compute(
        np.ascontiguousarray(frame.positions, dtype=np.float64),
        box,
        [bool(p) for p in frame.pbc],
        "Pd",
        copy=False,
    )
    d = d.view()
    d.flags.writeable = False
    _LAST.update(frame=weakref.ref(frame), cutoff=key[0], pairs=found, d=d)
    return key[0], found, d


def pair_distances(frame: Frame, cutoff: float):
    """Each unordered pair (i, j) with distance < cutoff once: rows i, j and distance d (new
    arrays, the caller may keep them).

    Periodic images count as separate pairs, as in a radial distribution function; positions
    may be unwrapped.
    """
    searched, found, d = _search(frame, cutoff)
    if searched == cutoff:
        return found[:, 0].astype(np.intp), found[:, 1].astype(np.intp), d.copy()
    keep = np.flatnonzero(d < cutoff)
    return found[keep, 0].astype(np.intp), found[keep, 1].astype(np.intp), d[keep]


def distances_only(frame: Frame, cutoff: float) -> np.ndarray:
    """Distances of all unordered pairs closer than cutoff (as pair_distances, without i, j):
    a read-only view, valid until the next search (use it at once, or copy it)."""
    searched, _, d = _search(frame, cutoff)
    return d if searched == cutoff else d[d < cutoff]


def forget_pairs(frame: Frame) -> None:
    """Forget the pairs of ``frame`` (once every criterion has seen it); vesin keeps its
    buffers for the next frame."""
    last = _LAST.get("frame")
    if last is not None and last() is frame:
        _LAST.clear()


def release() -> None:
    """Free vesin's buffers (the end of an analysis); views handed out before are invalid."""
    _LAST.clear()
    _LISTS.clear()


def bin_counts(d: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(d, bins=edges)[0]``, without sorting when the edges are evenly spaced.

    Given an array of edges, numpy sorts the values (block by block) and searches the edges;
    given a number of bins and a range, it computes each value's bin and corrects it against
    the same ``np.linspace`` edges, so both give the same counts for these edges.
    """
    n = len(edges) - 1
    if np.array_equal(edges, np.linspace(edges[0], edges[-1], n + 1)):
        return np.histogram(d, bins=n, range=(edges[0], edges[-1]))[0]
    return np.histogram(d, bins=edges)[0]


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

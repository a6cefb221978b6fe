"""The shared neighbour list (pairs.py) against brute-force numpy: vesin's buffers are reused
from frame to frame, a smaller cutoff filters the list of the same frame, and the g(r) histogram
bins distances without sorting."""

import itertools

import numpy as np
import pytest

from gnnff.stability import CloseContacts, Frame, pairs


def frame_from(positions, cell):
    n = len(positions)
    return Frame(
        step=0,
        ids=np.arange(1, n + 1),
        positions=np.asarray(positions, float),
        cell=np.asarray(cell, float),
        pbc=np.array([True] * 3),
        origin=np.zeros(3),
    )


def brute_force_pairs(positions, cell, cutoff):
    """(i, j, d) of every unordered pair and periodic image closer than cutoff, i <= j, sorted:
    a loop over all pairs and all images within reach (slow, obviously right)."""
    widths = abs(np.linalg.det(cell)) / np.linalg.norm(
        np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1
    )
    reach = int(np.ceil(cutoff / widths.min())) + 2  # positions are unwrapped: one more image
    shifts = np.array(list(itertools.product(range(-reach, reach + 1), repeat=3))) @ cell
    rows = []
    for i, j in itertools.combinations_with_replacement(range(len(positions)), 2):
        d = np.linalg.norm(positions[j] + shifts - positions[i], axis=1)
        d = np.sort(d[(d > 1e-9) & (d < cutoff)])
        if i == j:
            d = d[::2]  # an atom and its image S, and its image -S: the same pair, once
        rows += [(i, j, x) for x in d]
    return sort_pairs(*map(np.array, zip(*rows))) if rows else (np.zeros(0),) * 3


def sort_pairs(i, j, d):
    i, j = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((d, j, i))
    return i[order], j[order], d[order]


def assert_same_pairs(ours, truth):
    i, j, d = sort_pairs(*ours)
    np.testing.assert_array_equal(i, truth[0])
    np.testing.assert_array_equal(j, truth[1])
    np.testing.assert_allclose(d, truth[2], rtol=1e-12)


def test_lists_kept_between_frames_give_each_frame_its_own_pairs():
    """Frames of 24, 5 and 40 atoms in a skewed box, searched in an order that reuses, filters
    and replaces the kept list; every answer is that frame's brute-force pairs."""
    rng = np.random.default_rng(3)
    cell = np.array([[6.0, 0, 0], [2.5, 5.5, 0], [-1.8, 1.2, 6.5]])
    positions = {n: rng.uniform(-3, 9, size=(n, 3)) for n in (24, 5, 40)}  # unwrapped
    frames = {n: frame_from(p, cell) for n, p in positions.items()}
    pairs.release()
    try:
        for n, big, small in [(24, 5.0, 2.5), (5, 5.0, 2.5), (40, 5.0, 3.0), (24, 5.0, 1.5)]:
            frame = frames[n]
            d = pairs.distances_only(frame, big)  # g(r): searches
            with pytest.raises(ValueError):
                d[0] = 0.0  # a view of vesin's buffers: read-only
            np.testing.assert_allclose(
                np.sort(d), np.sort(brute_force_pairs(positions[n], cell, big)[2]), rtol=1e-12
            )
            # close contacts: filter the list of this frame
            truth = brute_force_pairs(positions[n], cell, small)
            assert_same_pairs(pairs.pair_distances(frame, small), truth)
            pairs.forget_pairs(frame)
        # a frame searched first at a small cutoff, then at a larger one: a new search
        truth = brute_force_pairs(positions[40], cell, 2.0)
        assert_same_pairs(pairs.pair_distances(frames[40], 2.0), truth)
        truth = brute_force_pairs(positions[40], cell, 4.0)
        assert_same_pairs(pairs.pair_distances(frames[40], 4.0), truth)
        # another frame with the same cutoff overwrites the buffers: arrays handed out by
        # pair_distances are copies and stay right
        kept = pairs.pair_distances(frames[5], 4.0)
        pairs.distances_only(frames[24], 4.0)
        assert_same_pairs(kept, brute_force_pairs(positions[5], cell, 4.0))
    finally:
        pairs.release()


@pytest.mark.parametrize("r_max,n_bins", [(6.0, 120), (7.3, 30), (1.0, 7)])
def test_bin_counts_follow_the_edges_at_and_next_to_every_edge(r_max, n_bins):
    """Values on every edge, one ulp either side of it, outside the range and at random; the
    truth counts edges[k] <= v < edges[k+1] (the last bin closed) bin by bin."""
    edges = np.linspace(0.0, r_max, n_bins + 1)
    rng = np.random.default_rng(n_bins)
    values = np.concatenate(
        [
            edges,
            np.nextafter(edges, -np.inf),
            np.nextafter(edges, np.inf),
            rng.uniform(-0.5, r_max + 0.5, 5000),
            [r_max * 2, -1.0],
        ]
    )
    truth = [((values >= a) & (values < b)).sum() for a, b in zip(edges[:-2], edges[1:-1])]
    truth.append(((values >= edges[-2]) & (values <= edges[-1])).sum())
    np.testing.assert_array_equal(pairs.bin_counts(values, edges), truth)
    np.testing.assert_array_equal(pairs.bin_counts(values, edges), np.histogram(values, edges)[0])
    uneven = np.sort(np.concatenate([edges, [r_max * 0.3141]]))  # falls back to sorting
    np.testing.assert_array_equal(pairs.bin_counts(values, uneven), np.histogram(values, uneven)[0])


def test_close_contact_reference_distances_are_the_brute_force_minimum_per_species_pair():
    """d_ref of each species pair = the smallest distance over all pairs and images within 6 Å
    (brute force); a pair never seen (the one O atom and its own images, > 6 Å apart) takes the
    smallest d_ref of any pair."""
    rng = np.random.default_rng(11)
    cell = np.array([[9.0, 0, 0], [1.5, 8.5, 0], [-1.0, 2.0, 9.5]])
    positions = rng.uniform(-2, 11, size=(30, 3))
    symbols = np.array(["Ga"] * 15 + ["N"] * 14 + ["O"])
    frame = frame_from(positions, cell)
    frame.symbols = symbols
    result = CloseContacts().run([frame]).results
    i, j, d = brute_force_pairs(positions, cell, 6.0)
    truth = {}
    for a, b, x in zip(i, j, d):
        key = "-".join(sorted([symbols[a], symbols[b]]))
        truth[key] = min(truth.get(key, np.inf), x)
    assert "O-O" not in truth
    truth["O-O"] = min(truth.values())
    assert set(result.extra["d_ref"]) == set(truth)
    for key, value in truth.items():
        assert result.extra["d_ref"][key] == pytest.approx(value, rel=1e-12), key

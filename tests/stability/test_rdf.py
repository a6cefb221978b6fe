"""g(r) and h(r) against independent computations (brute-force numpy images, ASE, scipy)."""

import itertools

import numpy as np
import pytest
from ase.build import bulk
from ase.geometry.rdf import get_rdf
from scipy.spatial.distance import pdist

from gnnff.stability import Frame, radial_distribution


def frame_from(positions, cell, pbc):
    n = len(positions)
    return Frame(
        step=0,
        ids=np.arange(1, n + 1),
        positions=np.asarray(positions, float),
        cell=np.asarray(cell, float),
        pbc=np.array(pbc),
        origin=np.zeros(3),
    )


def brute_force_gr(positions, cell, edges):
    """Loop over every pair and every periodic image within reach (slow, obviously right)."""
    n = len(positions)
    frac = np.linalg.solve(cell.T, positions.T).T
    positions = (frac % 1.0) @ cell  # wrapped, so that `reach` images suffice
    reach = (
        int(
            np.ceil(
                edges[-1]
                / min(
                    np.abs(np.linalg.det(cell))
                    / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
                    for k in range(3)
                )
            )
        )
        + 1
    )
    shifts = np.array(list(itertools.product(range(-reach, reach + 1), repeat=3))) @ cell
    counts = np.zeros(len(edges) - 1)
    for i in range(n):
        for j in range(n):
            d = np.linalg.norm(positions[j] + shifts - positions[i], axis=1)
            d = d[(d > 1e-9) & (d < edges[-1])]
            counts += np.histogram(d, edges)[0]
    rho = n / abs(np.linalg.det(cell))
    shells = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return counts / (n * rho * shells)


def test_gr_matches_brute_force_in_a_skewed_triclinic_box():
    rng = np.random.default_rng(5)
    cell = np.array([[6.0, 0, 0], [2.5, 5.5, 0], [-1.8, 1.2, 6.5]])
    positions = rng.uniform(-3, 9, size=(24, 3))  # unwrapped on purpose
    # r_max beyond half the box: needs several images; no bin edge at an exact image distance
    edges = np.linspace(0, 7.3, 31)
    ours = radial_distribution(frame_from(positions, cell, [True] * 3), edges, "g")
    np.testing.assert_allclose(ours, brute_force_gr(positions, cell, edges), rtol=1e-10)


def test_gr_matches_ase_analysis_for_a_crystal():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(4)
    atoms.rattle(0.05, seed=2)
    n_bins, r_max = 100, 6.0
    ase_rdf = get_rdf(atoms, rmax=r_max, nbins=n_bins, no_dists=True)
    edges = np.linspace(0, r_max, n_bins + 1)
    ours = radial_distribution(frame_from(atoms.positions, atoms.cell[:], [True] * 3), edges, "g")
    np.testing.assert_allclose(ours, ase_rdf, rtol=1e-8, atol=1e-12)


def test_hr_is_the_unit_area_histogram_of_all_pair_distances():
    rng = np.random.default_rng(0)
    positions = rng.normal(scale=1.5, size=(15, 3))
    edges = np.linspace(0, 10, 201)
    expected = np.histogram(pdist(positions), edges, density=True)[0]
    ours = radial_distribution(frame_from(positions, np.zeros((3, 3)), [False] * 3), edges, "h")
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    assert np.sum(ours * np.diff(edges)) == pytest.approx(1.0)

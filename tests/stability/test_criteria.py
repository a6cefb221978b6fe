"""Trajectories whose answer is known: each criterion must fail at exactly the frame where the
test broke the structure (frames are 100 steps = 0.1 ps apart)."""

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.geometry.rdf import get_rdf
from ase.io import write
from ase.neighborlist import NeighborList, natural_cutoffs
from stability_testlib import EVERY, write_dump

from gnnff.stability import StabilityAnalysis, StabilityOptions

FRAME_PS = 0.1


def ethanol_frames(n_frames=20, stretch_from=12, stretch=0.8, seed=0):
    """Ethanol in vacuum with 0.02 Å noise; from ``stretch_from`` on its O atom is pulled
    ``stretch`` Å away from the C it is bonded to."""
    mol = molecule("CH3CH2OH")
    symbols = mol.get_chemical_symbols()
    o = symbols.index("O")
    c = int(np.argmin([mol.get_distance(o, k) if s == "C" else 9 for k, s in enumerate(symbols)]))
    direction = mol.positions[o] - mol.positions[c]
    direction /= np.linalg.norm(direction)
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_frames):
        pos = mol.positions + 10.0 + rng.normal(scale=0.02, size=mol.positions.shape)
        if k >= stretch_from:
            pos[o] += stretch * direction
        frames.append(pos)
    return frames, symbols


def cu_frames(n_frames=20, noise=0.05, seed=0, triclinic=False):
    atoms = bulk("Cu", "fcc", a=3.61) if triclinic else bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms = atoms.repeat(4 if triclinic else 3)
    cell, rotation = atoms.cell.standard_form()  # LAMMPS form: a along x, b in the xy plane
    lattice = atoms.positions @ rotation.T
    rng = np.random.default_rng(seed)
    return (
        [lattice + rng.normal(scale=noise, size=lattice.shape) for _ in range(n_frames)],
        np.array(cell),
        ["Cu"] * len(atoms),
    )


def analyse(path, log=None, reference=None, **options):
    return (
        StabilityAnalysis(
            str(path),
            log=None if log is None else str(log),
            reference=None if reference is None else str(reference),
            options=StabilityOptions(**options),
        )
        .run()
        .results
    )


def test_stretched_bond_fails_at_the_known_frame(tmp_path):
    frames, symbols = ethanol_frames(stretch_from=12)
    path = tmp_path / "ethanol.dump"
    write_dump(path, frames, symbols, np.eye(3) * 20, pbc=(False, False, False))
    report = analyse(path)
    bonds = report.criterion("bonds")
    assert bonds.active and bonds.extra["n_bonds"] == 8
    assert bonds.first_failure_time_ps == pytest.approx(12 * FRAME_PS)
    assert max(bonds.values[:12]) < 0.2 and min(bonds.values[12:]) > 0.5
    assert report.stable_time == pytest.approx(1.2) and "bonds" in report.first_failed
    rdf = report.criterion("rdf")
    assert rdf.extra["kind"] == "h" and not rdf.active  # molecules: h(r) reported only
    assert rdf.extra["stable_frames"] == 12  # h(r) error over frames 0..11 only


def test_bond_reference_is_the_mean_over_a_reference_trajectory(tmp_path):
    frames, symbols = ethanol_frames(n_frames=8, stretch_from=99)
    reference_frames, _ = ethanol_frames(n_frames=6, stretch_from=3, stretch=0.3, seed=1)
    path, ref_path = tmp_path / "run.dump", tmp_path / "ref.extxyz"
    write_dump(path, frames, symbols, np.eye(3) * 20, pbc=(False, False, False))
    from ase import Atoms

    write(ref_path, [Atoms(symbols, positions=p) for p in reference_frames])
    report = analyse(path, reference=ref_path, bond_threshold=0.1)
    # independent: bonds the MDsim way (connectivity matrix), mean lengths over the reference
    first = Atoms(symbols, positions=frames[0])
    nl = NeighborList(natural_cutoffs(first), self_interaction=False, bothways=False)
    nl.update(first)
    i, j = np.triu(nl.get_connectivity_matrix().toarray(), 1).nonzero()
    ref_len = np.mean([np.linalg.norm(p[i] - p[j], axis=1) for p in reference_frames], axis=0)
    expected = [np.abs(np.linalg.norm(p[i] - p[j], axis=1) - ref_len).max() for p in frames]
    # atol: extxyz stores 8 decimals
    np.testing.assert_allclose(report.criterion("bonds").values, expected, atol=1e-7)
    # the reference C-O bond is 0.15 Å longer on average: every frame is off by ~0.15 Å
    assert report.criterion("bonds").first_failure_time_ps == pytest.approx(0.0)


@pytest.mark.parametrize("triclinic", [False, True])
def test_atoms_pushed_together_fail_at_the_known_frame(tmp_path, triclinic):
    frames, cell, symbols = cu_frames(triclinic=triclinic)
    d_nn = 3.61 / np.sqrt(2)
    for k in range(9, len(frames)):
        # move atom 0 towards its nearest neighbour through the periodic boundary if needed
        delta = frames[k] - frames[k][0]
        frac = np.linalg.solve(cell.T, delta.T).T
        delta = (frac - np.round(frac)) @ cell
        dist = np.linalg.norm(delta, axis=1)
        dist[0] = np.inf
        nearest = int(np.argmin(dist))
        frames[k][0] = frames[k][nearest] - delta[nearest] / dist[nearest] * 0.4 * d_nn
    path = tmp_path / "cu.dump"
    write_dump(path, frames, symbols, cell, columns=("id", "type", "xs", "ys", "zs"))
    report = analyse(path, elements=["Cu"])
    close = report.criterion("close_contacts")
    assert close.first_failure_time_ps == pytest.approx(0.9)
    assert close.values[9] == pytest.approx(0.4 * d_nn / close.extra["d_ref"]["Cu-Cu"])
    assert not report.criterion("bonds").active  # metallic network, not molecules
    assert report.first_failed == ["close_contacts"] and report.stable_time == pytest.approx(0.9)


def melting_frames(melt_from=15, n_frames=30):
    frames, cell, symbols = cu_frames(n_frames=n_frames, noise=0.04)
    rng = np.random.default_rng(7)
    for k in range(melt_from, n_frames):  # a disordered, liquid-like structure
        frames[k] = frames[0] + rng.normal(scale=0.45, size=frames[0].shape)
    return frames, cell, symbols


def test_melting_fails_the_rdf_criterion_at_the_known_frame(tmp_path):
    frames, cell, symbols = melting_frames(melt_from=15)
    path = tmp_path / "melt.dump"
    write_dump(path, frames, symbols, cell)
    report = analyse(path, rdf_window=1, rdf_r_max=5.0, criteria=["rdf"])
    rdf = report.criterion("rdf")
    assert rdf.first_failure_time_ps == pytest.approx(1.5)
    assert max(rdf.values[:15]) < 0.7 * rdf.threshold < 1.5 * rdf.threshold < min(rdf.values[15:])
    assert report.stable_time == pytest.approx(1.5)
    assert rdf.extra["stable_frames"] == 15


def test_sliding_window_rdf_error_matches_an_independent_computation(tmp_path):
    frames, cell, symbols = melting_frames(melt_from=15)
    path = tmp_path / "melt.dump"
    write_dump(path, frames, symbols, cell)
    window, r_max, n_bins = 4, 5.0, 100
    report = analyse(path, rdf_window=window, rdf_r_max=r_max, rdf_bins=n_bins)
    from ase import Atoms

    g = np.array(
        [
            get_rdf(Atoms(symbols, positions=p, cell=cell, pbc=True), r_max, n_bins, no_dists=True)
            for p in frames
        ]
    )
    windows = np.array([g[k - window + 1 : k + 1].mean(axis=0) for k in range(window - 1, 30)])
    errors = np.abs(windows - windows[0]).sum(axis=1) * (r_max / n_bins)
    rdf = report.criterion("rdf")
    np.testing.assert_allclose(rdf.values, errors, rtol=1e-8, atol=1e-12)
    first_bad = window - 1 + int(np.argmax(errors > rdf.threshold))
    assert rdf.first_failure_time_ps == pytest.approx(first_bad * FRAME_PS)
    assert 15 <= first_bad < 15 + window


@pytest.mark.parametrize("n_frames", [30, 3])
def test_rdf_against_a_reference_scores_full_windows_only(tmp_path, n_frames):
    """With a reference trajectory the first window-1 frames are not scored alone (a one-frame
    g(r) of a small cell is noise); a run shorter than one window is scored once, on all its
    frames. Truth: ase's get_rdf of every frame, averaged by hand."""
    from ase import Atoms

    frames, cell, symbols = melting_frames(melt_from=15, n_frames=n_frames)
    reference_frames, _, _ = cu_frames(n_frames=6, noise=0.04, seed=3)
    path, ref_path = tmp_path / "melt.dump", tmp_path / "ref.extxyz"
    write_dump(path, frames, symbols, cell)
    write(ref_path, [Atoms(symbols, positions=p, cell=cell, pbc=True) for p in reference_frames])
    window, r_max, n_bins = 4, 5.0, 100
    report = analyse(path, reference=ref_path, rdf_window=window, rdf_r_max=r_max, rdf_bins=n_bins)

    def g(p):
        return get_rdf(
            Atoms(symbols, positions=p, cell=cell, pbc=True), r_max, n_bins, no_dists=True
        )

    g_run = np.array([g(p) for p in frames])
    g_ref = np.mean([g(p) for p in reference_frames], axis=0)
    if n_frames >= window:
        ends = range(window - 1, n_frames)
        windows = np.array([g_run[k - window + 1 : k + 1].mean(axis=0) for k in ends])
    else:
        ends, windows = [n_frames - 1], g_run.mean(axis=0, keepdims=True)
    errors = np.abs(windows - g_ref).sum(axis=1) * (r_max / n_bins)
    rdf = report.criterion("rdf")
    np.testing.assert_allclose(rdf.values, errors, rtol=1e-6, atol=1e-9)  # extxyz: 8 decimals
    np.testing.assert_allclose(rdf.steps, [k * EVERY for k in ends])


def test_lost_atoms_and_nonfinite_frames(tmp_path):
    frames, cell, symbols = cu_frames(n_frames=12)
    ids = [np.arange(1, 109)] * 12
    for k in range(7, 12):
        ids[k] = np.arange(1, 106)
        frames[k] = frames[k][:105]
    frames[10][3, 1] = np.nan
    path = tmp_path / "lost.dump"
    write_dump(path, frames, symbols, cell, ids=ids)
    report = analyse(path)
    assert report.criterion("lost_atoms").first_failure_time_ps == pytest.approx(0.7)
    assert report.criterion("lost_atoms").values[7] == 3
    assert report.criterion("nonfinite").first_failure_time_ps == pytest.approx(1.0)
    assert report.first_failed == ["lost_atoms"] and report.n_frames == 12


def test_truncated_and_gz_files_give_the_complete_frames(tmp_path):
    frames, cell, symbols = cu_frames(n_frames=10)
    for k in range(6, 10):
        frames[k][0] = frames[k][1] + 0.3  # too close from frame 6 on
    plain, packed = tmp_path / "cu.dump", tmp_path / "cu.dump.gz"
    write_dump(plain, frames, symbols, cell)
    write_dump(packed, frames, symbols, cell)
    a, b = analyse(plain), analyse(packed)
    assert a.to_dict() == {**b.to_dict(), "trajectory": a.trajectory}
    assert a.stable_time == pytest.approx(0.6)
    text = plain.read_text()
    plain.write_text(text[: text.rindex("ITEM: ATOMS") + 500])
    with pytest.warns(UserWarning, match="truncated"):
        cut = analyse(plain)
    assert cut.n_frames == 9 and cut.stable_time == pytest.approx(0.6)
    assert any("truncated" in w for w in cut.warnings)


def test_timestep_option_overrides_and_default_is_reported(tmp_path):
    frames, cell, symbols = cu_frames(n_frames=3)
    path = tmp_path / "cu.dump"
    write_dump(path, frames, symbols, cell)
    assert analyse(path).timestep_source.startswith("default for metal")
    report = analyse(path, timestep_ps=0.002)
    assert report.total_time == pytest.approx(0.4) and "--timestep" in report.timestep_source
    with pytest.raises(ValueError, match="--timestep must be positive"):
        analyse(path, timestep_ps=-1.0)
    with pytest.raises(ValueError, match="unknown criteria"):
        analyse(path, criteria=["bond"])


def test_rdf_every_nth_frame(tmp_path):
    frames, cell, symbols = melting_frames(melt_from=16)
    path = tmp_path / "melt.dump"
    write_dump(path, frames, symbols, cell)
    report = analyse(path, rdf_window=1, rdf_r_max=5.0, rdf_every=3)
    rdf = report.criterion("rdf")
    assert rdf.steps == list(range(0, 3000, 300))  # frames 0, 3, 6, ...
    assert rdf.first_failure_time_ps == pytest.approx(1.8)  # first sampled frame >= 16
    with pytest.raises(ValueError, match="--rdf-every must be at least 1"):
        analyse(path, rdf_every=0)

"""Amendment A7's measure (benchmarks/stability_window_rdf.py) against gnnff.stability's own
analysis: from the first frame it is the analysis' ``rdf_error_stable`` (also when a run fails
part-way), and after a start time it is what the analysis gives when it skips those frames."""

import json
import sys
from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests" / "stability"))

import stability_common as common  # noqa: E402
import stability_window_rdf as window  # noqa: E402
from stability_testlib import write_dump  # noqa: E402

SPACING, N_SIDE = 2.2, 4  # a rattled simple-cubic Si/O lattice, 64 atoms
CELL = np.eye(3) * SPACING * N_SIDE
SYMBOLS = ["Si" if (i + j + k) % 2 else "O" for i in range(4) for j in range(4) for k in range(4)]


def lattice_frames(n, rattle, seed):
    grid = np.array([(i, j, k) for i in range(4) for j in range(4) for k in range(4)]) * SPACING
    rng = np.random.default_rng(seed)
    return [grid + rng.normal(0.0, rattle, grid.shape) for _ in range(n)]


@pytest.fixture
def reference(tmp_path):
    path = tmp_path / "reference.extxyz"
    frames = [ase.Atoms(SYMBOLS, p, cell=CELL, pbc=True) for p in lattice_frames(8, 0.05, 1)]
    ase.io.write(path, frames)
    return path


def analysis(dump, reference, **options):
    return common.analyse_trajectory(dump, reference, ["Si", "O"], timestep_ps=0.001, **options)


@pytest.mark.parametrize("collapse_at", [None, 22])
def test_from_the_first_frame_it_is_the_analysis_error_of_the_stable_part(
    tmp_path, reference, collapse_at
):
    frames = lattice_frames(30, 0.05, 2)
    if collapse_at is not None:  # two atoms on top of each other from frame 22 on
        for pos in frames[collapse_at:]:
            pos[1] = pos[0] + 0.2
    dump = tmp_path / "traj.dump"
    write_dump(dump, frames, SYMBOLS, CELL)  # a frame every 100 steps = 0.1 ps
    full = analysis(dump, reference, rdf_window=5)
    assert full["stable_through_end"] == (collapse_at is None)
    got = window.window_rdf_error(
        dump, reference, 0.0, full["stable_time_ps"], full["stable_through_end"], 0.001
    )
    assert got["rdf_error"] == pytest.approx(full["rdf_error_stable"], rel=1e-12)
    assert got["frames"] == (30 if collapse_at is None else round(full["stable_time_ps"] / 0.1))


def test_after_a_start_time_it_is_the_analysis_that_skips_those_frames(tmp_path, reference):
    dump = tmp_path / "traj.dump"
    write_dump(dump, lattice_frames(30, 0.05, 3), SYMBOLS, CELL)
    skipped = analysis(dump, reference, rdf_window=5, equilibration_ps=1.0)
    got = window.window_rdf_error(dump, reference, 1.0, 3.0, True, 0.001)
    assert got["frames"] == 20
    assert got["rdf_error"] == pytest.approx(skipped["rdf_error_stable"], rel=1e-12)
    whole = window.window_rdf_error(dump, reference, 0.0, 3.0, True, 0.001)
    assert got["rdf_error"] != pytest.approx(whole["rdf_error"], rel=1e-6)


def test_the_command_writes_one_json_per_finished_extended_unit(tmp_path, reference):
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    reference.rename(work / "data" / window.REFERENCE.format(composition="SiO1.1"))
    run = work / "seed0" / "baseline"
    (run / "md_SiO1.1_20ps").mkdir(parents=True)
    write_dump(run / "md_SiO1.1_20ps" / "traj.dump", lattice_frames(30, 0.05, 4), SYMBOLS, CELL)
    result = {"stable_time_ps": 2.9, "stable_through_end": True, "rdf_error_stable": 0.1}
    (run / "md_SiO1.1_20ps.analysis.json").write_text(json.dumps({"result": result}))
    (run / "md_SiO1.5_20ps.analysis.json").write_text(json.dumps({"result": result}))
    (run / "md_SiO1.5_20ps.analysis.json.lock").write_text("1")  # in progress: skipped
    args = ["--workdir", work, "--data", "data", "--start-ps", 1.0]
    assert window.main([str(a) for a in args]) == 0
    written = json.loads((run / "md_SiO1.1_20ps.window_rdf.json").read_text())
    assert written["frames"] == 20 and written["composition"] == "SiO1.1"
    assert written["run"] == "seed0/baseline" and written["rdf_error"] > 0
    assert not (run / "md_SiO1.5_20ps.window_rdf.json").exists()


# ---- the A7 test over seeds (benchmarks/stability_window_claims.py) ---------------------------
def exact_two_sided_wilcoxon_p(d):
    """By enumerating all 2^n sign assignments of the ranks (no ties, no zeros)."""
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    n, w_obs = len(d), ranks[np.asarray(d) > 0].sum()
    centre = n * (n + 1) / 4
    signs = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    w_all = (signs * ranks).sum(axis=1)
    return float(np.mean(np.abs(w_all - centre) >= abs(w_obs - centre) - 1e-12))


def write_window(folder, composition, seed, variant, error, frames=751):
    run = folder / f"seed{seed}" / variant
    run.mkdir(parents=True, exist_ok=True)
    record = {"rdf_error": error, "frames": frames}
    (run / f"md_{composition}_20ps.window_rdf.json").write_text(json.dumps(record))


def test_a7_pairs_by_seed_tests_exactly_and_corrects_over_compositions(tmp_path):
    import stability_claims
    import stability_window_claims as a7

    sio11 = [-0.20, -0.08, -0.37, -0.12, -0.36, -0.22, -0.16, -0.10]  # all lower: p = 2/256
    sio15 = [-0.04, 0.02, -0.08, 0.11, -0.06, 0.015, -0.05, 0.09]
    for k in range(8):
        write_window(tmp_path, "SiO1.1", k, "baseline", 0.6)
        write_window(tmp_path, "SiO1.1", k, "decorrelation", 0.6 + sio11[k])
        write_window(tmp_path, "SiO1.5", k, "baseline", 0.25)
        write_window(tmp_path, "SiO1.5", k, "decorrelation", 0.25 + sio15[k])
    write_window(tmp_path, "SiO1.1", 9, "baseline", 0.6)  # its pair is not finished: not counted
    claims = a7.window_claims(a7.read_window_rdf(tmp_path), stability_claims.holm, n_boot=500)
    one, other = claims["compositions"]["SiO1.1"], claims["compositions"]["SiO1.5"]
    assert one["seeds"] == list(range(8)) and one["decorrelation_lower_in"] == 8
    assert one["p"] == pytest.approx(2 / 256, rel=1e-12)
    assert one["p"] == pytest.approx(exact_two_sided_wilcoxon_p(np.array(sio11)), rel=1e-12)
    assert other["p"] == pytest.approx(exact_two_sided_wilcoxon_p(np.array(sio15)), rel=1e-9)
    small, large = sorted([one["p"], other["p"]])
    assert min(one["p_holm"], other["p_holm"]) == pytest.approx(2 * small)
    assert max(one["p_holm"], other["p_holm"]) == pytest.approx(max(2 * small, large))
    assert one["median_difference_A"] == pytest.approx(np.median(sio11))
    low, high = one["median_difference_ci95"]
    assert min(sio11) <= low <= one["median_difference_A"] <= high <= max(sio11)
    assert claims["status"] == "complete"


def test_a7_leaves_out_a_pair_that_failed_before_its_window_and_says_in_progress(tmp_path):
    import stability_claims
    import stability_window_claims as a7

    for k in range(5):
        write_window(tmp_path, "SiO1.1", k, "baseline", 0.6)
        write_window(tmp_path, "SiO1.1", k, "decorrelation", 0.5, frames=4 if k == 3 else 751)
    claims = a7.window_claims(a7.read_window_rdf(tmp_path), stability_claims.holm, n_boot=100)
    one = claims["compositions"]["SiO1.1"]
    assert one["seeds"] == [0, 1, 2, 4]
    assert one["excluded"] == [{"seed": 3, "failed_before_window": ["decorrelation"]}]
    assert claims["status"].startswith("in progress: 5 of 8 seeds")


def test_window_rdf_needs_the_decorrelation_study(tmp_path, capsys):
    import stability_claims

    with pytest.raises(SystemExit):
        stability_claims.main(["--pretraining", "x.json", "--window-rdf", str(tmp_path)])
    assert "--window-rdf belongs to the decorrelation study" in capsys.readouterr().err

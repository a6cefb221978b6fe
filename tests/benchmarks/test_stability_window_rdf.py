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

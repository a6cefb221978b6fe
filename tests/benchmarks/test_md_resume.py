"""benchmarks/md_resume.py: a claims-study MD run cut short continues from its latest restart.

Truth for the LAMMPS test: the same deck run through without a cut. A continued run must write
the same trajectory, byte for byte, and the same thermo rows."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import md_resume  # noqa: E402
import stability_common as common  # noqa: E402


def frame(step: int, natoms: int = 1) -> str:
    atoms = "".join(f"{i + 1} 1 Ar 0.0 0.0 {step * 0.1:.1f}\n" for i in range(natoms))
    return (
        f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{natoms}\n"
        "ITEM: BOX BOUNDS ff ff ff\n0 10\n0 10\n0 10\nITEM: ATOMS id type element x y z\n" + atoms
    )


def test_restart_interval_is_a_multiple_of_the_dump_interval():
    assert md_resume.restart_every(120000, 100) == 10000  # A5's 60-ps aspirin runs: every 5 ps
    assert md_resume.restart_every(200, 10) == 20
    assert md_resume.restart_every(30, 10) == 10  # never 0


def test_resume_deck_reads_the_restart_keeps_the_thermostat_and_appends_the_dump(tmp_path):
    from ase.build import molecule

    water = molecule("H2O")
    water.set_cell([20.0] * 3)
    water.center()
    deck = common.write_md_input(
        water,
        tmp_path,
        tmp_path / "m.pt",
        ["H", "O"],
        300.0,
        200,
        0.0005,
        10,
        seed=1,
        boundary="f f f",
    ).read_text()
    assert "restart         20 restart.*.bin" in deck and "thermo_modify   flush yes" in deck
    assert deck.index("restart  ") < deck.index("\nrun ")
    resumed = md_resume.resume_deck(deck, "restart.60.bin")
    lines = resumed.splitlines()
    assert "read_restart    restart.60.bin" in lines and "read_data" not in resumed
    assert "velocity" not in resumed  # the restart holds them; a new draw would change the run
    assert "fix             thermostat all nvt temp 300.0 300.0 0.05" in lines
    assert lines[-2:] == ["dump_modify     traj append yes", "run             200 upto"]
    with pytest.raises(ValueError, match="no read_data or no run"):
        md_resume.resume_deck("units metal\n", "restart.60.bin")


def test_truncate_dump_keeps_the_frames_before_the_restart_step(tmp_path):
    dump = tmp_path / "traj.dump"
    dump.write_text("".join(frame(s, 2) for s in (0, 10, 20, 30)) + "ITEM: TIMESTEP\n4")
    assert md_resume.truncate_dump(dump, 20) == 2
    assert dump.read_text() == frame(0, 2) + frame(10, 2)
    assert md_resume.truncate_dump(dump, 1000) == 2  # nothing at or after that step: unchanged
    assert dump.read_text() == frame(0, 2) + frame(10, 2)
    assert md_resume.truncate_dump(tmp_path / "none.dump", 10) == 0


def test_cut_log_and_continued_segment_read_as_one_run(tmp_path):
    from gnnff.stability import read_thermo_log

    header = "LAMMPS (22 Jul 2025)\ntimestep 0.001\n  Step Temp PotEng\n"
    rows = lambda steps: "".join(f"  {s} {300 + s} {-s / 10}\n" for s in steps)  # noqa: E731
    log = tmp_path / "log.lammps"
    log.write_text(header + rows(range(0, 60, 10)) + "  60 3")  # cut while writing a row
    md_resume.truncate_log(log, 40, "restart.40.bin")
    (tmp_path / md_resume.SEGMENT_LOG).write_text(
        "LAMMPS (22 Jul 2025)\n  Step Temp PotEng\n"
        + rows(range(40, 80, 10))
        + "Loop time of 1.0 on 1 procs for 30 steps with 5 atoms\n"
    )
    md_resume.merge_segment_log(tmp_path)
    assert not (tmp_path / md_resume.SEGMENT_LOG).exists()
    thermo = read_thermo_log(log)
    assert thermo.steps.tolist() == list(range(0, 80, 10))  # no row twice, none missing
    assert thermo.columns["Temp"].tolist() == [300.0 + s for s in range(0, 80, 10)]
    assert thermo.natoms == 5 and thermo.last_row_step == 70


def test_prepare_starts_again_when_the_deck_changed(tmp_path):
    (tmp_path / "in.md").write_text("read_data start.data\nrun 200\n")
    assert md_resume.prepare(tmp_path) is None  # no restart: from the start
    assert (tmp_path / md_resume.STARTED_DECK).read_text() == "read_data start.data\nrun 200\n"
    (tmp_path / "restart.100.bin").write_bytes(b"x")
    (tmp_path / "restart.20.bin").write_bytes(b"x")
    (tmp_path / "traj.dump").write_text(frame(0) + frame(100) + frame(110))
    assert md_resume.prepare(tmp_path) == 100  # the latest restart, by step (not by name)
    assert "read_restart    restart.100.bin" in (tmp_path / md_resume.RESUME_DECK).read_text()
    assert (tmp_path / "traj.dump").read_text() == frame(0)
    md_resume.finish(tmp_path)
    assert [p.name for _, p in md_resume.restarts(tmp_path)] == ["restart.100.bin"]
    (tmp_path / "in.md").write_text("read_data start.data\nrun 400\n")  # other settings
    assert md_resume.prepare(tmp_path) is None and md_resume.restarts(tmp_path) == []


def test_collect_copies_the_latest_settled_restart_and_drop_removes_it(tmp_path):
    run, dest = tmp_path / "md_60ps", tmp_path / "dest" / "md_60ps"
    run.mkdir()
    for name in ("in.md", "in.md.started", "start.data", "traj.dump", "log.lammps"):
        (run / name).write_text(name)
    (run / "restart.20.bin").write_bytes(b"20")
    assert md_resume.collect(run, dest, settle_s=3600) is None  # being written, maybe
    assert md_resume.collect(run, dest, settle_s=0).name == "restart.20.bin"
    (run / "restart.40.bin").write_bytes(b"40")
    md_resume.collect(run, dest, settle_s=0)
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["in.md", "in.md.started", "start.data", "traj.dump", "log.lammps", "restart.40.bin"]
    )
    subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "md_resume.py"), "drop", str(dest)], check=True
    )
    assert list(dest.iterdir()) == []


def test_collector_keeps_a_cut_run_until_it_has_finished(tmp_path):
    """claims_collect_units.sh: with --in-progress, a run without its record gets its latest
    restart and files so far copied; once its record is written, the copies go."""
    work, units = tmp_path / "work", tmp_path / "units"
    md = work / "seed0" / "finetuned" / "md_60ps"
    md.mkdir(parents=True)
    files = ["in.md", "in.md.started", "start.data", "traj.dump", "log.lammps"]
    for name in files:
        (md / name).write_text(name)
    written = time.time() - 60
    for step in (100, 200):
        (md / f"restart.{step}.bin").write_bytes(b"restart")
        os.utime(md / f"restart.{step}.bin", (written, written))
    env = dict(os.environ, PYTHON=sys.executable)
    collect = lambda *extra: subprocess.run(  # noqa: E731
        ["bash", REPO / "benchmarks" / "claims_collect_units.sh", work, units, *extra],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    copied = units / "seed0" / "finetuned" / "md_60ps"
    collect()  # during a sitting: a run in progress stays where it runs
    assert not copied.exists()
    collect("--in-progress")
    assert sorted(p.name for p in copied.iterdir()) == sorted(files + ["restart.200.bin"])
    for name in ("run", "analysis"):
        (work / "seed0" / "finetuned" / f"md_60ps.{name}.json").write_text("{}")
    collect()
    assert list(copied.iterdir()) == []
    assert (units / "seed0" / "finetuned" / "md_60ps.run.json").exists()


@pytest.mark.lammps
@pytest.mark.parametrize("nprocs", [1, 2])
def test_cut_run_continued_from_its_restart_repeats_the_uninterrupted_run(tmp_path, nprocs):
    """LJ argon through pair_style gnnff (NVT, Nose-Hoover): run A goes through 200 steps; run B
    is cut at step 110 (its restarts at 20..100 written, its dump and log ending in a half-written
    frame and row), then computed again by run_md, which continues from step 100."""
    from ase.build import bulk

    from gnnff.export import export_model
    from gnnff.models.registry import build_model
    from gnnff.stability import read_thermo_log

    model = tmp_path / "lj.pt"
    export_model(
        build_model("lennard_jones", type_names=["Ar"], epsilon=0.0104, sigma=3.4, cutoff=8.5),
        str(model),
    )
    crystal = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(3)
    crystal.rattle(0.05, seed=3)
    runs = {}
    for name in ("through", "cut"):
        md_dir = tmp_path / name
        common.write_md_input(crystal, md_dir, model, ["Ar"], 60.0, 200, 0.002, 10, seed=7)
        runs[name] = md_dir
    through = common.run_md(runs["through"], nprocs=nprocs, timeout_s=300)
    assert through["returncode"] == 0 and "resumed_from_step" not in through

    cut = runs["cut"]
    assert md_resume.prepare(cut) is None
    (cut / "in.cut").write_text(
        (cut / "in.md").read_text().replace("run             200", "run 110")
    )
    subprocess.run(
        [common.find_tool("mpirun"), "-np", str(nprocs), common.find_tool("lmp"),
         "-in", "in.cut", "-log", "log.lammps"],
        cwd=cut, env=common.gnnff_env(threads=1), check=True, capture_output=True,
    )  # fmt: skip
    assert [s for s, _ in md_resume.restarts(cut)] == [20, 40, 60, 80, 100]
    with open(cut / "traj.dump", "a") as dump:
        dump.write("ITEM: TIMESTEP\n120\nITEM: NUMBER OF ATOMS\n10")
    text = (cut / "log.lammps").read_text()
    (cut / "log.lammps").write_text(text[: text.index("Loop time of")] + "     120   61.2")
    time.sleep(0.01)

    resumed = common.run_md(cut, nprocs=nprocs, timeout_s=300)
    assert resumed["returncode"] == 0 and resumed["resumed_from_step"] == 100
    assert (cut / "traj.dump").read_bytes() == (runs["through"] / "traj.dump").read_bytes()
    a, b = (read_thermo_log(runs[n] / "log.lammps") for n in ("through", "cut"))
    assert b.steps.tolist() == a.steps.tolist() == list(range(0, 210, 10))
    for column in ("Temp", "PotEng", "TotEng"):
        np.testing.assert_array_equal(b.columns[column], a.columns[column])
    assert b.natoms == a.natoms == len(crystal)
    assert [p.name for _, p in md_resume.restarts(cut)] == ["restart.200.bin"]
    shutil.rmtree(cut)

"""mpirun over frames: serial and 1/2/4-rank runs give the same JSON on dumps with known answers
(frame counts that do not divide by the rank count, a damaged and a truncated frame, gzip), and
the readers' parts put together are exactly the serial frames."""

import gzip
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from stability_testlib import write_dump
from test_criteria import cu_frames, ethanol_frames
from test_damaged_frames import drop_atom_lines, pushed_together_dump
from test_thermo_log import write_log

from gnnff.stability import LammpsDumpReader, TrajectoryWarning, open_trajectory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "analyze_dump.py")
BIN = os.path.dirname(sys.executable)
MPIRUN = os.path.join(BIN, "mpirun")


def analyse_json(args, ranks=None, tmp_path=None):
    """JSON of scripts/analyze_dump.py, serial (ranks None) or under mpirun -np ranks."""
    out = tmp_path / f"result_{ranks}.json"
    command = [sys.executable, SCRIPT, *map(str, args), "--json", str(out)]
    if ranks is not None:
        command = [MPIRUN, "-launcher", "fork", "-np", str(ranks)] + command
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), OMP_NUM_THREADS="1")
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc


def assert_same(serial, parallel, path="result"):
    """Equal structure; numbers to 1e-12 (relative); failure steps/times exactly."""
    assert type(serial) is type(parallel), path
    if isinstance(serial, dict):
        assert serial.keys() == parallel.keys(), path
        for key in serial:
            assert_same(serial[key], parallel[key], f"{path}.{key}")
    elif isinstance(serial, list):
        assert len(serial) == len(parallel), path
        for k, (a, b) in enumerate(zip(serial, parallel)):
            assert_same(a, b, f"{path}[{k}]")
    elif isinstance(serial, float) and "first_failure" not in path and "stable_time" not in path:
        assert parallel == pytest.approx(serial, rel=1e-12, abs=1e-300), path
    else:
        assert serial == parallel, path


@pytest.fixture(scope="module")
def damaged_cu_with_log(tmp_path_factory):
    """19 frame slots: atom 0 pushed onto atom 1 from frame 9 (close_contacts fails at 0.9 ps),
    the frame at step 300 lacks 10 atom lines, the last frame is cut short; an NVE log whose
    energy drift fails at step 500 and temperature at step 700. Returns the arguments and the
    serial JSON (computed once for the three rank counts)."""
    tmp_path = tmp_path_factory.mktemp("damaged_cu")
    path = tmp_path / "cu.dump"
    pushed_together_dump(path, n_frames=19, from_frame=9)
    drop_atom_lines(path, 300, 10)
    text = path.read_text()
    path.write_text(text[: text.rindex("ITEM: ATOMS") + 700])
    log = tmp_path / "log.lammps"
    write_log(log)
    args = [path, "--log", log, "--timestep", "0.001", "--rdf-window", "3", "--rdf-every", "2"]
    serial, _ = analyse_json(args, None, tmp_path)
    return args, serial


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_mpirun_gives_the_serial_json(tmp_path, damaged_cu_with_log, ranks):
    args, serial = damaged_cu_with_log
    parallel, proc = analyse_json(args, ranks, tmp_path)
    # the known answers, so that agreement is not agreement on something wrong
    assert serial["n_frames"] == 17 and serial["complete_file"] is False
    close = next(c for c in serial["criteria"] if c["name"] == "close_contacts")
    assert close["first_failure_time"] == pytest.approx(0.9)
    assert [p["step"] for p in serial["frames_not_analysed"]] == [300, 1800]
    assert_same(serial, parallel)
    assert proc.stdout.count("stable time:") == 1  # rank 0 alone prints


@pytest.mark.parametrize("ranks", [2, 4])
def test_mpirun_on_a_gzip_dump_of_a_molecule(tmp_path, ranks):
    """Bonds (ethanol pulled apart at frame 12 of 13) from a .gz dump: the gzip fallback."""
    frames, symbols = ethanol_frames(n_frames=13, stretch_from=12)
    path = tmp_path / "ethanol.dump.gz"
    write_dump(path, frames, symbols, np.eye(3) * 20, pbc=(False, False, False))
    serial, _ = analyse_json([path], None, tmp_path)
    parallel, _ = analyse_json([path], ranks, tmp_path)
    bonds = next(c for c in serial["criteria"] if c["name"] == "bonds")
    assert bonds["first_failure_time"] == pytest.approx(1.2) and serial["n_frames"] == 13
    assert_same(serial, parallel)


@pytest.mark.parametrize("gz", [False, True])
def test_reader_parts_put_together_are_the_serial_frames(tmp_path, gz):
    frames, cell, symbols = cu_frames(n_frames=7)
    path = tmp_path / "cu.dump"
    write_dump(path, frames, symbols, cell)
    drop_atom_lines(path, 200, 3)
    if gz:
        packed = tmp_path / "cu.dump.gz"
        packed.write_bytes(gzip.compress(path.read_bytes()))
        path = packed
    with pytest.warns(TrajectoryWarning, match="step 200"):
        serial = list(open_trajectory(path))
    assert [f.step for f in serial] == [0, 100, 300, 400, 500, 600]
    for n_parts in range(1, 10):  # more parts than frames too
        reader, got, first_index = LammpsDumpReader(path), [], 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrajectoryWarning)
            for part in range(n_parts):
                got += list(reader.frames(part, n_parts, first_index))
                first_index += reader.count_frames(part, n_parts)
        assert [f.step for f in got] == [f.step for f in serial], n_parts
        assert [f.index for f in got] == [0, 1, 3, 4, 5, 6]
        for a, b in zip(got, serial):
            np.testing.assert_array_equal(a.positions, b.positions)
        assert first_index == 7  # every frame slot counted once, the damaged one included
        assert [p.step for p in reader.problems] == [200]


def test_serial_run_does_not_import_mpi4py(tmp_path):
    frames, cell, symbols = cu_frames(n_frames=2)
    path = tmp_path / "cu.dump"
    write_dump(path, frames, symbols, cell)
    code = (
        "import sys, gnnff.stability as s\n"
        f"s.StabilityAnalysis({str(path)!r}).run()\n"
        "print('mpi4py' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI", "OMPI_", "PMIX"))}
    env["PYTHONPATH"] = os.path.join(ROOT, "python")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "False", out.stderr


def test_an_error_in_one_rank_stops_every_rank_with_one_message(tmp_path):
    """A LAMMPS type without an element only in the last frame: only the last rank meets it."""
    frames, cell, symbols = cu_frames(n_frames=6)
    path = tmp_path / "cu.dump"
    write_dump(path, frames, symbols, cell, columns=("id", "type", "x", "y", "z"))
    text = path.read_text()
    last = text.rindex("ITEM: ATOMS")
    line_start = text.index("\n", last) + 1
    line_end = text.index("\n", line_start)
    fields = text[line_start:line_end].split()
    fields[1] = "2"  # this atom's type has no element in --elements Cu
    path.write_text(text[:line_start] + " ".join(fields) + text[line_end:])
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [
            MPIRUN,
            "-launcher",
            "fork",
            "-np",
            "2",
            sys.executable,
            SCRIPT,
            str(path),
            "--elements",
            "Cu",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode != 0
    assert proc.stderr.count("error: ") == 1 and "one element per LAMMPS type" in proc.stderr


def test_under_a_launcher_without_mpi4py_the_analysis_is_serial(monkeypatch):
    from gnnff.stability import parallel

    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # makes `import mpi4py` fail
    with pytest.warns(RuntimeWarning, match="mpi4py is not installed"):
        assert parallel.world() is None
    monkeypatch.setenv("PMI_SIZE", "1")
    assert parallel.world() is None  # mpirun -np 1: serial, MPI never initialised

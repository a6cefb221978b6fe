"""scripts/analyze_dump.py and `gnnff analyze`: table, --json, --plot, exit status."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from stability_testlib import write_dump

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "analyze_dump.py")


def run_script(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    return subprocess.run(
        [sys.executable, SCRIPT, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def unstable_dump(tmp_path):
    """Two atoms of a quiet fcc crystal collide from frame 4 (0.4 ps) on."""
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    rng = np.random.default_rng(0)
    frames = [atoms.positions + rng.normal(scale=0.02, size=(32, 3)) for _ in range(8)]
    for k in range(4, 8):
        frames[k][0] = frames[k][1] + np.array([0.5, 0.0, 0.0])
    path = tmp_path / "run.dump"
    write_dump(
        path, frames, ["Cu"] * 32, np.array(atoms.cell[:]), columns=("id", "type", "x", "y", "z")
    )
    return path


def test_script_prints_table_writes_json_and_plot_and_exits_0_when_unstable(
    unstable_dump, tmp_path
):
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    proc = run_script(unstable_dump, "--elements", "Cu", "--json", out_json, "--plot", out_png)
    assert proc.returncode == 0, proc.stderr
    assert "stable time: 0.4 ps" in proc.stdout and "close_contacts" in proc.stdout
    assert "default for metal units" in proc.stdout
    result = json.loads(out_json.read_text())
    assert result["stable_time"] == pytest.approx(0.4)
    assert result["first_failed"] == ["close_contacts"]
    close = next(c for c in result["criteria"] if c["name"] == "close_contacts")
    assert close["first_failure_time"] == pytest.approx(0.4)
    assert len(close["curve"]["time"]) == len(close["curve"]["value"]) == 8
    assert out_png.stat().st_size > 10_000 and out_png.read_bytes()[:4] == b"\x89PNG"


def test_json_to_stdout_and_timestep_option(unstable_dump):
    proc = run_script(unstable_dump, "--json", "--timestep", "0.002")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["timestep"] == 0.002 and result["stable_time"] == pytest.approx(0.8)
    assert result["timestep_source"] == "--timestep option"


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda p: p.write_text("not a dump\n"), "neither a LAMMPS text dump"),
        (lambda p: None, "does not exist"),
    ],
)
def test_unusable_input_exits_non_zero_with_a_clear_message(tmp_path, make_input, match):
    path = tmp_path / "input.dump"
    make_input(path)
    proc = run_script(path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and match in proc.stderr


def test_gnnff_analyze_subcommand_uses_the_same_code(unstable_dump, capsys):
    cli = pytest.importorskip("gnnff.cli")
    assert cli.main(["analyze", str(unstable_dump), "--criteria", "lost_atoms,nonfinite"]) == 0
    out = capsys.readouterr().out
    assert "STABLE for the whole run" in out  # close contacts reported but not counted
    assert cli.main(["analyze", str(unstable_dump), "--criteria", "bonds,typo"]) == 2


def test_analysis_does_not_import_torch(unstable_dump):
    """Fast start-up: neither the package nor a full analysis (vesin included) loads torch."""
    code = (
        "import sys, gnnff.stability as s, gnnff.cli.analyze\n"
        f"s.StabilityAnalysis({str(unstable_dump)!r}).run()\n"
        "print('vesin' in sys.modules, 'torch' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "True False", out.stderr


def test_a_directory_as_the_dump_says_it_is_a_directory(tmp_path):
    (tmp_path / "traj.dump").write_text("ITEM: TIMESTEP\n0\n")
    proc = run_script(tmp_path)
    assert proc.returncode == 2
    assert "is a directory" in proc.stderr and "does not exist" not in proc.stderr
    assert "traj.dump" in proc.stderr and "LAMMPS text dump" in proc.stderr
    proc = run_script(tmp_path / "traj.dump", "--log", tmp_path)
    assert proc.returncode == 2 and "is a directory" in proc.stderr

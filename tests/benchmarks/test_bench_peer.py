"""benchmarks/bench_peer.py without the peer: it says what is missing and exits 0 (skipped)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_skips_with_instructions_when_the_peer_is_missing(tmp_path):
    missing_python, missing_plugin = tmp_path / "no_python", tmp_path / "no_plugin.so"
    out = tmp_path / "peer.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_peer.py"), "md"]
        + ["--peer-python", str(missing_python), "--peer-plugin", str(missing_plugin)]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("bench_peer: skipped")
    # both missing parts are named, each with how to get it
    assert str(missing_python) in proc.stdout and "pip install nequip nequip-allegro" in proc.stdout
    assert str(missing_plugin) in proc.stdout and "build_pair_allegro.sh" in proc.stdout
    assert not out.exists()

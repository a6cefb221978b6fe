"""benchmarks/bench_memory_policy.py: one short round (no speed asserted).

Checks that each policy ran in its own process as asked (the worker's own report of what
gnnff.memory did) and that both sides trained the same batch.
"""

import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_memory_policy  # noqa: E402


def test_one_round_writes_a_report(tmp_path):
    out = tmp_path / "memory.json"
    bench_memory_policy.main(
        [
            "--models",
            "pair_mlp",
            "--rounds",
            "1",
            "--steps",
            "2",
            "--repeat",
            "1",
            "--out",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    (round_,) = report["models"]["pair_mlp"]["rounds"]
    keep, release = round_["runs"]["keep"], round_["runs"]["release"]
    assert keep["edges"] == release["edges"] > 0 and keep["atoms"] == release["atoms"] == 32
    assert len(keep["cpu_ms"]) == len(release["faults"]) == 2
    assert release["policy_done"] is None  # glibc's defaults: nothing was called
    if platform.libc_ver()[0] == "glibc":
        assert keep["policy_done"].startswith("glibc malloc keeps freed memory")
    assert report["machine"]["cores"] and report["command"]

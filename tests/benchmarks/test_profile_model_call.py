"""benchmarks/profile_model_call.py: one profiled call of the LJ model writes its operator table
(no time asserted)."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import profile_model_call  # noqa: E402


def test_profile_of_one_call_names_the_model_s_operators(tmp_path):
    out = tmp_path / "profile.json"
    assert (
        profile_model_call.main(
            ["--model", "lj", "--calls", "1", "--warmup", "1", "--out", str(out)]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["edges"] > 0 and report["nodes"] > report["edges"] / 200
    ops = {row["op"] for row in report["rows"]}
    assert "aten::index_add_" in ops or "aten::index_add" in ops  # the forces' scatter onto atoms
    assert 0.0 < sum(row["share"] for row in report["rows"]) <= 1.0 + 1e-9

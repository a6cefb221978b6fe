"""benchmarks/bench_ab.py: one round of a tree against itself, on a molecule and a crystal.

Not a timing test (no speed is asserted): it checks that both kinds of system build, that
both sides of the A/B time the same model (same atoms and edges) and that the report says what
ran.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_ab  # noqa: E402


def test_one_round_against_itself_writes_a_report(tmp_path, monkeypatch):
    configs = {
        "gemnet_aspirin": ("gemnet_t", dict(preset="small", num_blocks=1), "aspirin", 5.0),
        "pair_mlp_si": ("pair_mlp", {}, 1, 4.0),
    }
    monkeypatch.setattr(bench_ab, "CONFIGS", configs)
    out = tmp_path / "ab.json"
    src = str(ROOT / "python")
    bench_ab.main(["--baseline", src, "--new", src, "--rounds", "1", "--repeats", "2",
                   "--configs", *configs, "--out", str(out)])  # fmt: skip
    report = json.loads(out.read_text())
    gemnet, crystal = report["summary"]["gemnet_aspirin"], report["summary"]["pair_mlp_si"]
    assert gemnet["atoms"] == 21 and gemnet["system"] == "aspirin" and gemnet["edges"] > 0
    assert crystal["atoms"] == 8 and crystal["system"] == 1
    for name in configs:
        base, new = report["raw"][name]["baseline"][0], report["raw"][name]["new"][0]
        assert base["edges"] == new["edges"] and base["md_s"] > 0 and new["train_s"] > 0
        assert report["summary"][name]["md_speedup"]["median"] > 0


def test_torchscript_ab_of_a_tree_against_itself(tmp_path, monkeypatch):
    """Both sides load the same model from files each tree wrote: bit-identical forces."""
    import bench_ab_torchscript

    config = ("gemnet_t", dict(preset="small", num_blocks=1), "aspirin", 5.0)
    monkeypatch.setattr(bench_ab, "CONFIGS", {"gemnet_aspirin": config})
    out = tmp_path / "ab.json"
    src = str(ROOT / "python")
    bench_ab_torchscript.main(["--baseline", src, "--new", src, "--configs", "gemnet_aspirin",
                               "--pairs", "4", "--calls", "1", "--out", str(out)])  # fmt: skip
    row = json.loads(out.read_text())["summary"]["gemnet_aspirin"]
    assert row["max_force_difference"] == 0.0 and row["atoms"] == 21
    assert all(len(t) == 4 for t in row["raw_ms_per_call"].values())
    assert row["ratio_baseline_over_new"]["q25"] <= row["ratio_baseline_over_new"]["q75"]

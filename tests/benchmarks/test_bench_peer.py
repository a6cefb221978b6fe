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


def _bench_peer():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench_peer
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return bench_peer


def test_time_to_force_mae_sums_step_seconds_to_the_first_epoch_at_or_below_target():
    bench_peer = _bench_peer()
    seconds = [2.0, 3.0, 4.0, 5.0]
    maes = [0.5, 0.31, 0.3, 0.35]  # epoch 3 reaches 0.3 exactly; 0.2 is never reached
    rows = bench_peer.time_to_force_mae(seconds, maes, [0.6, 0.3, 0.2])
    assert rows == [
        dict(target=0.6, epoch=1, reached=True, step_seconds=2.0),
        dict(target=0.3, epoch=3, reached=True, step_seconds=9.0),
        dict(target=0.2, epoch=None, reached=False, step_seconds=14.0),  # censored: >= 14 s
    ]


def test_time_to_mae_ratio_is_a_bound_when_one_side_is_censored():
    bench_peer = _bench_peer()
    gnnff = bench_peer.time_to_force_mae([1.0, 1.0], [0.5, 0.2], [0.4, 0.3, 0.1])
    nequip = bench_peer.time_to_force_mae([3.0, 3.0], [0.35, 0.5], [0.4, 0.3, 0.1])
    ratios = bench_peer.time_to_mae_ratios(gnnff, nequip)
    # 0.4: gnnff 2 s (epoch 2), nequip 3 s (epoch 1); 0.3: gnnff 2 s, nequip not in 6 s (>= 3x);
    # 0.1: neither
    assert ratios == [
        dict(target=0.4, ratio=1.5, kind="="),
        dict(target=0.3, ratio=3.0, kind=">="),
        dict(target=0.1, ratio=None, kind=None),
    ]


def test_gnnff_options_are_read_as_yaml_and_a_malformed_one_is_refused():
    import argparse

    import pytest

    bench_peer = _bench_peer()
    parser = argparse.ArgumentParser()
    options = bench_peer.parse_options(parser, ["scalar_track=dense", "n_bessel=8"])
    assert options == {"scalar_track": "dense", "n_bessel": 8}
    with pytest.raises(SystemExit):
        bench_peer.parse_options(parser, ["scalar_track"])


def test_extra_gnnff_models_need_a_label_and_an_existing_file(tmp_path, capsys):
    import argparse

    import pytest

    bench_peer = _bench_peer()
    parser = argparse.ArgumentParser()
    model = tmp_path / "torchform.pt"
    model.write_bytes(b"")
    assert bench_peer.parse_extra_models(parser, [f"torchform={model}"]) == {
        "torchform": str(model.resolve())
    }
    for bad, reason in (
        ([str(model)], "write LABEL=PATH"),
        ([f"torchform={tmp_path / 'missing.pt'}"], "no file"),
    ):
        with pytest.raises(SystemExit):
            bench_peer.parse_extra_models(parser, bad)
        assert reason in capsys.readouterr().err


def test_nequip_comparison_builds_both_models_at_the_same_size():
    from gnnff.models.registry import build_model

    bench_peer = _bench_peer()
    data = {"train": "train.extxyz", "val": "val.extxyz"}
    peer = bench_peer.nequip_config(data, 3, "timer.json", "run", "nequip")
    model = peer["training_module"]["model"]
    assert model["_target_"] == "nequip.model.NequIPGNNModel"
    ours = bench_peer.GNNFF_NEQUIP
    assert (model["num_layers"], model["l_max"], model["parity"]) == (
        ours["n_layers"],
        ours["l_max"],
        ours["parity"],
    )
    assert (model["num_features"], model["num_bessels"], model["radial_mlp_width"]) == (
        ours["num_features"],
        ours["n_bessel"],
        ours["radial_hidden"],
    )
    # the same optimisation and loss as the allegro comparison; only the model differs
    allegro = bench_peer.nequip_config(data, 3, "timer.json", "run")
    assert allegro["training_module"]["model"]["_target_"] == "allegro.model.AllegroModel"
    for key in ("loss", "optimizer", "val_metrics"):
        assert peer["training_module"][key] == allegro["training_module"][key]
    # gnnff's side builds from the same options
    built = build_model("nequip", type_names=["Si"], r_max=bench_peer.R_MAX, **ours)
    assert len(built.energy_model.blocks) == ours["n_layers"]
    assert built.energy_model.blocks[0].mul == ours["num_features"]


def test_model_nequip_is_for_train_only():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_peer.py"), "md", "--model", "nequip"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "--model nequip is for `train`" in proc.stderr

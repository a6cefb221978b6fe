"""The claims study's GPU round trip (amendment A6), run on the CPU with the scripts' dry mode:
benchmarks/claims_gpu_train.sh trains and packs the units, `unpack` puts them into another
work folder and exports the models, stability_decorrelation.py there reads the trainings back
instead of training again, and benchmarks/claims_collect_units.sh copies the finished units
(not the ones in progress) into the repository's layout."""

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GPU_TRAIN = REPO / "benchmarks" / "claims_gpu_train.sh"
COLLECT = REPO / "benchmarks" / "claims_collect_units.sh"


def same(a, b) -> bool:
    """Equal nested state (dicts, lists, tensors, numbers)."""
    import torch

    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def run(cmd, env=None, cwd=None):
    result = subprocess.run(
        [str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.lammps
def test_units_trained_elsewhere_are_read_back_and_collected(tmp_path):
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        GNNFF_GPU_TRAIN_DRY="1",
        GNNFF_GPU_TRAIN_WORK=str(tmp_path / "there"),
        GNNFF_GPU_TRAIN_EXTRA="--max-epochs 1",
        OUT=str(tmp_path / "out"),
        GNNFF_GPU_TRAIN_PART_BYTES="64k",
        PYTHON=sys.executable,  # several parts, as the study's 20 MB made
    )
    (tmp_path / "out").mkdir()
    run(["bash", GPU_TRAIN, "run", 600, 0], env=env)

    parts = sorted((tmp_path / "out").glob("units.part-*"))
    assert len(parts) > 1 and all(p.stat().st_size <= 64 * 1024 for p in parts)
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        names = {n.removeprefix("./") for n in tar.getnames()}
    for variant in ("baseline", "decorrelation"):
        for name in ("training.json", "train/best.pt", "train/last.pt", "eval_SiO1.1.result.json"):
            assert f"seed0/{variant}/{name}" in names
    assert not [n for n in names if n.startswith("data_") or n.endswith((".lock", "model.pt"))]

    # here: a work folder with the same data, the units unpacked into it, models exported here
    here = tmp_path / "here"
    shutil.copytree(tmp_path / "there" / "data_sio_small_0", here / "data_sio_small_0")
    run(["bash", GPU_TRAIN, "unpack", tmp_path / "out", here], env=env)
    assert (here / "seed0" / "baseline" / "model.pt").is_file()
    assert (here / "seed0" / "decorrelation" / "model.pt").is_file()

    study = ["--size", "small", "--max-epochs", "1", "--workdir", here, "--seeds", 0, "--no-md"]
    log = run(
        [sys.executable, REPO / "benchmarks" / "stability_decorrelation.py", *study]
        + ["--json", here / "again.json"],
        env=env,
    )
    assert " train " not in log and " eval " not in log, log  # read back, not recomputed
    there = json.loads((tmp_path / "there" / "gpu_0_baseline.json").read_text())["runs"][0]
    again = json.loads((here / "again.json").read_text())["runs"][0]
    assert again["training"] == there["training"]
    assert again["compositions"] == there["compositions"]

    # a unit in progress (its lock) is not collected; finished ones are, without last.pt/model.pt
    run_dir = here / "seed0" / "decorrelation"
    (run_dir / "eval_SiO2.result.json.lock").write_text("12345")
    running = here / "seed1" / "baseline"  # a training still running: no training.json yet
    (running / "train").mkdir(parents=True)
    for name in ("best.pt", "last.pt"):  # its checkpoints so far (real ones: best.pt is slimmed)
        shutil.copy(here / "seed0" / "baseline" / "train" / name, running / "train" / name)
    (running / "train.yaml").write_text("model: {}\n")
    # an MD run whose analysis has not finished: its trajectory is not collected, so neither is
    # its record (a new machine reruns it instead of analysing a trajectory it does not have)
    (here / "seed0" / "baseline" / "md_SiO1.1_20ps.run.json").write_text('{"key": {}}')
    (here / "seed0" / "baseline" / "md_SiO1.1_20ps.analysis.json.lock").write_text("12345")
    dest = tmp_path / "repo" / "claims_study"
    run(["bash", COLLECT, here, dest], env=env)
    assert not (dest / "seed0" / "baseline" / "md_SiO1.1_20ps.run.json").exists()
    for name in ("training.json", "train/best.pt", "train/metrics.csv", "eval_SiO1.5.result.json"):
        assert (dest / "seed0" / "decorrelation" / name).is_file()
    assert not (dest / "seed0" / "decorrelation" / "eval_SiO2.result.json").exists()
    assert (dest / "seed0" / "baseline" / "eval_SiO2.result.json").is_file()
    assert (dest / "data_sio_small_0" / "datacard.json").is_file()
    sums = (dest / "data_sio_small_0" / "sha256.txt").read_text().splitlines()
    data_files = sorted(p.name for p in (here / "data_sio_small_0").glob("*.extxyz"))
    assert sorted(line.split()[1] for line in sums) == data_files
    run(
        ["sha256sum", "-c", dest / "data_sio_small_0" / "sha256.txt"], cwd=here / "data_sio_small_0"
    )
    assert not list(dest.rglob("last.pt")) and not list(dest.rglob("model.pt"))
    assert not (dest / "seed1").exists()
    import torch

    slim = torch.load(dest / "seed0" / "baseline" / "train" / "best.pt", weights_only=False)
    full = torch.load(here / "seed0" / "baseline" / "train" / "best.pt", weights_only=False)
    assert "optimizer_state" in full and "optimizer_state" not in slim
    assert set(slim) == set(full) - {"optimizer_state"}
    assert same(slim["ema_state"], full["ema_state"])
    assert same(slim["model_state"], full["model_state"])
    assert not list(dest.rglob("*.extxyz"))

    # at the end of a sitting: the running training's checkpoints too, so that a new machine
    # resumes it; once it has finished, its last.pt goes and its record comes
    run(["bash", COLLECT, here, dest, "--in-progress"], env=env)
    kept = dest / "seed1" / "baseline"
    assert (kept / "train" / "last.pt").read_bytes() == (running / "train" / "last.pt").read_bytes()
    assert "optimizer_state" not in torch.load(kept / "train" / "best.pt", weights_only=False)
    assert sorted(p.name for p in kept.rglob("*")) == ["best.pt", "last.pt", "train"]
    (running / "training.json").write_text('{"key": {}, "result": {}}')
    run(["bash", COLLECT, here, dest], env=env)
    assert sorted(p.name for p in kept.rglob("*")) == [
        "best.pt",
        "train",
        "train.yaml",
        "training.json",
    ]
    # a data folder restored as its card only (data a finished unit no longer needs, not
    # regenerated on this machine): its committed checksums stay
    card_only = here / "data_pretrain_small_0"
    card_only.mkdir()
    shutil.copy(here / "data_sio_small_0" / "datacard.json", card_only / "datacard.json")
    committed = dest / "data_pretrain_small_0" / "sha256.txt"
    committed.parent.mkdir()
    committed.write_text("0123  pretrain-molecules_train.extxyz\n")
    run(["bash", COLLECT, here, dest], env=env)
    assert committed.read_text() == "0123  pretrain-molecules_train.extxyz\n"
    bad = subprocess.run(
        ["bash", COLLECT, here, dest, "--in-progres"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--in-progress" in bad.stderr


@pytest.mark.slow
def test_experiment_2_trainings_made_elsewhere_are_read_back(tmp_path):
    """GNNFF_GPU_TRAIN_EXPERIMENT=pretraining: one process per (seed, variant) of
    stability_pretraining.py, the units come back without data or pre-training, and the study
    here reads both trainings back (the dry mode makes its own small data and pre-training)."""
    there, here, out = tmp_path / "there", tmp_path / "here", tmp_path / "out"
    small = "--molecule ethanol --r-max 4 --pretrain-data-seeds 0 --pretrain-epochs 1 --epochs 1"
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        GNNFF_GPU_TRAIN_DRY="1",
        GNNFF_GPU_TRAIN_EXPERIMENT="pretraining",
        GNNFF_GPU_TRAIN_WORK=str(there),
        GNNFF_GPU_TRAIN_EXTRA=small,
        OUT=str(out),
        PYTHON=sys.executable,
    )
    out.mkdir()
    log = run(["bash", GPU_TRAIN, "run", 600, 0], env=env)
    assert "0 of 2 running" in log
    parts = sorted(out.glob("units.part-*"))
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        names = {n.removeprefix("./") for n in tar.getnames()}
    for variant in ("finetuned", "scratch"):
        for name in ("training.json", "train/best.pt", "eval_test.result.json"):
            assert f"seed0/{variant}/{name}" in names
    assert not [n for n in names if n.startswith(("data_", "pretrain")) or n.endswith(".lock")]

    here.mkdir()
    for name in ("data_md17_ethanol_small_0", "data_pretrain_small_0", "pretrain"):
        shutil.copytree(there / name, here / name)
    run(["bash", GPU_TRAIN, "unpack", out, here], env=env)
    for variant in ("finetuned", "scratch"):
        assert (here / "seed0" / variant / "model.pt").is_file()
    assert not (here / "pretrain" / "model.pt").exists()
    study = ["--size", "small", *small.split(), "--workdir", here, "--seeds", 0, "--no-md"]
    log = run(
        [sys.executable, REPO / "benchmarks" / "stability_pretraining.py", *study]
        + ["--json", here / "again.json"],
        env=env,
    )
    assert " train " not in log and " eval " not in log, log  # read back, not recomputed
    again = json.loads((here / "again.json").read_text())["runs"]
    there_runs = [json.loads((there / f"gpu_0_{v}.json").read_text())["runs"][0] for v in
                  ("finetuned", "scratch")]  # fmt: skip
    assert [r["training"] for r in again] == [r["training"] for r in there_runs]
    assert [r["forces_mae_meV_per_A"] for r in again] == [
        r["forces_mae_meV_per_A"] for r in there_runs
    ]

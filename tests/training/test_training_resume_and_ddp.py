"""Kill-and-resume equals an uninterrupted run; DDP on 2 processes equals one process."""

import os
import sys
import textwrap

import pytest
import yaml
from training_helpers import PYTHON_DIR, max_weight_difference, run_gnnff, small_config

from gnnff.training.checkpoint import load_checkpoint
from gnnff.training.config import resolve_config
from gnnff.training.trainer import Trainer


class Crash(RuntimeError):
    pass


def _final_state(out_dir):
    return load_checkpoint(os.path.join(out_dir, "last.pt"))


def test_crash_mid_epoch_then_resume_equals_uninterrupted(emt_file, tmp_path):
    extra = {"training": {"max_epochs": 3, "checkpoint_every_steps": 2}}
    reference = Trainer(
        resolve_config(small_config(emt_file, str(tmp_path / "ref"), **extra))
    ).run()

    def crash_at_step_7(trainer, event):
        if event == "step" and trainer.step == 7:  # mid epoch 2 (5 batches per epoch)
            raise Crash()

    out = str(tmp_path / "crashed")
    with pytest.raises(Crash):
        Trainer(
            resolve_config(small_config(emt_file, out, **extra)), callbacks=[crash_at_step_7]
        ).run()
    saved = _final_state(out)
    assert (saved["epoch"], saved["batch_in_epoch"], saved["step"]) == (
        1,
        1,
        6,
    )  # last save: step 6
    resumed = Trainer(
        resolve_config(small_config(emt_file, out, **extra)), resume=os.path.join(out, "last.pt")
    ).run()

    a, b = _final_state(str(tmp_path / "ref")), _final_state(out)
    assert b["step"] == a["step"] == reference["steps"]
    assert max_weight_difference(a["model_state"], b["model_state"]) < 1e-12
    assert max_weight_difference(a["ema_state"]["shadow"], b["ema_state"]["shadow"]) < 1e-12
    assert len(resumed["history"]) == 3
    for row_a, row_b in zip(a["history"], b["history"]):
        for key in ("train_loss", "val_loss", "val_forces_mae", "lr"):
            assert row_b[key] == pytest.approx(row_a[key], rel=1e-10), key


def test_resuming_a_finished_run_with_more_epochs_equals_the_longer_run(emt_file, tmp_path):
    """A budget raised after a run finished (the claims study's "the from-scratch budget
    doubles", docs/experiments.md): with a constant learning rate, resuming the finished run's
    last.pt with max_epochs 4 equals training 4 epochs from the start."""
    constant = {"scheduler": {"name": "none"}}
    longer = {"training": {"max_epochs": 4}, **constant}
    Trainer(resolve_config(small_config(emt_file, str(tmp_path / "ref"), **longer))).run()
    out = str(tmp_path / "extended")
    Trainer(
        resolve_config(small_config(emt_file, out, training={"max_epochs": 2}, **constant))
    ).run()
    assert _final_state(out)["epoch"] == 2
    extended = Trainer(
        resolve_config(small_config(emt_file, out, **longer)), resume=os.path.join(out, "last.pt")
    ).run()
    a, b = _final_state(str(tmp_path / "ref")), _final_state(out)
    assert len(extended["history"]) == 4 and b["step"] == a["step"]
    assert max_weight_difference(a["model_state"], b["model_state"]) < 1e-12
    assert max_weight_difference(a["ema_state"]["shadow"], b["ema_state"]["shadow"]) < 1e-12
    for row_a, row_b in zip(a["history"], b["history"]):
        assert row_b["val_forces_mae"] == pytest.approx(row_a["val_forces_mae"], rel=1e-10)


def test_sigkill_then_cli_resume_equals_uninterrupted(emt_file, tmp_path):
    """A real SIGKILL (no clean-up) after step 7, then `gnnff train --resume`."""
    overrides = {"training": {"max_epochs": 3, "checkpoint_every_steps": 3}}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        yaml.safe_dump(small_config(emt_file, str(tmp_path / "killed"), **overrides))
    )
    script = tmp_path / "train_and_die.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, signal
        from gnnff.training.config import load_config
        from gnnff.training.trainer import Trainer
        def die(trainer, event):
            if event == "step" and trainer.step == 7:
                os.kill(os.getpid(), signal.SIGKILL)
        Trainer(load_config({str(config_path)!r}), callbacks=[die]).run()
    """)
    )
    import subprocess

    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, OMP_NUM_THREADS="1")
    killed = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=240
    )
    assert killed.returncode == -9, killed.stderr
    assert _final_state(str(tmp_path / "killed"))["step"] == 6
    resumed = run_gnnff(["train", str(config_path), "--resume", "--quiet"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    uninterrupted = run_gnnff(
        ["train", str(config_path), "--quiet", "--set", f"output.dir={tmp_path / 'ref'}"],
        cwd=tmp_path,
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    a, b = _final_state(str(tmp_path / "ref")), _final_state(str(tmp_path / "killed"))
    assert max_weight_difference(a["model_state"], b["model_state"]) < 1e-12
    assert [r["epoch"] for r in b["history"]] == [1, 2, 3]


def test_resume_with_another_model_is_refused(emt_file, tmp_path):
    out = str(tmp_path / "run")
    Trainer(resolve_config(small_config(emt_file, out, training={"max_epochs": 1}))).run()
    other = small_config(emt_file, out)
    other["model"]["hidden"] = 8
    with pytest.raises(ValueError, match="another model.*hidden"):
        Trainer(resolve_config(other), resume=os.path.join(out, "last.pt"))


def test_ddp_two_processes_equal_one_process(emt_file, tmp_path):
    """torchrun, 2 CPU processes, gloo: same weights as one process with the same global batch."""
    config = small_config(
        emt_file, str(tmp_path / "ddp"), training={"max_epochs": 2, "batch_size": 4}
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    two = run_gnnff(["train", str(config_path), "--quiet"], cwd=tmp_path, torchrun_procs=2)
    assert two.returncode == 0, two.stderr[-3000:]
    one = run_gnnff(
        ["train", str(config_path), "--quiet", "--set", f"output.dir={tmp_path / 'single'}"],
        cwd=tmp_path,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = _final_state(str(tmp_path / "single")), _final_state(str(tmp_path / "ddp"))
    assert a["step"] == b["step"] == 10  # 18 training structures / 4 -> 5 batches x 2 epochs
    assert max_weight_difference(a["model_state"], b["model_state"]) < 1e-10
    for key in ("train_loss", "val_loss", "train_forces_mae"):
        assert b["history"][-1][key] == pytest.approx(a["history"][-1][key], rel=1e-9)

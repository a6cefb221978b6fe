"""`gnnff train / export / eval` report user errors as `error: <message>` on stderr with exit
status 2 and no traceback (like `gnnff analyze` and `gnnff data`); `--debug` or GNNFF_DEBUG=1
brings the traceback back. The checkpoints are copies of tests/data/legacy's tiny pair_mlp."""

import os
import shutil

import ase.io
import numpy as np
import pytest
import torch
import yaml
from training_helpers import emt_structures, run_gnnff, small_config

from gnnff.cli import main

LEGACY = os.path.join(os.path.dirname(__file__), "..", "data", "legacy")


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "best.pt"
    shutil.copy(os.path.join(LEGACY, "pair_mlp_checkpoint.pt"), path)
    return path


@pytest.fixture
def config_file(emt_file, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(small_config(emt_file, str(tmp_path / "run"))))
    return str(path)


def _error(capsys, argv, match):
    """Run the CLI in this process; it must return 2 and print one `error: ` message."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert match in err, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("override, match", [
    ("optimizer.lr=fast", "optimizer.lr must be a number, got 'fast'"),
    ("model.r_max=big", "model.r_max must be a number, got 'big'"),
    ("training.max_epohcs=3", "did you mean 'max_epochs'"),
    ("training.ema_decay=yes", "training.ema_decay must be a number, got True"),
    ("optimizer.lr=-1", "optimizer.lr must be a learning rate >= 0 (e.g. 0.001), got -1"),
    ("optimizer.lr=nan", "optimizer.lr must be a learning rate >= 0"),
])  # fmt: skip
def test_train_bad_override(capsys, config_file, override, match):
    _error(capsys, ["train", config_file, "--set", override], match)


def test_eval_missing_data_file_names_the_path(capsys, checkpoint, tmp_path):
    err = _error(capsys, ["eval", str(checkpoint), str(tmp_path / "nope.xyz")], "nope.xyz")
    assert "does not exist; check the path" in err


def test_train_missing_config_file(capsys, tmp_path):
    _error(capsys, ["train", str(tmp_path / "nope.yaml")], "nope.yaml: No such file or directory")


def test_train_nan_force(capsys, tmp_path):
    frames = emt_structures(6)
    frames[4].calc.results["forces"][0, 0] = np.nan
    ase.io.write(tmp_path / "n.extxyz", frames)
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(small_config(str(tmp_path / "n.extxyz"), str(tmp_path / "run")))
    )
    _error(capsys, ["train", str(config)], "forces contains NaN")


def test_export_checkpoint_without_model_state(capsys, checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=False)
    del state["model_state"]
    torch.save(state, checkpoint)
    _error(capsys, ["export", str(checkpoint), "-o", str(tmp_path / "m.pt")], "has no model_state")


def test_checkpoint_whose_model_config_does_not_fit_its_weights(capsys, checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=False)
    state["model_config"]["hidden"] = 12  # written with hidden 8
    torch.save(state, checkpoint)
    err = _error(
        capsys,
        ["export", str(checkpoint), "-o", str(tmp_path / "m.pt")],
        "the checkpoint's weights do not fit its model_config",
    )
    assert "size mismatch" not in err and "in the checkpoint but" in err
    data = tmp_path / "d.extxyz"
    ase.io.write(data, emt_structures(2))
    _error(capsys, ["eval", str(checkpoint), str(data)], "do not fit its model_config")


def test_export_into_a_missing_folder(capsys, checkpoint, tmp_path):
    _error(
        capsys,
        ["export", str(checkpoint), "-o", str(tmp_path / "no" / "m.pt")],
        "does not exist; create it first",
    )


def test_eval_missing_model_and_missing_data(capsys, checkpoint, tmp_path):
    _error(capsys, ["eval", str(tmp_path / "x.pt"), str(tmp_path / "d.extxyz")], "does not exist")
    _error(capsys, ["eval", str(checkpoint), str(tmp_path / "d.extxyz")], "d.extxyz")


def test_debug_flag_and_environment_bring_the_traceback_back(checkpoint, tmp_path, monkeypatch):
    argv = ["export", str(checkpoint), "-o", str(tmp_path / "no" / "m.pt")]
    with pytest.raises(ValueError, match="create it first"):
        main(argv + ["--debug"])
    with monkeypatch.context() as patch:
        patch.setenv("GNNFF_DEBUG", "1")
        with pytest.raises(ValueError, match="create it first"):
            main(argv)
    proc = run_gnnff(argv, cwd=str(tmp_path))  # a real process: exit status 2, no traceback
    assert (
        proc.returncode == 2
        and proc.stderr.startswith("error: ")
        and "Traceback" not in proc.stderr
    )


def test_train_resume_from_an_incomplete_checkpoint(capsys, config_file, checkpoint):
    state = torch.load(checkpoint, weights_only=False)
    del state["model_state"]
    torch.save(state, checkpoint)
    _error(capsys, ["train", config_file, "--resume", str(checkpoint)], "lacks model_state")

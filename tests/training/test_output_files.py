"""Files a run leaves behind: hidden temporary files of killed checkpoint writes are removed at
start-up and on resume (and the log says so); checkpoints, metrics and exported models get the
permissions of the umask, like any file the user creates."""

import logging
import os
import socket
import stat
import subprocess
import sys

import pytest
from training_helpers import small_config

from gnnff.atomic_file import remove_stale_temp_files
from gnnff.cli import main
from gnnff.training.config import resolve_config
from gnnff.training.trainer import Trainer


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _host() -> str:
    return "".join(c for c in socket.gethostname() if c.isalnum() or c == ".") or "host"


def _plant(folder, live_pid):
    folder.mkdir(parents=True, exist_ok=True)
    stale = [
        ".gnnff-ckpt-k2j4x9.pt",  # gnnff before host/pid names
        f".gnnff-ckpt-{_host()}-{_dead_pid()}-abc.pt",
        f".gnnff-log-{_host()}-{_dead_pid()}-def",
    ]
    kept = [f".gnnff-ckpt-{_host()}-{live_pid}-ghi.pt", ".gnnff-notes", "keep.pt"]
    for name in stale + kept:
        (folder / name).write_bytes(b"x" * 100)
    return stale, kept


def test_stale_temp_files_are_removed_at_start_and_on_resume(emt_file, tmp_path, caplog):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = tmp_path / "run"
        stale, kept = _plant(run, live.pid)
        config = resolve_config(small_config(emt_file, str(run), training={"max_epochs": 1}))
        with caplog.at_level(logging.WARNING, logger="gnnff.training"):
            Trainer(config).run()
        assert sorted(p for p in os.listdir(run) if p.startswith(".")) == sorted(
            k for k in kept if k.startswith(".")
        )
        assert all((run / k).exists() for k in kept)
        assert any(
            "removed 3 stale temporary file(s)" in r.message and stale[0] in r.message
            for r in caplog.records
        )

        stale, _ = _plant(run, live.pid)
        caplog.clear()
        config = resolve_config(small_config(emt_file, str(run), training={"max_epochs": 2}))
        with caplog.at_level(logging.WARNING, logger="gnnff.training"):
            Trainer(config, resume=str(run / "last.pt")).run()
        assert not any((run / s).exists() for s in stale)
        assert any("removed 3 stale temporary file(s)" in r.message for r in caplog.records)
    finally:
        live.kill()
        live.wait()
    # the writer is gone now: its file is stale too
    assert remove_stale_temp_files(str(run)) == [f".gnnff-ckpt-{_host()}-{live.pid}-ghi.pt"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_follow_the_umask(emt_file, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        run = tmp_path / "run"
        Trainer(resolve_config(small_config(emt_file, str(run), training={"max_epochs": 1}))).run()
        assert main(["export", str(run / "best.pt"), "-o", str(tmp_path / "model.pt")]) == 0
    finally:
        os.umask(old)
    for path in (
        run / "last.pt",
        run / "best.pt",
        run / "metrics.csv",
        run / "metrics.json",
        tmp_path / "model.pt",
    ):
        assert stat.S_IMODE(os.stat(path).st_mode) == mode, path

"""training.memory: glibc keeps freed memory (gnnff/memory.py), measured by the kernel's own
page-fault counter; the policy changes no number of a training run."""

import csv
import json
import os
import platform
import subprocess
import sys

import ase.io
import pytest
import yaml
from training_helpers import PYTHON_DIR, emt_structures, run_gnnff, small_config

from gnnff.memory import USER_SETTINGS
from gnnff.training.config import resolve_config

GLIBC = platform.libc_ver()[0] == "glibc"

# a process that allocates, touches and frees a 64 MB block 4 times, before and after
# keep_freed_memory(); prints the minor page faults of the last 3 cycles of each
FAULTS = """
import json, resource
import numpy as np
from gnnff.memory import keep_freed_memory

def faults():
    count = []
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = np.ones(8 << 20)  # 64 MB of float64, above glibc's largest mmap threshold
        del block
        count.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return sum(count[1:])

default = faults()
done = keep_freed_memory()
print(json.dumps({"default": default, "keep": faults(), "done": done}))
"""


def _faults(env_extra=None):
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    for name in USER_SETTINGS:
        env.pop(name, None)
    env.update(env_extra or {})
    out = subprocess.run(
        [sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_keep_freed_memory_stops_page_faults_of_a_reallocated_block():
    result = _faults()
    assert result["done"].startswith("glibc malloc keeps freed memory")
    # glibc's default maps each 64 MB block afresh: every touched page (or huge page) faults
    # again; kept, the second allocation reuses the first one's pages
    assert result["default"] >= 30, result
    assert result["keep"] * 10 <= result["default"], result


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_users_own_malloc_settings_are_left_alone():
    result = _faults({"MALLOC_TOP_PAD_": "0"})
    assert result["done"] == "left to the user's MALLOC_*/GLIBC_TUNABLES settings"
    assert result["keep"] * 10 > result["default"], result  # glibc's defaults still apply


def test_bad_memory_policy_is_explained():
    base = {"model": {"name": "pair_mlp", "type_names": ["Si"]}, "data": {"train": "x.extxyz"}}
    with pytest.raises(ValueError, match="training.memory must be keep .* or release"):
        resolve_config(base, ["training.memory=forever"])


def test_memory_policy_changes_no_number_of_a_training_run(tmp_path):
    ase.io.write(tmp_path / "cu.extxyz", emt_structures(8))
    runs = {}
    for policy in ("keep", "release"):
        config = small_config(
            str(tmp_path / "cu.extxyz"), str(tmp_path / policy), training={"memory": policy}
        )
        config["training"]["dtype"] = "float32"  # float32 GEMMs: most sensitive to placement
        path = tmp_path / f"{policy}.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = run_gnnff(["train", str(path)], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        with open(tmp_path / policy / "metrics.csv") as handle:
            rows = [
                {k: v for k, v in row.items() if not k.endswith("_per_s")}  # timings differ
                for row in csv.DictReader(handle)
            ]
        runs[policy] = (proc.stdout + proc.stderr, rows)
    if GLIBC:
        assert "memory keep: glibc malloc keeps freed memory for reuse" in runs["keep"][0]
    assert "memory keep" not in runs["release"][0]
    assert len(runs["keep"][1]) == 2
    assert runs["keep"][1] == runs["release"][1]  # every logged loss and error, to the last digit

"""Generated files depend on numpy's OpenBLAS kernels, which OpenBLAS picks by CPU unless told:
generation pins one kernel family (tasks.openblas_core) in the pool workers that build the
starting structures and run the MD, so a seed gives the same bytes on every CPU that runs it.
Here "Prescott" (SSE3 kernels, runs on any x86-64) stands in for another CPU's choice."""

import hashlib

import numpy as np
import pytest
from test_datagen_xtb_engine import ethanol_task

from gnnff.datagen import catalog, generator, tasks
from gnnff.datagen.tasks import openblas_core, reproducible_pool, run_tasks

OTHER_CORE = "Prescott"


def test_openblas_core_user_setting_then_pin_where_the_cpu_runs_it():
    modern = frozenset({"sse2", "avx", "avx2", "fma"})
    assert openblas_core({}, modern) == tasks.REPRODUCIBLE_OPENBLAS_CORE == "Haswell"
    assert openblas_core({"OPENBLAS_CORETYPE": "SkylakeX"}, modern) == "SkylakeX"
    assert openblas_core({"OPENBLAS_CORETYPE": ""}, modern) == "Haswell"
    assert openblas_core({}, frozenset({"sse2", "avx"})) is None  # no AVX2: OpenBLAS chooses


def last_frame_bytes(**kwargs):
    (frames,) = run_tasks([ethanol_task(9)], workers=1, progress=False, **kwargs)
    frame = frames[-1]
    return frame["positions"].tobytes() + frame["forces"].tobytes()


def test_the_pin_reaches_the_md_workers(monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.setattr(tasks, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    pinned = last_frame_bytes()
    monkeypatch.setenv("OPENBLAS_CORETYPE", tasks.REPRODUCIBLE_OPENBLAS_CORE)
    assert last_frame_bytes() == pinned
    monkeypatch.setenv("OPENBLAS_CORETYPE", OTHER_CORE)
    other = last_frame_bytes()
    assert other != pinned  # the kernels change the trajectory: without the pin, so would CPUs
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.setattr(tasks, "REPRODUCIBLE_OPENBLAS_CORE", OTHER_CORE)
    assert last_frame_bytes() == other


def tasks_digest(task_list):
    digest = hashlib.sha256()
    for task in task_list:
        digest.update(np.ascontiguousarray(task.atoms.positions).tobytes())
        digest.update(np.ascontiguousarray(task.atoms.cell[:]).tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("name", ["si", "pretrain-molecules"])
def test_catalogue_structures_are_built_with_the_pinned_kernels(monkeypatch, name):
    """ASE's cell scaling and rotations go through numpy's BLAS: generate builds a catalogue
    plan's tasks in a pool worker, so they follow the pin, not the calling process's kernels."""
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    here = tasks_digest(generator.build_tasks(catalog.make_plan(name, "small"), 0))
    monkeypatch.setattr(tasks, "REPRODUCIBLE_OPENBLAS_CORE", OTHER_CORE)
    monkeypatch.setattr(tasks, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    with reproducible_pool(1) as pool:
        pinned = tasks_digest(pool.submit(generator.catalog_tasks, name, "small", 0).result())
    monkeypatch.setenv("OPENBLAS_CORETYPE", OTHER_CORE)
    with reproducible_pool(1) as pool:
        user = tasks_digest(pool.submit(generator.catalog_tasks, name, "small", 0).result())
    assert pinned == user != here

"""Shared fixtures for tests that drive the real ``lmp`` (installed pair_style gnnff plugin).

Fixtures
--------
run_lammps(deck, workdir, nprocs=1, variables=None, expect_error=False, timeout=120, threads=1)
    Write ``deck`` to workdir/in.lammps, run ``lmp -in in.lammps -log log.lammps`` (through
    ``mpirun -launcher fork -np N`` when nprocs > 1) and return a LammpsRun with ``.output``
    (stdout + stderr), ``.returncode``, ``.log`` (path) and ``.thermo()`` (list of dicts, one
    per thermo table of the log, column name -> numpy array). A failing run raises
    AssertionError with the tail of the output unless ``expect_error=True``.
lammps_environment
    The environment dict the runs use (copy it before changing it).
export_analytic(name, path, **kwargs)
    Build a registered model (gnnff.models.registry) and export it to ``path``; returns path.

Every run gets OMP_NUM_THREADS=1 (several ranks share 2 cores; torch would oversubscribe), or
``threads`` where a test exercises the threaded parts of the pair style.
Tests here carry ``pytest.mark.lammps``; they need ``pip install --no-build-isolation .`` first.
"""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import pytest

BIN = os.path.dirname(sys.executable)


def _tool(name: str) -> str:
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else (shutil.which(name) or name)


LMP = _tool("lmp")
MPIRUN = _tool("mpirun")


def _plugin_installed() -> bool:
    from gnnff.lammps import plugin_dir

    return bool(plugin_dir())


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.lammps)


@dataclass
class LammpsRun:
    output: str
    returncode: int
    log: str

    def thermo(self) -> List[Dict[str, np.ndarray]]:
        """Thermo tables of the log file: one dict per run command, column -> values."""
        return parse_thermo(self.log)


def parse_thermo(log_path: str) -> List[Dict[str, np.ndarray]]:
    tables, header, rows = [], None, []
    with open(log_path) as f:
        for line in f:
            words = line.split()
            if words and words[0] == "Step":
                header, rows = words, []
                continue
            if header is None:
                continue
            if line.startswith("Loop time"):
                tables.append({h: np.array([r[k] for r in rows]) for k, h in enumerate(header)})
                header = None
                continue
            try:
                values = [float(w) for w in words]
            except ValueError:
                continue  # warnings printed inside the table
            if len(values) == len(header):
                rows.append(values)
    return tables


def lammps_env(threads: int = 1) -> Dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    return env


@pytest.fixture
def lammps_environment() -> Dict[str, str]:
    """Environment of the lmp runs (OMP_NUM_THREADS=1)."""
    return lammps_env()


@pytest.fixture(scope="session")
def lammps_ready():
    if not _plugin_installed():
        pytest.fail(
            "gnnffplugin.so is not installed; run `pip install --no-build-isolation -v .` "
            "in the repository root first"
        )
    return LMP


@pytest.fixture
def run_lammps(lammps_ready):
    def run(
        deck: str,
        workdir,
        nprocs: int = 1,
        variables: Optional[Dict[str, str]] = None,
        expect_error: bool = False,
        timeout: float = 120,
        threads: int = 1,
    ) -> LammpsRun:
        workdir = str(workdir)
        with open(os.path.join(workdir, "in.lammps"), "w") as f:
            f.write(deck)
        cmd = [LMP, "-in", "in.lammps", "-log", "log.lammps"]
        for name, value in (variables or {}).items():
            cmd += ["-var", name, str(value)]
        if nprocs > 1:
            cmd = [MPIRUN, "-launcher", "fork", "-np", str(nprocs)] + cmd
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            env=lammps_env(threads),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        result = LammpsRun(
            proc.stdout + proc.stderr, proc.returncode, os.path.join(workdir, "log.lammps")
        )
        failed = proc.returncode != 0 or "ERROR" in result.output
        if failed and not expect_error:
            raise AssertionError(
                f"LAMMPS failed (rc {proc.returncode}): {' '.join(cmd)}\n{result.output[-3000:]}"
            )
        return result

    return run


@pytest.fixture
def export_analytic():
    def export(name: str, path, **kwargs) -> str:
        from gnnff.export import export_model
        from gnnff.models.registry import build_model

        export_model(build_model(name, **kwargs), str(path))
        return str(path)

    return export

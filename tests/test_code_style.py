"""One style for the whole tree: ruff (lint + format, configured in pyproject.toml) for Python
and clang-format (.clang-format, LAMMPS's style) for C++. `.[test]` installs both; fix a failure
with `ruff check --fix . && ruff format .` and `clang-format -i <files>`."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON_TREES = ["python", "tests", "benchmarks", "scripts"]


def _tool(name: str) -> str:
    here = os.path.join(os.path.dirname(sys.executable), name)
    path = here if os.path.exists(here) else shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install '.[test]')")
    return path


def _cpp_sources():
    out = subprocess.run(
        ["git", "ls-files", "cpp/*.cpp", "cpp/*.h", "lammps_plugin/*.cpp", "lammps_plugin/*.h"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        pytest.skip("not a git checkout: the C++ file list comes from git ls-files")
    return out.stdout.split()


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_python_follows_ruff(command):
    run = subprocess.run(
        [_tool("ruff"), *command, *PYTHON_TREES], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, f"ruff {' '.join(command)}:\n{run.stdout}{run.stderr}"


def test_cpp_follows_clang_format():
    files = _cpp_sources()
    assert files, "no C++ sources found"
    run = subprocess.run(
        [_tool("clang-format"), "--dry-run", "--Werror", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, f"clang-format --dry-run:\n{run.stderr[:4000]}"

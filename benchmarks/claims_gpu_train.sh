#!/usr/bin/env bash
# Train the claims study's models (docs/experiments.md, amendment A6) on a lent GPU machine
# (device tool), all (seed, variant) trainings side by side, and bring back their cached units
# so that the study's script here reads them back and goes on with the MD on the CPU.
# Experiment 1 (decorrelation, the default) or, with GNNFF_GPU_TRAIN_EXPERIMENT=pretraining
# at `pack` (the pack remembers it), Experiment 2's target trainings: the pack then holds the
# aspirin data and the finished pre-training (its `training.json` and `best.pt`), and `run`
# starts one `stability_pretraining.py --size protocol --molecule aspirin --r-max 5 --no-md
# --seeds k --variants v` per (seed, variant) (finetuned, scratch).
#
#   here (CPU machine): pack the data and the wheels the GPU machine lacks (ase, vesin) into the
#   ignored folder .gpu_train/:
#       bash benchmarks/claims_gpu_train.sh pack <workdir>      # <workdir>/data_sio_paper_0
#       .venv/bin/pip download --no-deps -d .whl ase vesin      # the wheels, into ignored .whl/
#   there (device tool: carry [".gpu_train", ".whl"], timeout_s <= 600):
#       bash benchmarks/claims_gpu_train.sh run <deadline_s> <seed>...
#   here again: unpack what came back into the work folder and export each finished model:
#       bash benchmarks/claims_gpu_train.sh unpack <folder with units.part-*> <workdir>
#
# `run` starts one `stability_decorrelation.py --size protocol --no-md --seeds k --variants v`
# per (seed, variant) (one CPU thread each; `gnnff train`'s device "auto" takes the GPU), and
# every 45 s writes the work folder's units (training.json, eval_*.json, train/ with best.pt,
# last.pt and metrics.csv) to $OUT/units.part-aa, -ab, ... (one tar.gz split into parts of at
# most 15 MiB: the device tool brings back files of at most 16 MiB, and Experiment 1's 16
# trainings make 20 MB), so that a call stopped at its limit still brings back every finished
# unit and the latest last.pt of an unfinished training (a later call resumes it, there with the
# parts copied into .gpu_train/, or here). It stops the trainings <deadline_s> s after its start.
# GNNFF_GPU_TRAIN_DRY=1 runs the same on the CPU with --size small (a check of the script; the
# experiment from GNNFF_GPU_TRAIN_EXPERIMENT); GNNFF_GPU_TRAIN_EXTRA adds arguments to each
# training's command (the dry run: --max-epochs 2; Experiment 2's MAE-match rule: --scratch-epochs 8).
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACK=$REPO/.gpu_train
mode=${1:-}
shift || true

units_tar() {  # $1 work folder, $2 output folder: the units, without data, logs or locks, as
    # $2/units.part-aa, -ab, ... of at most 15 MiB each (the device tool brings back files of
    # at most 16 MiB); the old parts are replaced only once the new ones are complete
    local tmp
    tmp=$(mktemp -d) || return 1
    (cd "$1" && find . -path ./data_\* -prune -o -path ./logs -prune -o -path ./pretrain -prune -o -type f \
        ! -name '*.lock' ! -name 'model.pt' -print | tar -czf - -T -) |
        split -b "${GNNFF_GPU_TRAIN_PART_BYTES:-15M}" - "$tmp/units.part-" &&
        rm -f "$2"/units.part-* && mv "$tmp"/units.part-* "$2"/
    rm -rf "$tmp"
}

case "$mode" in
pack)
    W=$(cd "${1:?pack <workdir>}" && pwd)
    mkdir -p "$PACK"
    experiment=${GNNFF_GPU_TRAIN_EXPERIMENT:-decorrelation}
    if [ "$experiment" = pretraining ]; then
        [ -f "$W/pretrain/training.json" ] && [ -f "$W/pretrain/train/best.pt" ] ||
            { echo "no finished pre-training in $W/pretrain: pre-train first" >&2; exit 2; }
        data=$(cd "$W" && ls -d data_md17_aspirin_paper_0) || exit 2
        tar -cJf "$PACK/data.tar.xz" -C "$W" "$data/datacard.json" \
            "$data"/md17_aspirin_{train,valid,test}.extxyz \
            "$data"/md17_aspirin_reference_aspirin_500K.extxyz \
            $(cd "$W" && ls data_pretrain_paper_*/datacard.json) \
            pretrain/training.json pretrain/train/best.pt || exit 2
    else
        data=$(cd "$W" && ls -d data_sio_paper_0) || exit 2
        tar -cJf "$PACK/data.tar.xz" -C "$W" "$data/datacard.json" "$data/sio_train.extxyz" \
            "$data/sio_valid.extxyz" "$data/sio_test.extxyz" "$data/sio_ood_SiO1.5.extxyz" \
            "$data/sio_ood_SiO1.1.extxyz" || exit 2
    fi
    echo "$experiment" >"$PACK/experiment"
    ls -la "$PACK"
    ;;
run)
    DEADLINE=${1:?run <deadline_s> <seed>...}
    shift
    START=$(date +%s)
    W=/tmp/gnnff_claims_gpu
    SIZE=protocol
    EXPERIMENT=${GNNFF_GPU_TRAIN_EXPERIMENT:-decorrelation}
    mkdir -p "$W/logs"
    if [ "${GNNFF_GPU_TRAIN_DRY:-0}" = 1 ]; then
        SIZE=small W=${GNNFF_GPU_TRAIN_WORK:-/tmp/gnnff_claims_dry} OUT=${OUT:-$W/out}
        mkdir -p "$W/logs" "$OUT"
    else
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site "$REPO"/.whl/*.whl || exit 2
        export PYTHONPATH=/tmp/site
        EXPERIMENT=$(cat "$PACK/experiment" 2>/dev/null || echo decorrelation) # what was packed
        tar -xJf "$PACK/data.tar.xz" -C "$W" || exit 2
        # units of an earlier call (copied into .gpu_train/): resume its trainings
        ls "$PACK"/units.part-* >/dev/null 2>&1 && cat "$PACK"/units.part-* | tar -xzf - -C "$W"
        python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0))'
    fi
    if [ "$EXPERIMENT" = pretraining ]; then
        script=stability_pretraining.py variants="finetuned scratch"
        study=(--molecule aspirin --r-max 5)
    else
        script=stability_decorrelation.py variants="baseline decorrelation"
        study=()
    fi
    pids=()
    for seed in "$@"; do
        for variant in $variants; do
            OMP_NUM_THREADS=1 python3 "$REPO/benchmarks/$script" "${study[@]}" \
                --size "$SIZE" --workdir "$W" --seeds "$seed" --variants "$variant" --no-md \
                --np 1 --threads 1 --datagen-workers 1 --json "$W/gpu_${seed}_${variant}.json" \
                ${GNNFF_GPU_TRAIN_EXTRA:-} >"$W/logs/gpu_${seed}_${variant}.log" 2>&1 &
            pids+=($!)
        done
    done
    while :; do
        running=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
        elapsed=$(($(date +%s) - START))
        units_tar "$W" "$OUT"
        tail -qn 3 "$W"/logs/gpu_*.log >"$OUT/progress.txt" 2>/dev/null
        echo "[$elapsed s] $running of ${#pids[@]} running"
        [ "$running" = 0 ] && break
        if [ "$elapsed" -ge "$DEADLINE" ]; then
            echo "deadline: stopping the trainings (their last.pt came back)"
            kill "${pids[@]}" 2>/dev/null
            sleep 2
            units_tar "$W" "$OUT"
            break
        fi
        sleep 45
    done
    tar -czf "$OUT/logs.tar.gz" -C "$W" logs $(cd "$W" && ls gpu_*.json 2>/dev/null)
    grep -h "force MAE" "$W"/logs/gpu_*.log
    ls -la "$OUT"
    ;;
unpack)
    parts=${1:?unpack <folder with units.part-*> <workdir>}
    W=${2:?unpack <folder with units.part-*> <workdir>}
    ls "$parts"/units.part-* >/dev/null || exit 2
    cat "$parts"/units.part-* | tar -xzf - -C "$W" || exit 2
    # model.pt is exported here, not brought back: the LAMMPS model then uses this machine's
    # build (its compiled operators on the CPU; the same numbers as the pure-torch form)
    for unit in $(find "$W" -name training.json -not -path "*/pretrain/*" | sort); do
        run=$(dirname "$unit")
        [ -f "$run/model.pt" ] && continue
        echo "exporting $run/model.pt"
        python3 -m gnnff.cli export "$run/train/best.pt" -o "$run/model.pt" >"$run/model.export.log" 2>&1 ||
            { cat "$run/model.export.log"; exit 1; }
    done
    ;;
*)
    sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac

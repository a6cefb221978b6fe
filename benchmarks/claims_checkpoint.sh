#!/usr/bin/env bash
# One checkpoint of the claims study (docs/experiments.md, amendments A6 and A7): what has
# finished in the work folders goes into the repository's layout, and claims.json is rebuilt.
#
#   bash benchmarks/claims_checkpoint.sh                 # during a sitting
#   bash benchmarks/claims_checkpoint.sh --in-progress   # at its end: running trainings' checkpoints too
#
# Steps: A7's measure of each finished 20-ps run (from its trajectory, which is not committed,
# so it is taken in the sitting that ran it), the units of both experiments
# (benchmarks/claims_collect_units.sh), then benchmarks/stability_claims.py over the job JSONs
# that exist. It commits nothing: `git add benchmarks/results docs/figures` and a commit follow.
# Work folders: DECORRELATION_WORK and PRETRAINING_WORK (defaults below).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
case "$PYTHON" in */*) PYTHON=$(realpath -s "$PYTHON") ;; esac # the collector changes folder
export PYTHON
decorrelation=${DECORRELATION_WORK:-runs/claims2_decorrelation}
pretraining=${PRETRAINING_WORK:-runs/claims2_pretraining}
units=benchmarks/results/claims_study

if [ -d "$decorrelation" ]; then
    "$PYTHON" benchmarks/stability_window_rdf.py --workdir "$decorrelation" --start-ps 5
    bash benchmarks/claims_collect_units.sh "$decorrelation" "$units/decorrelation" "$@"
    # the jobs of Experiment 1: control (Tersoff), the 5-ps stage in two halves, A4's 20-ps runs
    mapfile -t jobs < <(ls "$decorrelation"/{control,seeds*,a4_*}.json 2>/dev/null)
    if [ "${#jobs[@]}" -gt 0 ]; then
        "$PYTHON" benchmarks/stability_claims.py --decorrelation "${jobs[@]}" \
            --window-rdf "$decorrelation"
    fi
fi
if [ -d "$pretraining" ]; then
    bash benchmarks/claims_collect_units.sh "$pretraining" "$units/pretraining" "$@"
    # the MAE-match gate of every from-scratch budget that has evaluated pairs (scratch = the
    # protocol's 4 epochs, scratch_<N>epochs after a doubling), read from the collected units
    for folder in $(ls -d "$units"/pretraining/seed*/scratch*/ 2>/dev/null | xargs -rn1 basename | sort -u); do
        "$PYTHON" benchmarks/stability_claims.py --mae-match "$units/pretraining" \
            --scratch-folder "$folder" > "$units/pretraining/mae_match_$folder.json"
    done
    # after the MAE-match rule doubled the from-scratch budget (seeds*_<N>epochs.json), only the
    # JSONs of the largest budget count: each holds both variants of every seed of its job
    budget=0
    for json in "$pretraining"/seeds*_*epochs.json; do
        [ -e "$json" ] || continue
        n=${json##*_}
        n=${n%epochs.json}
        if [ "$n" -gt "$budget" ]; then budget=$n; fi
    done
    if [ "$budget" -gt 0 ]; then
        mapfile -t jobs < <(ls "$pretraining"/seeds*_"${budget}"epochs.json)
    else
        mapfile -t jobs < <(ls "$pretraining"/seeds*.json 2>/dev/null)
    fi
    if [ "${#jobs[@]}" -gt 0 ]; then
        "$PYTHON" benchmarks/stability_claims.py --pretraining "${jobs[@]}"
    fi
fi

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
    # the JSONs of the largest from-scratch budget (after the MAE-match rule doubled it, the
    # earlier budget's JSONs stay as the failed attempt); claims.json also gets every budget's gate
    mapfile -t jobs < <("$PYTHON" benchmarks/stability_claims.py --pretraining-jobs "$pretraining")
    if [ "${#jobs[@]}" -gt 0 ]; then
        "$PYTHON" benchmarks/stability_claims.py --pretraining "${jobs[@]}" \
            --pretraining-units "$units/pretraining"
    fi
fi

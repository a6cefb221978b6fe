#!/usr/bin/env bash
# Copy a claims-study work folder's finished units into the repository (amendment A6,
# docs/experiments.md), so that a change of machine loses at most the units in progress:
#
#   bash benchmarks/claims_collect_units.sh <workdir> benchmarks/results/claims_study/<experiment> [--in-progress]
#
# Copied: every unit record (*.json; a unit in progress, with a .lock, is skipped), each
# finished training's configuration, best.pt without the optimiser's state, and metrics.csv
# (not those of a training still running: its training.json is missing or locked), the data's
# card and checksums. With `--in-progress` (at the end of a sitting), a training still running
# leaves its latest checkpoint too, `train/last.pt` (with the optimiser's state: `--resume`
# continues it exactly) and its best.pt so far, so that a new machine continues it instead of
# starting it again (a GemNet-T target training is 1-1.5 CPU-h); the copied last.pt is removed
# once the training has finished; likewise an MD run's latest restart file and its trajectory
# and log so far (below). Not copied: data (`gnnff data
# generate` with the card's name, size and seed regenerates it), trajectories and LAMMPS logs,
# a finished training's last.pt, model.pt (`gnnff export best.pt` rebuilds it). Copying a folder
# back into a work folder lets `stability_*.py --workdir` read the units back instead of
# recomputing them.
set -euo pipefail
PYTHON=${PYTHON:-python3} # an interpreter with torch (the checkout's .venv/bin/python)
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "${1:?usage: claims_collect_units.sh <workdir> <dest>}" && pwd)
dest=${2:?usage: claims_collect_units.sh <workdir> <dest>}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
in_progress=${3:-}
[ -z "$in_progress" ] || [ "$in_progress" = --in-progress ] || {
    echo "claims_collect_units.sh: unknown option $in_progress (the only one is --in-progress)" >&2
    exit 2
}
cd "$src"
find . -maxdepth 4 -type d \( -path './data_*' -o -path ./logs -o -path ./gpu -o -path ./cpu_check \) -prune -o \
    -type f \( -name '*.json' -o -name '*.yaml' -o -path '*/train/best.pt' -o -path '*/train/metrics.csv' -o -path '*/train/last.pt' \) \
    -print | sort | cat - <(ls ./data_*/datacard.json 2>/dev/null) | while read -r f; do
    [ -e "$f.lock" ] && continue
    case "$f" in */md_*/*) continue ;; esac # inside an MD run folder: the run's own files
    case "$f" in */md_*.run.json) # an MD run only with its analysis: that needs the trajectory,
        # which is not collected, so a run whose analysis is unfinished reruns on a new machine
        analysis=${f%.run.json}.analysis.json
        { [ -f "$analysis" ] && [ ! -e "$analysis.lock" ]; } || continue
        ;;
    esac
    case "$f" in */train/* | */train.yaml) # a training's files, once its unit is finished
        unit=${f%/train*}/training.json
        if [ -f "$unit" ] && [ ! -e "$unit.lock" ]; then
            case "$f" in */train/last.pt) rm -f "$dest/$f" && continue ;; esac
        else # still running: with --in-progress, its checkpoints (written atomically)
            [ -n "$in_progress" ] || continue
            case "$f" in */train/last.pt | */train/best.pt) ;; *) continue ;; esac
        fi
        ;;
    esac
    mkdir -p "$dest/$(dirname "$f")"
    if [ "$(basename "$f")" = best.pt ]; then
        # without the optimiser's state (half the file; eval, export and init_from need only
        # the weights); copied once, when the source is newer than the copy
        [ -e "$dest/$f" ] && [ ! "$f" -nt "$dest/$f" ] && continue
        "$PYTHON" -c 'import sys, torch
c = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
c.pop("optimizer_state", None)
torch.save(c, sys.argv[2])' "$f" "$dest/$f" && touch -r "$f" "$dest/$f"
    else
        cmp -s "$f" "$dest/$f" || cp -p "$f" "$dest/$f"
    fi
done
# an MD run that writes restart files (benchmarks/md_resume.py, amendment A8): while it runs,
# or after it was cut, with --in-progress its latest restart and what it wrote so far, so that
# a new machine continues it instead of starting it again (a 60-ps GemNet-T run is an hour of a
# core); removed once the run has finished
find . -maxdepth 5 -path './data_*' -prune -o -type f -name 'restart.*.bin' -printf '%h\n' |
    sort -u | while read -r md; do
    record=$md.run.json
    if [ -f "$record" ] && [ ! -e "$record.lock" ]; then
        [ ! -d "$dest/$md" ] || "$PYTHON" "$here/md_resume.py" drop "$dest/$md"
    elif [ -n "$in_progress" ]; then
        "$PYTHON" "$here/md_resume.py" collect "$md" "$dest/$md"
    fi
done
# the data's checksums: a later machine regenerates the data from the card and checks that it
# got the same files (`cd <workdir>/data_...; sha256sum -c <dest>/data_.../sha256.txt`)
for data in ./data_*/; do
    [ -f "$data/datacard.json" ] || continue
    # a card without its frames (data that a finished unit no longer needs, not regenerated on
    # this machine): the committed checksums stay as they are
    compgen -G "$data*.extxyz" >/dev/null || continue
    mkdir -p "$dest/$data"
    (cd "$data" && sha256sum -- *.extxyz) >"$dest/$data/sha256.txt"
done
find "$dest" -type f | wc -l
du -sh "$dest"

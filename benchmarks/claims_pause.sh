#!/usr/bin/env bash
# Pause or resume the claims study's running jobs (docs/experiments.md), with every process they
# started (trainings, LAMMPS, analyses): for a timing that needs the cores, a clean-clone CI, or
# to give one experiment the cores before the other. `kill` ends them for good (at the end of a
# sitting, or to give a job other seeds).
#
#   bash benchmarks/claims_pause.sh stop|cont|kill [all|decorrelation|pretraining]
#
# CLAIMS_JOBS_PREFIX (default empty) restricts it to jobs whose script path starts with it (a
# test's own jobs, not a study running on the same machine).
# SIGSTOP keeps each process's state in memory (a training resumes where it was, a LAMMPS run
# goes on with the same trajectory); a job stopped at the end of a sitting ends with it like a
# running one, and resumes from its cached units and last.pt. `kill` sends SIGKILL, parents
# first: a job must not outlive its LAMMPS run, or it would record the killed run as a crash
# (LAMMPS runs in a process group of its own, so `kill -- -<pgid>` of the job misses it). A killed
# unit is computed again by the next job: a training from its last.pt, an MD run from its
# latest restart file (A9). Prints the jobs' processes after.
set -euo pipefail
signal=${1:-}
which=${2:-all}
case "$signal" in
stop) signal=STOP ;;
cont) signal=CONT ;;
kill) signal=KILL ;;
*)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac
case "$which" in
all) pattern="${CLAIMS_JOBS_PREFIX:-}benchmarks/stability_(decorrelation|pretraining)\.py" ;;
decorrelation | pretraining) pattern="${CLAIMS_JOBS_PREFIX:-}benchmarks/stability_$which\.py" ;;
*)
    echo "unknown experiment '$which': give all, decorrelation or pretraining" >&2
    exit 2
    ;;
esac

tree() { # a process and all its descendants, parents first (so none starts a child unseen)
    echo "$1"
    local child
    for child in $(pgrep -P "$1"); do tree "$child"; done
}

found=0
for top in $(pgrep -f "$pattern" || true); do
    found=1
    for pid in $(tree "$top"); do kill -s "$signal" "$pid" 2>/dev/null || true; done
done
[ "$found" = 1 ] || echo "no running job of: $which"
ps -eo pid,stat,etime,args | grep -E "stability_|lmp|gnnff" | grep -v grep | cut -c1-150 || true

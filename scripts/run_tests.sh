#!/usr/bin/env bash
# Run the test suite (sets the project up first if needed). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/gnnff ] || [ "${GNNFF_REINSTALL:-0}" = 1 ]; then
    bash scripts/setup.sh
fi
# shellcheck disable=SC1091
source .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec python -m pytest -ra --timeout=900 "$@"

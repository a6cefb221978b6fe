#!/usr/bin/env python
"""Where the time of the one-rank stability analysis goes, per frame (CPU time, not wall).

For each source tree (this checkout's ``python/``, and ``--baseline DIR`` if given: e.g. an older
commit unpacked with ``git archive``), a fresh subprocess runs what StabilityAnalysis runs on one
rank and times each step with ``time.process_time`` (CPU seconds of this process: less
sensitive than wall time to other jobs on a shared machine):

* ``setup``: reading the first frame and every criterion's ``prepare`` (once per rank);
* per frame: ``read`` (parse), each criterion's ``single_frame`` (``rdf`` includes the vesin
  neighbour search and the histogram; ``close_contacts`` filters the g(r) list), ``other``
  (the nan check and dropping the list);
* for reference, on the same frames: vesin's search alone (a reused ``NeighborList`` at the
  g(r) cutoff, distances only: the floor of any vesin-based g(r)), and ``np.histogram`` of its
  distances with the edges given as an array (how it was binned before).

Rounds alternate the trees, so both see the same load. Writes JSON. NOT run in CI.

    python benchmarks/bench_analyze_dump.py --target-mb 25 --workdir /tmp/p --keep-dump \
        --workers gnnff_reader
    git archive 2aae876 python | tar -x -C /tmp/old
    python benchmarks/profile_analyze_dump.py --dump /tmp/p/bench.dump --baseline /tmp/old/python \
        --rounds 2 --out benchmarks/results/profile_analyze_dump.json
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from bench_analyze_dump import code_version  # one definition, next to the benchmark

HERE = os.path.dirname(os.path.abspath(__file__))

WORKER = r"""
import json, sys, time
sys.path.insert(0, SOURCE)
import numpy as np
from gnnff.stability import StabilityAnalysis, StabilityOptions
from gnnff.stability import pairs
T = time.process_time
vesin = pairs._import_vesin()  # import cost is not part of any step
analysis = StabilityAnalysis(PATH, options=StabilityOptions(rdf_every=RDF_EVERY))
t = T()
reader, first, thermo, dt, criteria = analysis._setup()
setup = T() - t
frame_criteria = [c for c in criteria if c.source == "frames"]
steps = {"read": 0.0, **{c.name: 0.0 for c in frame_criteria}, "other": 0.0}
search, histogram, n_pairs, n = 0.0, 0.0, 0, 0
neighbours = vesin.NeighborList(cutoff=R_MAX, full_list=False, n_threads=1)
edges = np.linspace(0.0, R_MAX, int(round(R_MAX / 0.05)) + 1)
frames = reader.frames()
while n < MAX_FRAMES:
    t = T()
    frame = next(frames, None)
    steps["read"] += T() - t
    if frame is None:
        break
    t = T()
    finite = not frame.has_nonfinite()
    steps["other"] += T() - t
    for criterion in frame_criteria:
        t = T()
        if finite or criterion.accepts_nonfinite:
            criterion.single_frame(frame)
        steps[criterion.name] += T() - t
    t = T()
    pairs.forget_pairs(frame)
    steps["other"] += T() - t
    # reference timings on the same frame (not part of the analysis)
    t = T()
    (d,) = neighbours.compute(
        np.ascontiguousarray(frame.positions), frame.cell, [bool(p) for p in frame.pbc], "d",
        copy=False,
    )
    search += T() - t
    t = T()
    np.histogram(d, bins=edges)
    histogram += T() - t
    n_pairs, n = len(d), n + 1
ms = lambda x: round(1e3 * x / n, 2)
total = sum(steps.values())
print(json.dumps({
    "frames": n, "n_atoms": first.n_atoms, "pairs_within_r_max": n_pairs,
    "setup_s": round(setup, 3),
    "ms_per_frame": {k: ms(v) for k, v in steps.items()},
    "analysis_ms_per_frame": ms(total),
    "analysis_over_reader": round(steps["read"] / total, 3),
    "reference_ms_per_frame": {"vesin_search_d_only": ms(search),
                               "np_histogram_array_edges": ms(histogram)},
}))
"""


def run_tree(source: str, path: str, frames: int, rdf_every: int, r_max: float) -> dict:
    code = (
        f"SOURCE, PATH, RDF_EVERY = {source!r}, {path!r}, {rdf_every}\n"
        f"R_MAX, MAX_FRAMES = {r_max}, {frames}\n" + WORKER
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["loadavg_1min_before"] = round(load, 2)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dump", required=True, help="a dump of bench_analyze_dump.py")
    parser.add_argument("--baseline", help="python/ folder of another source tree to compare")
    parser.add_argument("--frames", type=int, default=1000000, help="at most this many frames")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--rdf-every", type=int, default=1)
    parser.add_argument("--r-max", type=float, default=6.0, help="the g(r) cutoff (default 6 Å)")
    parser.add_argument("--out", default="profile_analyze_dump.json")
    args = parser.parse_args(argv)
    trees = {"current": os.path.join(HERE, "..", "python")}
    if args.baseline:
        trees["baseline"] = os.path.abspath(args.baseline)
    rounds = []
    for k in range(args.rounds):
        done = {}
        for name, source in trees.items() if k % 2 == 0 else reversed(trees.items()):
            done[name] = run_tree(source, args.dump, args.frames, args.rdf_every, args.r_max)
            print(f"round {k} {name}: {done[name]}", flush=True)
        rounds.append(done)
    report = {
        "dump": args.dump,
        "dump_bytes": os.path.getsize(args.dump),
        "rdf_every": args.rdf_every,
        "rounds": rounds,
        "command": " ".join(["python", os.path.relpath(sys.argv[0])] + sys.argv[1:]),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "code": code_version(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=1)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

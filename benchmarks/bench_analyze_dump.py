#!/usr/bin/env python
"""Benchmark: streaming dump reading and the full stability analysis vs ``ase.io.iread``.

Generates its own LAMMPS text dump (fcc Cu with thermal noise, ``id type x y z`` columns,
unsorted ids), then, each in a fresh subprocess so that peak memory is its own:

* ``gnnff_reader``   - iterate gnnff.stability.LammpsDumpReader (parse only);
* ``gnnff_analysis`` - StabilityAnalysis (reader + all criteria, RDF window 10, r_max 6 Å);
* ``ase_iread``      - iterate ase.io.iread(format="lammps-dump-text").

Writes frames/s, MB/s and peak RSS (ru_maxrss of the child) to JSON. NOT run in CI.

    python benchmarks/bench_analyze_dump.py                      # ~1 GB, 32k atoms
    python benchmarks/bench_analyze_dump.py --target-mb 100 --out bench.json
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

WORKERS = {
    "gnnff_reader": (
        "from gnnff.stability import LammpsDumpReader\n"
        "n = sum(1 for _ in LammpsDumpReader(PATH))\n"),
    "gnnff_analysis": (
        "from gnnff.stability import StabilityAnalysis\n"
        "n = StabilityAnalysis(PATH).run().results.n_frames\n"),
    "ase_iread": (
        "from ase.io import iread\n"
        "n = sum(1 for _ in iread(PATH, format='lammps-dump-text'))\n"),
}


def write_dump(path: str, n_cells: int, target_mb: float, seed: int = 0) -> dict:
    """fcc Cu, n_cells^3 cubic cells (4 n_cells^3 atoms), frames until the file has target_mb."""
    a = 3.61
    grid = np.stack(np.meshgrid(*[np.arange(n_cells)] * 3, indexing="ij"), -1).reshape(-1, 3)
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    lattice = ((grid[:, None, :] + basis[None]) * a).reshape(-1, 3)
    n_atoms, length = len(lattice), n_cells * a
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n_atoms + 1)
    step, n_frames = 0, 0
    with open(path, "w") as out:
        while out.tell() < target_mb * 1e6:
            order = rng.permutation(n_atoms)  # LAMMPS does not sort ids unless asked
            pos = (lattice + rng.normal(scale=0.08, size=lattice.shape)) % length
            out.write(f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{n_atoms}\n"
                      f"ITEM: BOX BOUNDS pp pp pp\n0 {length}\n0 {length}\n0 {length}\n"
                      "ITEM: ATOMS id type x y z\n")
            table = np.column_stack([ids[order], np.ones(n_atoms), pos[order]])
            np.savetxt(out, table, fmt="%d %d %.6f %.6f %.6f")
            step, n_frames = step + 100, n_frames + 1
    return {"n_atoms": n_atoms, "n_frames": n_frames, "bytes": os.path.getsize(path)}


def measure(worker: str, path: str, timeout: float) -> dict:
    python_dir = os.path.join(HERE, "..", "python")
    code = (f"import sys, time, resource\nsys.path.insert(0, {python_dir!r})\n"
            f"PATH = {path!r}\nt0 = time.perf_counter()\n" + WORKERS[worker] +
            "dt = time.perf_counter() - t0\n"
            "print(n, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout} s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1]}
    frames, seconds, max_rss_kb = proc.stdout.split()
    frames, seconds = int(frames), float(seconds)
    size_mb = os.path.getsize(path) / 1e6
    return {"frames": frames, "seconds": round(seconds, 3),
            "frames_per_s": round(frames / seconds, 3), "MB_per_s": round(size_mb / seconds, 2),
            "peak_rss_MB": round(int(max_rss_kb) / 1024, 1),
            "wall_s_incl_startup": round(time.perf_counter() - start, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=20,
                        help="fcc cells per edge (20 -> 32000 atoms)")
    parser.add_argument("--target-mb", type=float, default=1000.0, help="dump size (default 1 GB)")
    parser.add_argument("--workers", default=",".join(WORKERS), help="comma-separated subset")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per worker")
    parser.add_argument("--workdir", help="where the dump is written (default: a temp dir)")
    parser.add_argument("--out", default="bench_analyze_dump.json", help="JSON result file")
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="bench_dump_")
    path = os.path.join(workdir, "bench.dump")
    t0 = time.perf_counter()
    info = write_dump(path, args.cells, args.target_mb)
    info["write_s"] = round(time.perf_counter() - t0, 1)
    print(f"dump: {info}", flush=True)
    results = {}
    for worker in args.workers.split(","):
        results[worker] = measure(worker, path, args.timeout)
        print(f"{worker}: {results[worker]}", flush=True)
    report = {"dump": info, "results": results, "python": platform.python_version(),
              "machine": platform.machine(), "cpus": os.cpu_count(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=1)
    if not args.workdir:
        os.remove(path)
        os.rmdir(workdir)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

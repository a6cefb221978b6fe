#!/usr/bin/env python
"""Benchmark: streaming dump reading and the full stability analysis, on 1 and N MPI ranks.

Generates its own LAMMPS text dump (fcc Cu with thermal noise, ``id type x y z`` columns,
unsorted ids), then, each in a fresh subprocess (or ``mpirun -launcher fork -np N``) so that
peak memory is its own:

* ``gnnff_reader``   - iterate gnnff.stability.LammpsDumpReader (parse only);
* ``gnnff_analysis`` - StabilityAnalysis (reader + all criteria, RDF window 10, r_max 6 Å);
* ``ase_iread``      - iterate ase.io.iread(format="lammps-dump-text") (1 rank only).

With ``--ranks 1,2`` the gnnff workers also run under mpirun with 2 ranks (each rank its own
contiguous range of frames; time from a barrier before the work to one after it). Writes
frames/s, MB/s, the speed-up over 1 rank and the peak RSS (ru_maxrss) of every rank to JSON,
with the CPU seconds the rest of the machine used meanwhile (from /proc/stat: the load that
other jobs put on the machine during each measurement). ``--repeat N`` runs the whole set N
times, interleaved, so that 1 and 2 ranks are compared within each round. Every process runs
with OMP_NUM_THREADS=1. NOT run in CI.

    python benchmarks/bench_analyze_dump.py                      # ~1 GB, 32k atoms
    python benchmarks/bench_analyze_dump.py --target-mb 150 --workdir /tmp/b --keep-dump
    /work/tools/timed.sh python benchmarks/bench_analyze_dump.py --dump /tmp/b/bench.dump \
        --ranks 1,2 --repeat 2 --out benchmarks/results/bench_analyze_dump_mpi.json
"""

import argparse
import json
import os
import platform
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
        "reader = LammpsDumpReader(PATH)\n"
        "first = (comm.exscan(reader.count_frames(rank, size)) or 0) if comm else 0\n"
        "n = sum(1 for _ in reader.frames(rank, size, first))\n"
        "n = comm.reduce(n) if comm else n\n"
    ),
    "gnnff_analysis": (
        "from gnnff.stability import StabilityAnalysis, StabilityOptions\n"
        "report = StabilityAnalysis(PATH, options=StabilityOptions(rdf_every=RDF_EVERY))"
        ".run(comm).results\n"
        "n = report.n_frames if rank == 0 else 0\n"
    ),
    "ase_iread": (
        "from ase.io import iread\nn = sum(1 for _ in iread(PATH, format='lammps-dump-text'))\n"
    ),
}
MPI_WORKERS = ("gnnff_reader", "gnnff_analysis")


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
            out.write(
                f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{n_atoms}\n"
                f"ITEM: BOX BOUNDS pp pp pp\n0 {length}\n0 {length}\n0 {length}\n"
                "ITEM: ATOMS id type x y z\n"
            )
            table = np.column_stack([ids[order], np.ones(n_atoms), pos[order]])
            np.savetxt(out, table, fmt="%d %d %.6f %.6f %.6f")
            step, n_frames = step + 100, n_frames + 1
    return {"n_atoms": n_atoms, "n_frames": n_frames, "bytes": os.path.getsize(path)}


def describe_dump(path: str) -> dict:
    """n_atoms, n_frames and bytes of a dump written earlier by write_dump."""
    with open(path, "rb") as handle:
        head = [next(handle) for _ in range(4)]
        n_frames = 1 + sum(
            chunk.count(b"ITEM: TIMESTEP") for chunk in iter(lambda: handle.read(1 << 22), b"")
        )
    return {"n_atoms": int(head[3]), "n_frames": n_frames, "bytes": os.path.getsize(path)}


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat; 0 elsewhere)."""
    try:
        with open("/proc/stat") as handle:
            fields = [float(x) for x in handle.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measure(worker: str, path: str, timeout: float, ranks: int = 1, rdf_every: int = 1) -> dict:
    python_dir = os.path.join(HERE, "..", "python")
    code = (
        "import sys, time, resource, json\n"
        f"sys.path.insert(0, {python_dir!r})\n"
        f"PATH, RANKS, RDF_EVERY = {path!r}, {ranks}, {rdf_every}\n"
        "if RANKS > 1:\n"
        "    from mpi4py import MPI\n"
        "    comm = MPI.COMM_WORLD\n"
        "    rank, size = comm.Get_rank(), comm.Get_size()\n"
        "    comm.Barrier()\n"
        "else:\n"
        "    comm, rank, size = None, 0, 1\n"
        "t0 = time.perf_counter()\n" + WORKERS[worker] + "comm.Barrier() if comm else None\n"
        "dt = time.perf_counter() - t0\n"
        "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "mine = [usage.ru_maxrss, usage.ru_utime + usage.ru_stime]\n"
        "everyone = comm.gather(mine) if comm else [mine]\n"
        "if rank == 0:\n"
        "    print(json.dumps([n, dt, everyone]))\n"
    )
    command = [sys.executable, "-c", code]
    if ranks > 1:
        command = [
            os.path.join(os.path.dirname(sys.executable), "mpirun"),
            "-launcher",
            "fork",
            "-np",
            str(ranks),
        ] + command
    env = dict(os.environ, OMP_NUM_THREADS="1")
    load_before, busy_before = os.getloadavg()[0], busy_cpu_s()
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout} s"}
    wall = time.perf_counter() - start
    busy = busy_cpu_s() - busy_before
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1]}
    frames, seconds, per_rank = json.loads(proc.stdout.strip().splitlines()[-1])
    size_mb = os.path.getsize(path) / 1e6
    # CPU seconds of each rank (whole process, start-up included): on a shared machine the wall
    # time depends on the other jobs; the CPU time a rank needs does not
    ours = sum(r[1] for r in per_rank)
    return {
        "ranks": ranks,
        "frames": frames,
        "seconds": round(seconds, 3),
        "frames_per_s": round(frames / seconds, 3),
        "MB_per_s": round(size_mb / seconds, 2),
        "peak_rss_MB_per_rank": [round(r[0] / 1024, 1) for r in per_rank],
        "cpu_s_per_rank": [round(r[1], 2) for r in per_rank],
        "wall_s_incl_startup": round(wall, 3),
        # cores kept busy by other jobs meanwhile (machine busy CPU s minus ours, per wall s)
        "other_jobs_cores": round(max(busy - ours, 0.0) / wall, 2),
        "loadavg_1min_before": round(load_before, 2),
    }


def versions() -> dict:
    """Package versions from their metadata (no import: vesin would import torch, mpi4py
    would start MPI in this process) and the MPI library that mpirun belongs to."""
    from importlib import metadata

    found = {}
    for name in ("numpy", "vesin", "ase", "mpi4py"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    mpirun = os.path.join(os.path.dirname(sys.executable), "mpirun")
    try:
        out = subprocess.run([mpirun, "--version"], capture_output=True, text=True, timeout=30)
        line = next((x for x in out.stdout.splitlines() if "Version:" in x), out.stdout[:80])
        found["mpirun"] = "hydra (MPICH) " + line.split(":", 1)[-1].strip()
    except (OSError, subprocess.SubprocessError):
        found["mpirun"] = None
    return found


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor()


def summarise(runs: list) -> dict:
    """The fastest run of a worker (least disturbed by other jobs) and every run's numbers."""
    done = [r for r in runs if "seconds" in r]
    if not done:
        return runs[0]
    best = dict(min(done, key=lambda r: r["seconds"]))
    best["seconds_all_runs"] = [r["seconds"] for r in done]
    best["cpu_s_per_rank_all_runs"] = [r["cpu_s_per_rank"] for r in done]
    best["other_jobs_cores_all_runs"] = [r["other_jobs_cores"] for r in done]
    return best


def code_version() -> str:
    """The commit of this checkout, and '+changes' when python/gnnff/stability differs from it."""
    root = os.path.join(HERE, "..")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "python/gnnff/stability"], cwd=root
        ).returncode
    except OSError:
        return "unknown"
    return commit + ("+changes" if dirty else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cells", type=int, default=20, help="fcc cells per edge (20 -> 32000 atoms)"
    )
    parser.add_argument("--target-mb", type=float, default=1000.0, help="dump size (default 1 GB)")
    parser.add_argument(
        "--dump", help="use this dump (written before by this script) instead of writing one"
    )
    parser.add_argument("--keep-dump", action="store_true", help="do not delete the dump")
    parser.add_argument("--workers", default=",".join(WORKERS), help="comma-separated subset")
    parser.add_argument(
        "--ranks",
        default="1",
        help="comma-separated rank counts for the gnnff workers, e.g. 1,2 (mpirun -launcher fork)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of all measurements, interleaved"
    )
    parser.add_argument(
        "--rdf-every", type=int, default=1, help="analysis: RDF on every N-th frame only"
    )
    parser.add_argument(
        "--note", default="", help="free text stored in the JSON (e.g. the load of the machine)"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per worker")
    parser.add_argument("--workdir", help="where the dump is written (default: a temp dir)")
    parser.add_argument("--out", default="bench_analyze_dump.json", help="JSON result file")
    args = parser.parse_args(argv)
    if args.dump:
        path = args.dump
        info = describe_dump(path)
    else:
        workdir = args.workdir or tempfile.mkdtemp(prefix="bench_dump_")
        path = os.path.join(workdir, "bench.dump")
        t0 = time.perf_counter()
        info = write_dump(path, args.cells, args.target_mb)
        info["write_s"] = round(time.perf_counter() - t0, 1)
    print(f"dump: {info}", flush=True)
    load_before = os.getloadavg()
    runs = {}
    for round_ in range(args.repeat):
        for worker in args.workers.split(","):
            for ranks in [int(r) for r in args.ranks.split(",")]:
                if ranks > 1 and worker not in MPI_WORKERS:
                    continue
                key = worker if ranks == 1 else f"{worker}_{ranks}ranks"
                runs.setdefault(key, []).append(
                    measure(worker, path, args.timeout, ranks, args.rdf_every)
                )
                print(f"round {round_} {key}: {runs[key][-1]}", flush=True)
    results = {key: summarise(value) for key, value in runs.items()}
    for key, result in list(results.items()):  # speed-up over the same worker on 1 rank
        base_key = key.split("_")[0] + "_" + key.split("_")[1]
        base = results.get(base_key)
        if "ranks" in key and base and "seconds" in base and "seconds" in result:
            # fastest against fastest, and round by round (each round ran 1 and N ranks in turn)
            result["speedup_vs_1_rank"] = round(base["seconds"] / result["seconds"], 2)
            result["speedup_vs_1_rank_per_round"] = [
                round(a["seconds"] / b["seconds"], 2)
                for a, b in zip(runs[base_key], runs[key])
                if "seconds" in a and "seconds" in b
            ]
            # what the wall-time speed-up would be with one free core per rank
            result["cpu_bound_speedup_vs_1_rank"] = round(
                base["cpu_s_per_rank"][0] / max(result["cpu_s_per_rank"]), 2
            )
    reader, analysis = results.get("gnnff_reader", {}), results.get("gnnff_analysis", {})
    if "frames_per_s" in reader and "frames_per_s" in analysis:
        results["analysis_over_reader_1_rank"] = round(
            analysis["frames_per_s"] / reader["frames_per_s"], 3
        )
        results["analysis_over_reader_1_rank_cpu"] = round(
            reader["cpu_s_per_rank"][0] / analysis["cpu_s_per_rank"][0], 3
        )
    report = {
        "dump": info,
        "results": results,
        "rdf_every": args.rdf_every,
        "repeat": args.repeat,
        "note": args.note,
        "command": " ".join(["python"] + [os.path.relpath(sys.argv[0])] + sys.argv[1:]),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "versions": versions(),
        "code": code_version(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=1)
    if not args.dump and not args.keep_dump:
        os.remove(path)
        if not args.workdir:
            os.rmdir(workdir)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time ``gnnff data generate`` per data set and size; writes JSON. NOT run in CI.

    python benchmarks/bench_datagen.py -o benchmarks/results/datagen.json          # small sizes
    python benchmarks/bench_datagen.py --estimate-paper ...   # + paper-size estimates
    python benchmarks/bench_datagen.py --paper si sio ...      # + measured paper sizes

Small sizes are generated in full and timed (wall clock, all cores). Paper sizes are either
generated in full (``--paper NAME``) or *estimated* (``--estimate-paper``): for every
configuration family one trajectory of the paper plan is run with at most 10 sampled frames,
its seconds per MD step are measured, and the plan's total step count is multiplied out and
divided by the number of workers (independent trajectories scale ~linearly on the cores).
The load average is recorded: other jobs on the machine slow every number down.
"""

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time

DEFAULT_SETS = ["si", "sio", "md17:ethanol", "md17:aspirin", "pretrain-molecules"]


def task_steps(task) -> int:
    return (
        sum(int(s) for _, _, s in task.anneal)
        + task.n_equil_steps
        + task.n_frames * task.interval_steps
    )


def time_generate(name, size, workers, seed=0):
    from gnnff.datagen import generate

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        card = generate(name, size, seed, out, workers=workers, progress=False)
        wall = time.perf_counter() - start
    frames = sum(s["frames"] for s in card["sets"].values())
    reference = sum(r["frames"] for r in card["reference_md"])
    return {
        "name": name,
        "size": size,
        "measured": True,
        "wall_s": round(wall, 2),
        "frames": frames,
        "reference_frames": reference,
        "atoms_per_frame": sorted({n for s in card["sets"].values() for n in s["atoms_per_frame"]}),
    }


def timed_task(task):
    """Runs in a pool worker (one OpenMP thread): seconds spent on the trajectory itself,
    without process start-up."""
    from gnnff.datagen.tasks import run_task

    start = time.perf_counter()
    run_task(task)
    return time.perf_counter() - start


def estimate_paper(name, workers):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from gnnff.datagen import catalog, generator
    from gnnff.datagen.tasks import single_thread_worker

    plan = catalog.make_plan(name, "paper")
    tasks = generator.build_tasks(plan, 0)
    probes = {}
    for task in tasks:
        probes.setdefault(task.family, dataclasses.replace(task, n_frames=min(task.n_frames, 10)))
    probe_list = list(probes.values())
    start = time.perf_counter()
    # one worker: per-step cost of one trajectory on one core
    os.environ["OMP_NUM_THREADS"] = "1"
    with ProcessPoolExecutor(
        1, mp_context=mp.get_context("spawn"), initializer=single_thread_worker
    ) as pool:
        timings = list(pool.map(timed_task, probe_list))
    seconds_per_step = {p.family: t / task_steps(p) for p, t in zip(probe_list, timings)}
    core_seconds = sum(task_steps(t) * seconds_per_step[t.family] for t in tasks)
    return {
        "name": name,
        "size": "paper",
        "measured": False,
        "estimated_wall_s": round(core_seconds / workers, 1),
        "estimated_core_s": round(core_seconds, 1),
        "frames": sum(t.n_frames for t in tasks if t.split != "reference"),
        "reference_frames": sum(t.n_frames for t in tasks if t.split == "reference"),
        "md_steps_total": sum(task_steps(t) for t in tasks),
        "trajectories": len(tasks),
        "seconds_per_md_step": {k: round(v, 6) for k, v in seconds_per_step.items()},
        "probe_wall_s": round(time.perf_counter() - start, 1),
        "method": "per-family probe trajectory (<=10 frames) on one worker, "
        "scaled by total MD steps / workers",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", default="benchmarks/results/datagen.json")
    parser.add_argument("--sets", nargs="*", default=DEFAULT_SETS)
    parser.add_argument("--paper", nargs="*", default=[], help="paper sizes to generate fully")
    parser.add_argument("--estimate-paper", action="store_true")
    parser.add_argument("-j", "--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()

    results = {
        "benchmark": "datagen",
        "cpu_count": os.cpu_count(),
        "workers": args.workers,
        "platform": platform.platform(),
        "load_average_start": os.getloadavg(),
        "runs": [],
    }
    for name in args.sets:
        results["runs"].append(time_generate(name, "small", args.workers))
        print(json.dumps(results["runs"][-1]), flush=True)
    for name in args.paper:
        results["runs"].append(time_generate(name, "paper", args.workers))
        print(json.dumps(results["runs"][-1]), flush=True)
    if args.estimate_paper:
        for name in args.sets:
            if name in args.paper:
                continue
            results["runs"].append(estimate_paper(name, args.workers))
            print(json.dumps(results["runs"][-1]), flush=True)
    results["load_average_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

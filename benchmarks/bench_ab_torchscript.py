"""A/B of two gnnff source trees' exported models, both timed in one process, interleaved.

    git archive <commit> python | tar -x -C /tmp/base        # the baseline source tree
    python benchmarks/bench_ab_torchscript.py --baseline /tmp/base/python \
        [--configs gemnet_medium_aspirin ...] [--pairs 60] [--calls 5] [--out ...json]

For a model change that touches only the TorchScript call (the MD step's cost), this is a finer
A/B than benchmarks/bench_ab.py on a shared machine: each tree scripts and saves the model of a
configuration (bench_ab's CONFIGS and ``build``: same seed, weights, atoms), then this process
loads both files and times them on the same graph, alternating which goes first, in --pairs
pairs of --calls calls each, in process CPU time (other processes' load changes both sides of a
pair alike). Reported per configuration: the median ms per call of each side, the median and
quartiles of the per-pair ratio baseline / new, and the largest force difference between the
two files (0 for a change meant to keep the numbers bit for bit).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import bench_ab

SAVE = r"""
import json, sys
import torch
name, options, system, r_max, here, path = json.loads(sys.argv[1])
sys.path.insert(0, here)
import bench_ab
model, _ = bench_ab.build(name, options, system, r_max)
torch.jit.save(torch.jit.script(model.eval()), path)
"""


def save_scripted(src: str, config, path: str) -> None:
    env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    spec = json.dumps(list(config) + [bench_ab.HERE, path])
    subprocess.run([sys.executable, "-c", SAVE, spec], env=env, check=True)


def interleaved(models: dict, graph: dict, pairs: int, calls: int) -> dict:
    """{side: [ms per call of each pair]}, the first side of a pair alternating."""
    sides = list(models)
    for model in models.values():
        for _ in range(10):  # warm-up: the executor's first calls build its plans
            model(dict(graph))
    times = {side: [] for side in sides}
    for i in range(pairs):
        for side in sides if i % 2 == 0 else sides[::-1]:
            start = time.process_time()
            for _ in range(calls):
                models[side](dict(graph))
            times[side].append(1e3 * (time.process_time() - start) / calls)
    return times


def main(argv=None):
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="python/ folder of the baseline tree")
    parser.add_argument("--new", default=bench_ab.SRC, help="python/ folder of the new tree")
    parser.add_argument(
        "--configs", nargs="+", default=["gemnet_medium_aspirin"], choices=list(bench_ab.CONFIGS)
    )
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--label", default="", help="free text stored with the results")
    parser.add_argument(
        "--out", default=os.path.join(bench_ab.HERE, "results", "ab_torchscript.json")
    )
    args = parser.parse_args(argv)
    bench_ab.unspecialised_torchscript()
    torch.set_num_threads(1)
    # the saved models call gnnff's compiled operators (torch.ops.gnnff.*): register them
    # before torch.jit.load reads a file that names them
    from gnnff import ops

    ops.load()
    load_before = list(os.getloadavg())
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            config = bench_ab.CONFIGS[name]
            models = {}
            for side, src in (("baseline", args.baseline), ("new", args.new)):
                path = os.path.join(tmp, f"{name}_{side}.pt")
                save_scripted(src, config, path)
                models[side] = torch.jit.load(path)
            _, graph = bench_ab.build(*config)
            forces = [models[side](dict(graph))["forces"].detach() for side in models]
            times = interleaved(models, graph, args.pairs, args.calls)
            ratios = sorted(b / n for b, n in zip(times["baseline"], times["new"]))
            summary[name] = {
                "ms_per_call_median": {side: statistics.median(t) for side, t in times.items()},
                "ratio_baseline_over_new": {
                    "q25": ratios[len(ratios) // 4],
                    "median": statistics.median(ratios),
                    "q75": ratios[(3 * len(ratios)) // 4],
                },
                "max_force_difference": float((forces[0] - forces[1]).abs().max()),
                "atoms": int(forces[0].shape[0]),
                "edges": int(graph["edge_index"].shape[1]),
                "raw_ms_per_call": times,
            }
            row = summary[name]
            print(
                f"{name}: {row['ms_per_call_median']['baseline']:.2f} -> "
                f"{row['ms_per_call_median']['new']:.2f} ms per call, paired ratio median "
                f"{row['ratio_baseline_over_new']['median']:.3f} "
                f"[{row['ratio_baseline_over_new']['q25']:.3f}, "
                f"{row['ratio_baseline_over_new']['q75']:.3f}], "
                f"max |dF| {row['max_force_difference']:.3g}",
                flush=True,
            )
    report = bench_ab.report_header("bench_ab_torchscript", args, torch.__version__, load_before)
    report.update(pairs=args.pairs, calls_per_pair=args.calls, summary=summary)
    bench_ab.write_json(report, args.out)


if __name__ == "__main__":
    main()

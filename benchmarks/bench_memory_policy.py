"""Training steps with glibc's malloc defaults vs ``training.memory: keep`` (not a test).

Each (model, policy) runs in a fresh process (the policy is process-wide and cannot be undone):
a batch of rattled diamond Si cells (bench_decorrelation.py's make_batch), float32, 1 thread,
forward with forces, energy + 100 x force MSE, backward, Adam. ``keep`` calls
gnnff.memory.keep_freed_memory() before the first step, as the trainer does; ``release``
leaves glibc's defaults. Reported per process: CPU time per step (min, median) and minor page
faults per step (median, from getrusage); per round the ratio release / keep of the medians.
Processes of the two policies alternate, the order flipping each round.

    python benchmarks/bench_memory_policy.py --models allegro:issue13 allegro:medium \
        nequip:medium --rounds 4 --steps 20 --out benchmarks/results/memory_policy_training.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_ab import report_header, write_json  # noqa: E402
from stability_common import cpu_name  # noqa: E402

from gnnff.memory import USER_SETTINGS  # noqa: E402

# "issue13": the equal-size comparison with nequip-allegro of issue 13 (docs/benchmarks.md)
ISSUE13 = dict(r_max=5.0, n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False)

WORKER = r"""
import json, os, resource, sys, time
sys.path.insert(0, {here!r})
import torch
torch.set_num_threads(1)
from bench_decorrelation import SIZES, make_batch, train_step
from gnnff.memory import apply_memory_policy
from gnnff.models import build_model
name, size, policy, steps, repeat = {name!r}, {size!r}, {policy!r}, {steps}, {repeat}
done = apply_memory_policy(policy)
kwargs = {issue13!r} if size == "issue13" else SIZES[size][name]
torch.manual_seed(0)
model = build_model(name, type_names=["Si"], **kwargs).float().train()
batch = make_batch(model, 4, repeat, torch.float32)
optimizer = torch.optim.Adam(model.parameters(), 1e-3)
for _ in range(2):
    train_step(model, optimizer, batch, None)
cpu, faults = [], []
for _ in range(steps):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.process_time()
    train_step(model, optimizer, batch, None)
    cpu.append(time.process_time() - t0)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(dict(policy_done=done, cpu_ms=[1e3 * c for c in cpu], faults=faults,
                      atoms=int(batch["pos"].shape[0]), edges=int(batch["edge_index"].shape[1]))))
"""


def run_worker(name: str, size: str, policy: str, steps: int, repeat: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}
    env["OMP_NUM_THREADS"] = "1"
    code = WORKER.format(
        here=HERE, name=name, size=size, policy=policy, steps=steps, repeat=repeat, issue13=ISSUE13
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["cpu_ms_min"] = min(result["cpu_ms"])
    result["cpu_ms_median"] = statistics.median(result["cpu_ms"])
    result["faults_median"] = statistics.median(result["faults"])
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["allegro:issue13", "allegro:medium", "nequip:medium"],
        help="name:size, size one of bench_decorrelation.py's SIZES or issue13 (allegro)",
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per process")
    parser.add_argument(
        "--repeat", type=int, default=2, help="diamond cells per side per structure"
    )
    parser.add_argument("--label", default="memory policy")
    parser.add_argument(
        "--out", default=os.path.join(HERE, "results", "memory_policy_training.json")
    )
    args = parser.parse_args(argv)
    args.baseline, args.new = "release (glibc defaults)", "keep (gnnff.memory)"
    import torch

    report = report_header(
        "training step: memory release vs keep", args, torch.__version__, list(os.getloadavg())
    )
    report["machine"]["cpu"] = cpu_name()
    report["models"] = {}
    for spec in args.models:
        name, _, size = spec.partition(":")
        rounds = []
        for k in range(args.rounds):
            order = ("release", "keep") if k % 2 == 0 else ("keep", "release")
            runs = {
                p: run_worker(name, size or "default", p, args.steps, args.repeat) for p in order
            }
            ratio = runs["release"]["cpu_ms_median"] / runs["keep"]["cpu_ms_median"]
            rounds.append(
                {"order": list(order), "runs": runs, "median_ratio_release_over_keep": ratio}
            )
            print(
                f"{spec} round {k}: release {runs['release']['cpu_ms_median']:.1f} ms "
                f"({runs['release']['faults_median']:.0f} faults/step), keep "
                f"{runs['keep']['cpu_ms_median']:.1f} ms ({runs['keep']['faults_median']:.0f}); "
                f"ratio {ratio:.2f}",
                flush=True,
            )
        ratios = sorted(r["median_ratio_release_over_keep"] for r in rounds)
        report["models"][spec] = {
            "rounds": rounds,
            "ratio_min_median_max": [ratios[0], statistics.median(ratios), ratios[-1]],
            "edges": rounds[0]["runs"]["keep"]["edges"],
            "atoms": rounds[0]["runs"]["keep"]["atoms"],
        }
    report["machine"]["load_average_after"] = list(os.getloadavg())
    report["date_utc_end"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

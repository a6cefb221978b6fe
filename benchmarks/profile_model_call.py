"""Where an exported model's call (energy + forces, as pair_style gnnff makes it) spends its time.

The model and LAMMPS-like graph of bench_freeze.py (issue-13 size allegro / nequip on 512
diamond Si atoms with their ghosts, or the LJ model on fcc Ar), exported and loaded as
TorchScript, run unspecialised as the C++ loader runs it on the CPU, 1 thread; after warm-up
calls, ``--calls`` calls under torch.profiler. Written: the operators by self CPU time, grouped
by input shapes (which call of an op it is), per call. Shares are what to read on a loaded
machine; the absolute times are inflated by the profiler and by other jobs.

    python benchmarks/profile_model_call.py --model allegro --calls 5 \
        --out benchmarks/results/profile_allegro_call.json
"""

import argparse
import os
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_ab import write_json  # noqa: E402
from bench_freeze import setup  # noqa: E402

from gnnff.export import export_model, use_unspecialised_graphs_on_cpu  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", choices=["allegro", "nequip", "lj", "pair_mlp"], default="allegro"
    )
    parser.add_argument("--calls", type=int, default=5, help="profiled calls")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--top", type=int, default=30, help="rows written")
    parser.add_argument("--out", default=None, help="JSON (default: print only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    use_unspecialised_graphs_on_cpu()  # as cpp/src/model.cpp runs it
    model, data = setup(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.pt")
        export_model(model, path)
        module = torch.jit.load(path)
    for _ in range(args.warmup):
        module(dict(data))
    t0 = time.process_time()
    for _ in range(args.calls):
        module(dict(data))
    cpu_ms = 1e3 * (time.process_time() - t0) / args.calls
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True
    ) as prof:
        for _ in range(args.calls):
            module(dict(data))
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [
        {
            "op": e.key,
            "self_ms_per_call": e.self_cpu_time_total / 1e3 / args.calls,
            "share": e.self_cpu_time_total / total,
            "calls_per_call": e.count / args.calls,
            "input_shapes": str(e.input_shapes)[:200],
        }
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.top]
    ]
    for row in rows:
        print(
            f"{row['op']:28s} {100 * row['share']:5.1f} % {row['self_ms_per_call']:7.2f} ms/call "
            f"x{row['calls_per_call']:g} {row['input_shapes'][:90]}"
        )
    report = {
        "benchmark": "profile of one exported model call",
        "model": args.model,
        "nodes": int(data["pos"].shape[0]),
        "edges": int(data["edge_index"].shape[1]),
        "cpu_ms_per_call_unprofiled": cpu_ms,
        "profiled_self_ms_per_call": total / 1e3 / args.calls,
        "rows": rows,
        "command": " ".join(["python"] + sys.argv),
        "torch": torch.__version__,
        "load_average": list(os.getloadavg()),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.out:
        write_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

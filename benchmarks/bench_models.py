"""CPU inference time per atom of the Allegro-style and NequIP-style models at several sizes.

    python benchmarks/bench_models.py [--presets small medium] [--threads 1] [--repeats 10]
                                      [--dtype float32] [--out benchmarks/results/models.json]

What is timed: one call of the TorchScript-compiled ForceModel (as `gnnff export` writes it and
pair_style gnnff runs it), eval mode, on a prebuilt periodic graph: energy, forces and virial
(autograd included); median of --repeats calls after 3 warm-up calls; reported in microseconds
per atom. Systems: rattled diamond Si supercells (64 and 216 atoms, a = 5.43 Å), r_max = 4 Å
(~16 neighbours per atom). Graph building (vesin) is not timed. The machine (CPU model, torch
threads, load average before and after) is written with the numbers: other processes on a shared
machine inflate the times, so compare models within one run.
"""

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch
from ase.build import bulk

from gnnff.data.graph import atoms_to_graph
from gnnff.models.registry import build_model

R_MAX = 4.0
TYPES = ["Si"]
MODELS = ("allegro", "nequip")


def systems():
    rng = np.random.default_rng(0)
    out = {}
    for reps in (2, 3):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat((reps,) * 3)
        atoms.positions += 0.05 * rng.standard_normal(atoms.positions.shape)
        out[f"si_{len(atoms)}"] = atoms
    return out


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def time_model(scripted, data, repeats: int) -> float:
    for _ in range(3):
        scripted(dict(data))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        scripted(dict(data))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "medium", "paper"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--out", default="benchmarks/results/models.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    machine = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_before": list(os.getloadavg()),
    }
    results = []
    for preset in args.presets:
        for name in MODELS:
            torch.manual_seed(0)
            model = build_model(name, type_names=TYPES, r_max=R_MAX, preset=preset).to(dtype).eval()
            scripted = torch.jit.script(model)
            n_params = sum(p.numel() for p in model.parameters())
            for system, atoms in systems().items():
                data = atoms_to_graph(atoms, TYPES, R_MAX, dtype=dtype)
                seconds = time_model(scripted, data, args.repeats)
                row = {
                    "model": name,
                    "preset": preset,
                    "parameters": n_params,
                    "interaction_range_A": model.interaction_range,
                    "system": system,
                    "atoms": len(atoms),
                    "edges": int(data["edge_index"].shape[1]),
                    "seconds_per_call": seconds,
                    "us_per_atom": 1e6 * seconds / len(atoms),
                }
                results.append(row)
                print(
                    f"{name:8s} {preset:7s} {n_params:8d} params  {system:7s} "
                    f"{row['us_per_atom']:9.1f} us/atom",
                    flush=True,
                )
    machine["load_average_after"] = list(os.getloadavg())
    report = {
        "benchmark": "bench_models",
        "dtype": args.dtype,
        "r_max_A": R_MAX,
        "repeats": args.repeats,
        "machine": machine,
        "results": results,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

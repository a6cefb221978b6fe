"""CPU inference time per atom: GemNet-T against the Allegro-style and NequIP-style models.

    python benchmarks/bench_gemnet.py [--threads 1] [--repeats 10] [--out benchmarks/results/gemnet.json]

What is timed: one call of the TorchScript-compiled ForceModel (as `gnnff export` writes it and
pair_style gnnff runs it), eval mode, float32, on a prebuilt graph: energy, forces and virial
(autograd included), median over --repeats calls after 2 warm-up calls. Reported as
microseconds per atom. Models are compared in tiers of similar parameter count, all with
r_max = 5 Å. Systems: one aspirin molecule (21 atoms, no cell) and a periodic box of 4 aspirins
(84 atoms, 12 Å cube). The machine (CPU, threads, load average) is recorded with the numbers:
other processes on a shared machine inflate times, so compare models within one run.
"""

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch
from ase import Atoms
from ase.io import read

from gnnff.data.graph import atoms_to_graph
from gnnff.models.registry import available_models, build_model

R_MAX = 5.0
TYPES = ["H", "C", "O"]
# tiers of comparable size (parameter counts are measured and written to the JSON)
TIERS = {
    "small": [
        ("gemnet_t", {"preset": "small", "r_max": R_MAX}),
        ("nequip", {"preset": "small"}),
        ("allegro", {"preset": "medium"}),
    ],
    "medium": [
        ("gemnet_t", {"preset": "medium"}),
        ("nequip", {"preset": "medium"}),
        ("allegro", {"preset": "paper"}),
    ],
    "paper": [("gemnet_t", {"preset": "md17"}), ("nequip", {"preset": "paper"})],
}


def aspirin() -> Atoms:
    import gnnff.datagen

    path = os.path.join(os.path.dirname(gnnff.datagen.__file__), "structures", "aspirin.xyz")
    return read(path)


def aspirin_box(n_side: int = 2, box: float = 12.0, seed: int = 0) -> Atoms:
    """n_side^2 aspirins on a square grid in the xy plane, random orientations, periodic cube."""
    rng = np.random.default_rng(seed)
    mol = aspirin()
    mol.positions -= mol.positions.mean(axis=0)
    out = Atoms(cell=[box] * 3, pbc=True)
    for i in range(n_side):
        for j in range(n_side):
            copy = mol.copy()
            q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
            copy.positions = copy.positions @ q.T + np.array(
                [(i + 0.5) * box / n_side, (j + 0.5) * box / n_side, box / 2]
            )
            out += copy
    return out


def time_model(scripted, graph, repeats: int) -> float:
    for _ in range(2):
        scripted(dict(graph))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        scripted(dict(graph))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_1_5_15": list(os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tiers", nargs="*", default=list(TIERS))
    parser.add_argument("--out", default="benchmarks/results/gemnet.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    systems = {"aspirin_21": aspirin(), "aspirin_box_84": aspirin_box()}
    results = []
    for tier in args.tiers:
        for name, options in TIERS[tier]:
            if name not in available_models():
                results.append(
                    {"tier": tier, "model": name, "skipped": "not registered in this checkout"}
                )
                continue
            options = dict({"r_max": R_MAX}, **options)
            torch.manual_seed(0)
            try:
                model = build_model(name, type_names=TYPES, **options).float().eval()
                scripted = torch.jit.script(model)
            except Exception as err:  # another model's bug must not lose the other numbers
                results.append(
                    {
                        "tier": tier,
                        "model": name,
                        "options": options,
                        "error": f"{type(err).__name__}: {err}"[:500],
                    }
                )
                print(json.dumps(results[-1]))
                continue
            row = {
                "tier": tier,
                "model": name,
                "options": options,
                "parameters": sum(p.numel() for p in model.parameters()),
                "interaction_range_A": model.interaction_range,
            }
            for label, atoms in systems.items():
                graph = atoms_to_graph(atoms, TYPES, R_MAX, dtype=torch.float32)
                seconds = time_model(scripted, graph, args.repeats)
                row[label] = {
                    "atoms": len(atoms),
                    "edges": int(graph["edge_index"].shape[1]),
                    "ms_per_call": 1e3 * seconds,
                    "us_per_atom": 1e6 * seconds / len(atoms),
                }
            results.append(row)
            print(json.dumps(row))
    report = {
        "benchmark": "bench_gemnet",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "dtype": "float32",
        "repeats": args.repeats,
        "results": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

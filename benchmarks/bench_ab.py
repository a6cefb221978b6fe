"""A/B speed of two gnnff source trees on the same models, interleaved, as ratios.

    git archive <commit> python | tar -x -C /tmp/base        # the baseline source tree
    python benchmarks/bench_ab.py --baseline /tmp/base/python [--rounds 3] [--configs ...]
                                  [--out benchmarks/results/ab_fused_tp.json]

Each round runs, for every configuration, one worker process per tree (baseline, then this
checkout's python/), alternating, so that a change in machine load hits both sides alike. A
worker builds the model with torch.manual_seed(0) (same weights in both trees), 1 torch thread,
float32, on a rattled diamond-Si supercell (GemNet-T: one aspirin molecule, or four in a
periodic 12 Å box, as benchmarks/bench_gemnet.py builds them), and times
- ``md``: the TorchScript ForceModel call (energy, forces, virial), median of --repeats calls,
  unspecialised as pair_style gnnff runs it on the CPU (``GNNFF_TORCHSCRIPT_SPECIALIZE=1``:
  torch's default),
- ``train``: one optimiser step of an energy + force loss (eager, double backward),
reporting seconds per call. The ratio baseline / new is reported per round, with min / median
over rounds. Absolute times on a shared machine are unreliable; the ratio within a round is
what the numbers mean.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "python")

# name -> (model, builder options, system: diamond-Si supercell repeats or a bench_gemnet
# system, r_max)
CONFIGS = {
    # issue 13's "equal size": r_max 5 A, 2 layers, l_max 1, 32 scalar / 16 tensor channels
    "allegro_issue13": (
        "allegro",
        dict(n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False),
        3,
        5.0,
    ),
    "nequip_issue13": ("nequip", dict(n_layers=2, l_max=1, num_features=32, parity=False), 3, 5.0),
    "allegro_small": ("allegro", dict(preset="small"), 3, 4.0),
    "nequip_small": ("nequip", dict(preset="small"), 3, 4.0),
    "allegro_medium": ("allegro", dict(preset="medium"), 2, 4.0),
    "nequip_medium": ("nequip", dict(preset="medium"), 2, 4.0),
    "allegro_paper": ("allegro", dict(preset="paper"), 2, 4.0),
    "nequip_paper": ("nequip", dict(preset="paper"), 2, 4.0),
    # issue 13's equal size on issue 13's 512-atom deck (14,336 edges, as in MD)
    "allegro_issue13_512": (
        "allegro",
        dict(n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False),
        4,
        5.0,
    ),
    # pair_mlp with its default options on the 512-atom deck of the thin-framework benchmark
    "pair_mlp": ("pair_mlp", dict(), 4, 4.0),
    # GemNet-T on the molecule of the claims study's Experiment 2 (r_max 5 A, no cell)
    "gemnet_medium_aspirin": ("gemnet_t", dict(preset="medium"), "aspirin", 5.0),
    "gemnet_medium_aspirin_box": ("gemnet_t", dict(preset="medium"), "aspirin_box", 5.0),
    "gemnet_small_aspirin_box": ("gemnet_t", dict(preset="small"), "aspirin_box", 5.0),
}


def build(model_name: str, options: dict, system, r_max: float):
    """(model, graph) of one configuration, with the model and graph code of the gnnff on
    sys.path: torch.manual_seed(0) weights, float32, 1 thread, rattled atoms (seeded)."""
    import numpy as np
    import torch
    from ase.build import bulk

    from gnnff.data.graph import atoms_to_graph
    from gnnff.models.registry import build_model

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    if isinstance(system, int):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat((system,) * 3)
        types = ["Si"]
    else:
        import bench_gemnet

        atoms = getattr(bench_gemnet, system)()
        types = ["H", "C", "O"]
    atoms.positions += 0.05 * rng.standard_normal(atoms.positions.shape)
    torch.manual_seed(0)
    model = build_model(model_name, type_names=types, r_max=r_max, **options).float()
    return model, atoms_to_graph(atoms, types, r_max, dtype=torch.float32)


def unspecialised_torchscript() -> None:
    """TorchScript unspecialised, as pair_style gnnff runs it on the CPU, in every tree
    (GNNFF_TORCHSCRIPT_SPECIALIZE=1 keeps torch's default)."""
    import torch

    if os.environ.get("GNNFF_TORCHSCRIPT_SPECIALIZE") != "1":
        torch.jit.set_fusion_strategy([("STATIC", 0), ("DYNAMIC", 0)])


WORKER = r"""
import json, statistics, sys, time
import torch
model_name, options, system, r_max, repeats, here = json.loads(sys.argv[1])
sys.path.insert(0, here)
import bench_ab
bench_ab.unspecialised_torchscript()
model, data = bench_ab.build(model_name, options, system, r_max)
def timed(fn, n):
    fn(); fn()
    out = []
    for _ in range(n):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return statistics.median(out)
scripted = torch.jit.script(model.eval())
md = timed(lambda: scripted(dict(data)), repeats)
model.train()
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
from gnnff import keys
target_f = torch.zeros(data[keys.ATOM_TYPE].shape[0], 3)
def step():
    opt.zero_grad()
    out = model(dict(data))
    loss = out["total_energy"].pow(2).sum() + (out["forces"] - target_f).pow(2).mean()
    loss.backward()
    opt.step()
train = timed(step, max(2, repeats // 2))
print(json.dumps({"md_s": md, "train_s": train, "atoms": int(target_f.shape[0]),
                  "edges": int(data["edge_index"].shape[1]), "torch": torch.__version__}))
"""


def report_header(benchmark: str, args, torch_version: str, load_before: list) -> dict:
    """What an A/B report says about its run: trees, command, machine, load, time."""
    return {
        "benchmark": benchmark,
        "label": args.label,
        "baseline": args.baseline,
        "new": args.new,
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch_version,
            "torch_threads": 1,
            "load_average_before": load_before,
            "load_average_after": list(os.getloadavg()),
        },
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(report: dict, out: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {out}")


def run_worker(src: str, config, repeats: int) -> dict:
    model_name, options, system, r_max = config
    env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    spec = [model_name, options, system, r_max, repeats, HERE]
    out = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline", required=True, help="python/ folder of the baseline source tree"
    )
    parser.add_argument(
        "--new", default=SRC, help="python/ folder of the new tree (default: this checkout)"
    )
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--label", default="", help="free text stored with the results (e.g. the baseline commit)"
    )
    parser.add_argument("--out", default=os.path.join(HERE, "results", "ab.json"))
    args = parser.parse_args(argv)
    rows = {name: {"baseline": [], "new": []} for name in args.configs}
    load_before = list(os.getloadavg())
    for r in range(args.rounds):
        for name in args.configs:
            for side, src in (("baseline", args.baseline), ("new", args.new)):
                rows[name][side].append(run_worker(src, CONFIGS[name], args.repeats))
            b, n = rows[name]["baseline"][-1], rows[name]["new"][-1]
            print(
                f"round {r} {name:16s} md {b['md_s'] * 1e3:8.1f} -> {n['md_s'] * 1e3:8.1f} ms "
                f"(x{b['md_s'] / n['md_s']:.2f})   train {b['train_s'] * 1e3:8.1f} -> "
                f"{n['train_s'] * 1e3:8.1f} ms (x{b['train_s'] / n['train_s']:.2f})",
                flush=True,
            )
    summary = {}
    for name, sides in rows.items():
        summary[name] = {}
        for what in ("md_s", "train_s"):
            ratios = [b[what] / n[what] for b, n in zip(sides["baseline"], sides["new"])]
            summary[name][what.replace("_s", "_speedup")] = {
                "min": min(ratios),
                "median": statistics.median(ratios),
                "max": max(ratios),
            }
            summary[name][what + "_new_median"] = statistics.median(n[what] for n in sides["new"])
        summary[name].update(
            atoms=sides["new"][0]["atoms"],
            edges=sides["new"][0]["edges"],
            model=CONFIGS[name][0],
            options=CONFIGS[name][1],
            system=CONFIGS[name][2],
            r_max_A=CONFIGS[name][3],
        )
    report = report_header("bench_ab", args, rows[args.configs[0]]["new"][0]["torch"], load_before)
    report.update(summary=summary, raw=rows)
    write_json(report, args.out)


if __name__ == "__main__":
    main()

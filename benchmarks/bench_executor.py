"""MD speed of pair_style gnnff with TorchScript unspecialised on the CPU (gnnff's default)
against torch's default executor strategy (GNNFF_TORCHSCRIPT_SPECIALIZE=1), not a test.

The same exported model file runs the same LAMMPS deck (diamond Si, NVE, bench_pair_style.py's
deck; LJ on its fcc Ar deck) both ways in interleaved rounds, the order alternating per round. Reported: katom-step/s
from LAMMPS's "Loop time" per run (after a warm-up run of ``--warmup`` steps, in which torch's
default strategy makes its specialisations), and the ratio unspecialised / torch default
within each round (min / median / max).

    python benchmarks/bench_executor.py --models allegro_issue13 nequip_small pair_mlp \
        --cells 4 --ranks 1 2 --rounds 3 --out benchmarks/results/executor_md.json

Needs the installed plugin (bash scripts/setup.sh). OMP_NUM_THREADS=1 per rank. Random weights
(seeded): speed does not depend on training. GemNet-T is not in the list: its interaction range
(7 blocks x r_max) makes the periodic deck's ghost shell thousands of atoms; it was measured on
aspirin in Python (docs/benchmarks.md).
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_pair_style import run_once  # noqa: E402

from gnnff.export import export_model  # noqa: E402
from gnnff.models.registry import build_model  # noqa: E402

ISSUE13 = dict(n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False)
MODELS = {  # name: (registry name, options); r_max 4 Å except the issue-13 size (5 Å)
    "allegro_issue13": ("allegro", dict(ISSUE13, r_max=5.0)),
    "allegro_small": ("allegro", dict(preset="small", r_max=4.0)),
    "allegro_medium": ("allegro", dict(preset="medium", r_max=4.0)),
    "nequip_small": ("nequip", dict(preset="small", r_max=4.0)),
    "pair_mlp": ("pair_mlp", dict(r_max=4.0)),
    # issue 13's thin-framework model: analytic LJ, float64, on bench_pair_style.py's fcc Ar deck
    "lj": ("lennard_jones", dict(epsilon=0.0104, sigma=3.4, cutoff=8.5, dtype="float64")),
}
SYSTEM = {"lj": ("lj", "Ar")}  # (deck, element) when not diamond Si
SPECIALIZE = "GNNFF_TORCHSCRIPT_SPECIALIZE"


def spread(values):
    return dict(min=min(values), median=statistics.median(values), max=max(values))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--cells", type=int, default=3, help="diamond cells per side")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--work", default=os.path.join("build", "bench_executor"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "executor_md.json"))
    args = parser.parse_args(argv)
    args.work = os.path.abspath(args.work)  # LAMMPS runs inside it
    os.makedirs(args.work, exist_ok=True)
    report = dict(
        benchmark="pair_style gnnff: TorchScript unspecialised on the CPU vs torch's default",
        command=shlex.join([sys.executable] + sys.argv),
        date_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=dict(
            cpu=platform.processor() or platform.machine(),
            cores=os.cpu_count(),
            torch=torch.__version__,
        ),
        load_avg_before=list(os.getloadavg()),
        unit="katom-step/s",
        cases=[],
    )
    variants = {"unspecialised": None, "torch_default": "1"}
    for name in args.models:
        registry_name, options = MODELS[name]
        system, element = SYSTEM.get(name, ("sw", "Si"))
        torch.manual_seed(0)
        model = build_model(registry_name, type_names=[element], **options)
        model = model if "dtype" in options else model.float()
        path = os.path.join(args.work, f"{name}.pt")
        export_model(model, path)
        pair = f"pair_style gnnff device cpu\npair_coeff * * {path} {element}"
        for ranks in args.ranks:
            runs = []
            for r in range(args.rounds):
                order = list(variants) if r % 2 == 0 else list(variants)[::-1]
                for label in order:
                    os.environ.pop(SPECIALIZE, None)
                    if variants[label]:
                        os.environ[SPECIALIZE] = variants[label]
                    result = run_once(
                        args.work, "sw", args.cells, pair, ranks, args.steps, args.warmup
                    )
                    result.update(variant=label, round=r)
                    runs.append(result)
                    print(
                        f"{name} {result['atoms']} atoms np {ranks} round {r} {label}: "
                        f"{result['atom_steps_per_s'] / 1e3:.3g} katom-step/s",
                        flush=True,
                    )
            os.environ.pop(SPECIALIZE, None)
            speed = {
                v: [x["atom_steps_per_s"] / 1e3 for x in runs if x["variant"] == v]
                for v in variants
            }
            ratios = [u / d for u, d in zip(speed["unspecialised"], speed["torch_default"])]
            report["cases"].append(
                dict(
                    model=name,
                    options=options,
                    atoms=runs[0]["atoms"],
                    ranks=ranks,
                    unspecialised=spread(speed["unspecialised"]),
                    torch_default=spread(speed["torch_default"]),
                    ratio_unspecialised_over_default=spread(ratios),
                    runs=runs,
                )
            )
    report["load_avg_after"] = list(os.getloadavg())
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=1)
    for case in report["cases"]:
        ratio = case["ratio_unspecialised_over_default"]
        print(
            f"{case['model']:16s} {case['atoms']:5d} atoms np {case['ranks']}: unspecialised / "
            f"torch default {ratio['min']:.2f} / {ratio['median']:.2f} / {ratio['max']:.2f}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

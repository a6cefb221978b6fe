"""MD speed of pair_style gnnff with TorchScript unspecialised on the CPU (gnnff's default)
against torch's default executor strategy (GNNFF_TORCHSCRIPT_SPECIALIZE=1), not a test.

The same exported model file runs the same LAMMPS deck (diamond Si, NVE, bench_pair_style.py's
deck; LJ on its fcc Ar deck) both ways in interleaved rounds, the order alternating per round. Reported: katom-step/s
from LAMMPS's "Loop time" per run (after a warm-up run of ``--warmup`` steps, in which torch's
default strategy makes its specialisations), and the ratio unspecialised / torch default
within each round (min / median / max), `ratio_unspecialised_over_torch_default`.

    python benchmarks/bench_executor.py --models allegro_issue13 nequip_small pair_mlp \
        --cells 4 --ranks 1 2 --rounds 3 --out benchmarks/results/executor_md.json

Needs the installed plugin (bash scripts/setup.sh). OMP_NUM_THREADS=1 per rank. Random weights
(seeded): speed does not depend on training. GemNet-T is not in the list: its interaction range
(7 blocks x r_max) makes the periodic deck's ghost shell thousands of atoms; it was measured on
aspirin in Python (docs/benchmarks.md).
"""

import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_pair_style import ab_report, ab_summary, interleaved_rounds, write_report  # noqa: E402

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
    report = ab_report("pair_style gnnff: TorchScript unspecialised on the CPU vs torch's default")
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
            runs, speed = interleaved_rounds(
                args.work,
                system,
                args.cells,
                ranks,
                {label: (pair, {SPECIALIZE: value}) for label, value in variants.items()},
                args.rounds,
                args.steps,
                args.warmup,
                name,
            )
            report["cases"].append(
                dict(
                    model=name,
                    options=options,
                    atoms=runs[0]["atoms"],
                    ranks=ranks,
                    **ab_summary(speed, "unspecialised", "torch_default"),
                    runs=runs,
                )
            )
    write_report(
        report,
        args.out,
        "ratio_unspecialised_over_torch_default",
        lambda case: f"{case['model']:16s}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

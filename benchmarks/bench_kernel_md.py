"""MD speed of allegro or nequip with and without gnnff's compiled operators (not a test).

The same seeded model (float32, Si, random weights: speed does not depend on training) is
exported twice, with gnnff's operators (allegro: `torch.ops.gnnff.trilinear` and the environment
sums; nequip: `torch.ops.gnnff.uvu_contract`; the default when the library is built) and in
the pure-torch form (`gnnff.ops.use_kernels(False)`, as GNNFF_KERNELS=0 does), and both run the
same LAMMPS deck (diamond Si, NVE, bench_pair_style.py's deck) in interleaved rounds, the order
alternating per round. Reported: katom-step/s from LAMMPS's "Loop time" per run, and the ratio
kernel / torch form within each round (min / median / max).

    python benchmarks/bench_kernel_md.py --presets small medium paper --cells 4 --ranks 1 \
        --rounds 3 --out benchmarks/results/kernel_md.json
    python benchmarks/bench_kernel_md.py --model nequip --presets issue13 small ...

Needs the installed plugin (bash scripts/setup.sh). OMP_NUM_THREADS=1 per rank.
"""

import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_pair_style import ab_report, ab_summary, interleaved_rounds, write_report  # noqa: E402

from gnnff import ops  # noqa: E402
from gnnff.export import export_model  # noqa: E402
from gnnff.models.registry import build_model  # noqa: E402

# issue 13's equal sizes (its peer comparison)
ISSUE13 = {
    "allegro": dict(n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False),
    "nequip": dict(n_layers=2, l_max=1, num_features=32, parity=False),
}


def build(model: str, preset: str, r_max: float, kernel: bool):
    options = ISSUE13[model] if preset == "issue13" else dict(preset=preset)
    with ops.use_kernels(kernel):
        torch.manual_seed(0)
        return build_model(model, type_names=["Si"], r_max=r_max, **options).float()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(ISSUE13), default="allegro")
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["medium"],
        help="the model's presets, or issue13 (the peer size)",
    )
    parser.add_argument("--r-max", type=float, default=4.0, help="Å (issue13 uses 5)")
    parser.add_argument("--cells", type=int, nargs="+", default=[4], help="diamond cells per side")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--work", default=os.path.join("build", "bench_kernel_md"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "kernel_md.json"))
    args = parser.parse_args(argv)
    if not ops.load():
        parser.error("gnnff's operator library is not built; run `bash scripts/setup.sh` first")
    args.work = os.path.abspath(args.work)  # LAMMPS runs inside it
    os.makedirs(args.work, exist_ok=True)
    report = ab_report(
        f"{args.model} MD with gnnff's operators vs the torch form of the same model"
    )
    for preset in args.presets:
        r_max = 5.0 if preset == "issue13" else args.r_max
        files = {}
        for label, kernel in (("kernel", True), ("torch_form", False)):
            name = f"{args.model}_{preset}_{label}.pt"
            files[label] = os.path.abspath(os.path.join(args.work, name))
            export_model(build(args.model, preset, r_max, kernel), files[label])
        for cells in args.cells:
            for ranks in args.ranks:
                variants = {
                    label: (f"pair_style gnnff device cpu\npair_coeff * * {path} Si", None)
                    for label, path in files.items()
                }
                runs, speed = interleaved_rounds(
                    args.work,
                    "sw",
                    cells,
                    ranks,
                    variants,
                    args.rounds,
                    args.steps,
                    args.warmup,
                    preset,
                )
                report["cases"].append(
                    dict(
                        model=args.model,
                        preset=preset,
                        r_max=r_max,
                        atoms=8 * cells**3,
                        ranks=ranks,
                        **ab_summary(speed, "kernel", "torch_form"),
                        runs=runs,
                    )
                )
    write_report(
        report, args.out, "ratio_kernel_over_torch_form", lambda case: f"{case['preset']:8s}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

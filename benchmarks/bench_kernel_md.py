"""MD speed of allegro with and without gnnff's compiled channel-wise product (not a test).

The same seeded allegro (float32, Si, random weights: speed does not depend on training) is
exported twice, with `torch.ops.gnnff.trilinear` (the default when the library is built) and in
the pure-torch form (`gnnff.ops.use_kernels(False)`, as GNNFF_KERNELS=0 does), and both run the
same LAMMPS deck (diamond Si, NVE, bench_pair_style.py's deck) in interleaved rounds, the order
alternating per round. Reported: katom-step/s from LAMMPS's "Loop time" per run, and the ratio
kernel / torch form within each round (min / median / max).

    python benchmarks/bench_kernel_md.py --presets small medium paper --cells 4 --ranks 1 \
        --rounds 3 --out benchmarks/results/kernel_md.json

Needs the installed plugin (bash scripts/setup.sh). OMP_NUM_THREADS=1 per rank.
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

from gnnff import ops  # noqa: E402
from gnnff.export import export_model  # noqa: E402
from gnnff.models.registry import build_model  # noqa: E402

ISSUE13 = dict(n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False)


def build(preset: str, r_max: float, kernel: bool):
    options = ISSUE13 if preset == "issue13" else dict(preset=preset)
    with ops.use_kernels(kernel):
        torch.manual_seed(0)
        return build_model("allegro", type_names=["Si"], r_max=r_max, **options).float()


def spread(values):
    return dict(min=min(values), median=statistics.median(values), max=max(values))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["medium"],
        help="allegro presets, or issue13 (the peer size)",
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
    report = dict(
        benchmark="allegro MD with gnnff::trilinear vs the torch form of the same model",
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
    for preset in args.presets:
        r_max = 5.0 if preset == "issue13" else args.r_max
        files = {}
        for label, kernel in (("kernel", True), ("torch_form", False)):
            files[label] = os.path.abspath(os.path.join(args.work, f"{preset}_{label}.pt"))
            export_model(build(preset, r_max, kernel), files[label])
        for cells in args.cells:
            for ranks in args.ranks:
                runs = []
                for r in range(args.rounds):
                    order = list(files) if r % 2 == 0 else list(files)[::-1]
                    for label in order:
                        pair = f"pair_style gnnff device cpu\npair_coeff * * {files[label]} Si"
                        result = run_once(
                            args.work, "sw", cells, pair, ranks, args.steps, args.warmup
                        )
                        result.update(variant=label, round=r)
                        runs.append(result)
                        print(
                            f"{preset} {8 * cells**3} atoms np {ranks} round {r} {label}: "
                            f"{result['atom_steps_per_s'] / 1e3:.3g} katom-step/s",
                            flush=True,
                        )
                speed = {
                    v: [x["atom_steps_per_s"] / 1e3 for x in runs if x["variant"] == v]
                    for v in files
                }
                ratios = [k / t for k, t in zip(speed["kernel"], speed["torch_form"])]
                report["cases"].append(
                    dict(
                        preset=preset,
                        r_max=r_max,
                        atoms=8 * cells**3,
                        ranks=ranks,
                        kernel=spread(speed["kernel"]),
                        torch_form=spread(speed["torch_form"]),
                        ratio_kernel_over_torch_form=spread(ratios),
                        runs=runs,
                    )
                )
    report["load_avg_after"] = list(os.getloadavg())
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=1)
    for case in report["cases"]:
        ratio = case["ratio_kernel_over_torch_form"]
        print(
            f"{case['preset']:8s} {case['atoms']:5d} atoms np {case['ranks']}: kernel / torch form "
            f"{ratio['min']:.2f} / {ratio['median']:.2f} / {ratio['max']:.2f}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

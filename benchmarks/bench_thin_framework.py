"""pair_style gnnff on the analytic Lennard-Jones model vs native lj/cut, A/B by source tree.

(``--system sw``: pair_mlp with its default options vs native sw on diamond Si instead;
``--system sw --model allegro_issue13`` or ``nequip_issue13``: those models of issue 13's equal
size, seeded random weights, on the same deck, for A/B by source tree.)

    python benchmarks/bench_thin_framework.py [--baseline /tmp/base/python] [--baseline-pair-args "memory release"]
        [--aoti] [--cells 8] [--steps 100] [--ranks 1 2] [--rounds 3] [--out benchmarks/results/thin_framework.json]

Issue 13's "thin framework" goal: the TorchScript LJ model through pair_style gnnff within 10x
of native lj/cut per step. The model file is exported twice, from the source tree --baseline
(e.g. ``git archive <commit> python | tar -x -C /tmp/base``) and from this tree, and run by the
same installed plugin; --baseline-pair-args adds pair_style arguments to the baseline runs (the
plugin's defaults before this change, e.g. ``memory release``). Each round runs native, baseline
and current at every rank count, interleaved, on fcc Ar (benchmarks/bench_pair_style.py's deck:
20 warm-up steps, then --steps timed NVE steps, OMP_NUM_THREADS=1 per rank). Reported per run:
LAMMPS loop time, slowdown vs the native run of the same round, and the pair style's own
GNNFF_TIMING split (TorchScript call vs graph building and write-back, rank 0). --aoti adds the
same model from this tree as an AOTInductor package (``current_aoti``, gnnff.export_aoti); without
--baseline only native, current (and current_aoti) run.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_pair_style import SYSTEMS, run_once  # noqa: E402

EXPORT = r"""
import sys, torch
from gnnff.export import export_model
from gnnff.models.registry import build_model
path, dtype, system, name = sys.argv[1:5]
if system == "lj":
    model = build_model("lennard_jones", type_names=["Ar"], epsilon=0.0104, sigma=3.4,
                        cutoff=8.5, dtype=dtype)
elif name == "pair_mlp":  # pair_mlp with its default options (untrained, seed 0), issue 13's table
    model = build_model("pair_mlp", type_names=["Si"], seed=0).to(getattr(torch, dtype))
else:  # issue 13's equal size (bench_ab.CONFIGS), seeded random weights
    sys.path.insert(0, sys.argv[5])
    import bench_ab
    model_name, options, _, r_max = bench_ab.CONFIGS[name]
    torch.manual_seed(0)
    model = build_model(model_name, type_names=["Si"], r_max=r_max, **options)
    model = model.to(getattr(torch, dtype))
if path.endswith(".pt2"):  # AOTInductor package of the same model
    from gnnff.export_aoti import export_aoti
    export_aoti(model, path)
else:
    export_model(model, path)
"""


def export(src, path, dtype, system, model="pair_mlp"):
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run(
        [sys.executable, "-c", EXPORT, path, dtype, system, model, here],
        check=True,
        env=dict(os.environ, PYTHONPATH=src),
    )


def main(argv=None):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=None, help="python/ folder of the baseline tree")
    parser.add_argument(
        "--aoti", action="store_true", help="also run this tree's model as an AOTInductor package"
    )
    parser.add_argument("--baseline-pair-args", default="")
    parser.add_argument("--src", default=os.path.join(here, "python"))
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument(
        "--system",
        default="lj",
        choices=["lj", "sw"],
        help="lj: LJ model vs lj/cut; sw: pair_mlp (default options) vs native sw on diamond Si",
    )
    parser.add_argument(
        "--model",
        default="pair_mlp",
        choices=["pair_mlp", "allegro_issue13", "nequip_issue13"],
        help="with --system sw: the gnnff model run on the diamond Si deck (default pair_mlp)",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    spec = SYSTEMS[args.system]
    element = spec["element"]
    runs = []
    with tempfile.TemporaryDirectory(prefix="gnnff-thin-") as folder:
        pairs = {"native": spec["native"]}
        if args.baseline:
            export(
                args.baseline,
                os.path.join(folder, "baseline.pt"),
                args.dtype,
                args.system,
                args.model,
            )
            pairs["baseline"] = (
                f"pair_style gnnff device cpu {args.baseline_pair_args}\n"
                f"pair_coeff * * baseline.pt {element}"
            )
        export(args.src, os.path.join(folder, "current.pt"), args.dtype, args.system, args.model)
        pairs["current"] = f"pair_style gnnff device cpu\npair_coeff * * current.pt {element}"
        if args.aoti:
            export(
                args.src, os.path.join(folder, "current.pt2"), args.dtype, args.system, args.model
            )
            pairs["current_aoti"] = (
                f"pair_style gnnff device cpu\npair_coeff * * current.pt2 {element}"
            )
        for round_ in range(args.rounds):
            for ranks in args.ranks:
                native = None
                for variant, pair in pairs.items():
                    r = run_once(folder, args.system, args.cells, pair, ranks, args.steps)
                    r.update(variant=variant, round=round_)
                    if variant == "native":
                        native = r
                    else:
                        r["slowdown_vs_native"] = native["atom_steps_per_s"] / r["atom_steps_per_s"]
                        if "glue_ms_per_call_rank0" in r:
                            r["glue_fraction_of_loop"] = (
                                r["glue_ms_per_call_rank0"] * r["model_calls_rank0"] / 1e3
                            ) / r["loop_s"]
                    runs.append(r)
                    print(json.dumps(r), flush=True)
    summary = {}
    for variant in [v for v in pairs if v != "native"]:
        for ranks in args.ranks:
            s = sorted(
                r["slowdown_vs_native"]
                for r in runs
                if r["variant"] == variant and r["ranks"] == ranks
            )
            summary[f"{variant}_np{ranks}_slowdown_min_median_max"] = [s[0], s[len(s) // 2], s[-1]]
    print(json.dumps(summary, indent=1))
    if args.out:
        report = dict(
            benchmark="bench_thin_framework: pair_style gnnff vs the native style",
            system=args.system,
            model="lennard_jones" if args.system == "lj" else args.model,
            command=" ".join([os.path.basename(sys.executable)] + sys.argv),
            baseline=args.baseline,
            baseline_pair_args=args.baseline_pair_args,
            dtype=args.dtype,
            cells_per_side=args.cells,
            date_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            machine=dict(cpu_count=os.cpu_count(), platform=platform.platform()),
            load_average_after=list(os.getloadavg()),
            summary=summary,
            runs=runs,
        )
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()

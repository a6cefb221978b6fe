"""MD stability with and without the feature-decorrelation loss (Zeng et al. 2025, in miniature).

Reference data: `gnnff data generate sio` (Tersoff SiO_x by LAMMPS): training at SiO2, and
out-of-distribution (OOD) sub-stoichiometric SiO1.5 / SiO1.1 sets with their own reference MD
(amorphous, 1500 K). The same model is trained twice per seed, same data, seed and budget:

* ``baseline``: energy + forces, plus the decorrelation term at a constant lambda = 0: it adds
  nothing to the loss or its gradient, it only *measures* the edge-feature correlation so that
  metrics.csv has val_corr_layer<k> for the baseline too;
* ``decorrelation``: energy + forces + the decorrelation term (adaptive lambda, docs/decorrelation.md).

Both are exported and run in LAMMPS (pair_style gnnff, `mpirun -np N lmp`, NVT at the reference
temperature) from the first frame of each composition's reference MD, and every trajectory is
judged by gnnff.stability against that reference MD. Results: benchmarks/results/
stability_decorrelation.json (see docs/experiments.md).

    python benchmarks/stability_decorrelation.py                       # --size small, seed 0
    python benchmarks/stability_decorrelation.py --seeds 0 1 2 --model pair_mlp
"""

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import stability_common as common

COMPOSITIONS = ("SiO2", "SiO1.5", "SiO1.1")  # SiO2 = in distribution
ELEMENTS = ("Si", "O")
EVAL_SET = {"SiO2": "test", "SiO1.5": "ood_SiO1.5", "SiO1.1": "ood_SiO1.1"}
TIMESTEP_PS = 0.001  # MD time step (1 fs)

SIZES = {
    # 2-core CPU: ~15 min for one seed (two trainings, six 2 ps MD runs)
    "small": dict(
        data_size="small",
        preset="small",
        max_epochs=40,
        batch_size=4,
        lr=5e-3,
        md_steps=2000,
        dump_every=10,
        md_timeout_s=600,
    ),
    # docs/experiments.md, "Protocol of the claims study" (committed before its runs):
    # paper-size data (3000 train frames), Allegro medium (16 channels, 2 layers, l_max 2),
    # 3 epochs = 1800 steps at constant lr, 5 ps MD (frames every 20 fs); resumable training
    "protocol": dict(
        data_size="paper",
        preset="medium",
        max_epochs=3,
        batch_size=5,
        lr=2e-3,
        scheduler={"name": "none"},
        checkpoint_every_steps=100,
        md_steps=5000,
        dump_every=20,
        md_timeout_s=None,
    ),
    # the research scale (not run here): paper-size data, larger model, 10 ps MD
    "paper": dict(
        data_size="paper",
        preset="paper",
        max_epochs=1000,
        batch_size=5,
        lr=2e-3,
        md_steps=10000,
        dump_every=50,
        md_timeout_s=None,
    ),
}


def training_config(args, size, data_dir: Path, seed: int, decorrelate: bool) -> dict:
    model = {"name": args.model, "type_names": list(ELEMENTS), "r_max": args.r_max}
    if args.model != "pair_mlp":
        model["preset"] = size["preset"]
    if decorrelate:
        decorrelation = {
            "layers": "all",
            "reduction": "mean_square",
            "schedule": "adaptive",
            "target_fraction": args.target_fraction,
            "reference_weight": args.forces_weight,
        }
    else:  # measures (for the log) without training on it
        decorrelation = {
            "layers": "all",
            "reduction": "mean_square",
            "schedule": "constant",
            "lambda_value": 0.0,
        }
    return {
        "model": model,
        "data": {
            "train": str(data_dir / "sio_train.extxyz"),
            "val": str(data_dir / "sio_valid.extxyz"),
        },
        "loss": {
            "energy": {"weight": 1.0},
            "forces": {"weight": args.forces_weight},
            "decorrelation": decorrelation,
        },
        "optimizer": {"name": "adam", "lr": size["lr"]},
        "scheduler": size.get(
            "scheduler", {"name": "plateau", "factor": 0.5, "patience": 10, "min_lr": 1.0e-5}
        ),
        # monitor the force error, not val_loss: val_loss of the decorrelation run includes
        # lambda * rho, which would make the two runs pick their best epoch differently
        "training": {
            "max_epochs": size["max_epochs"],
            "batch_size": size["batch_size"],
            "seed": seed,
            "dtype": "float32",
            "ema_decay": 0.99,
            "grad_clip": 10.0,
            "patience": 10**6,
            "monitor": "val_forces_mae",
            "progress_bar": False,
            "checkpoint_every_steps": size.get("checkpoint_every_steps"),
        },
    }


MD_ONLY = ("md_steps", "dump_every", "md_timeout_s", "temperature_K", "timestep_ps", "rdf_window")


def experiment_settings(args, size) -> dict:
    return dict(
        size,
        r_max=args.r_max,
        forces_weight=args.forces_weight,
        target_fraction=args.target_fraction,
        temperature_K=args.temperature,
        timestep_ps=TIMESTEP_PS,
        nprocs=args.nprocs,
        rdf_window=args.rdf_window,
        data_seed=args.data_seed,
        seeds=args.seeds,
    )


def unit_key(args, size, **unit) -> dict:
    """What determines a cached training or evaluation: the experiment's settings except the
    seed list, MPI ranks and the MD settings (so MD can be lengthened later without retraining),
    plus the unit's coordinates. An MD unit adds md_only()."""
    drop = ("seeds", "nprocs") + MD_ONLY
    settings = {k: v for k, v in experiment_settings(args, size).items() if k not in drop}
    return dict(settings, model=args.model, **unit)


def md_only(args, size) -> dict:
    return {k: v for k, v in experiment_settings(args, size).items() if k in MD_ONLY}


def run_variant(args, size, data_dir: Path, work: Path, seed: int, variant: str) -> dict:
    """Train + export once, then per composition evaluate, run MD and analyse; every piece is
    cached in the work folder (stability_common.cached), so an interrupted study resumes and
    side-by-side jobs share finished units. ``--no-md``: train and evaluate only (gate 1)."""
    import ase.io

    run_dir = work / f"seed{seed}" / variant

    def train_and_export() -> dict:
        n_train = len(ase.io.read(data_dir / "sio_train.extxyz", ":"))
        config = training_config(args, size, data_dir, seed, variant == "decorrelation")
        training = common.train(config, run_dir / "train", n_train, threads=args.threads)
        common.export(run_dir / "train" / "best.pt", run_dir / "model.pt")
        return {"training": training, "loss_config": config["loss"]}

    trained = common.cached(
        run_dir / "training.json",
        unit_key(args, size, variant=variant, seed=seed),
        train_and_export,
    )
    result = {
        "variant": variant,
        "seed": seed,
        "training": trained["training"],
        "loss_config": trained["loss_config"],
        "compositions": {},
    }
    for composition in COMPOSITIONS:
        key = unit_key(args, size, variant=variant, seed=seed, composition=composition)
        cell = common.cached(
            run_dir / f"eval_{composition}.result.json",
            key,
            lambda: evaluate_composition(run_dir, data_dir, composition),
        )
        line = (
            f"  {variant} seed {seed} {composition}: force MAE {cell['forces_mae_meV_per_A']:.1f} "
            f"meV/Å = {cell['forces_mae_over_rms']:.3f} x the RMS force "
            f"{cell['reference_force_rms_meV_per_A']:.0f} meV/Å"
        )
        if not args.no_md:
            cell = dict(
                cell, **md_composition(args, size, data_dir, run_dir, seed, composition, key)
            )
            st = cell["stability"]
            line += (
                f", stable {st['stable_time_ps']:.3g} of {st['total_time_ps']:.3g} ps "
                f"(first failed: {st['first_failed']})"
            )
            steps = args.extend_md.get(composition)
            if steps:  # Amendment A4: a longer run beside the primary one, its own unit
                extended = md_composition(
                    args, size, data_dir, run_dir, seed, composition, key, md_steps=steps
                )
                cell["extended_md"] = dict(extended, md_ps=steps * TIMESTEP_PS)
                st = extended["stability"]
                line += (
                    f"; extended: stable {st['stable_time_ps']:.3g} of {st['total_time_ps']:.3g} ps"
                )
        print(line, flush=True)
        result["compositions"][composition] = cell
    return result


def evaluate_composition(run_dir: Path, data_dir: Path, composition: str) -> dict:
    """`gnnff eval` on the composition's test set, and the RMS reference force (gate 1)."""
    eval_file = data_dir / f"sio_{EVAL_SET[composition]}.extxyz"
    errors = common.evaluate(
        run_dir / "train" / "best.pt", [eval_file], run_dir / f"eval_{composition}.json"
    )
    rms = common.reference_force_rms(eval_file)
    return {
        "eval_set": EVAL_SET[composition],
        "forces_mae_meV_per_A": errors["forces_mae"],
        "reference_force_rms_meV_per_A": rms,
        "forces_mae_over_rms": errors["forces_mae"] / rms,
        "energy_mae_meV_per_atom": errors["energy_mae"],
    }


def parse_extend_md(items: Sequence[str], primary_steps: int) -> Dict[str, int]:
    """``--extend-md SiO1.1=20``: {composition: MD steps} of the longer runs (Amendment A4)."""
    lengths = {}
    for item in items:
        composition, _, ps = item.partition("=")
        if composition not in COMPOSITIONS:
            raise ValueError(
                f"--extend-md {item}: unknown composition {composition!r}; "
                f"use one of {', '.join(COMPOSITIONS)}, e.g. --extend-md SiO1.1=20"
            )
        primary_ps = primary_steps * TIMESTEP_PS
        lengths[composition] = common.longer_md_steps(
            ps,
            primary_steps,
            TIMESTEP_PS,
            f"--extend-md {item}",
            f"{composition}={4 * primary_ps:g}",
        )
    return lengths


def md_unit_name(composition: str, md_steps: int, primary_steps: int) -> str:
    """The folder of an MD unit: md_<composition> for the primary length, and with the
    length in ps for a longer one (Amendment A4), so both live side by side."""
    return common.md_unit_name(f"md_{composition}", md_steps, primary_steps, TIMESTEP_PS)


def md_composition(
    args,
    size,
    data_dir: Path,
    run_dir: Path,
    seed: int,
    composition: str,
    key: dict,
    md_steps: Optional[int] = None,
) -> dict:
    """MD of the model from the composition's reference start, then its analysis (both cached
    under the composition's unit ``key`` plus the MD settings). ``md_steps``: another length
    than the size's (the unit's folder then says its length)."""
    import ase.io

    md_steps = md_steps or size["md_steps"]
    key = dict(key, stage="md", **dict(md_only(args, size), md_steps=md_steps))
    reference = data_dir / f"sio_reference_{composition}-amorphous_{args.temperature:g}K.extxyz"
    md_dir = run_dir / md_unit_name(composition, md_steps, size["md_steps"])

    def run() -> dict:
        common.write_md_input(
            ase.io.read(reference, index=0),
            md_dir,
            run_dir / "model.pt",
            ELEMENTS,
            args.temperature,
            md_steps,
            TIMESTEP_PS,
            size["dump_every"],
            seed=4928459 + seed,
        )
        return dict(common.run_md(md_dir, args.nprocs, size["md_timeout_s"]), nprocs=args.nprocs)

    return common.md_then_analysis(
        md_dir,
        key,
        run,
        lambda: common.analyse(md_dir, reference, ELEMENTS, rdf_window=args.rdf_window),
    )


def run_reference_control(args, size, data_dir: Path, work: Path) -> dict:
    """The reference potential (Tersoff) itself through the same deck and analysis: what the
    criteria say about a trajectory of the truth (a model can at best match it). Cached per
    composition like the model runs."""
    import ase.io

    from gnnff.datagen.catalog import TERSOFF_PAIR

    def control(composition: str, md_steps: int) -> dict:
        reference = data_dir / f"sio_reference_{composition}-amorphous_{args.temperature:g}K.extxyz"
        md_dir = (
            work / "reference_potential" / md_unit_name(composition, md_steps, size["md_steps"])
        )

        def run() -> dict:
            common.write_md_input(
                ase.io.read(reference, index=0),
                md_dir,
                md_dir / "unused.pt",
                ELEMENTS,
                args.temperature,
                md_steps,
                TIMESTEP_PS,
                size["dump_every"],
                seed=4928459,
                native_pair=TERSOFF_PAIR,
            )
            return dict(
                common.run_md(md_dir, args.nprocs, size["md_timeout_s"]), nprocs=args.nprocs
            )

        key = dict(
            md_only(args, size),
            md_steps=md_steps,
            data_size=size["data_size"],
            data_seed=args.data_seed,
            variant="reference_potential",
            composition=composition,
            stage="md",
        )
        return common.md_then_analysis(
            md_dir,
            key,
            run,
            lambda: common.analyse(md_dir, reference, ELEMENTS, rdf_window=args.rdf_window),
        )

    result = {}
    for composition in COMPOSITIONS:
        result[composition] = control(composition, size["md_steps"])
        print(
            f"  Tersoff control {composition}: stable {result[composition]['stability']['stable_time_ps']:.3g} ps, "
            f"g(r) error {result[composition]['stability']['rdf_error_stable']}",
            flush=True,
        )
    for composition, steps in args.extend_md.items():  # Amendment A4: gate 3 for the longer run
        extended = control(composition, steps)
        result[composition]["extended_md"] = dict(extended, md_ps=steps * TIMESTEP_PS)
        print(
            f"  Tersoff control {composition}, extended: stable "
            f"{extended['stability']['stable_time_ps']:.3g} of {steps * TIMESTEP_PS:g} ps",
            flush=True,
        )
    return result


def has_extended_md(cells: Dict[str, Dict], extend_md: Dict[str, int]) -> bool:
    """Whether per-composition results hold every longer run asked for (Amendment A4)."""
    return all(
        cells.get(composition, {}).get("extended_md", {}).get("md_ps") == steps * TIMESTEP_PS
        for composition, steps in extend_md.items()
    )


def summarise(runs) -> list:
    rows = []
    for variant in ("baseline", "decorrelation"):
        mine = [r for r in runs if r["variant"] == variant]
        if not mine:
            continue
        for composition, extended in [(c, False) for c in COMPOSITIONS] + [
            (c, True) for c in COMPOSITIONS
        ]:
            ran_here = [r for r in mine if composition in r["compositions"]]
            if extended:  # Amendment A4's longer runs, a row of their own
                ran_here = [r for r in ran_here if "extended_md" in r["compositions"][composition]]
                if not ran_here:
                    continue
            cells = [r["compositions"][composition] for r in ran_here]
            if extended:
                cells = [dict(c, **c["extended_md"]) for c in cells]
            ran = [c["stability"] for c in cells if c.get("stability")]  # none with --no-md
            stable = [st["stable_time_ps"] for st in ran]
            rows.append(
                {
                    "variant": variant,
                    "composition": composition,
                    "extended_md_ps": cells[0]["md_ps"] if extended else None,
                    "seeds": [r["seed"] for r in ran_here],
                    "forces_mae_meV_per_A": [c["forces_mae_meV_per_A"] for c in cells],
                    "forces_mae_over_rms": [c.get("forces_mae_over_rms") for c in cells],
                    "stable_time_ps": stable,
                    "stable_time_ps_mean": statistics.mean(stable) if stable else None,
                    "stable_through_end": [st["stable_through_end"] for st in ran],
                    "first_failed": [st["first_failed"] for st in ran],
                    "rdf_error_stable": [st["rdf_error_stable"] for st in ran],
                    "val_corr_per_layer": [
                        r["training"]["val_corr_per_layer_best"] for r in ran_here
                    ],
                    "seconds_per_step": [r["training"]["seconds_per_step"] for r in ran_here],
                }
            )
    return rows


def markdown_tables(payload: dict) -> str:
    """The result JSON as the markdown tables of docs/experiments.md."""
    fmt = lambda v, f="{:.3g}": "-" if v is None else f.format(v)  # noqa: E731
    lines = [
        "| variant | seed | epochs (steps) | s/step | val force MAE (meV/Å) | val ρ per layer |",
        "|---|---|---|---|---|---|",
    ]
    for r in payload["runs"]:
        t = r["training"]
        corr = ", ".join(f"{v:.3f}" for _, v in sorted(t["val_corr_per_layer_best"].items()))
        lines.append(
            f"| {r['variant']} | {r['seed']} | {t['epochs']} ({t['steps']}) | "
            f"{fmt(t['seconds_per_step'], '{:.2f}')} | {1e3 * t['best']['val_forces_mae']:.0f} | {corr} |"
        )
    lines += [
        "",
        "| composition | variant | seed | force MAE (meV/Å) | MAE / RMS force | stable time (ps) "
        "| first failed (why) | g(r) error, stable part (Å) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    control = payload.get("reference_potential_control", {})
    extended = payload.get("extended_md_ps", {})
    for composition, label, unit in [(c, c, lambda c: c) for c in COMPOSITIONS] + [
        (c, f"{c}, {extended[c]:g} ps (A4)", lambda c: c.get("extended_md"))
        for c in COMPOSITIONS
        if c in extended
    ]:
        if composition in control and unit(control[composition]):
            st = unit(control[composition])["stability"]
            lines.append(
                f"| {label} | Tersoff (truth) | - | 0 | 0 | {fmt(st['stable_time_ps'])} of "
                f"{fmt(st['total_time_ps'])} | {', '.join(st['first_failed']) or 'none'} | "
                f"{fmt(st['rdf_error_stable'], '{:.3f}')} |"
            )
        for r in payload["runs"]:
            c = r["compositions"].get(composition)
            if c is None or unit(c) is None:
                continue
            c = dict(c, stability=unit(c).get("stability"))
            st = c.get("stability")
            ratio = fmt(c.get("forces_mae_over_rms"), "{:.3f}")
            if st is None:  # --no-md: the accuracy gate only
                lines.append(
                    f"| {label} | {r['variant']} | {r['seed']} | "
                    f"{c['forces_mae_meV_per_A']:.0f} | {ratio} | not run | - | - |"
                )
                continue
            why = "; ".join(f"{n} ({w})" for n, w in zip(st["first_failed"], st["failure_reason"]))
            lines.append(
                f"| {label} | {r['variant']} | {r['seed']} | {c['forces_mae_meV_per_A']:.0f} | "
                f"{ratio} | {fmt(st['stable_time_ps'])} of {fmt(st['total_time_ps'])} | "
                f"{why or 'none'} | {fmt(st['rdf_error_stable'], '{:.3f}')} |"
            )
    lines += [
        "",
        "| composition | variant | seeds | mean force MAE (meV/Å) | stable time per seed (ps) | "
        "mean stable time (ps) | runs stable for the whole MD |",
        "|---|---|---|---|---|---|---|",
    ]
    for composition in COMPOSITIONS:
        for row in payload["summary"]:
            if row["composition"] == composition:
                ps = row.get("extended_md_ps")
                label = f"{composition}, {ps:g} ps (A4)" if ps else composition
                lines.append(
                    f"| {label} | {row['variant']} | {len(row['seeds'])} | "
                    f"{statistics.mean(row['forces_mae_meV_per_A']):.0f} | "
                    f"{', '.join(fmt(v) for v in row['stable_time_ps'])} | "
                    f"{fmt(row['stable_time_ps_mean'])} | "
                    f"{sum(row['stable_through_end'])} of {len(row['seeds'])} |"
                )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument(
        "--model",
        default="allegro",
        help="registered model: allegro (default), pair_mlp, nequip, gemnet_t",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        default=[0],
        help="training/MD seeds (none: only the reference-potential control)",
    )
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, help="override the size's training budget")
    parser.add_argument("--md-steps", type=int, help="override the size's MD length (1 fs steps)")
    parser.add_argument("--r-max", type=float, default=4.0, help="model cutoff in Å")
    parser.add_argument("--forces-weight", type=float, default=10.0)
    parser.add_argument(
        "--target-fraction",
        type=float,
        default=0.1,
        help="adaptive lambda: decorrelation term / weighted force loss",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=1500.0,
        help="K; must be a temperature of the reference MD (1500)",
    )
    parser.add_argument("--rdf-window", type=int, default=10, help="frames in the g(r) window")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=("baseline", "decorrelation"),
        default=["baseline", "decorrelation"],
    )
    parser.add_argument(
        "--extend-md",
        metavar="COMPOSITION=PS",
        nargs="+",
        default=[],
        help="Amendment A4 (docs/experiments.md): also run every model and the Tersoff control "
        "this many ps at this composition, as units of their own beside the primary MD "
        "(e.g. --extend-md SiO1.1=20 SiO1.5=20)",
    )
    parser.add_argument(
        "--no-md",
        action="store_true",
        help="train and evaluate only (the accuracy gate); no MD, no control",
    )
    common.add_run_arguments(
        parser,
        "stability_decorrelation",
        reuse_help=(
            "take the runs (variant, seed) already in these earlier result JSONs "
            "of the same settings instead of redoing them"
        ),
    )
    args = parser.parse_args(argv)
    if common.print_table_only(args, markdown_tables):
        return 0
    size = dict(SIZES[args.size])
    if args.max_epochs:
        size["max_epochs"] = args.max_epochs
    if args.md_steps:
        size["md_steps"] = args.md_steps
    try:
        args.extend_md = parse_extend_md(args.extend_md, size["md_steps"])
    except ValueError as error:
        parser.error(str(error))

    start = time.perf_counter()
    work = Path(args.workdir).resolve()
    data_dir = work / f"data_sio_{size['data_size']}_{args.data_seed}"
    card = common.generate_data(
        "sio",
        size["data_size"],
        args.data_seed,
        data_dir,
        work / "logs",
        workers=args.datagen_workers,
    )
    payload = {
        "experiment": "stability_decorrelation",
        "research": "Zeng et al. 2025, arXiv 2502.12548 (feature decorrelation -> stable MD)",
        "command": " ".join(["python"] + sys.argv),
        "size": args.size,
        "model": args.model,
        "settings": experiment_settings(args, size),
        "data": {
            "name": card["name"],
            "size": card["size"],
            "seed": card["seed"],
            "frames": {k: v.get("frames") for k, v in card.get("sets", {}).items()},
        },
        "machine": common.machine_info(),
        "extended_md_ps": {c: steps * TIMESTEP_PS for c, steps in args.extend_md.items()},
        "runs": [],
        "summary": [],
    }
    reuse = common.reusable_runs(args.reuse, payload, ("experiment", "size", "model"))
    if not args.no_md:
        control = reuse.get(("__extra__", "reference_potential_control"))
        if control is None or not has_extended_md(control, args.extend_md):
            control = run_reference_control(args, size, data_dir, work)
        payload["reference_potential_control"] = control
    for seed in args.seeds:
        for variant in args.variants:
            run = reuse.get((variant, seed))
            if run is not None and not has_extended_md(run["compositions"], args.extend_md):
                run = None  # an earlier result without the longer runs: its units are cached
            if run is not None:
                print(f"reusing {variant} seed {seed} from {args.reuse}", flush=True)
            payload["runs"].append(run or run_variant(args, size, data_dir, work, seed, variant))
            payload["summary"] = summarise(payload["runs"])
            payload["wall_s_this_call"] = time.perf_counter() - start
            common.write_json(Path(args.json), payload)
    payload["machine_after"] = common.machine_info()
    payload["wall_s_this_call"] = time.perf_counter() - start
    common.write_json(Path(args.json), payload)
    for row in payload["summary"]:
        print(
            f"{row['variant']:<14} {row['composition']:<7} MAE {row['forces_mae_meV_per_A']} "
            f"stable {row['stable_time_ps']} ps, first failed {row['first_failed']}"
        )
    print(f"total wall time {payload['wall_s_this_call']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MD stability of a fine-tuned vs a from-scratch model (Maheshwari et al. 2025, in miniature).

1. pre-train once on the broad `pretrain-molecules` set (G2 molecules of H/C/N/O, GFN2-xTB by
   tblite; the stand-in for OC20);
2. per seed, train the same model on one MD17-like molecule (`md17:<molecule>`, GFN2-xTB,
   500 K) twice with the same data, seed, epochs and learning rate: ``finetuned`` (init_from the
   pre-trained checkpoint, docs/finetuning.md) and ``scratch`` (fresh weights);
3. export both and run NVT MD of the molecule in vacuum in LAMMPS (pair_style gnnff,
   `mpirun -np N lmp`, `boundary f f f` box, 0.5 fs steps, the reference temperature), starting
   from the first frame of the xTB reference MD;
4. judge each trajectory with gnnff.stability against the xTB reference MD: the bond-length
   criterion (MDsim: any bond > 0.5 Å off its reference mean length) counts for a molecule.
The reference engine cannot run inside LAMMPS, so the control here is the xTB reference MD
itself analysed with the same criteria. ``--extend-md PS`` (Amendment A5 of docs/experiments.md)
also runs every model PS ps, as a unit of its own (``md_<PS>ps/`` beside ``md/``).

    python benchmarks/stability_pretraining.py                        # --size small, seed 0
    python benchmarks/stability_pretraining.py --molecule aspirin --seeds 0 1 2
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

import stability_common as common

PRETRAIN_ELEMENTS = ("H", "C", "N", "O")

SIZES = {
    # 2-core CPU: ~15 min for one seed
    "small": dict(
        data_size="small",
        preset="small",
        pretrain_epochs=60,
        pretrain_batch=8,
        pretrain_lr=3e-3,
        pretrain_data_seeds=(0, 1, 2, 3),
        epochs=100,
        batch_size=4,
        lr=1e-3,
        md_steps=2000,
        dump_every=20,
        md_timeout_s=600,
    ),
    # the Experiment-2 timing pilot: the protocol's model, batches and learning rates on the
    # small data sets with short budgets, to measure seconds per optimiser step and per MD step
    "pilot": dict(
        data_size="small",
        preset="medium",
        pretrain_epochs=2,
        pretrain_batch=16,
        pretrain_lr=1e-3,
        pretrain_data_seeds=(0,),
        epochs=3,
        batch_size=4,
        lr=5e-4,
        md_steps=400,
        dump_every=100,
        md_timeout_s=1200,
    ),
    # docs/experiments.md, "Protocol of the claims study", Experiment 2 (with --molecule aspirin
    # --r-max 5): paper-size data, GemNet-T medium, 20 ps MD at 500 K, 0.5 fs; budgets provisional
    # until the Experiment-2 timing pilot (amended, if at all, before any Experiment-2 run)
    "protocol": dict(
        data_size="paper",
        preset="medium",
        pretrain_epochs=5,
        pretrain_batch=16,
        pretrain_lr=1e-3,
        pretrain_data_seeds=(0,),
        epochs=4,
        batch_size=4,
        lr=5e-4,
        # last.pt inside the 2500-step epochs, so that a stopped job loses minutes, not an
        # epoch (amendment A3 of docs/experiments.md; a resumed training is exact)
        checkpoint_every_steps=250,
        md_steps=40000,
        dump_every=100,
        md_timeout_s=None,
    ),
    # research scale (not run here): paper-size data (52 molecules x 3 T x 100 frames for
    # pre-training, 10k target frames), GemNet-T md17 preset, 300 ps MD as in MDsim
    "paper": dict(
        data_size="paper",
        preset="md17",
        pretrain_epochs=200,
        pretrain_batch=16,
        pretrain_lr=1e-3,
        pretrain_data_seeds=(0,),
        epochs=500,
        batch_size=4,
        lr=5e-4,
        md_steps=600000,
        dump_every=200,
        md_timeout_s=None,
    ),
}


def model_section(args, size, elements) -> dict:
    model = {"name": args.model, "type_names": list(elements), "r_max": args.r_max}
    if args.model != "pair_mlp":
        model["preset"] = size["preset"]
    return model


def molecule_elements(path: Path):
    import ase.io

    present = {s for atoms in ase.io.read(path, ":") for s in atoms.get_chemical_symbols()}
    missing = present - set(PRETRAIN_ELEMENTS)
    if missing:
        raise ValueError(
            f"{path} holds elements {sorted(missing)} that the pre-training set "
            f"({PRETRAIN_ELEMENTS}) lacks; choose another molecule"
        )
    return [e for e in PRETRAIN_ELEMENTS if e in present]  # fixed order: LAMMPS types 1..n


def pretrain(args, size, data_dirs, work: Path) -> dict:
    """One pre-training run on the union of the pretrain-molecules sets in ``data_dirs``."""
    import ase.io

    train_files = [str(d / "pretrain-molecules_train.extxyz") for d in data_dirs]
    config = {
        "model": model_section(args, size, PRETRAIN_ELEMENTS),
        "data": {
            "train": train_files,
            "val": [str(d / "pretrain-molecules_valid.extxyz") for d in data_dirs],
        },
        "loss": {"energy": {"weight": 1.0}, "forces": {"weight": args.forces_weight}},
        "optimizer": {"name": "adam", "lr": size["pretrain_lr"]},
        "scheduler": {"name": "none"},
        "training": {
            "max_epochs": size["pretrain_epochs"],
            "batch_size": size["pretrain_batch"],
            "seed": 0,
            "dtype": "float32",
            "ema_decay": 0.99,
            "patience": 10**6,
            "monitor": "val_forces_mae",
            "progress_bar": False,
        },
    }
    key = {
        k: v for k, v in size.items() if k.startswith("pretrain") or k in ("data_size", "preset")
    }
    return common.cached(
        work / "pretrain" / "training.json",
        dict(key, model=args.model, r_max=args.r_max, forces_weight=args.forces_weight),
        # the frames are counted only when it trains: a finished pre-training is read back on a
        # machine that has only the fine-tuning data (docs/experiments.md, "On a new machine")
        lambda: common.train(
            config,
            work / "pretrain" / "train",
            sum(len(ase.io.read(f, ":")) for f in train_files),
            threads=args.threads,
        ),
    )


def target_config(args, size, data_dir: Path, prefix: str, elements, seed: int, init_from) -> dict:
    data = {
        "train": str(data_dir / f"{prefix}_train.extxyz"),
        "val": str(data_dir / f"{prefix}_valid.extxyz"),
        "energy_shift": "least_squares",
        # fine-tuning keeps the pre-trained per-element scale (docs/finetuning.md)
        "energy_scale": "keep" if init_from else "force_rms",
    }
    config = {
        "model": model_section(args, size, elements),
        "data": data,
        "loss": {"energy": {"weight": 1.0}, "forces": {"weight": args.forces_weight}},
        "optimizer": {"name": "adam", "lr": size["lr"]},
        "scheduler": {"name": "none"},
        "training": {
            "max_epochs": size["epochs"],
            "batch_size": size["batch_size"],
            "seed": seed,
            "dtype": "float32",
            "ema_decay": 0.99,
            "patience": 10**6,
            "monitor": "val_forces_mae",
            "progress_bar": False,
            "checkpoint_every_steps": size.get("checkpoint_every_steps"),
        },
    }
    if init_from:
        config["init_from"] = {"checkpoint": str(init_from)}
    return config


def molecule_start(reference: Path, vacuum: float):
    """First reference frame, centred in a cubic box with ``vacuum`` Å around it."""
    import ase.io

    start = ase.io.read(reference, index=0)
    extent = (start.positions.max(0) - start.positions.min(0)).max()
    start.set_cell([extent + 2 * vacuum] * 3)
    start.center()
    start.pbc = False
    return start


MD_ONLY = ("md_steps", "dump_every", "md_timeout_s", "temperature_K", "timestep_fs", "vacuum_A")


def experiment_settings(args, size) -> dict:
    return dict(
        size,
        r_max=args.r_max,
        forces_weight=args.forces_weight,
        temperature_K=args.temperature,
        timestep_fs=args.timestep_fs,
        vacuum_A=args.vacuum,
        nprocs=args.nprocs,
        data_seed=args.data_seed,
        seeds=args.seeds,
    )


def unit_key(args, size, md: bool = False, **unit) -> dict:
    """Settings that determine a cached unit (stability_common.cached): not the seed list or
    MPI ranks; a training or evaluation not the MD settings either (MD can be lengthened later)."""
    drop = ("seeds", "nprocs") + (() if md else MD_ONLY)
    settings = {k: v for k, v in experiment_settings(args, size).items() if k not in drop}
    return dict(settings, model=args.model, molecule=args.molecule, **unit)


def run_variant(args, size, data_dir, work, prefix, elements, seed, variant, init_from) -> dict:
    """Train + export, evaluate, MD + analysis of one (variant, seed); each a cached unit in the
    work folder, so an interrupted study resumes (``--no-md``: train and evaluate only)."""
    import ase.io

    run_dir = work / f"seed{seed}" / variant
    test_file = data_dir / f"{prefix}_test.extxyz"
    unit = dict(variant=variant, seed=seed)
    epochs = scratch_budget(args, size) if variant == "scratch" else size["epochs"]
    if epochs != size["epochs"]:  # the MAE-match rule's larger budget: units of their own
        run_dir = work / f"seed{seed}" / f"{variant}_{epochs}epochs"
        unit["epochs"] = epochs

    def train_and_export() -> dict:
        config = target_config(args, size, data_dir, prefix, elements, seed, init_from)
        config["training"]["max_epochs"] = epochs
        n_train = len(ase.io.read(data_dir / f"{prefix}_train.extxyz", ":"))
        continue_shorter_run(work / f"seed{seed}" / variant / "train", run_dir / "train")
        training = common.train(config, run_dir / "train", n_train, threads=args.threads)
        common.export(run_dir / "train" / "best.pt", run_dir / "model.pt")
        return training

    def evaluate() -> dict:
        errors = common.evaluate(
            run_dir / "train" / "best.pt", [test_file], run_dir / "eval_test.json"
        )
        rms = common.reference_force_rms(test_file)
        return {
            "forces_mae_meV_per_A": errors["forces_mae"],
            "energy_mae_meV_per_atom": errors["energy_mae"],
            "reference_force_rms_meV_per_A": rms,
            "forces_mae_over_rms": errors["forces_mae"] / rms,
        }

    key = unit_key(args, size, **unit)
    result = {
        "variant": variant,
        "seed": seed,
        "init_from": str(init_from) if init_from else None,
        "training": common.cached(run_dir / "training.json", key, train_and_export),
    }
    result.update(common.cached(run_dir / "eval_test.result.json", key, evaluate))
    line = (
        f"  {variant} seed {seed}: force MAE {result['forces_mae_meV_per_A']:.1f} meV/Å = "
        f"{result['forces_mae_over_rms']:.3f} x the RMS force"
    )
    if not args.no_md:
        reference = reference_file(data_dir, prefix, args)
        result.update(md_molecule(args, size, run_dir, reference, elements, seed, variant))
        st = result["stability"]
        line += (
            f", stable {st['stable_time_ps']:.3g} of {st['total_time_ps']:.3g} ps "
            f"(first failed: {st['first_failed']})"
        )
        if args.extend_md:  # Amendment A5: a longer run beside the primary one, its own unit
            extended = md_molecule(
                args, size, run_dir, reference, elements, seed, variant, md_steps=args.extend_md
            )
            result["extended_md"] = dict(extended, md_ps=md_ps(args, args.extend_md))
            st = extended["stability"]
            line += f"; extended: stable {st['stable_time_ps']:.3g} of {st['total_time_ps']:.3g} ps"
    print(line, flush=True)
    return result


def scratch_budget(args, size) -> int:
    """Epochs of the from-scratch target training: the size's, or ``--scratch-epochs`` when
    the protocol's MAE-match rule has raised it (docs/experiments.md, Experiment 2)."""
    return args.scratch_epochs or size["epochs"]


def continue_shorter_run(shorter: Path, longer: Path) -> None:
    """Start a larger budget from the run that had the smaller one: its checkpoints are copied
    and the training resumes from its last.pt. With the constant learning rate of these runs and
    a data order fixed by the seed and the epoch, that equals training the larger budget from
    the start (tests/training/test_training_resume_and_ddp.py). Nothing is copied when the
    longer run has begun, or when there is no shorter run (it then starts afresh)."""
    import shutil

    if (longer / "last.pt").exists() or not (shorter / "last.pt").exists():
        return
    if longer.exists():
        shutil.rmtree(longer)
    shutil.copytree(shorter, longer)
    print(f"  continuing {shorter} in {longer}", flush=True)


def md_ps(args, md_steps: int) -> float:
    """Length in ps of an MD of ``md_steps`` (in the order stability_claims computes it)."""
    return md_steps * args.timestep_fs * 1e-3


def md_molecule(
    args,
    size,
    run_dir: Path,
    reference: Path,
    elements,
    seed: int,
    variant: str,
    md_steps: Optional[int] = None,
) -> dict:
    """NVT MD of the model from the reference's first frame, then its analysis (both cached
    under the run's MD unit key). ``md_steps``: another length than the size's (Amendment A5:
    the unit's folder then says its length, ``md_60ps/`` beside ``md/``; its key holds its own
    md_steps, so the primary unit's key and result stay as they are)."""
    unit_size = dict(size)
    if md_steps and md_steps != size["md_steps"]:
        unit_size["md_steps"] = md_steps
        if size["md_timeout_s"]:  # a longer run may take proportionally longer
            unit_size["md_timeout_s"] = size["md_timeout_s"] * md_steps / size["md_steps"]
    md_dir = run_dir / common.md_unit_name(
        "md", unit_size["md_steps"], size["md_steps"], args.timestep_fs * 1e-3
    )

    def run() -> dict:
        common.write_md_input(
            molecule_start(reference, args.vacuum),
            md_dir,
            run_dir / "model.pt",
            elements,
            args.temperature,
            unit_size["md_steps"],
            args.timestep_fs * 1e-3,
            size["dump_every"],
            seed=4928459 + seed,
            boundary="f f f",
        )
        return dict(
            common.run_md(md_dir, args.nprocs, unit_size["md_timeout_s"]), nprocs=args.nprocs
        )

    return common.md_then_analysis(
        md_dir,
        unit_key(args, unit_size, md=True, variant=variant, seed=seed),
        run,
        lambda: common.analyse(md_dir, reference, elements),
    )


def parse_extend_md(ps: Optional[str], primary_steps: int, timestep_fs: float) -> Optional[int]:
    """``--extend-md 60``: MD steps of the longer run of every model (Amendment A5), or None."""
    if ps is None:
        return None
    primary_ps = primary_steps * timestep_fs * 1e-3
    return common.longer_md_steps(
        ps,
        primary_steps,
        timestep_fs * 1e-3,
        f"--extend-md {ps}",
        f"--extend-md {3 * primary_ps:g}",
    )


def has_extended_md(run: dict, extended_md_ps: Optional[float]) -> bool:
    """Whether a run's result holds the longer run this call asks for (Amendment A5)."""
    return extended_md_ps is None or run.get("extended_md", {}).get("md_ps") == extended_md_ps


def reference_file(data_dir: Path, prefix: str, args) -> Path:
    found = sorted(data_dir.glob(f"{prefix}_reference_*_{args.temperature:g}K.extxyz"))
    if not found:
        raise ValueError(
            f"no reference MD at {args.temperature:g} K in {data_dir}; the md17 "
            "sets are made at 500 K: use --temperature 500"
        )
    return found[0]


def reference_control(data_dir: Path, prefix: str, args, elements) -> dict:
    """The xTB reference trajectory judged by the same analysis (truth: stable throughout)."""
    reference = reference_file(data_dir, prefix, args)
    return common.analyse_trajectory(
        reference, reference, elements, timestep_ps=_reference_frame_interval_ps(reference)
    )


def _reference_frame_interval_ps(reference: Path) -> float:
    import ase.io

    frames = ase.io.read(reference, ":2")
    return float(frames[1].info["time_ps"] - frames[0].info["time_ps"])


def summarise(runs) -> list:
    rows = []
    for extended, variant in [(False, v) for v in ("finetuned", "scratch")] + [
        (True, v) for v in ("finetuned", "scratch")
    ]:
        mine = [r for r in runs if r["variant"] == variant]
        if extended:  # Amendment A5's longer runs, a row of their own
            mine = [dict(r, **r["extended_md"]) for r in mine if "extended_md" in r]
        if mine:
            ran = [r["stability"] for r in mine if r.get("stability")]  # none with --no-md
            stable = [st["stable_time_ps"] for st in ran]
            rows.append(
                {
                    "variant": variant,
                    "extended_md_ps": mine[0]["md_ps"] if extended else None,
                    "seeds": [r["seed"] for r in mine],
                    "forces_mae_meV_per_A": [r["forces_mae_meV_per_A"] for r in mine],
                    "forces_mae_over_rms": [r.get("forces_mae_over_rms") for r in mine],
                    "stable_time_ps": stable,
                    "stable_time_ps_mean": statistics.mean(stable) if stable else None,
                    "stable_through_end": [st["stable_through_end"] for st in ran],
                    "first_failed": [st["first_failed"] for st in ran],
                    "seconds_per_step": [r["training"]["seconds_per_step"] for r in mine],
                }
            )
    return rows


def markdown_tables(payload: dict) -> str:
    """The result JSON as the markdown table of docs/experiments.md."""
    fmt = lambda v, f="{:.3g}": "-" if v is None else f.format(v)  # noqa: E731
    p = payload["pretraining"]
    lines = [
        f"Pre-training: {p['epochs']} epochs ({p['steps']} steps), best val force MAE "
        f"{1e3 * p['best']['val_forces_mae']:.0f} meV/Å, {fmt(p['seconds_per_step'], '{:.3f}')} s/step, "
        f"{p['wall_s']:.0f} s wall.",
        "",
    ]
    c = payload["reference_md_control"]
    lines += [
        "| variant | seed | steps | s/step | val / test force MAE (meV/Å) | test energy MAE "
        "(meV/atom) | stable time (ps) | first failed | max bond deviation (Å) | h(r) error |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| xTB reference MD (truth) | - | - | - | 0 | 0 | {fmt(c['stable_time_ps'])} of "
        f"{fmt(c['total_time_ps'])} | {', '.join(c['first_failed']) or 'none'} | "
        f"{fmt(c['max_bond_deviation_A'], '{:.3f}')} | - |",
    ]
    rows = [(r, r["variant"], r.get("stability")) for r in payload["runs"]] + [
        (r, f"{r['variant']}, {r['extended_md']['md_ps']:g} ps (A5)", r["extended_md"]["stability"])
        for r in payload["runs"]
        if "extended_md" in r
    ]
    for r, label, st in rows:
        t = r["training"]
        st = st or {
            "first_failed": [],
            "failure_reason": [],
            "stable_time_ps": None,
            "total_time_ps": None,
            "max_bond_deviation_A": None,
            "rdf_error_stable": None,
        }  # --no-md: not run
        why = "; ".join(f"{n} ({w})" for n, w in zip(st["first_failed"], st["failure_reason"]))
        lines.append(
            f"| {label} | {r['seed']} | {t['steps']} | {fmt(t['seconds_per_step'], '{:.3f}')} | "
            f"{1e3 * t['best']['val_forces_mae']:.0f} / {r['forces_mae_meV_per_A']:.0f} | "
            f"{r['energy_mae_meV_per_atom']:.1f} | {fmt(st['stable_time_ps'])} of "
            f"{fmt(st['total_time_ps'])} | {why or 'none'} | "
            f"{fmt(st['max_bond_deviation_A'], '{:.3f}')} | {fmt(st['rdf_error_stable'], '{:.3f}')} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--model", default="gemnet_t", help="gemnet_t (default) or pair_mlp, ...")
    parser.add_argument("--molecule", default="ethanol", help="md17 molecule (H/C/N/O only)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the target data")
    parser.add_argument(
        "--pretrain-data-seeds",
        type=int,
        nargs="+",
        help="one `gnnff data generate pretrain-molecules` per seed, all used "
        "(default: 0 1 2 3 at --size small, 0 at paper)",
    )
    parser.add_argument("--epochs", type=int, help="override the target training budget")
    parser.add_argument("--pretrain-epochs", type=int, help="override the pre-training budget")
    parser.add_argument(
        "--scratch-epochs",
        type=int,
        help="the from-scratch variant's budget when the MAE-match rule raises it (docs/"
        "experiments.md): its units go to seed<N>/scratch_<E>epochs/, continued from the "
        "shorter run's checkpoints; the fine-tuned variant keeps --epochs",
    )
    parser.add_argument("--md-steps", type=int, help="override the MD length")
    parser.add_argument("--r-max", type=float, default=4.0, help="model cutoff in Å")
    parser.add_argument("--forces-weight", type=float, default=10.0)
    parser.add_argument("--temperature", type=float, default=500.0, help="K (reference MD: 500)")
    parser.add_argument("--timestep-fs", type=float, default=0.5)
    parser.add_argument(
        "--vacuum",
        type=float,
        default=10.0,
        help="Å of box around the molecule (boundary f f f: no images)",
    )
    parser.add_argument(
        "--no-md", action="store_true", help="train and evaluate only (the accuracy gates); no MD"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=("finetuned", "scratch"),
        default=["finetuned", "scratch"],
        help="the variants this call runs (e.g. one process per variant on a GPU machine); "
        "units of both in one work folder are merged by stability_claims.py",
    )
    parser.add_argument(
        "--extend-md",
        metavar="PS",
        help="Amendment A5 (docs/experiments.md): also run every model of the call this many ps, "
        "as a unit of its own beside the primary MD (e.g. --extend-md 60: md_60ps/ beside md/); "
        "the xTB reference control is not extended",
    )
    common.add_run_arguments(
        parser,
        "stability_pretraining",
        reuse_help=(
            "take the pre-training and the runs (variant, seed) already in this "
            "earlier result JSON(s) of the same settings instead of redoing them"
        ),
    )
    args = parser.parse_args(argv)
    if common.print_table_only(args, markdown_tables):
        return 0
    size = dict(SIZES[args.size])
    for key, value in (
        ("epochs", args.epochs),
        ("pretrain_epochs", args.pretrain_epochs),
        ("md_steps", args.md_steps),
    ):
        if value:
            size[key] = value
    if args.scratch_epochs is not None and args.scratch_epochs < size["epochs"]:
        parser.error(
            f"--scratch-epochs {args.scratch_epochs} is below the target budget of "
            f"{size['epochs']} epochs: the MAE-match rule only raises the from-scratch budget"
        )
    if args.extend_md is not None and args.no_md:
        parser.error("--extend-md runs MD: leave out --no-md")
    try:
        args.extend_md = parse_extend_md(args.extend_md, size["md_steps"], args.timestep_fs)
    except ValueError as error:
        parser.error(str(error))

    start = time.perf_counter()
    work = Path(args.workdir).resolve()
    name, prefix = f"md17:{args.molecule}", f"md17_{args.molecule}"
    if args.pretrain_data_seeds:
        size["pretrain_data_seeds"] = tuple(args.pretrain_data_seeds)
    pre_dirs = [
        work / f"data_pretrain_{size['data_size']}_{s}" for s in size["pretrain_data_seeds"]
    ]
    target_dir = work / f"data_{prefix}_{size['data_size']}_{args.data_seed}"
    pretrained = work / "pretrain" / "train" / "best.pt"
    # a finished pre-training (collected units copied into a new work folder) needs its data's
    # cards, not its frames: ≈ 30 CPU-min of xTB saved on every new machine
    pretraining_done = pretrained.exists() and (work / "pretrain" / "training.json").exists()
    pre_cards = [
        json.loads((d / "datacard.json").read_text())
        if pretraining_done and (d / "datacard.json").exists()
        else common.generate_data(
            "pretrain-molecules",
            size["data_size"],
            s,
            d,
            work / "logs",
            workers=args.datagen_workers,
        )
        for s, d in zip(size["pretrain_data_seeds"], pre_dirs)
    ]
    target_card = common.generate_data(
        name,
        size["data_size"],
        args.data_seed,
        target_dir,
        work / "logs",
        workers=args.datagen_workers,
    )
    elements = molecule_elements(target_dir / f"{prefix}_train.extxyz")
    payload = {
        "experiment": "stability_pretraining",
        "research": "Maheshwari et al. 2025, arXiv 2506.14850 (pre-training -> stable MD)",
        "command": " ".join(["python"] + sys.argv),
        "size": args.size,
        "model": args.model,
        "molecule": args.molecule,
        "settings": experiment_settings(args, size),
        "data": [
            {
                "name": card["name"],
                "size": card["size"],
                "seed": card["seed"],
                "frames": {k: v.get("frames") for k, v in card["sets"].items()},
            }
            for card in pre_cards + [target_card]
        ],
        "machine": common.machine_info(),
        "extended_md_ps": md_ps(args, args.extend_md) if args.extend_md else None,
        "runs": [],
        "summary": [],
    }
    if scratch_budget(args, size) != size["epochs"]:  # a study of its own (not merged with 4)
        payload["settings"]["scratch_epochs"] = scratch_budget(args, size)
    reuse = common.reusable_runs(args.reuse, payload, ("experiment", "size", "model", "molecule"))
    payload["reference_md_control"] = reference_control(target_dir, prefix, args, elements)
    payload["pretraining"] = reuse.get(("__extra__", "pretraining"))
    if payload["pretraining"] is None or not pretrained.exists():
        payload["pretraining"] = pretrain(args, size, pre_dirs, work)
    for seed in args.seeds:
        for variant, init_from in (("finetuned", pretrained), ("scratch", None)):
            if variant not in args.variants:
                continue
            run = reuse.get((variant, seed))
            if run is not None and not has_extended_md(run, payload["extended_md_ps"]):
                print(
                    f"not reusing {variant} seed {seed}: it lacks the "
                    f"{payload['extended_md_ps']:g} ps run (its cached units are read back)",
                    flush=True,
                )
                run = None
            if run is not None:
                print(f"reusing {variant} seed {seed} from {args.reuse}", flush=True)
            payload["runs"].append(
                run
                or run_variant(
                    args, size, target_dir, work, prefix, elements, seed, variant, init_from
                )
            )
            payload["summary"] = summarise(payload["runs"])
            payload["wall_s_this_call"] = time.perf_counter() - start
            common.write_json(Path(args.json), payload)
    payload["machine_after"] = common.machine_info()
    payload["wall_s_this_call"] = time.perf_counter() - start
    common.write_json(Path(args.json), payload)
    for row in payload["summary"]:
        label = row["variant"] + (
            f", {row['extended_md_ps']:g} ps (A5)" if row["extended_md_ps"] else ""
        )
        print(
            f"{label:<10} MAE {row['forces_mae_meV_per_A']} meV/Å, stable "
            f"{row['stable_time_ps']} ps, first failed {row['first_failed']}"
        )
    print(f"total wall time {payload['wall_s_this_call']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

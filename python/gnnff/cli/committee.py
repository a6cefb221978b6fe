"""``gnnff committee CONFIG --seeds 0 1 2 -o DIR``: one training config trained once per seed
and exported, the committee that ``pair_style gnnff committee`` evaluates for the model
deviation (docs/pair_style.md). Every member uses the same train/validation split (the
config's ``data.split_seed``, else its ``training.seed``); only the seed of weights and
shuffling changes.
"""

import os

from gnnff.cli.errors import add_debug_flag, user_errors


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "committee", help="train and export one model per seed (a committee for model deviation)"
    )
    parser.add_argument("config", help="training config (YAML); see docs/training.md")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        required=True,
        metavar="SEED",
        help="one member per seed, e.g. --seeds 0 1 2 (the first drives MD)",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="folder for the runs (DIR/seed<k>/) and models (DIR/model_seed<k>.pt)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value for every member (repeatable)",
    )
    add_debug_flag(parser)
    parser.set_defaults(func=run)


@user_errors
def run(args) -> int:
    from gnnff.export import export_model
    from gnnff.model_io import load_checkpoint, model_from_checkpoint
    from gnnff.training.checkpoint import export_lineage
    from gnnff.training.config import load_config
    from gnnff.training.trainer import Trainer

    if len(set(args.seeds)) != len(args.seeds) or len(args.seeds) < 2:
        raise ValueError(f"--seeds needs at least two different seeds, got {args.seeds}")
    base = load_config(args.config, args.overrides)
    split_seed = base["data"]["split_seed"]
    if split_seed is None:
        split_seed = base["training"]["seed"]
    os.makedirs(args.output, exist_ok=True)
    models = []
    for seed in args.seeds:
        run_dir = os.path.join(args.output, f"seed{seed}")
        config = load_config(
            args.config,
            list(args.overrides)
            + [f"training.seed={seed}", f"data.split_seed={split_seed}", f"output.dir={run_dir}"],
        )
        summary = Trainer(config).run()
        state = load_checkpoint(summary["best_checkpoint"])
        model = model_from_checkpoint(state, source=repr(summary["best_checkpoint"]))
        lineage = export_lineage(state, summary["best_checkpoint"])
        lineage["committee"] = {"seed": seed, "seeds": list(args.seeds), "split_seed": split_seed}
        path = os.path.join(args.output, f"model_seed{seed}.pt")
        metadata = export_model(model, path, lineage=lineage)
        models.append(path)
        print(f"wrote {path} (seed {seed}, best epoch {summary['best']['epoch']})", flush=True)
    print("LAMMPS (model deviation every 100 steps, DeePMD-kit's model_devi.out layout):")
    print(f"  pair_style gnnff committee {' '.join(models[1:])} model_devi model_devi.out 100")
    print(
        f"  pair_coeff * * {models[0]} El1 ... (one name per atom type, from: "
        f"{metadata['gnnff/type_names']})"
    )
    return 0

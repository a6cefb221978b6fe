"""``gnnff data generate NAME`` and ``gnnff data list``: reference data sets made offline."""

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="generate reference data sets with LAMMPS / GFN2-xTB (no download)",
        description=__doc__,
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    gen = actions.add_parser("generate", help="run the reference engine, write extxyz + card")
    gen.add_argument(
        "name",
        help="data set name, see `gnnff data list` (e.g. si, sio, "
        "md17:aspirin, pretrain-molecules)",
    )
    gen.add_argument(
        "--size",
        default="small",
        choices=["small", "paper"],
        help="small: about a minute, for tests and demos; paper: the research's "
        "scale (default small)",
    )
    gen.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed (default 0); the same seed gives identical files",
    )
    gen.add_argument("-o", "--outdir", default=".", help="output directory (default .)")
    gen.add_argument(
        "-j",
        "--workers",
        type=int,
        default=None,
        help="processes running trajectories (default: every core)",
    )
    gen.add_argument(
        "--overwrite",
        action="store_true",
        help="allow writing into a directory that holds another data set",
    )
    gen.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    actions.add_parser("list", help="list the data sets that can be generated")
    parser.set_defaults(func=run, _data_parser=parser)


def _list() -> int:
    from gnnff.datagen import catalog

    for name in catalog.dataset_names():
        counts = []
        for size in catalog.SIZES:
            plan = catalog.make_plan(name, size)
            frames = sum(r.n_frames * r.replicas for r in plan.runs if r.split != "reference")
            counts.append(f"{size}: {frames} frames")
        plan = catalog.make_plan(name, "small")
        print(f"{name:28s} {plan.description}  [{', '.join(counts)}]")
    return 0


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "data_command", None)
    if action == "list":
        return _list()
    if action != "generate":
        parser = getattr(args, "_data_parser", None)
        if parser is not None:
            parser.print_help()
        return 2
    from gnnff.datagen import generate

    try:
        card = generate(
            args.name,
            size=args.size,
            seed=args.seed,
            outdir=args.outdir,
            workers=args.workers,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    except ValueError as err:
        print(f"gnnff data generate: error: {err}", file=sys.stderr)
        return 2
    for split, entry in card["sets"].items():
        print(f"{entry['file']}: {entry['frames']} frames ({split})")
    for entry in card["reference_md"]:
        print(f"{entry['file']}: {entry['frames']} frames (reference MD)")
    print(f"data card: {args.outdir.rstrip('/')}/datacard.json")
    return 0

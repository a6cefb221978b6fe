"""``gnnff pipeline``: generate data, train, export, run LAMMPS MD, analyse stability."""


def register(subparsers) -> None:
    from gnnff.workflow.pipeline import PipelineOptions

    d = PipelineOptions()
    parser = subparsers.add_parser(
        "pipeline", help="the whole job end to end on built-in Si data", description=__doc__
    )
    parser.add_argument("--out", default=d.out, help=f"output folder (default {d.out})")
    parser.add_argument(
        "--model",
        default=d.model,
        help=f"registered model name (default {d.model}; also allegro, nequip, gemnet_t)",
    )
    parser.add_argument(
        "--max-epochs", type=int, default=d.max_epochs, help=f"default {d.max_epochs}"
    )
    parser.add_argument(
        "--decorrelation", action="store_true", help="train with the decorrelation loss"
    )
    parser.add_argument(
        "--md-steps", type=int, default=d.md_steps, help=f"MD steps of 1 fs (default {d.md_steps})"
    )
    parser.add_argument(
        "--temperature", type=float, default=d.temperature, help=f"K (default {d.temperature:g})"
    )
    parser.add_argument(
        "--np", dest="nprocs", type=int, default=d.nprocs, help=f"MPI ranks (default {d.nprocs})"
    )
    parser.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    parser.set_defaults(func=run)


def run(args) -> int:
    import logging
    import sys

    from gnnff.workflow.pipeline import PipelineError, PipelineOptions, run_pipeline

    # the library logs its progress; here it becomes this command's output
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("gnnff.workflow")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return run_pipeline(
            PipelineOptions(
                out=args.out,
                model=args.model,
                max_epochs=args.max_epochs,
                decorrelation=args.decorrelation,
                md_steps=args.md_steps,
                temperature=args.temperature,
                nprocs=args.nprocs,
                seed=args.seed,
            )
        )
    except (PipelineError, ValueError) as err:
        sys.stdout.flush()
        print(f"error: gnnff pipeline: {err}", file=sys.stderr)
        return getattr(err, "status", 2)
    finally:
        logger.removeHandler(handler)

"""``gnnff analyze``: MD stability metrics from a LAMMPS dump (and log).

Also used by ``scripts/analyze_dump.py``; both call :func:`add_arguments` and :func:`run`.
Exit status 0 whether the run was stable or not; 2 for unusable input. Under
``mpirun -np N`` the ranks split the frames (gnnff.stability.parallel); rank 0 prints and
writes the outputs.

The criterion flags (``--bond-threshold``, ``--rdf-window``, ...) are generated from the
criteria's option declarations (gnnff.stability.options), the format list from the readers.
"""

import argparse
import json
import sys

HELP = (
    "MD stability metrics (bond collapse, RDF drift, close contacts, temperature, energy "
    "drift) from a LAMMPS dump and log"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gnnff.stability.options import add_criterion_arguments, criterion_classes
    from gnnff.stability.readers import reader_classes

    formats = "; or ".join(r.description for r in reader_classes())
    parser.add_argument("trajectory", help=f"the trajectory: {formats}")
    parser.add_argument("--log", help="LAMMPS log file: thermo data, time step, ensemble")
    parser.add_argument(
        "--reference",
        help="reference trajectory (same atoms, any format "
        "above): bond lengths, RDF and minimum distances are taken from it",
    )
    parser.add_argument(
        "--timestep",
        type=float,
        help="ps per MD step (default: from --log, else 0.001 = LAMMPS metal default)",
    )
    parser.add_argument(
        "--elements",
        nargs="+",
        metavar="EL",
        help="element of LAMMPS type 1, "
        "2, ... when the dump has no 'element' column (needed for bonds)",
    )
    names = ",".join(c.name for c in criterion_classes())
    parser.add_argument(
        "--criteria",
        help="comma-separated criteria that count towards the "
        f"stable time (default: automatic); any of {names}",
    )
    add_criterion_arguments(parser)
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write the result "
        "as JSON to PATH, or to stdout instead of the table when no PATH "
        "(put a bare --json after the trajectory)",
    )
    parser.add_argument("--plot", metavar="PNG", help="write a PNG of the metrics and the RDFs")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument(
        "--write-watch-reference",
        metavar="FILE",
        help="write the reference "
        "input of the LAMMPS fix gnnff/watch (minimum distance per element "
        "pair, bonds and their lengths) from --reference, else from the "
        "trajectory, and exit (docs/stability_metrics.md)",
    )


def register(subparsers) -> None:
    parser = subparsers.add_parser("analyze", help=HELP, description=HELP)
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gnnff.stability import StabilityAnalysis, StabilityOptions
    from gnnff.stability.options import criterion_options_from_args

    if getattr(args, "write_watch_reference", None):
        return _write_watch_reference(args)
    criteria = None
    if args.criteria:
        criteria = [c.strip() for c in args.criteria.split(",") if c.strip()]
    analysis = None
    try:
        options = StabilityOptions(
            timestep_ps=args.timestep,
            elements=args.elements,
            criteria=criteria,
            progress=args.progress,
            **criterion_options_from_args(args),
        )
        analysis = StabilityAnalysis(
            args.trajectory, log=args.log, reference=args.reference, options=options
        ).run()
    except (ValueError, OSError) as err:
        if _rank() == 0:  # every rank raises the same error; one message is enough
            print(f"error: {err}", file=sys.stderr)
        return 2
    report = analysis.results
    if report is None:  # another rank than 0 of an mpirun: rank 0 writes everything
        return 0
    if args.json == "-":
        json.dump(report.to_dict(), sys.stdout, indent=1)
        print()
    else:
        print(report.format_table())
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(report.to_dict(), handle, indent=1)
    if args.plot:
        from gnnff.stability.plot import plot_report

        plot_report(report, args.plot)
        if args.json != "-":
            print(f"plot written to {args.plot}")
    return 0


def _write_watch_reference(args: argparse.Namespace) -> int:
    from gnnff.stability.watch_reference import write_watch_reference

    source = args.reference or args.trajectory
    try:
        ref = write_watch_reference(source, args.write_watch_reference, args.elements)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"watch reference written to {args.write_watch_reference}: species "
        f"{' '.join(ref.species)}, {len(ref.min_distances)} minimum distances, "
        f"{len(ref.bonds)} bonds (from {source})"
    )
    return 0


def _rank() -> int:
    """This process's MPI rank from the launcher's environment (0 when not under mpirun)."""
    import os

    from gnnff.stability.parallel import LAUNCHER_RANK_VARIABLES

    for name in LAUNCHER_RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0

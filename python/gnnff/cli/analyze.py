"""``gnnff analyze``: MD stability metrics from a LAMMPS dump (and log).

Also used by ``scripts/analyze_dump.py``; both call :func:`add_arguments` and :func:`run`.
Exit status 0 whether the run was stable or not; 2 for unusable input.
"""

import argparse
import json
import sys

HELP = ("MD stability metrics (bond collapse, RDF drift, close contacts, temperature, energy "
        "drift) from a LAMMPS dump and log")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trajectory", help="LAMMPS text dump (dump custom/atom, may be .gz) or "
                        "extended XYZ (dump extxyz)")
    parser.add_argument("--log", help="LAMMPS log file: thermo data, time step, ensemble")
    parser.add_argument("--reference", help="reference trajectory (same atoms; dump or extxyz): "
                        "bond lengths, RDF and minimum distances are taken from it")
    parser.add_argument("--timestep", type=float, help="ps per MD step (default: from --log, "
                        "else 0.001 = LAMMPS metal default)")
    parser.add_argument("--elements", nargs="+", metavar="EL", help="element of LAMMPS type 1, "
                        "2, ... when the dump has no 'element' column (needed for bonds)")
    parser.add_argument("--criteria", help="comma-separated criteria that count towards the "
                        "stable time (default: automatic); any of bonds,rdf,close_contacts,"
                        "nonfinite,lost_atoms,temperature,energy_drift")
    parser.add_argument("--bond-threshold", type=float, default=0.5, help="Å (default 0.5)")
    parser.add_argument("--rdf-threshold", type=float, help="sum|g-g_ref| dr in Å (default "
                        "1.0; 0.5 for h(r) of molecules)")
    parser.add_argument("--rdf-window", type=int, default=10, help="frames per RDF window (10)")
    parser.add_argument("--rdf-rmax", type=float, help="Å (default 6 for g(r), 10 for h(r))")
    parser.add_argument("--rdf-bins", type=int, help="number of bins (default: 0.05 Å bins)")
    parser.add_argument("--rdf-every", type=int, default=1, metavar="N", help="compute the RDF "
                        "on every N-th frame only (it dominates the cost for large systems)")
    parser.add_argument("--equilibration", type=float, default=0.0, metavar="PS", help="the RDF "
                        "criterion ignores frames before this time (runs from ideal lattices)")
    parser.add_argument("--close-fraction", type=float, default=0.5, help="pairs closer than "
                        "this fraction of the reference minimum distance fail (0.5)")
    parser.add_argument("--temperature-factor", type=float, default=3.0, help="T above this "
                        "times the initial T fails (3)")
    parser.add_argument("--max-temperature", type=float, help="absolute T limit in K (overrides "
                        "--temperature-factor)")
    parser.add_argument("--energy-threshold", type=float, default=10.0, help="|E(t)-E(0)| in "
                        "meV/atom above which an NVE run fails (10)")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH", help="write the result "
                        "as JSON to PATH, or to stdout instead of the table when no PATH "
                        "(put a bare --json after the trajectory)")
    parser.add_argument("--plot", metavar="PNG", help="write a PNG of the metrics and the RDFs")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")


def register(subparsers) -> None:
    parser = subparsers.add_parser("analyze", help=HELP, description=HELP)
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gnnff.stability import StabilityAnalysis, StabilityOptions

    criteria = None
    if args.criteria:
        criteria = [c.strip() for c in args.criteria.split(",") if c.strip()]
    options = StabilityOptions(
        timestep_ps=args.timestep, elements=args.elements, criteria=criteria,
        bond_threshold=args.bond_threshold, rdf_threshold=args.rdf_threshold,
        rdf_window=args.rdf_window, rdf_r_max=args.rdf_rmax, rdf_bins=args.rdf_bins,
        equilibration_ps=args.equilibration, rdf_every=args.rdf_every,
        close_fraction=args.close_fraction, temperature_factor=args.temperature_factor,
        max_temperature=args.max_temperature, energy_threshold=args.energy_threshold,
        progress=args.progress)
    try:
        report = StabilityAnalysis(args.trajectory, log=args.log, reference=args.reference,
                                   options=options).run().results
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
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

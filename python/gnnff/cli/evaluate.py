"""``gnnff eval MODEL DATA``: energy and force MAE / RMSE of a checkpoint or exported model."""

import json

from gnnff.cli.errors import add_debug_flag, user_errors


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="energy/force errors of a model on a data set")
    parser.add_argument("model", help="training checkpoint (best.pt, last.pt) or exported model.pt")
    parser.add_argument(
        "data", nargs="+", help="data file(s): extxyz, ASE db, MD17/rMD17 .npz, OC20 extxyz"
    )
    parser.add_argument(
        "--format", default="auto", help="data format (default: guess from the file)"
    )
    parser.add_argument("--energy-key", default="energy")
    parser.add_argument("--forces-key", default="forces")
    parser.add_argument("--stress-key", default="stress")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--no-ema", action="store_true", help="checkpoints: use the raw, not the averaged, weights"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to PATH as JSON")
    add_debug_flag(parser)
    parser.set_defaults(func=run)


def format_report(results: dict, num_structures: int, num_atoms: int) -> str:
    lines = [
        f"{num_structures} structures, {num_atoms} atoms",
        f"{'quantity':<10} {'MAE':>12} {'RMSE':>12}  unit",
    ]
    for name, unit, factor in (
        ("energy", "meV/atom", 1e3),
        ("forces", "meV/Å", 1e3),
        ("stress", "meV/Å^3", 1e3),
    ):
        if f"{name}_mae" in results:
            lines.append(
                f"{name:<10} {results[name + '_mae'] * factor:>12.4f} {results[name + '_rmse'] * factor:>12.4f}  {unit}"
            )
    return "\n".join(lines)


@user_errors
def run(args) -> int:
    from gnnff.data.readers import read_structures
    from gnnff.model_io import evaluate_structures, load_for_inference

    model, info = load_for_inference(args.model, device=args.device, use_ema=not args.no_ema)
    structures = read_structures(
        args.data,
        fmt=args.format,
        energy_key=args.energy_key,
        forces_key=args.forces_key,
        stress_key=args.stress_key,
    )
    results = evaluate_structures(
        model, info, structures, batch_size=args.batch_size, device=args.device
    )
    num_atoms = sum(len(a) for a in structures)
    print(format_report(results, len(structures), num_atoms))
    if args.json:
        report = {
            "model": args.model,
            "data": args.data,
            "num_structures": len(structures),
            "num_atoms": num_atoms,
            "units": {"energy": "meV/atom", "forces": "meV/Å", "stress": "meV/Å^3"},
        }
        report.update({k: v * 1e3 for k, v in results.items()})
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
    return 0

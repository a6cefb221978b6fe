"""``gnnff export CHECKPOINT -o model.pt``: the TorchScript file that pair_style gnnff loads;
``--format aoti -o model.pt2``: the same model compiled ahead of time by AOTInductor."""

from gnnff.cli.errors import add_debug_flag, user_errors


def register(subparsers) -> None:
    parser = subparsers.add_parser("export", help="export a checkpoint to TorchScript for LAMMPS")
    parser.add_argument("checkpoint", help="training checkpoint (best.pt or last.pt)")
    parser.add_argument(
        "-o", "--output", required=True, help="path of the TorchScript file to write"
    )
    parser.add_argument(
        "--no-ema", action="store_true", help="export the raw, not the averaged, weights"
    )
    parser.add_argument(
        "--format",
        choices=("torchscript", "aoti"),
        default="torchscript",
        help="torchscript (default, model.pt) or aoti: an AOTInductor package (model.pt2, "
        "compiled for the CPU with the host C++ compiler; takes minutes)",
    )
    add_debug_flag(parser)
    parser.set_defaults(func=run)


@user_errors
def run(args) -> int:
    from gnnff.export import export_model
    from gnnff.model_io import load_checkpoint, model_from_checkpoint
    from gnnff.training.checkpoint import export_lineage

    state = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(state, use_ema=not args.no_ema, source=repr(args.checkpoint))
    lineage = export_lineage(state, args.checkpoint)
    lineage["weights"] = "raw" if args.no_ema or not state.get("ema_state") else "ema"
    if args.format == "aoti":
        from gnnff.export_aoti import export_aoti

        metadata = export_aoti(model, args.output, lineage=lineage)
    else:
        metadata = export_model(model, args.output, lineage=lineage)
    print(
        f"wrote {args.output}: model {metadata['gnnff/model_name']}, types {metadata['gnnff/type_names']}, "
        f"r_max {metadata['gnnff/r_max']} Å, {metadata['gnnff/dtype']}"
    )
    return 0

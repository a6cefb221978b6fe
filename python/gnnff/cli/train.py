"""``gnnff train CONFIG.yaml [--set section.key=value ...] [--resume [CHECKPOINT]]``.

Runs under torchrun for data parallelism: ``torchrun --nproc_per_node 2 -m gnnff.cli train ...``.
"""

import json
import logging
import os

from gnnff.cli.errors import add_debug_flag, user_errors


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a force field from a YAML config")
    parser.add_argument("config", help="training config (YAML); see docs/training.md")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.max_epochs=5 (repeatable)",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="CHECKPOINT",
        help="resume from CHECKPOINT (default: OUTPUT_DIR/last.pt)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-epoch log lines")
    add_debug_flag(parser)
    parser.set_defaults(func=run)


@user_errors
def run(args) -> int:
    from gnnff.training.config import load_config
    from gnnff.training.trainer import Trainer

    config = load_config(args.config, args.overrides)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    resume = args.resume
    if resume == "auto":
        resume = os.path.join(config["output"]["dir"], "last.pt")
    trainer = Trainer(config, resume=resume)
    summary = trainer.run()
    if trainer.dist.is_main:
        best = summary["best"]
        print(
            json.dumps(
                {
                    "epochs": summary["epochs"],
                    "steps": summary["steps"],
                    "best_epoch": best["epoch"],
                    "best_" + config["training"]["monitor"]: best["value"],
                    "best_checkpoint": summary["best_checkpoint"],
                }
            )
        )
    from gnnff.training.distributed import shutdown

    shutdown()
    return 0


if __name__ == "__main__":  # torchrun --nproc_per_node 2 -m gnnff.cli.train CONFIG ...
    import sys

    from gnnff.cli import main

    sys.exit(main(["train"] + sys.argv[1:]))

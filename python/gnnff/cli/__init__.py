"""The ``gnnff`` command. Each subcommand lives in its own module with ``register(subparsers)``
(adds its parser, sets ``func``) and is imported only when used, so ``gnnff analyze`` does not pay
for importing torch."""

import argparse
import importlib
import sys
from typing import List, Optional

# subcommand -> module in gnnff.cli
SUBCOMMANDS = {
    "data": "data",
    "train": "train",
    "eval": "evaluate",
    "export": "export",
    "analyze": "analyze",
    "pipeline": "pipeline",
    "committee": "committee",
}


def _load(name: str):
    try:
        return importlib.import_module(f"gnnff.cli.{SUBCOMMANDS[name]}")
    except ModuleNotFoundError as err:
        if err.name == f"gnnff.cli.{SUBCOMMANDS[name]}":
            return None
        raise


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="gnnff", description="gnnff: stable graph-neural-network force fields for LAMMPS"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    # register only the subcommand asked for (fast start-up), or all of them for --help
    wanted = [argv[0]] if argv and argv[0] in SUBCOMMANDS else list(SUBCOMMANDS)
    for name in wanted:
        module = _load(name)
        if module is not None:
            module.register(subparsers)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

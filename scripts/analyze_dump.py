#!/usr/bin/env python
"""How long did a LAMMPS run stay physical, and why did it stop? Same as ``gnnff analyze``.

    python scripts/analyze_dump.py traj.dump --log log.lammps [--reference ref.extxyz] \
        [--plot metrics.png] [--json result.json]
"""

import argparse
import os
import sys

try:
    from gnnff.cli.analyze import HELP, add_arguments, run
except ImportError:  # running from a source checkout without installing gnnff
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    from gnnff.cli.analyze import HELP, add_arguments, run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="analyze_dump.py", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

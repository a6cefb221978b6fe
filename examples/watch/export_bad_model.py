"""Write bad_lj.pt: a "bad model" for the watch example, as an ordinary gnnff model file.

    python examples/watch/export_bad_model.py [-o examples/watch/bad_lj.pt]

Lennard-Jones with sigma = 0.5 Å and epsilon = 0.05 eV for silicon: almost no repulsion at
bonding distances, so a hot crystal falls into close contacts (what a model trained too
briefly does when MD visits geometries it never saw).
"""

import argparse
import os

from gnnff.export import export_model
from gnnff.models.registry import build_model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output",
                        default=os.path.join(os.path.dirname(__file__), "bad_lj.pt"))
    args = parser.parse_args()
    model = build_model("lennard_jones", type_names=["Si"], epsilon=0.05, sigma=0.5, cutoff=3.0,
                        shift=True)
    export_model(model, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""Export the analytic Lennard-Jones model (argon, LAMMPS lj/cut parameters) to lj.pt.

    python examples/lj/export_lj.py [-o examples/lj/lj.pt]

The file is an ordinary gnnff model file (TorchScript + metadata), the same kind `gnnff export`
writes for a trained network, so in.lj runs a trained model by changing its pair_coeff line.
"""

import argparse
import os

from gnnff.export import export_model
from gnnff.models.registry import build_model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__), "lj.pt"))
    args = parser.parse_args()
    model = build_model("lennard_jones", type_names=["Ar"], epsilon=0.0104, sigma=3.4, cutoff=8.5)
    metadata = export_model(model, args.output)
    print(f"wrote {args.output}: {metadata}")


if __name__ == "__main__":
    main()

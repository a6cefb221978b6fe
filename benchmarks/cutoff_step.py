"""The energy step of a trained model when one neighbour crosses r_max (float64).

A model whose every term vanishes at r_max changes its energy continuously as an atom crosses
the cutoff; a term that does not vanish there (allegro's environment bias in checkpoints of
version 1, env_bias "constant") puts a step into the energy - invisible to the forces, so NVE
drifts - whose size grows with training. For `--pairs` random pairs of the first frame of
FRAMES (distance > 1.5 Å), atom j is moved along i->j so that |r_ij| = r_max -+ eps, and the
energy difference is reported for eps = 1e-7 and 3e-7 Å: a step stays the same, a smooth
change triples (and is ~0 at the cutoff, where the envelope is flat).

    python benchmarks/cutoff_step.py run/best.pt data.extxyz --out step.json
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))


def energy_steps(checkpoint: str, frames: str, pairs: int = 12, seed: int = 0):
    import ase.io
    import torch
    from ase.neighborlist import neighbor_list

    from gnnff.calculator import GnnffCalculator
    from gnnff.model_io import load_model

    torch.set_num_threads(1)
    model = load_model(checkpoint).double()
    calc, r_max = GnnffCalculator(model=model), float(model.r_max)
    atoms = ase.io.read(frames, index=0)
    first, second, distance, vector = neighbor_list("ijdD", atoms, r_max + 0.3)
    keep = distance > 1.5
    first, second, distance, vector = first[keep], second[keep], distance[keep], vector[keep]
    rng = np.random.default_rng(seed)
    rows = []
    for k in rng.choice(len(first), size=min(pairs, len(first)), replace=False):
        i, j, d, unit = first[k], second[k], distance[k], vector[k] / distance[k]
        energy = {}
        for eps in (-3e-7, -1e-7, 1e-7, 3e-7):
            moved = atoms.copy()
            moved.calc = calc
            positions = moved.get_positions()
            positions[j] += unit * (r_max + eps - d)
            moved.set_positions(positions)
            energy[eps] = moved.get_potential_energy()
        rows.append(
            {
                "pair": [int(i), int(j)],
                "species": [atoms[i].symbol, atoms[j].symbol],
                "step_eV_1e-7": energy[1e-7] - energy[-1e-7],
                "step_eV_3e-7": energy[3e-7] - energy[-3e-7],
            }
        )
    steps = [abs(r["step_eV_1e-7"]) for r in rows]
    return {
        "checkpoint": checkpoint,
        "frames": frames,
        "r_max": r_max,
        "model_options": {
            "env_bias_cutoff": getattr(model.energy_model, "env_bias_cutoff", None),
        },
        "pairs": rows,
        "median_abs_step_eV": float(np.median(steps)),
        "max_abs_step_eV": float(np.max(steps)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a training checkpoint (best.pt / last.pt)")
    parser.add_argument("frames", help="structures; the first frame is used")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--out", help="JSON file")
    args = parser.parse_args(argv)
    result = energy_steps(args.checkpoint, args.frames, args.pairs)
    result["command"] = " ".join(["python"] + sys.argv)
    for row in result["pairs"]:
        print(
            f"{row['species'][0]}-{row['species'][1]} {row['pair']}: "
            f"{row['step_eV_1e-7']:+.3e} eV (+-1e-7 Å), {row['step_eV_3e-7']:+.3e} eV (+-3e-7 Å)"
        )
    print(
        f"median |step| {result['median_abs_step_eV']:.3e} eV, max {result['max_abs_step_eV']:.3e} eV"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

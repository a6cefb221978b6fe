"""Training throughput (structures/s, atoms/s) of the gnnff trainer for a reference config.

    python benchmarks/bench_training.py [--config my.yaml] [--epochs 3] [--atoms 32] \
        [--structures 64] [--out benchmarks/results/bench_training.json]

Without --config the reference is pair_mlp (hidden 32, 2 layers, angular, r_max 4.5 Å) on
EMT-labelled fcc Cu cells (``--atoms`` per cell, rattled 0.1 Å), batch 8, float32, one process.
Throughput counts only optimiser steps (forward + force double-backward + step, collate
included; validation and checkpoints excluded): the trainer's per-epoch train_structures_per_s.
The first epoch is warm-up and is reported but not averaged. Not run in CI.
"""

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
import torch


def _reference_data(path: str, structures: int, atoms_per_cell: int) -> None:
    import ase.io
    from ase.build import bulk
    from ase.calculators.emt import EMT

    reps = max(1, round((atoms_per_cell / 4) ** (1 / 3)))
    frames = []
    for k in range(structures):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (
            reps,
            reps,
            max(1, atoms_per_cell // (4 * reps * reps)),
        )
        atoms.rattle(0.1, seed=k)
        atoms.calc = EMT()
        atoms.get_forces()
        frames.append(atoms)
    ase.io.write(path, frames)


def reference_config(data: str, out_dir: str, epochs: int):
    return {
        "model": {
            "name": "pair_mlp",
            "type_names": ["Cu"],
            "r_max": 4.5,
            "hidden": 32,
            "num_layers": 2,
        },
        "data": {"train": data, "val_fraction": 0.1},
        "loss": {"energy": {"weight": 1.0}, "forces": {"weight": 10.0}},
        "training": {
            "max_epochs": epochs,
            "batch_size": 8,
            "dtype": "float32",
            "device": "auto",
            "progress_bar": False,
        },
        "output": {"dir": out_dir, "overwrite": True},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="YAML training config (default: the reference config)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--structures", type=int, default=64)
    parser.add_argument("--atoms", type=int, default=32)
    parser.add_argument("--out", default="benchmarks/results/bench_training.json")
    args = parser.parse_args()

    from gnnff.training.config import load_config, resolve_config
    from gnnff.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        if args.config:
            config = load_config(
                args.config,
                args.overrides
                + [
                    f"training.max_epochs={args.epochs}",
                    f"output.dir={tmp}/run",
                    "output.overwrite=true",
                ],
            )
        else:
            data = os.path.join(tmp, "cu.extxyz")
            _reference_data(data, args.structures, args.atoms)
            config = resolve_config(
                reference_config(data, os.path.join(tmp, "run"), args.epochs), args.overrides
            )
        start = time.perf_counter()
        trainer = Trainer(config)
        setup_s = time.perf_counter() - start
        n_train = len(trainer.datasets["train"])
        atoms_per_structure = trainer.datasets["train"].num_atoms() / n_train
        summary = trainer.run()
    rates = [row["train_structures_per_s"] for row in summary["history"]]
    steady = rates[1:] if len(rates) > 1 else rates
    result = {
        "benchmark": "bench_training",
        "config": config,
        "train_structures": n_train,
        "atoms_per_structure": atoms_per_structure,
        "setup_s (read data, neighbour lists, build model)": setup_s,
        "structures_per_s_by_epoch": rates,
        "structures_per_s": float(np.mean(steady)),
        "atoms_per_s": float(np.mean(steady)) * atoms_per_structure,
        "device": str(trainer.device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1, default=str)
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "train_structures",
                    "atoms_per_structure",
                    "structures_per_s",
                    "atoms_per_s",
                    "device",
                )
            }
        )
    )


if __name__ == "__main__":
    main()

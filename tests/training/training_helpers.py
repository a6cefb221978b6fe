"""Helpers for training tests: tiny labelled data sets (ASE's EMT for Cu/Al) and configs for fast training tests."""

import os
import subprocess
import sys

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON_DIR = os.path.join(REPO, "python")


def emt_structures(count: int, seed: int = 0, alloy: bool = True):
    """Rattled, strained fcc Cu (some Al) cells of 8 atoms labelled by EMT (eV, eV/Å, eV/Å^3)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(count):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1)
        if alloy and k % 2:
            atoms.numbers[rng.integers(len(atoms))] = 13
        atoms.set_cell(atoms.cell * (1 + 0.03 * rng.standard_normal()), scale_atoms=True)
        atoms.rattle(0.1, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        atoms.get_potential_energy()
        atoms.get_stress()
        frames.append(atoms)
    return frames


def small_config(data_path: str, out_dir: str, **sections):
    config = {
        "model": {
            "name": "pair_mlp",
            "type_names": ["Cu", "Al"],
            "r_max": 4.0,
            "hidden": 16,
            "num_basis": 6,
            "num_channels": 4,
        },
        "data": {"train": data_path, "val_fraction": 0.25},
        "loss": {"energy": {"weight": 1.0}, "forces": {"weight": 10.0}, "stress": {"weight": 1.0}},
        "optimizer": {"lr": 0.01},
        "training": {
            "max_epochs": 2,
            "batch_size": 4,
            "dtype": "float64",
            "device": "cpu",
            "progress_bar": False,
        },
        "output": {"dir": out_dir},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def run_gnnff(args, cwd, env_extra=None, torchrun_procs=None, timeout=240):
    """Run the gnnff CLI of this working tree in a fresh process."""
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, OMP_NUM_THREADS="1")
    env.update(env_extra or {})
    if torchrun_procs:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(torchrun_procs),
            "--standalone",
            "-m",
            "gnnff.cli.train",
        ] + list(args[1:])
    else:
        command = [
            sys.executable,
            "-c",
            "import sys; from gnnff.cli import main; sys.exit(main(sys.argv[1:]))",
        ] + list(args)
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def max_weight_difference(state_a, state_b) -> float:
    return max(float((state_a[k].double() - state_b[k].double()).abs().max()) for k in state_a)

"""One small, seeded instance of every built-in registered model (two atom types each), for the
physics battery and the interface tests. A new built-in model adds its entry here;
tests/models/test_interface.py fails until it does."""

import os

import torch

from gnnff.models.registry import build_model

TYPES = ["Si", "C"]


def sw_potential() -> str:
    from gnnff.lammps.python_module import potentials_dir

    return os.path.join(potentials_dir(), "GaN.sw")  # LAMMPS's two-element Stillinger-Weber file


def small(name: str, **overrides) -> torch.nn.Module:
    """A fresh small model ``name`` (float32 or float64 as its builder makes it)."""
    options = {
        "pair_mlp": dict(type_names=TYPES, r_max=3.5, hidden=16, seed=0),
        "allegro": dict(type_names=TYPES, r_max=3.5, preset="small"),
        "nequip": dict(type_names=TYPES, r_max=3.5, preset="small"),
        "gemnet_t": dict(type_names=TYPES, preset="small", r_max=3.0, seed=0),
        # sigma 1.5 Å: the battery's structures keep atoms >= 1.7 Å apart (no r^-12 blow-up)
        "lennard_jones": dict(type_names=TYPES, epsilon=0.1, sigma=1.5, cutoff=4.0),
        "stillinger_weber": dict(type_names=["Ga", "N"], potential_file=None),
        "toy_message_passing": dict(type_names=TYPES, r_max=3.0, seed=0),
    }[name]
    if name == "stillinger_weber":
        options["potential_file"] = sw_potential()
    options.update(overrides)
    if name in ("allegro", "nequip"):
        torch.manual_seed(0)  # their e3nn layers draw from the global RNG
    return build_model(name, **options)


NAMES = (
    "pair_mlp",
    "allegro",
    "nequip",
    "gemnet_t",
    "lennard_jones",
    "stillinger_weber",
    "toy_message_passing",
)

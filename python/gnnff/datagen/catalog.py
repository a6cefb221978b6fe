"""The data sets ``gnnff data generate`` knows: what each one simulates, at which sizes.

A data set is a list of *runs*: (output set, configuration family, temperature, frames, replicas).
Each run becomes independent MD trajectories (one per replica) with its own derived seed.
Output sets are "train", "valid", "test", out-of-distribution sets "ood_*", and "reference"
(continuous reference-engine trajectories that the stability metrics compare against).
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from ase import Atoms

from gnnff.datagen import geometries as geo

SIZES = ("small", "paper")


@dataclass(frozen=True)
class Family:
    """A kind of configuration: how to build its start and how to drive the MD."""

    name: str
    build: Callable[[np.random.Generator], Atoms]
    ensemble: str = "nvt"
    anneal: Callable[[float], Tuple[Tuple[float, float, int], ...]] = lambda t: ()
    minimize: bool = False
    description: str = ""


@dataclass(frozen=True)
class Run:
    split: str
    family: Family
    temperature_K: float
    n_frames: int
    replicas: int = 1
    interval_steps: Optional[int] = None  # default: the plan's


@dataclass
class DatasetPlan:
    name: str
    description: str
    engine: str  # a registered engine (gnnff.datagen.engines): "lammps", "xtb"
    engine_params: Dict
    timestep_fs: float
    interval_steps: int
    n_equil_steps: int
    runs: List[Run] = field(default_factory=list)
    friction_per_fs: float = 0.01


# ---- silicon, Stillinger-Weber -------------------------------------------------------------
SW_PAIR = {"pair_style": "sw", "potential": "Si.sw", "elements": ["Si"]}


def plan_si(size: str) -> DatasetPlan:
    rep = {"small": 2, "paper": 3}[size]
    crystal = Family(
        "crystal",
        lambda rng: geo.strained(geo.silicon_crystal(rep), 0.02, rng),
        description=f"diamond Si {rep}^3 cubic cells, random strain <= 2%, NVT",
    )
    vacancy = Family(
        "vacancy",
        lambda rng: geo.silicon_vacancy(rep, rng),
        description="diamond Si with one random vacancy, NVT",
    )
    liquid = Family(
        "liquid",
        lambda rng: geo.silicon_crystal(rep),
        ensemble="npt",
        anneal=lambda t: ((3500.0, 3500.0, 3000),),
        description="crystal melted 3 ps at 3500 K (NVT), then NPT at 0 bar",
    )
    reference_crystal = Family(
        "crystal", lambda rng: geo.silicon_crystal(rep), description="unstrained diamond Si, NVT"
    )
    configs = [
        (crystal, 300.0),
        (crystal, 900.0),
        (crystal, 1500.0),
        (vacancy, 600.0),
        (vacancy, 1200.0),
        (liquid, 2000.0),
    ]
    n = {
        "small": dict(train=(6, 1), valid=(2, 1), test=(2, 1), ref=(25, 20)),
        "paper": dict(train=(250, 2), valid=(50, 1), test=(50, 1), ref=(1000, 10)),
    }[size]
    runs = [
        Run(split, fam, t, *n[split]) for split in ("train", "valid", "test") for fam, t in configs
    ]
    frames, interval = n["ref"]
    runs += [
        Run("reference", reference_crystal, 900.0, frames, interval_steps=interval),
        Run("reference", liquid, 2000.0, frames, interval_steps=interval),
    ]
    return DatasetPlan(
        "si",
        "Silicon (Stillinger-Weber, LAMMPS): crystal, vacancy, liquid",
        "lammps",
        SW_PAIR,
        timestep_fs=1.0,
        interval_steps=50,
        n_equil_steps={"small": 1000, "paper": 5000}[size],
        runs=runs,
    )


# ---- silicon oxides, Tersoff (Munetoh 2007), composition out of distribution ---------------
TERSOFF_PAIR = {"pair_style": "tersoff", "potential": "SiO.tersoff", "elements": ["Si", "O"]}


def plan_sio(size: str) -> DatasetPlan:
    rep = {"small": (2, 2, 1), "paper": (2, 2, 2)}[size]
    melt_steps, quench_steps = {"small": (2000, 2000), "paper": (10000, 10000)}[size]

    def families(o_per_si: float):
        def build(rng):
            cell = geo.silica_cristobalite(rep)
            return cell if o_per_si == 2.0 else geo.remove_oxygen(cell, o_per_si, rng)

        label = f"SiO{o_per_si:g}"
        crystal = Family(
            f"{label}-crystal",
            build,
            ensemble="npt",
            minimize=True,
            description=f"beta-cristobalite {rep} cells with O removed at random "
            f"to O/Si={o_per_si:g}, minimised, NPT 0 bar",
        )
        amorphous = Family(
            f"{label}-amorphous",
            build,
            ensemble="npt",
            minimize=True,
            anneal=lambda t: ((8000.0, 8000.0, melt_steps), (8000.0, float(t), quench_steps)),
            description=f"same start, melted at 8000 K and quenched to T (NVT, "
            f"{melt_steps}+{quench_steps} steps), then NPT 0 bar",
        )
        return crystal, amorphous

    temperatures = (500.0, 1500.0, 2500.0)
    n = {
        "small": dict(train=(4, 1), valid=(2, 1), test=(2, 1), ood=(2, 1), ref=(25, 20)),
        "paper": dict(train=(250, 2), valid=(50, 1), test=(50, 1), ood=(84, 1), ref=(1000, 10)),
    }[size]
    runs = []
    for split, o_per_si in (
        ("train", 2.0),
        ("valid", 2.0),
        ("test", 2.0),
        ("ood_SiO1.5", 1.5),
        ("ood_SiO1.1", 1.1),
    ):
        key = "ood" if split.startswith("ood") else split
        runs += [Run(split, fam, t, *n[key]) for fam in families(o_per_si) for t in temperatures]
    frames, interval = n["ref"]
    for o_per_si in (2.0, 1.5, 1.1):
        runs.append(
            Run("reference", families(o_per_si)[1], 1500.0, frames, interval_steps=interval)
        )
    return DatasetPlan(
        "sio",
        "Silicon oxides SiO_x (Tersoff SiO.tersoff, LAMMPS): train at "
        "SiO2, out-of-distribution sets at SiO1.5 and SiO1.1",
        "lammps",
        TERSOFF_PAIR,
        timestep_fs=1.0,
        interval_steps=50,
        n_equil_steps={"small": 500, "paper": 5000}[size],
        runs=runs,
    )


# ---- molecules, GFN2-xTB --------------------------------------------------------------------
def plan_md17(molecule: str, size: str) -> DatasetPlan:
    geo.shipped_molecule(molecule)  # clear error for an unknown molecule
    fam = Family(
        molecule,
        lambda rng: geo.shipped_molecule(molecule),
        description=f"{molecule} from the shipped GFN2-xTB minimum, Langevin NVT",
    )
    n = {
        "small": dict(train=(10, 2), valid=(5, 1), test=(5, 1), ref=(40, 5)),
        "paper": dict(train=(500, 20), valid=(500, 2), test=(500, 2), ref=(2000, 10)),
    }[size]
    runs = [Run(split, fam, 500.0, *n[split]) for split in ("train", "valid", "test")]
    frames, interval = n["ref"]
    runs.append(Run("reference", fam, 500.0, frames, interval_steps=interval))
    return DatasetPlan(
        f"md17:{molecule}",
        f"{molecule} at 500 K (GFN2-xTB via tblite), as MD17",
        "xtb",
        {},
        timestep_fs=0.5,
        interval_steps=10,
        n_equil_steps={"small": 100, "paper": 1000}[size],
        runs=runs,
    )


def plan_pretrain(size: str) -> DatasetPlan:
    names = geo.pretraining_molecules()
    if size == "small":
        names = names[::9]  # 6 molecules spread over the list
    temperatures = {"small": (300.0, 900.0), "paper": (300.0, 600.0, 900.0)}[size]
    n = {"small": dict(train=(3, 1), valid=(1, 1)), "paper": dict(train=(100, 1), valid=(10, 1))}[
        size
    ]
    runs = []
    for split in ("train", "valid"):
        for name in names:
            fam = Family(
                name,
                lambda rng, name=name: geo.g2_molecule(name),
                description="G2 geometry (ase.collections.g2), Langevin NVT",
            )
            runs += [Run(split, fam, t, *n[split]) for t in temperatures]
    return DatasetPlan(
        "pretrain-molecules",
        f"{len(names)} small H/C/N/O molecules (G2 set) at {temperatures} K, "
        "GFN2-xTB, for pre-training",
        "xtb",
        {},
        timestep_fs=0.5,
        interval_steps={"small": 10, "paper": 20}[size],
        n_equil_steps={"small": 50, "paper": 500}[size],
        runs=runs,
    )


def dataset_names() -> List[str]:
    return ["si", "sio"] + [f"md17:{m}" for m in geo.md17_molecules()] + ["pretrain-molecules"]


def make_plan(name: str, size: str) -> DatasetPlan:
    if size not in SIZES:
        raise ValueError(f"size {size!r} is unknown; use one of {list(SIZES)}")
    if name == "si":
        return plan_si(size)
    if name == "sio":
        return plan_sio(size)
    if name == "pretrain-molecules":
        return plan_pretrain(size)
    if name.startswith("md17:"):
        return plan_md17(name.split(":", 1)[1], size)
    raise ValueError(
        f"data set {name!r} is unknown; choose one of {dataset_names()} (see `gnnff data list`)"
    )

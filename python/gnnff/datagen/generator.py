"""``generate(name, size, seed, outdir)``: plan -> tasks -> process pool -> extxyz + data card."""

import json
import os
from typing import Dict, List, Optional

import numpy as np

import gnnff
from gnnff.datagen import catalog, engines, geometries, writer
from gnnff.datagen.tasks import (
    TrajectoryTask,
    engine_modules,
    openblas_core,
    reproducible_pool,
    run_tasks,
    task_seed,
)
from gnnff.digest import file_sha256

DATACARD = "datacard.json"
STRESS_CONVENTION = (
    "ASE: eV/Å^3, positive under tension, stress = -(virial pressure); written as a 3x3 "
    "matrix in the extxyz comment (ase.io.read returns Voigt xx yy zz yz xz xy). LAMMPS sets "
    "use the virial-only pressure (compute pressure NULL virial), without the kinetic term, so "
    "the stress is a property of the configuration."
)


def file_prefix(name: str) -> str:
    return name.replace(":", "_")


def build_tasks(plan: catalog.DatasetPlan, seed: int) -> List[TrajectoryTask]:
    tasks = []
    for run in plan.runs:
        for replica in range(run.replicas):
            traj_seed = task_seed(
                seed, plan.name, run.split, run.family.name, run.temperature_K, replica
            )
            atoms = run.family.build(np.random.default_rng(traj_seed))
            tasks.append(
                TrajectoryTask(
                    engine=plan.engine,
                    engine_params=plan.engine_params,
                    atoms=atoms,
                    temperature_K=run.temperature_K,
                    seed=traj_seed,
                    n_frames=run.n_frames,
                    interval_steps=run.interval_steps or plan.interval_steps,
                    n_equil_steps=plan.n_equil_steps,
                    timestep_fs=plan.timestep_fs,
                    split=run.split,
                    family=run.family.name,
                    ensemble=run.family.ensemble,
                    anneal=tuple(run.family.anneal(run.temperature_K)),
                    minimize=run.family.minimize,
                    friction_per_fs=plan.friction_per_fs,
                    labels={
                        "config_type": run.family.name,
                        "split": run.split,
                        "target_temperature_K": run.temperature_K,
                        "traj_seed": traj_seed,
                        "replica": replica,
                    },
                )
            )
    return tasks


def catalog_tasks(name: str, size: str, seed: int) -> List[TrajectoryTask]:
    """The tasks of catalogue plan ``name`` at ``size`` (run in a pool worker by generate)."""
    return build_tasks(catalog.make_plan(name, size), seed)


def engine_card(plan: catalog.DatasetPlan) -> Dict:
    return engines.engine(plan.engine).card(plan.engine_params)


def md_card(plan: catalog.DatasetPlan) -> Dict:
    return {
        "integrator": engines.engine(plan.engine).integrator(plan),
        "timestep_fs": plan.timestep_fs,
        "sampling_interval_steps": plan.interval_steps,
        "sampling_interval_fs": plan.interval_steps * plan.timestep_fs,
        "equilibration_steps": plan.n_equil_steps,
    }


def _trajectory_card(task: TrajectoryTask, frames: List[Dict]) -> Dict:
    return {
        "family": task.family,
        "temperature_K": task.temperature_K,
        "seed": task.seed,
        "frames": len(frames),
        "atoms": len(task.atoms),
        "composition": geometries.composition(task.atoms),
        "ensemble": task.ensemble,
        "anneal_stages_K_K_steps": [list(a) for a in task.anneal],
        "minimized_first": task.minimize,
        "interval_steps": task.interval_steps,
        "equilibration_steps": task.n_equil_steps,
    }


def _set_card(path: str, tasks: List[TrajectoryTask], results: List[List[Dict]]) -> Dict:
    trajectories = [_trajectory_card(t, r) for t, r in zip(tasks, results)]
    compositions = sorted({json.dumps(c["composition"], sort_keys=True) for c in trajectories})
    return {
        "file": os.path.basename(path),
        "sha256": file_sha256(path),
        "frames": sum(len(r) for r in results),
        "atoms_per_frame": sorted({c["atoms"] for c in trajectories}),
        "compositions": [json.loads(c) for c in compositions],
        "temperatures_K": sorted({t.temperature_K for t in tasks}),
        "families": sorted({t.family for t in tasks}),
        "seeds": [t.seed for t in tasks],
        "trajectories": trajectories,
    }


def _check_outdir(outdir: str, name: str, overwrite: bool) -> None:
    card_path = os.path.join(outdir, DATACARD)
    if os.path.exists(card_path) and not overwrite:
        with open(card_path) as f:
            existing = json.load(f).get("name")
        if existing != name:
            raise ValueError(
                f"{outdir} already holds data set {existing!r} ({DATACARD}); write {name!r} "
                "to another directory (-o) or pass --overwrite"
            )


def generate(
    name: str,
    size: str = "small",
    seed: int = 0,
    outdir: str = ".",
    workers: Optional[int] = None,
    progress: bool = True,
    overwrite: bool = False,
    plan: Optional[catalog.DatasetPlan] = None,
) -> Dict:
    """Generate data set ``name`` into ``outdir``; returns the data card (also written).

    Runs trajectories in a "spawn" process pool: a script calling this must guard its top level
    with ``if __name__ == "__main__":``. ``plan`` replaces the catalogue's plan (tests use
    shortened plans)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}; e.g. --seed 0")
    catalog_plan = plan is None
    plan = plan or catalog.make_plan(name, size)
    engines.engine(plan.engine)  # a misspelt engine fails here, naming the closest one
    os.makedirs(outdir, exist_ok=True)
    _check_outdir(outdir, name, overwrite)
    # the starting structures go through numpy's BLAS too (ASE's cell scaling, rotations), so
    # a catalogue plan is built in a worker of the pool, with its pinned kernels; a plan passed
    # in (tests' shortened ones, which hold lambdas) is built here
    with reproducible_pool(workers or os.cpu_count() or 1, engine_modules([plan.engine])) as pool:
        if catalog_plan:
            tasks = pool.submit(catalog_tasks, name, size, int(seed)).result()
        else:
            tasks = build_tasks(plan, int(seed))
        results = run_tasks(tasks, progress=progress, pool=pool)

    prefix = file_prefix(name)
    card = {
        "name": name,
        "description": plan.description,
        "size": size,
        "seed": int(seed),
        "command": f"gnnff data generate {name} --size {size} --seed {int(seed)}",
        "generator": f"gnnff.datagen (gnnff {gnnff.__version__})",
        # the kernels numpy's OpenBLAS ran in the workers: files are byte-equal across CPUs
        # only with the same kernels ("auto": OpenBLAS chose by CPU; see tasks.openblas_core)
        "openblas_core": openblas_core() or "auto",
        "engine": engine_card(plan),
        "md": md_card(plan),
        "units": {
            "energy": "eV",
            "length": "Å",
            "forces": "eV/Å",
            "stress": "eV/Å^3",
            "time": "ps",
            "temperature": "K",
        },
        "labels": {
            "energy": "extxyz comment key 'energy' (total potential energy)",
            "forces": "extxyz per-atom column 'forces'",
            "stress": "extxyz comment key 'stress' (periodic sets only)",
            "gnnff_keys": writer.LABEL_KEYS,
        },
        "stress_convention": STRESS_CONVENTION,
        "frame_info": [
            "config_type",
            "split",
            "target_temperature_K",
            "temperature_K",
            "traj_seed",
            "replica",
            "step",
            "time_ps",
        ],
        "sets": {},
        "reference_md": [],
    }
    splits = list(dict.fromkeys(t.split for t in tasks if t.split != "reference"))
    for split in splits:
        picked = [k for k, t in enumerate(tasks) if t.split == split]
        path = os.path.join(outdir, f"{prefix}_{split}.extxyz")
        writer.write_frames(path, [f for k in picked for f in results[k]])
        card["sets"][split] = _set_card(
            path, [tasks[k] for k in picked], [results[k] for k in picked]
        )
    for k, task in enumerate(tasks):
        if task.split != "reference":
            continue
        path = os.path.join(
            outdir, f"{prefix}_reference_{task.family}_{task.temperature_K:g}K.extxyz"
        )
        writer.write_frames(path, results[k])
        entry = _set_card(path, [task], [results[k]])
        entry["sampling_interval_fs"] = task.interval_steps * task.timestep_fs
        card["reference_md"].append(entry)
    writer.write_datacard(os.path.join(outdir, DATACARD), card)
    return card

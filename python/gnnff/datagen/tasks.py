"""One independent MD trajectory = one task; tasks run in a process pool (one per core).

A task carries everything it needs (the starting structure is built in the parent from the
task's own seed), so its frames depend on nothing but the task: the same seed gives the same
files whatever the number of workers or the order in which tasks finish.
"""

import os
import sys
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from ase import Atoms


def task_seed(seed: int, *labels) -> int:
    """A seed in [1, 2^31 - 1) from the user's seed and the task's labels (LAMMPS wants > 0)."""
    text = "|".join(str(label) for label in labels).encode()
    state = np.random.SeedSequence([int(seed), zlib.crc32(text)]).generate_state(1)[0]
    return int(state % (2**31 - 2)) + 1


@dataclass
class TrajectoryTask:
    """One MD run of a reference engine and the frames to keep from it."""

    engine: str  # a registered engine (gnnff.datagen.engines): "lammps", "xtb"
    engine_params: Dict  # LammpsSystem pair dict, or tblite settings
    atoms: Atoms
    temperature_K: float
    seed: int
    n_frames: int
    interval_steps: int
    n_equil_steps: int
    timestep_fs: float
    split: str  # output set the frames go to: "train", "ood_SiO1.1", "reference", ...
    family: str  # configuration family: "crystal", "liquid", "aspirin", ...
    ensemble: str = "nvt"
    anneal: Tuple[Tuple[float, float, int], ...] = ()
    minimize: bool = False
    friction_per_fs: float = 0.01
    labels: Dict = field(default_factory=dict)  # extra per-frame info written to the file


def run_task(task: TrajectoryTask) -> List[Dict]:
    """Run one trajectory; returns its sampled frames (plain dicts, see lammps_engine.frame)."""
    from gnnff.datagen.engines import engine

    frames = engine(task.engine).run(task)
    out = []
    try:
        for frame in frames:
            frame["info"].update(task.labels)
            out.append(frame)
    except Exception as err:  # say which trajectory failed: the pool only shows the error
        raise RuntimeError(
            f"{task.engine} trajectory failed (set {task.split}, family {task.family}, "
            f"{task.temperature_K:g} K, seed {task.seed}) after {len(out)} frames: {err}"
        ) from err
    return out


def single_thread_worker(engine_modules: Tuple[str, ...] = ()) -> None:
    """Pool initializer: one OpenMP/BLAS thread per worker process, since the pool already
    uses every core and one thread keeps tblite's sums in a fixed order (reproducible).
    Imports the modules that registered the engines (a spawned worker starts with only the
    built-in ones), so engines added outside gnnff run in workers too."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import importlib

    for module in engine_modules:
        importlib.import_module(module)


def engine_modules(tasks: List[TrajectoryTask]) -> Tuple[str, ...]:
    """The modules defining the engines these tasks use (imported again in each worker)."""
    from gnnff.datagen.engines import engine

    return tuple(sorted({type(engine(t.engine)).__module__ for t in tasks}))


def run_tasks(tasks: List[TrajectoryTask], workers: Optional[int] = None, progress: bool = True):
    """Run all tasks, ``workers`` at a time (default: every core); frames in task order."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    workers = workers or os.cpu_count() or 1
    results: List[Optional[List[Dict]]] = [None] * len(tasks)
    bar = tqdm(
        total=sum(t.n_frames for t in tasks),
        unit="frame",
        disable=not progress or not sys.stderr.isatty(),
        desc="generating",
    )
    # spawn, not fork: worker processes must not inherit OpenMP or MPI state from the parent
    env_backup = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS",)}
    os.environ["OMP_NUM_THREADS"] = "1"  # read by a child's OpenMP runtime before any init
    try:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(tasks)) or 1,
            mp_context=mp.get_context("spawn"),
            initializer=single_thread_worker,
            initargs=(engine_modules(tasks),),
        ) as pool:
            futures = {pool.submit(run_task, task): k for k, task in enumerate(tasks)}
            for future in as_completed(futures):
                k = futures[future]
                results[k] = future.result()
                bar.update(tasks[k].n_frames)
    finally:
        bar.close()
        for var, value in env_backup.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    return results

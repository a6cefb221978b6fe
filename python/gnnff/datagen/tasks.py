"""One independent MD trajectory = one task; tasks run in a process pool (one per core).

A task carries everything it needs (the starting structure is built in the parent from the
task's own seed), so its frames depend on nothing but the task: the same seed gives the same
files whatever the number of workers or the order in which tasks finish.
"""

import os
import sys
import zlib
from contextlib import contextmanager
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


# numpy's OpenBLAS (DYNAMIC_ARCH) picks its kernels by CPU when it loads, unless
# OPENBLAS_CORETYPE names them, and kernels of different vector widths round differently: the
# md17:aspirin paper set generated with Haswell kernels (an AMD Zen 5 whose environment set
# OPENBLAS_CORETYPE=Haswell) differed in every file from the one generated before on AVX-512
# CPUs, and equalled it with OPENBLAS_CORETYPE=SkylakeX (2026-12-02; an xTB trajectory parts
# within its first steps). One kernel family on every CPU that can run it keeps a seed's files
# the same; Haswell's needs AVX2 and FMA (x86-64 servers since 2013 from Intel, 2017 from AMD).
REPRODUCIBLE_OPENBLAS_CORE = "Haswell"


def cpu_flags() -> frozenset:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def openblas_core(environ=os.environ, flags: Optional[frozenset] = None) -> Optional[str]:
    """The OpenBLAS kernel family the generation's workers use (``OPENBLAS_CORETYPE``): the
    user's own setting if there is one, else REPRODUCIBLE_OPENBLAS_CORE where the CPU has AVX2
    and FMA, else None (OpenBLAS chooses, and the files may differ from other CPUs')."""
    if environ.get("OPENBLAS_CORETYPE"):
        return environ["OPENBLAS_CORETYPE"]
    flags = cpu_flags() if flags is None else flags
    return REPRODUCIBLE_OPENBLAS_CORE if {"avx2", "fma"} <= flags else None


def engine_modules(engine_names) -> Tuple[str, ...]:
    """The modules defining these engines (imported again in each worker)."""
    from gnnff.datagen.engines import engine

    return tuple(sorted({type(engine(name)).__module__ for name in engine_names}))


@contextmanager
def reproducible_pool(workers: int, modules: Tuple[str, ...] = ()):
    """A "spawn" process pool whose workers run one OpenMP thread and the OpenBLAS kernels of
    ``openblas_core()``: both are read from the environment when a worker starts, so they
    are set in it for the pool's whole life (workers may start at any submit)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    settings = {"OMP_NUM_THREADS": "1", "OPENBLAS_CORETYPE": openblas_core()}
    saved = {var: os.environ.get(var) for var in settings}
    for var, value in settings.items():
        if value:
            os.environ[var] = value
    try:
        # spawn, not fork: workers must not inherit OpenMP or MPI state from the parent
        with ProcessPoolExecutor(
            max_workers=max(1, workers),
            mp_context=mp.get_context("spawn"),
            initializer=single_thread_worker,
            initargs=(modules,),
        ) as pool:
            yield pool
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def run_tasks(
    tasks: List[TrajectoryTask],
    workers: Optional[int] = None,
    progress: bool = True,
    pool=None,
):
    """Run all tasks, ``workers`` at a time (default: every core), in ``pool`` if given
    (a ``reproducible_pool``) or in a pool of their own; frames in task order."""
    from concurrent.futures import as_completed

    from tqdm import tqdm

    if pool is None:
        workers = min(workers or os.cpu_count() or 1, len(tasks))
        with reproducible_pool(workers, engine_modules(t.engine for t in tasks)) as own_pool:
            return run_tasks(tasks, progress=progress, pool=own_pool)
    results: List[Optional[List[Dict]]] = [None] * len(tasks)
    bar = tqdm(
        total=sum(t.n_frames for t in tasks),
        unit="frame",
        disable=not progress or not sys.stderr.isatty(),
        desc="generating",
    )
    try:
        futures = {pool.submit(run_task, task): k for k, task in enumerate(tasks)}
        for future in as_completed(futures):
            k = futures[future]
            results[k] = future.result()
            bar.update(tasks[k].n_frames)
    finally:
        bar.close()
    return results

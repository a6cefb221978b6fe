"""MPI for the stability analysis, only when launched by ``mpirun`` (mpi4py imported lazily).

Importing ``mpi4py.MPI`` initialises MPI, which costs start-up time and can fail on machines
without an MPI library, so it is imported only when a launcher's environment variables say this
process is one of several ranks. Without them, or without mpi4py, the analysis runs serially.
"""

import os
import warnings
from typing import Any, List, Optional

# set by the launchers of MPICH/Intel MPI (Hydra, PMI), Open MPI, PMIx and MVAPICH
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
LAUNCHER_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")


def launched_size() -> int:
    """Number of ranks the launcher started (1 when not under mpirun)."""
    for name in LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    if any(name in os.environ for name in LAUNCHER_RANK_VARIABLES):
        return 2  # a rank variable without a size: ask MPI
    return 1


def world():
    """mpi4py's COMM_WORLD when this is one of several MPI ranks, else None (serial)."""
    if launched_size() < 2:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        warnings.warn(
            "launched by mpirun but mpi4py is not installed: every rank analyses the "
            "whole trajectory on its own; pip install mpi4py to split the frames",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 else None


def agree(comm, error: Optional[BaseException]) -> None:
    """Collective: raise on every rank if any rank failed, so that none waits forever in a later
    collective. Ranks re-raise their own error; the others raise the first failed rank's text
    as OSError (for file errors) or ValueError, which the command line turns into exit status 2
    (rank 0 prints the message)."""
    if comm is None:
        if error is not None:
            raise error
        return
    mine = None if error is None else (type(error).__name__, str(error))
    everyone: List[Any] = comm.allgather(mine)
    failed = [e for e in everyone if e is not None]
    if not failed:
        return
    if error is not None:
        raise error
    name, message = failed[0]
    raise (OSError if name in ("FileNotFoundError", "OSError", "PermissionError") else ValueError)(
        message
    )


def threads_per_rank(comm) -> int:
    """Threads for each rank's neighbour search: the cores this rank may run on, shared with
    the other ranks on the same node when the launcher did not bind ranks to cores."""
    from mpi4py import MPI

    local = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()  # ranks on this node
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = os.cpu_count() or 1
    if allowed is not None and allowed < cores:  # bound by the launcher: these cores are ours
        return max(1, allowed)
    return max(1, cores // local)

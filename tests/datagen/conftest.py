"""A one-process pool for in-test tblite calls.

tblite uses OpenMP; on the busy 2-core test machine OpenMP threads spinning against other jobs
made small xTB calls ~50x slower, and the thread count also changes the last bits of the sums.
Generation runs every trajectory in workers with OMP_NUM_THREADS=1; tests do their xTB single
points the same way instead of setting the variable for the whole pytest process (where it
would also throttle torch in other test areas)."""

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from gnnff.datagen.tasks import single_thread_worker


@pytest.fixture(scope="session")
def xtb_pool():
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the spawned worker before OpenMP starts
    try:
        pool = ProcessPoolExecutor(
            1, mp_context=mp.get_context("spawn"), initializer=single_thread_worker
        )
        pool.submit(int).result()  # start the worker while the variable is set
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    yield pool
    pool.shutdown()

"""glibc's malloc policy for a process that allocates the same large tensors every step.

By default glibc serves every block above its mmap threshold (at most 32 MB) with a fresh mmap
and unmaps it on free, and trims the top of the heap above 128 kB. A training step allocates
and frees the same large activations and gradients every step, so every step faults in
freshly zeroed pages again (thousands of minor page faults per step; docs/training.md,
"Memory policy"). ``keep_freed_memory()`` makes glibc keep freed memory for reuse, as
``pair_style gnnff ... memory keep`` does in LAMMPS (lammps_plugin/pair_gnnff.cpp): the same
two mallopt calls, once per process, skipped when the user set glibc's own variables.
Allocation policy only: no number changes.
"""

import ctypes
import ctypes.util
import os
import platform
from typing import Optional

# glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 30  # blocks below 1 GiB come from the heap and are reused
TRIM_THRESHOLD_BYTES = 2**31 - 1  # INT_MAX: the heap top is never handed back
USER_SETTINGS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "GLIBC_TUNABLES",
)
POLICIES = ("keep", "release")

_done: Optional[str] = None


def keep_freed_memory() -> str:
    """Ask glibc to keep freed memory in the process (once); returns what was done, for the log."""
    global _done
    if _done is not None:
        return _done
    if any(os.environ.get(name) for name in USER_SETTINGS):
        _done = "left to the user's MALLOC_*/GLIBC_TUNABLES settings"
    elif platform.libc_ver()[0] != "glibc":
        _done = "not glibc: the allocator's own policy applies"
    else:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = (
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
        )
        _done = (
            "glibc malloc keeps freed memory for reuse (mmap threshold 1 GiB, no trim)"
            if ok
            else "glibc refused mallopt; freed memory may still go back to the OS"
        )
    return _done


def apply_memory_policy(policy: str) -> Optional[str]:
    """``keep``: keep_freed_memory(); ``release``: glibc's defaults (None: nothing done)."""
    if policy not in POLICIES:
        raise ValueError(f"memory policy must be 'keep' or 'release', got {policy!r}")
    return keep_freed_memory() if policy == "keep" else None

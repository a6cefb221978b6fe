"""Suite-wide settings. One torch thread per process: the suite runs on 2-core machines, and
tests that start MPI ranks or worker processes would otherwise oversubscribe the cores (a
multi-threaded torch made some model tests 4x slower in wall time there)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

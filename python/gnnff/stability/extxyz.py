"""Streaming reader for extended XYZ (LAMMPS ``dump extxyz`` or any ASE-written file).

Uses ASE's extxyz parser frame by frame (``ase.io.iread``), so only one frame is in memory.
The MD step comes from the ``Timestep`` key LAMMPS writes; files without it count frames
(step = frame index, so pass ``--timestep`` as the time between frames).
"""

import warnings
from typing import Iterator, List

import numpy as np

from .frame import Frame
from .lammps_dump import TruncatedFrameWarning, open_text


class ExtxyzReader:
    def __init__(self, path):
        self.path = str(path)
        self.warnings: List[str] = []

    def __iter__(self) -> Iterator[Frame]:
        import ase.io  # deferred: importing ase.io costs ~0.3 s

        with open_text(self.path) as handle:
            frames = ase.io.iread(handle, index=":", format="extxyz")
            index = 0
            while True:
                try:
                    atoms = next(frames)
                except StopIteration:
                    return
                except Exception as err:  # ASE raises several types on a cut-off frame
                    if index == 0:
                        raise ValueError(
                            f"{self.path}: starts like an XYZ file but its first frame is not "
                            f"extended XYZ ({err}); write 'dump extxyz' or 'dump custom'"
                        ) from err
                    message = (f"{self.path}: truncated or unreadable frame {index} ({err}); "
                               "kept the complete frames before it")
                    self.warnings.append(message)
                    warnings.warn(message, TruncatedFrameWarning, stacklevel=2)
                    return
                yield _to_frame(atoms, index)
                index += 1


def _to_frame(atoms, index: int) -> Frame:
    info = atoms.info
    step = int(info.get("Timestep", info.get("timestep", index)))
    arrays = atoms.arrays
    ids = np.asarray(arrays["id"], np.int64) if "id" in arrays else np.arange(1, len(atoms) + 1)
    order = np.argsort(ids, kind="stable")
    velocities = arrays.get("vel", arrays.get("velocities"))
    forces = arrays.get("forces")
    if forces is None and atoms.calc is not None and "forces" in atoms.calc.results:
        forces = atoms.calc.results["forces"]
    types = arrays.get("type")
    return Frame(
        step=step, ids=ids[order], positions=atoms.positions[order].astype(np.float64),
        cell=np.array(atoms.cell[:], dtype=np.float64), pbc=np.array(atoms.pbc, bool),
        origin=np.zeros(3),
        types=None if types is None else np.asarray(types, np.int64)[order],
        symbols=np.array(atoms.get_chemical_symbols())[order],
        velocities=None if velocities is None else np.asarray(velocities)[order],
        forces=None if forces is None else np.asarray(forces)[order],
    )

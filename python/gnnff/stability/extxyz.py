"""Streaming reader for extended XYZ (LAMMPS ``dump extxyz`` or any ASE-written file).

Frames are cut from the text by their atom-count line (count line, comment line, one line per
atom) and each is parsed with ASE's extxyz parser, so only one frame is in memory. The MD step
comes from the ``Timestep`` key LAMMPS writes; files without it count frames (step = frame
index, so pass ``--timestep`` as the time between frames).

Parts for ``mpirun``: every part walks the lines of the whole file (cheap) and parses only its
own contiguous share of the frames.
"""

import io
import itertools
from typing import Iterator, List, Optional

import numpy as np

from .frame import Frame
from .readers import READERS, TrajectoryReader, open_text


@READERS.register("extxyz")
class ExtxyzReader(TrajectoryReader):
    description = "an extended XYZ file (dump extxyz; starts with the atom count)"
    priority = 20

    @classmethod
    def sniff(cls, first_line: str) -> bool:
        return first_line.split()[0].isdigit()

    def _slots(self):
        """(lines or None when unreadable, at_end) of each frame slot; stops at a slot whose
        atom-count line is unreadable (nothing after it can be located)."""
        with open_text(self.path) as handle:
            while True:
                count_line = handle.readline()
                while count_line and not count_line.strip():
                    count_line = handle.readline()
                if not count_line:
                    return
                try:
                    n_atoms = int(count_line.split()[0])
                except (ValueError, IndexError):
                    yield None, True
                    return
                lines: List[str] = list(itertools.islice(handle, n_atoms + 1))
                complete = len(lines) == n_atoms + 1 and lines[-1].endswith("\n")
                yield ([count_line] + lines if complete else None), not complete
                if not complete:
                    return

    def count_frames(self, part: int = 0, n_parts: int = 1) -> int:
        total = sum(1 for _ in self._slots())
        return total * (part + 1) // n_parts - total * part // n_parts

    def frames(self, part: int = 0, n_parts: int = 1, first_index: int = 0) -> Iterator[Frame]:
        import ase.io  # deferred: importing ase.io costs ~0.3 s

        if n_parts > 1:
            total = self.count_frames(0, 1)
            lo, hi = total * part // n_parts, total * (part + 1) // n_parts
        else:
            lo, hi = 0, None
        for slot, (lines, at_end) in enumerate(self._slots()):
            if slot < lo:
                continue
            if hi is not None and slot >= hi:
                return
            index = first_index + slot - lo
            error: Optional[Exception] = None
            if lines is not None:
                try:
                    atoms = ase.io.read(io.StringIO("".join(lines)), format="extxyz")
                except Exception as err:  # ASE raises several types on a bad frame
                    error = err
                else:
                    yield _to_frame(atoms, index)
                    continue
            if slot == 0:
                raise ValueError(
                    f"{self.path}: starts like an XYZ file but its first frame is not "
                    f"extended XYZ ({error or 'incomplete'}); write 'dump extxyz' or "
                    "'dump custom'"
                ) from error
            what = "incomplete" if error is None else f"unreadable: {error}"
            self._problem(index, None, at_end, what)
            if at_end:
                return


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
        step=step,
        ids=ids[order],
        positions=atoms.positions[order].astype(np.float64),
        cell=np.array(atoms.cell[:], dtype=np.float64),
        pbc=np.array(atoms.pbc, bool),
        origin=np.zeros(3),
        types=None if types is None else np.asarray(types, np.int64)[order],
        symbols=np.array(atoms.get_chemical_symbols())[order],
        velocities=None if velocities is None else np.asarray(velocities)[order],
        forces=None if forces is None else np.asarray(forces)[order],
        index=index,
    )

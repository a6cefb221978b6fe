"""Streaming reader for LAMMPS text dumps (``dump custom``/``atom``), plain or gzipped.

Reads one frame at a time (constant memory). Any column order; ids may be unsorted (frames are
sorted by id); atoms may be lost between frames; a truncated last frame is dropped with a
warning. Positions come from, in order of preference: xu/yu/zu, x/y/z (+ ix/iy/iz image flags
when present), xsu/ysu/zsu, xs/ys/zs.
"""

import gzip
import itertools
import warnings
from typing import IO, Iterator, List, Optional, Sequence

import numpy as np

from .frame import Frame

# per position kind: column names, whether scaled (fractional), whether unwrapped
_POSITION_KINDS = [
    (("xu", "yu", "zu"), False),
    (("x", "y", "z"), False),
    (("xsu", "ysu", "zsu"), True),
    (("xs", "ys", "zs"), True),
]
_STRING_COLUMNS = {"element"}


class TruncatedFrameWarning(UserWarning):
    """The last frame of a dump file is incomplete; the complete frames before it are kept."""


def open_text(path) -> IO[str]:
    """Open a text file, transparently decompressing ``.gz``."""
    path = str(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rt")
    return open(path, "rt")


def lammps_box(bounds: np.ndarray, tilt: np.ndarray):
    """Cell rows and origin from the BOX BOUNDS item (LAMMPS 'Triclinic simulation box' docs)."""
    (xlo_b, xhi_b), (ylo_b, yhi_b), (zlo_b, zhi_b) = bounds
    xy, xz, yz = tilt
    xlo = xlo_b - min(0.0, xy, xz, xy + xz)
    xhi = xhi_b - max(0.0, xy, xz, xy + xz)
    ylo = ylo_b - min(0.0, yz)
    yhi = yhi_b - max(0.0, yz)
    cell = np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi_b - zlo_b]])
    return cell, np.array([xlo, ylo, zlo_b])


class LammpsDumpReader:
    """Iterate over the frames of a LAMMPS text dump.

    ``type_symbols`` maps LAMMPS type k (1-based) to ``type_symbols[k-1]`` when the dump has no
    ``element`` column.
    """

    def __init__(self, path, type_symbols: Optional[Sequence[str]] = None):
        self.path = str(path)
        self.type_symbols = list(type_symbols) if type_symbols else None
        self.warnings: List[str] = []

    def __iter__(self) -> Iterator[Frame]:
        with open_text(self.path) as handle:
            while True:
                try:
                    frame = self._read_frame(handle)
                except EOFError as err:
                    message = f"{self.path}: {err}; kept the complete frames before it"
                    self.warnings.append(message)
                    warnings.warn(message, TruncatedFrameWarning, stacklevel=2)
                    return
                if frame is None:
                    return
                yield frame

    # ---- parsing -------------------------------------------------------------------------
    def _item(self, handle, expected: str, first: bool = False) -> Optional[str]:
        line = handle.readline()
        while line and not line.strip():
            line = handle.readline()
        if not line:
            if first:
                return None
            raise EOFError(f"truncated frame (file ends before ITEM: {expected})")
        if not line.startswith("ITEM: " + expected):
            raise ValueError(
                f"{self.path}: expected 'ITEM: {expected}' but found {line.strip()[:60]!r}; "
                "is this a LAMMPS text dump (dump custom/atom, not binary or dump local)?"
            )
        return line

    def _values(self, handle, count: int, what: str) -> List[str]:
        lines = list(itertools.islice(handle, count))
        # LAMMPS ends every line with a newline: a missing one means the file was cut there
        if len(lines) < count or (lines and not lines[-1].endswith("\n")):
            raise EOFError(f"truncated frame ({what}: {len(lines)} of {count} lines)")
        return lines

    def _read_frame(self, handle) -> Optional[Frame]:
        first = self._item(handle, "TIMESTEP", first=True)
        if first is None:
            return None
        step = int(self._values(handle, 1, "TIMESTEP")[0].split()[0])
        item = self._item(handle, "")
        while item.startswith("ITEM: UNITS") or item.startswith("ITEM: TIME"):
            self._values(handle, 1, item.strip())
            item = self._item(handle, "")
        if not item.startswith("ITEM: NUMBER OF ATOMS"):
            raise ValueError(f"{self.path}: expected 'ITEM: NUMBER OF ATOMS', got {item.strip()!r}")
        n_atoms = int(self._values(handle, 1, "NUMBER OF ATOMS")[0])
        box_item = self._item(handle, "BOX BOUNDS").split()[3:]
        if "abc" in box_item:
            raise ValueError(
                f"{self.path}: general triclinic boxes ('BOX BOUNDS abc origin') are not "
                "supported; write the dump without 'dump_modify triclinic/general yes'"
            )
        box_lines = self._values(handle, 3, "BOX BOUNDS")
        box = np.array([[float(v) for v in line.split()] for line in box_lines])
        tilt = box[:, 2] if box.shape[1] == 3 else np.zeros(3)
        cell, origin = lammps_box(box[:, :2], tilt)
        flags = [f for f in box_item if f not in ("xy", "xz", "yz")]
        pbc = np.array([f == "pp" for f in flags[:3]]) if len(flags) >= 3 else np.ones(3, bool)
        columns = self._item(handle, "ATOMS").split()[2:]
        lines = self._values(handle, n_atoms, "ATOMS")
        return self._parse_atoms(step, columns, lines, cell, origin, pbc)

    def _parse_atoms(self, step, columns, lines, cell, origin, pbc) -> Frame:
        n_atoms, n_cols = len(lines), len(columns)
        numeric = [i for i, c in enumerate(columns) if c not in _STRING_COLUMNS]
        try:  # numpy's C parser: ~3x faster than float() on split tokens
            values = np.loadtxt(lines, dtype=np.float64, usecols=numeric, ndmin=2, comments=None)
        except ValueError as err:
            if all(len(line.split()) == n_cols for line in lines):
                raise ValueError(f"{self.path}: step {step}: non-numeric value in the ATOMS "
                                 f"section ({err}); the file is corrupted") from None
            raise EOFError(f"truncated frame (step {step}: an ATOMS line does not have "
                           f"{n_cols} values)") from None
        if values.shape != (n_atoms, len(numeric)):
            raise EOFError(f"truncated frame (step {step}: {values.size} values)")
        table = np.zeros((n_atoms, n_cols))
        table[:, numeric] = values
        strings = {c: np.array([line.split()[i] for line in lines])
                   for i, c in enumerate(columns) if c in _STRING_COLUMNS}
        col = {c: i for i, c in enumerate(columns)}

        ids = table[:, col["id"]].astype(np.int64) if "id" in col else np.arange(1, n_atoms + 1)
        if n_atoms > 1 and not np.all(ids[1:] > ids[:-1]):  # skip the sort for sorted dumps
            order = np.argsort(ids, kind="stable")
            ids, table = ids[order], table[order]
            strings = {k: v[order] for k, v in strings.items()}
        positions = self._positions(table, col, cell, origin)
        types = table[:, col["type"]].astype(np.int64) if "type" in col else None
        symbols = strings.get("element")
        if symbols is None and self.type_symbols is not None and types is not None:
            if types.max() > len(self.type_symbols):
                raise ValueError(
                    f"{self.path}: atom type {types.max()} but only {len(self.type_symbols)} "
                    "elements given; pass one element per LAMMPS type (--elements)"
                )
            symbols = np.asarray(self.type_symbols)[types - 1]
        return Frame(
            step=step, ids=ids, positions=positions, cell=cell, pbc=pbc, origin=origin,
            types=types, symbols=symbols,
            velocities=_triplet(table, col, ("vx", "vy", "vz")),
            forces=_triplet(table, col, ("fx", "fy", "fz")),
        )

    def _positions(self, table, col, cell, origin) -> np.ndarray:
        for names, scaled in _POSITION_KINDS:
            if all(n in col for n in names):
                xyz = table[:, [col[n] for n in names]]
                if scaled:
                    return origin + xyz @ cell
                images = _triplet(table, col, ("ix", "iy", "iz"))
                if images is not None and names[0] == "x":
                    xyz = xyz + images @ cell
                return xyz
        raise ValueError(
            f"{self.path}: no complete set of position columns in the dump (need x y z, xu yu zu, "
            f"xs ys zs or xsu ysu zsu, all three of one kind); columns are {list(col)}"
        )


def _triplet(table, col, names) -> Optional[np.ndarray]:
    if all(n in col for n in names):
        return table[:, [col[n] for n in names]]
    return None

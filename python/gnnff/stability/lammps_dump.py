"""Streaming reader for LAMMPS text dumps (``dump custom``/``atom``), plain or gzipped.

The file is cut into frames at every ``ITEM: TIMESTEP``, and each frame is parsed on its own,
so one damaged frame (missing or extra atom lines, a garbled header) is skipped with a warning
naming its step and the frames after it are still read; an incomplete last frame is dropped.
Any column order; ids may be unsorted (frames are sorted by id; duplicate ids are warned about,
the first line of each is kept); atoms may be lost between frames. Positions come from, in
order of preference: xu/yu/zu, x/y/z (+ ix/iy/iz image flags when present), xsu/ysu/zsu,
xs/ys/zs.

Parts for ``mpirun``: a plain file is split into byte ranges, and a part owns the frames whose
``ITEM: TIMESTEP`` starts in its range, so no rank reads another's frames. A gzip stream cannot
be entered in the middle: every rank decompresses it (once to count the frames, once to read)
and parses only its contiguous share of the frames.
"""

import gzip
import io
import os
from typing import Iterator, Optional, Tuple

import numpy as np

from .frame import Frame
from .readers import (  # noqa: F401 (re-export)
    READERS,
    DamagedFrameWarning,
    TrajectoryReader,
    TruncatedFrameWarning,
    open_text,
)

MARKER = b"ITEM: TIMESTEP"
BLOCK = 1 << 22  # bytes read at a time (4 MB: the buffer stays a few MB above one frame)
# per position kind: column names, whether scaled (fractional)
_POSITION_KINDS = [
    (("xu", "yu", "zu"), False),
    (("x", "y", "z"), False),
    (("xsu", "ysu", "zsu"), True),
    (("xs", "ys", "zs"), True),
]
_STRING_COLUMNS = {"element"}


class _Damaged(Exception):
    """A frame that cannot be used (the message says why)."""

    def __init__(self, what: str, step: Optional[int] = None):
        super().__init__(what)
        self.what, self.step = what, step


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


@READERS.register("lammps-dump")
class LammpsDumpReader(TrajectoryReader):
    """Iterate over the frames of a LAMMPS text dump.

    ``type_symbols`` maps LAMMPS type k (1-based) to ``type_symbols[k-1]`` when the dump has no
    ``element`` column.
    """

    description = "a LAMMPS text dump (dump custom/atom, may be .gz; starts with 'ITEM: TIMESTEP')"
    priority = 10

    @classmethod
    def sniff(cls, first_line: str) -> bool:
        return first_line.startswith("ITEM:")

    # ---- cutting the file into frames --------------------------------------------------------
    @property
    def _compressed(self) -> bool:
        return self.path.endswith(".gz")

    def _byte_range(self, part: int, n_parts: int) -> Tuple[int, int]:
        size = os.path.getsize(self.path)
        return size * part // n_parts, size * (part + 1) // n_parts

    def _total_frames(self) -> int:
        """Frame slots of a gzip stream (one decompression, remembered)."""
        if self.__dict__.get("_total") is None:
            self._total = _count_markers(gzip.open(self.path, "rb"), 0, None)
        return self._total

    def count_frames(self, part: int = 0, n_parts: int = 1) -> int:
        if self._compressed:
            total = self._total_frames()
            return total * (part + 1) // n_parts - total * part // n_parts
        start, stop = self._byte_range(part, n_parts)
        with open(self.path, "rb") as handle:
            return _count_markers(handle, start, stop)

    def _chunks(self, part: int, n_parts: int):
        """(bytes, at_end_of_file) of each frame slot of the part, in file order; for gzip
        the slots of the whole stream (the caller skips the other parts' by position)."""
        if self._compressed:
            handle, (start, stop) = gzip.open(self.path, "rb"), (0, None)
        else:
            handle, (start, stop) = open(self.path, "rb"), self._byte_range(part, n_parts)
        with handle:
            for offset, data, at_end in _split_frames(handle, start, stop):
                if offset < 0:
                    self._check_preamble(data)
                else:
                    yield data, at_end

    def frames(self, part: int = 0, n_parts: int = 1, first_index: int = 0) -> Iterator[Frame]:
        if self._compressed and n_parts > 1:
            # every part walks the stream; only the frames of its own share are parsed
            total = self._total_frames()
            lo, hi = total * part // n_parts, total * (part + 1) // n_parts
        else:
            lo, hi = 0, None
        index = first_index
        for slot, (data, at_end) in enumerate(self._chunks(part, n_parts)):
            if slot < lo:
                continue
            if hi is not None and slot >= hi:
                return
            try:
                frame = self._parse(data.decode("latin-1"), at_end)
            except _Damaged as err:
                self._problem(index, err.step, at_end, err.what)
                if at_end:
                    return
            else:
                frame.index = index
                yield frame
            index += 1

    def _check_preamble(self, data: bytes) -> None:
        """Text before the first ``ITEM: TIMESTEP`` (normally none)."""
        if data.strip():
            raise ValueError(
                f"{self.path}: expected 'ITEM: TIMESTEP' but found "
                f"{data.strip()[:60].decode('latin-1')!r}; is this a LAMMPS text dump "
                "(dump custom/atom, not binary or dump local)?"
            )

    # ---- parsing one frame -------------------------------------------------------------------
    def _parse(self, text: str, at_end: bool) -> Frame:
        atoms_at = text.find("ITEM: ATOMS")
        if atoms_at < 0:
            raise _Damaged("no 'ITEM: ATOMS' line", _step_of(text))
        header = text[:atoms_at].split("\n")
        line_end = text.find("\n", atoms_at)
        if line_end < 0:
            raise _Damaged("file ends in the ITEM: ATOMS line", _step_of(text))
        columns = text[atoms_at:line_end].split()[2:]
        block = text[line_end + 1 :]
        items = _header_items(header)
        try:
            step = int(items["TIMESTEP"][0].split()[0])
        except (KeyError, IndexError, ValueError):
            raise _Damaged("unreadable ITEM: TIMESTEP", _step_of(text)) from None
        try:
            n_atoms = int(items["NUMBER OF ATOMS"][0])
            box_item = items["BOX BOUNDS"]
            box = np.array([[float(v) for v in line.split()] for line in box_item[1:4]])
        except (KeyError, IndexError, ValueError):
            raise _Damaged("incomplete or unreadable header", step) from None
        flags = box_item[0].split()
        if "abc" in flags:
            raise ValueError(
                f"{self.path}: general triclinic boxes ('BOX BOUNDS abc origin') are not "
                "supported; write the dump without 'dump_modify triclinic/general yes'"
            )
        if box.shape not in ((3, 2), (3, 3)):
            raise _Damaged("unreadable BOX BOUNDS", step)
        n_lines = block.count("\n")
        if n_lines != n_atoms or (n_atoms and not block.endswith("\n")):
            raise _Damaged(f"{n_lines} complete of {n_atoms} atom lines", step)
        tilt = box[:, 2] if box.shape[1] == 3 else np.zeros(3)
        cell, origin = lammps_box(box[:, :2], tilt)
        box_flags = [f for f in flags if f not in ("xy", "xz", "yz")]
        pbc = (
            np.array([f == "pp" for f in box_flags[:3]])
            if len(box_flags) >= 3
            else np.ones(3, bool)
        )
        return self._parse_atoms(step, columns, block, n_atoms, cell, origin, pbc)

    def _parse_atoms(self, step, columns, block, n_atoms, cell, origin, pbc) -> Frame:
        n_cols = len(columns)
        numeric = [i for i, c in enumerate(columns) if c not in _STRING_COLUMNS]
        try:  # numpy's C parser: ~3x faster than float() on split tokens
            values = np.loadtxt(
                io.StringIO(block), dtype=np.float64, usecols=numeric, ndmin=2, comments=None
            )
        except ValueError as err:
            raise _Damaged(f"an ATOMS line is not {n_cols} numbers ({err})", step) from None
        if values.shape != (n_atoms, len(numeric)):
            raise _Damaged(
                f"{values.size} values for {n_atoms} atoms x {len(numeric)} columns", step
            )
        table = np.zeros((n_atoms, n_cols))
        table[:, numeric] = values
        strings = {}
        if any(c in _STRING_COLUMNS for c in columns):
            tokens = np.array(block.split()).reshape(n_atoms, n_cols)
            strings = {c: tokens[:, i] for i, c in enumerate(columns) if c in _STRING_COLUMNS}
        col = {c: i for i, c in enumerate(columns)}

        ids = table[:, col["id"]].astype(np.int64) if "id" in col else np.arange(1, n_atoms + 1)
        if n_atoms > 1 and not np.all(ids[1:] > ids[:-1]):  # skip the sort for sorted dumps
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            repeated = ids[1:] == ids[:-1]
            if repeated.any():
                keep = np.concatenate([[True], ~repeated])
                dupes = np.unique(ids[1:][repeated])
                shown = ", ".join(str(i) for i in dupes[:20]) + (" ..." if len(dupes) > 20 else "")
                self._warn(
                    f"{self.path}: step {step}: duplicate atom ids {shown} "
                    f"({len(dupes)} ids); kept the first line of each"
                )
                order, ids = order[keep], ids[keep]
            table = table[order]
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
            step=step,
            ids=ids,
            positions=positions,
            cell=cell,
            pbc=pbc,
            origin=origin,
            types=types,
            symbols=symbols,
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


def _header_items(lines):
    """{'TIMESTEP': [value lines], 'BOX BOUNDS': [item flags, 3 lines], ...} of a header."""
    items, current = {}, None
    for line in lines:
        if line.startswith("ITEM: "):
            name = line[6:].strip()
            key = next(
                (
                    k
                    for k in ("BOX BOUNDS", "NUMBER OF ATOMS", "TIMESTEP", "UNITS", "TIME")
                    if name.startswith(k)
                ),
                name,
            )
            current = items.setdefault(key, [name[len(key) :]] if key == "BOX BOUNDS" else [])
        elif current is not None and line.strip():
            current.append(line)
    return items


def _step_of(text: str) -> Optional[int]:
    lines = text.split("\n", 2)
    try:
        return int(lines[1].split()[0]) if lines[0].startswith("ITEM: TIMESTEP") else None
    except (IndexError, ValueError):
        return None


def _count_markers(handle, start: int, stop: Optional[int]) -> int:
    """Number of ``ITEM: TIMESTEP`` that start in [start, stop) (stop None: to the end)."""
    with handle:
        handle.seek(start) if start else None
        count, offset, tail = 0, start, b""
        while stop is None or offset < stop:
            block = handle.read(BLOCK if stop is None else min(BLOCK, stop - offset))
            if not block:
                break
            data = tail + block  # a marker may straddle two blocks
            count += data.count(MARKER)
            offset += len(block)
            tail = data[-(len(MARKER) - 1) :]
        if stop is not None:  # a marker that starts before stop but ends after it
            rest = handle.read(len(MARKER) - 1)
            count += (tail + rest).count(MARKER)
        return count


def _split_frames(handle, start: int, stop: Optional[int]):
    """(offset, bytes, at_end_of_file) of each frame whose ``ITEM: TIMESTEP`` starts in
    [start, stop). With start 0, what precedes the first marker comes first, as offset -1."""
    if start:
        handle.seek(start)
    buf, begin, base = b"", 0, start  # buf[begin:] is unconsumed; base = file offset of buf[0]
    k = -1
    while k < 0:  # the first marker of the part
        k = buf.find(MARKER)
        if k >= 0:
            break
        block = handle.read(BLOCK)
        if not block:
            if start == 0:
                yield -1, buf, True
            return
        keep = buf[-(len(MARKER) - 1) :] if start else buf  # keep all of part 0's preamble
        base += len(buf) - len(keep)
        buf = keep + block
    if start == 0:
        yield -1, buf[:k], False
    begin = k
    while stop is None or base + begin < stop:
        k = buf.find(MARKER, begin + 1)
        while k < 0:
            block = handle.read(BLOCK)
            if not block:
                yield base + begin, buf[begin:], True
                return
            buf, base, begin = buf[begin:] + block, base + begin, 0
            k = buf.find(MARKER, 1)
        yield base + begin, buf[begin:k], False
        begin = k


def _triplet(table, col, names) -> Optional[np.ndarray]:
    if all(n in col for n in names):
        return table[:, [col[n] for n in names]]
    return None

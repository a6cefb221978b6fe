"""Trajectory readers: the base class, their registry, and picking one for a file.

A reader yields :class:`~gnnff.stability.frame.Frame` objects one at a time (constant memory).
For ``mpirun`` runs it can also read one contiguous part of the frames: ``count_frames(part,
n_parts)`` says how many frame slots part ``part`` of ``n_parts`` holds (a cheap scan, used to
number the frames across ranks) and ``frames(part, n_parts, first_index)`` yields them.
Concatenating the parts in order gives exactly the frames of ``frames()``.

A damaged frame in the middle of a file (missing or extra atom lines, a garbled header) is
skipped with a :class:`DamagedFrameWarning` naming its step, and reading goes on; an incomplete
last frame (a killed run) is dropped with a :class:`TruncatedFrameWarning`. Both are recorded in
``reader.problems`` so that the report can say that it covers less than the file holds.

New formats register with ``@READERS.register("name")`` (see docs/extending.md).
"""

import gzip
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, List, Optional, Sequence

from ..registry import Registry
from .frame import Frame

READERS = Registry("trajectory format", ["gnnff.stability.lammps_dump", "gnnff.stability.extxyz"])


class TrajectoryWarning(UserWarning):
    """Part of a trajectory file could not be used; the rest was analysed."""


class TruncatedFrameWarning(TrajectoryWarning):
    """The last frame of a file is incomplete; the complete frames before it are kept."""


class DamagedFrameWarning(TrajectoryWarning):
    """A frame in the middle of a file is damaged; it is skipped and reading goes on."""


@dataclass
class FrameProblem:
    """A frame slot of the file that could not be used."""

    index: int  # position of the frame in the file (0-based, counting every frame slot)
    step: Optional[int]  # its MD step, when the header could be read
    truncated: bool  # True: incomplete last frame; False: damaged frame in the middle
    message: str


def open_text(path) -> IO[str]:
    """Open a text file, transparently decompressing ``.gz``."""
    path = str(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rt")
    return open(path, "rt")


class TrajectoryReader:
    """Base class of the registered readers; subclasses implement ``sniff`` and ``frames``."""

    description = ""  # one line for --help and errors: which files this reader takes
    priority = 50  # formats are sniffed (and listed) in increasing priority

    def __init__(self, path, type_symbols: Optional[Sequence[str]] = None):
        self.path = str(path)
        self.type_symbols = list(type_symbols) if type_symbols else None
        self.warnings: List[str] = []  # messages, in frame order
        self.problems: List[FrameProblem] = []

    @classmethod
    def sniff(cls, first_line: str) -> bool:
        """Whether a file whose first line is ``first_line`` is in this format."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def count_frames(self, part: int = 0, n_parts: int = 1) -> int:
        """Number of frame slots (damaged ones included) that ``frames(part, n_parts)`` covers."""
        raise NotImplementedError

    def frames(self, part: int = 0, n_parts: int = 1, first_index: int = 0) -> Iterator[Frame]:
        """Frames of contiguous part ``part`` of ``n_parts``; ``first_index`` is the file
        position of its first frame slot (the sum of ``count_frames`` of the parts before)."""
        raise NotImplementedError

    def first_frame(self) -> Optional[Frame]:
        """The first usable frame of the file (every rank needs it for the references)."""
        reader = type(self)(self.path, self.type_symbols)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrajectoryWarning)
            return next(iter(reader.frames()), None)

    def _problem(self, index: int, step: Optional[int], truncated: bool, what: str) -> None:
        where = f"step {step}" if step is not None else f"frame {index + 1} (step unreadable)"
        if truncated:
            message = (
                f"{self.path}: truncated frame at {where} ({what}); kept the complete "
                "frames before it"
            )
        else:
            message = f"{self.path}: damaged frame at {where} ({what}); skipped it, kept reading"
        self.problems.append(FrameProblem(index, step, truncated, message))
        self.warnings.append(message)
        category = TruncatedFrameWarning if truncated else DamagedFrameWarning
        warnings.warn(message, category, stacklevel=3)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, TrajectoryWarning, stacklevel=3)


def open_trajectory(path, type_symbols: Optional[Sequence[str]] = None) -> TrajectoryReader:
    """Reader for ``path``: the registered format whose ``sniff`` accepts its first line, so
    names and extensions do not matter."""
    path = Path(path)
    if path.is_dir():
        inside = sorted(
            p.name
            for p in path.iterdir()
            if p.is_file()
            and any(p.name.endswith(s) for s in (".dump", ".lammpstrj", ".xyz", ".extxyz", ".gz"))
        )
        hint = f" (it holds {', '.join(inside[:5])})" if inside else ""
        raise ValueError(
            f"{str(path)!r} is a directory{hint}; give the trajectory file itself: "
            f"{_formats_text()}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"trajectory file {str(path)!r} does not exist; check the path")
    with open_text(path) as handle:
        try:
            first = handle.readline()
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(
                f"{path}: not a readable text file ({err}); binary dumps are not "
                "supported, write 'dump custom' or 'dump extxyz'"
            ) from err
    if not first.strip():
        raise ValueError(f"{path}: the file is empty; did the LAMMPS run write any frame?")
    for reader in reader_classes():
        if reader.sniff(first):
            return reader(path, type_symbols=type_symbols)
    formats = " nor ".join(r.description for r in reader_classes())
    raise ValueError(f"{path}: neither {formats}; first line {first[:60]!r}")


def reader_classes() -> List[type]:
    """The registered reader classes, in sniffing order."""
    return sorted((READERS.builder(n) for n in READERS.names()), key=lambda r: r.priority)


def _formats_text() -> str:
    return " or ".join(r.description for r in reader_classes())

"""Pick the right streaming reader for a trajectory file."""

from pathlib import Path
from typing import Optional, Sequence

from .extxyz import ExtxyzReader
from .lammps_dump import LammpsDumpReader, open_text


def open_trajectory(path, type_symbols: Optional[Sequence[str]] = None):
    """Reader (an iterable of :class:`Frame`) for a LAMMPS text dump or an extended XYZ file.

    The format is sniffed from the first line, so names and extensions do not matter.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trajectory file {str(path)!r} does not exist; check the path")
    with open_text(path) as handle:
        try:
            first = handle.readline()
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a readable text file ({err}); binary dumps are not "
                             "supported, write 'dump custom' or 'dump extxyz'") from err
    if not first.strip():
        raise ValueError(f"{path}: the file is empty; did the LAMMPS run write any frame?")
    if first.startswith("ITEM:"):
        return LammpsDumpReader(path, type_symbols=type_symbols)
    if first.split()[0].isdigit():
        return ExtxyzReader(path)
    raise ValueError(f"{path}: neither a LAMMPS text dump (starts with 'ITEM: TIMESTEP') nor an "
                     f"extended XYZ file (starts with the atom count); first line {first[:60]!r}")

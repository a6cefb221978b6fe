"""Reference input of the in-run check ``fix gnnff/watch`` (LAMMPS plugin), from a trajectory.

One definition, two places: the numbers come from the same criteria classes that
``gnnff analyze`` runs (:class:`CloseContacts` for the reference minimum distance of each
species pair, :class:`BondLengthDeviation` for the bonds and their reference lengths), given
the trajectory as its own reference, so the fix and ``gnnff analyze --reference`` on the same
reference compare against identical numbers.

File format (plain text, ``#`` starts a comment, one record per line, lengths in Å)::

    format gnnff-watch-reference 1
    species Si O                 # labels: element symbols, or type1 type2 ... without elements
    min_distance Si Si 2.2134    # d_ref(a, b): smallest a-b distance over the reference frames
    bond 17 18 0.9612            # atom IDs i < j and reference length (mean over the frames)

``fix gnnff/watch`` maps LAMMPS types to labels with its ``elements`` keyword (or directly when
the labels are ``type<k>``); bond atom IDs are LAMMPS atom IDs, so the run must number its atoms
as the reference trajectory does.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .base import AnalysisContext
from .bonds import BondLengthDeviation
from .close_contacts import CloseContacts
from .readers import open_trajectory

FORMAT_LINE = "format gnnff-watch-reference 1"


@dataclass
class WatchReference:
    species: Sequence[str]
    min_distances: Dict[Tuple[str, str], float]  # (a, b) with a <= b in ``species`` order
    bonds: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # (M, 2) IDs
    bond_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (M,) Å
    comments: Sequence[str] = ()

    def write(self, path) -> None:
        lines = [FORMAT_LINE] + [f"# {c}" for c in self.comments]
        lines.append("species " + " ".join(self.species))
        lines += [f"min_distance {a} {b} {d:.12g}" for (a, b), d in self.min_distances.items()]
        lines += [f"bond {i} {j} {r:.12g}" for (i, j), r in zip(self.bonds, self.bond_lengths)]
        Path(path).write_text("\n".join(lines) + "\n")

    @classmethod
    def read(cls, path) -> "WatchReference":
        species, dmin, bonds, lengths = [], {}, [], []
        text = Path(path).read_text().splitlines()
        if not text or text[0].strip() != FORMAT_LINE:
            raise ValueError(
                f"{path}: not a watch reference file (first line must be "
                f"{FORMAT_LINE!r}); write it with `gnnff analyze REF "
                "--write-watch-reference FILE`"
            )
        for number, line in enumerate(text[1:], start=2):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "species":
                species = words[1:]
            elif words[0] == "min_distance" and len(words) == 4:
                dmin[(words[1], words[2])] = float(words[3])
            elif words[0] == "bond" and len(words) == 4:
                bonds.append((int(words[1]), int(words[2])))
                lengths.append(float(words[3]))
            else:
                raise ValueError(f"{path} line {number}: cannot read {line.strip()!r}")
        return cls(species, dmin, np.array(bonds, np.int64).reshape(-1, 2), np.array(lengths))


def watch_reference(
    trajectory, elements: Optional[Sequence[str]] = None, bonds: Union[str, bool] = "auto"
) -> WatchReference:
    """Reference minimum distances and bonds of ``trajectory`` (dump or extxyz).

    ``bonds``: "auto" writes the bond list only when ``gnnff analyze`` would count the bond
    criterion (molecular systems), True always, False never.
    """
    if bonds not in ("auto", True, False):
        raise ValueError(f"bonds must be 'auto', True or False, got {bonds!r}")
    reader = open_trajectory(trajectory, elements)
    first = next(iter(reader), None)
    if first is None:
        raise ValueError(f"{trajectory}: no complete frame to take a reference from")
    if first.has_nonfinite():
        raise ValueError(f"{trajectory}: the first frame holds nan/inf; not a reference")
    context = AnalysisContext(first=first, reference=reader)
    close = CloseContacts()
    close.prepare(context)
    d_ref = close.results.extra.get("d_ref", {})
    species = sorted({label for pair in d_ref for label in pair.split("-")}) or list(
        np.unique(first.species())
    )
    min_distances = {tuple(pair.split("-")): d for pair, d in d_ref.items()}
    comments = [f"from {trajectory}: {close.results.note}"]

    bond_ids, bond_ref = np.zeros((0, 2), np.int64), np.zeros(0)
    bond_check = BondLengthDeviation()
    bond_check.prepare(context)
    comments.append(f"bonds: {bond_check.results.note}")
    use_bonds = bond_check.results.active if bonds == "auto" else bonds
    if use_bonds and len(bond_check.bond_ids):
        bond_ids = np.asarray(bond_check.bond_ids, np.int64)
        bond_ref = np.asarray(bond_check.reference_lengths, float)
    elif len(bond_check.bond_ids):
        comments.append(
            "bond list not written: gnnff analyze does not count bonds for this "
            "system (not molecular); pass bonds=True to write it anyway"
        )
    return WatchReference(species, min_distances, bond_ids, bond_ref, comments)


def write_watch_reference(
    trajectory, path, elements: Optional[Sequence[str]] = None, bonds: Union[str, bool] = "auto"
) -> WatchReference:
    """:func:`watch_reference` written to ``path``; returns it."""
    reference = watch_reference(trajectory, elements, bonds)
    reference.write(path)
    return reference

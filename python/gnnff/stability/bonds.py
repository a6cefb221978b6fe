"""Criterion (a): bond-length collapse, as in the MDsim benchmark (Fu et al. 2023).

Bonds are found in the first frame as MDsim does: ASE ``NeighborList(natural_cutoffs(atoms))``,
whose default 0.3 Å skin is added to each atom's covalent radius, so i-j is a bond when
d_ij < r_cov,i + r_cov,j + 0.6 Å. We call the equivalent (and much faster)
``ase.neighborlist.neighbor_list`` with those radii; a test checks both give the same bonds.
The reference length of each bond is its mean over a reference trajectory when one is given,
else its length in the first frame. A frame is unstable when
``max_b |r_b(t) - r_ref,b| > threshold`` (0.5 Å by default).
"""

from dataclasses import dataclass

import numpy as np

from .base import AnalysisContext, Criterion, CriterionResult, frame_indices
from .frame import Frame, minimum_image
from .options import option, register_criterion

ASE_NEIGHBORLIST_SKIN = 0.3  # Å, default of ase.neighborlist.NeighborList used by MDsim


def bonds_from_frame(frame: Frame):
    """Bonded atom ids (M, 2), i < j, and the integer image shift S of each bond
    (bond vector = r_j - r_i + S @ cell)."""
    from ase import Atoms
    from ase.neighborlist import natural_cutoffs, neighbor_list

    atoms = Atoms(
        symbols=list(frame.symbols), positions=frame.positions, cell=frame.cell, pbc=frame.pbc
    )
    radii = [r + ASE_NEIGHBORLIST_SKIN for r in natural_cutoffs(atoms)]
    i, j, shift = neighbor_list("ijS", atoms, radii, self_interaction=False)
    keep = i < j
    pairs = np.stack([i[keep], j[keep]], axis=1)
    return frame.ids[pairs].reshape(-1, 2), shift[keep]


def bond_lengths(frame: Frame, bond_ids: np.ndarray) -> np.ndarray:
    """Minimum-image length of each bond in ``frame``; NaN where an atom is missing."""
    rows = frame_indices(frame, bond_ids.reshape(-1)).reshape(-1, 2)
    present = (rows >= 0).all(axis=1)
    lengths = np.full(len(bond_ids), np.nan)
    r = rows[present]
    vectors = minimum_image(
        frame.positions[r[:, 1]] - frame.positions[r[:, 0]], frame.cell, frame.pbc
    )
    lengths[present] = np.linalg.norm(vectors, axis=1)
    return lengths


def molecule_sizes(n_atoms: int, rows: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Size of the bonded cluster of each atom, or 0 for atoms of a cluster that bonds to its
    own periodic image (an infinite network: crystal, metal, polymer through the box)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(rows)), (rows[:, 0], rows[:, 1])), shape=(n_atoms, n_atoms))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)[labels]
    # give every atom an image offset by propagating from one root per cluster along bonds
    i = np.concatenate([rows[:, 0], rows[:, 1]])
    j = np.concatenate([rows[:, 1], rows[:, 0]])
    s = np.concatenate([shifts, -shifts])
    offset = np.zeros((n_atoms, 3), np.int64)
    known = np.zeros(n_atoms, bool)
    known[np.unique(labels, return_index=True)[1]] = True
    while True:
        frontier = known[i] & ~known[j]
        if not frontier.any():
            break
        targets, first = np.unique(j[frontier], return_index=True)
        offset[targets] = offset[i[frontier][first]] + s[frontier][first]
        known[targets] = True
    # a bond whose image does not match the offsets closes a loop through the boundary
    broken = np.any(offset[j] != offset[i] + s, axis=1)
    infinite = np.zeros(labels.max() + 1, bool)
    infinite[labels[i[broken]]] = True
    return np.where(infinite[labels], 0, sizes)


@dataclass
class BondOptions:
    threshold: float = option(
        0.5, "Å: a bond fails when its length is off by more than this", key="bond_threshold"
    )
    max_molecule_size: int = option(
        1000,
        "bonded clusters of up to this many atoms count as molecules (bonds count for "
        "molecular systems only)",
        key="bond_max_molecule_size",
    )


@register_criterion("bonds")
class BondLengthDeviation(Criterion):
    """Max over bonds of |r_b(t) - r_ref,b| (Å).

    Without ``--criteria`` the criterion counts for molecular systems only: bonds exist, no
    bonded cluster reaches its own periodic image and none has more than
    ``max_molecule_size`` atoms (molecules, molecular liquids such as water; not crystals,
    metals or covalent networks, where bonds legitimately rearrange).
    """

    Options = BondOptions
    order = 10

    def prepare(self, context: AnalysisContext) -> None:
        first, reference = context.first, context.reference
        threshold = self.options.threshold
        self.results = CriterionResult(
            name="bonds",
            description="bond-length deviation max_b |r_b - r_ref,b|",
            unit="Å",
            threshold=threshold,
            fails_when="above",
        )
        if first.symbols is None:
            self.bond_ids = np.zeros((0, 2), np.int64)
            self.results.active = False
            self.results.note = "no element names in the dump: pass --elements to enable"
            return
        self.bond_ids, shifts = bonds_from_frame(first)
        self.symbols = dict(zip(first.ids.tolist(), first.symbols.tolist()))
        if reference is not None:
            lengths = [bond_lengths(f, self.bond_ids) for f in reference]
            self.reference_lengths = np.nanmean(lengths, axis=0)
            source = f"mean over {len(lengths)} reference frames"
        else:
            self.reference_lengths = bond_lengths(first, self.bond_ids)
            source = "first frame"
        sizes = molecule_sizes(first.n_atoms, np.searchsorted(first.ids, self.bond_ids), shifts)
        molecular = len(self.bond_ids) > 0 and sizes.min() > 0
        largest = int(sizes.max())
        auto = molecular and largest <= self.options.max_molecule_size
        forced = context.forced_active
        self.results.active = auto if forced is None else forced
        kind = (
            f"molecules of up to {largest} atoms"
            if molecular
            else "no bonds"
            if len(self.bond_ids) == 0
            else "bonded network through the box"
        )
        self.results.note = (
            f"{len(self.bond_ids)} bonds (ASE natural cutoffs, {kind}); reference lengths: {source}"
        )
        self.results.extra["n_bonds"] = len(self.bond_ids)

    def single_frame(self, frame: Frame):
        if len(self.bond_ids) == 0:
            return None
        deviation = np.abs(bond_lengths(frame, self.bond_ids) - self.reference_lengths)
        if np.isnan(deviation).all():
            return None
        worst = int(np.nanargmax(deviation))
        return frame.step, float(deviation[worst]), worst

    def conclude(self, records, stop_step=None) -> None:
        threshold = self.options.threshold
        for record in records:
            if record is None:
                continue
            step, value, worst = record
            a, b = self.bond_ids[worst]
            reason = (
                f"bond {self.symbols[a]}{a}-{self.symbols[b]}{b} off by {value:.2f} Å "
                f"from {self.reference_lengths[worst]:.2f} Å"
            )
            self.results.record(step, value, value > threshold, reason)

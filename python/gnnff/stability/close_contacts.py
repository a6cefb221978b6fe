"""Criterion (c): atoms too close.

For every species pair (a, b) the reference minimum distance d_ref(a, b) is the smallest a-b
distance in the reference trajectory (or the first frame). The curve is

    q(t) = min over pairs (i, j) with d_ij < max d_ref of d_ij / d_ref(s_i, s_j)

(1.0 when no pair is that close) and the frame is unstable when q(t) < fraction (0.5 default).
Species pairs never seen in the reference use the smallest d_ref of any pair.
"""

from dataclasses import dataclass

import numpy as np

from .base import AnalysisContext, Criterion, CriterionResult
from .frame import Frame
from .options import option, register_criterion
from .pairs import distances_only, pair_distances

SEARCH_RADIUS = 6.0  # Å: reference minimum distances are looked for within this radius


@dataclass
class CloseContactOptions:
    fraction: float = option(
        0.5,
        "pairs closer than this fraction of the reference minimum "
        "distance of their species pair fail",
        key="close_fraction",
    )

    def __post_init__(self):
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"close-contact fraction must be between 0 and 1, got {self.fraction}")


@register_criterion("close_contacts")
class CloseContacts(Criterion):
    Options = CloseContactOptions
    order = 30

    def prepare(self, context: AnalysisContext) -> None:
        first, self.reference = context.first, context.reference
        self.fraction = self.options.fraction
        self.results = CriterionResult(
            name="close_contacts",
            description="min_ij d_ij / d_ref(species pair)",
            unit="x d_ref",
            threshold=self.fraction,
            fails_when="below",
        )
        self.labels = np.unique(first.species())
        self.cached_ids, self.cached_codes = None, None
        n = len(self.labels)
        d_ref = np.full((n, n), np.inf)
        n_frames = 0
        for frame in self.reference if self.reference is not None else [first]:
            np.minimum(d_ref, self._pair_minimum(frame), out=d_ref)
            n_frames += 1
        d_ref = np.minimum(d_ref, d_ref.T)
        if not np.isfinite(d_ref).any():
            self.results.active = False
            self.results.note = f"no atom pairs within {SEARCH_RADIUS} Å in the reference"
            self.d_ref = None
            return
        missing = ~np.isfinite(d_ref)
        d_ref[missing] = d_ref[~missing].min()
        self.d_ref = d_ref
        source = f"{n_frames} reference frames" if self.reference is not None else "first frame"
        pairs = ", ".join(
            f"{self.labels[a]}-{self.labels[b]} {d_ref[a, b]:.2f}"
            for a in range(n)
            for b in range(a, n)
            if not missing[a, b]
        )
        self.results.note = f"d_ref from {source} (Å): {pairs}"
        self.results.extra["d_ref"] = {
            f"{self.labels[a]}-{self.labels[b]}": float(d_ref[a, b])
            for a in range(n)
            for b in range(a, n)
        }

    def _pair_minimum(self, frame: Frame) -> np.ndarray:
        """Smallest distance of each species pair (a <= b) within SEARCH_RADIUS; inf if none."""
        n = len(self.labels)
        minimum = np.full((n, n), np.inf)
        codes = self._codes(frame)  # checks the species even when there is one
        if n == 1:
            d = distances_only(frame, SEARCH_RADIUS)
            minimum[0, 0] = d.min() if len(d) else np.inf
            return minimum
        i, j, d = pair_distances(frame, SEARCH_RADIUS)
        key = np.minimum(codes[i], codes[j]) * n + np.maximum(codes[i], codes[j])
        for k in np.unique(key):  # a few species pairs: one pass each
            minimum.flat[k] = d[key == k].min()
        return minimum

    def _codes(self, frame: Frame) -> np.ndarray:
        species = frame.species()
        codes = np.searchsorted(self.labels, species)
        known = self.labels[np.minimum(codes, len(self.labels) - 1)] == species
        unknown = (codes >= len(self.labels)) | ~known
        if unknown.any():
            raise ValueError(
                f"species {sorted(set(species[unknown]))} are not in the first frame "
                f"({list(self.labels)}); is --reference a trajectory of the same "
                "atoms?"
            )
        return codes

    def single_frame(self, frame: Frame):
        if self.d_ref is None:
            return None
        # species do not change: reuse the codes of the previous frame when the atoms are the
        # same (a cache of values that depend on the frame alone: records stay per-frame)
        if self.cached_ids is None or not np.array_equal(frame.ids, self.cached_ids):
            self.cached_ids, self.cached_codes = frame.ids, self._codes(frame)
        codes = self.cached_codes
        i, j, d = pair_distances(frame, float(self.d_ref.max()))
        if len(d) == 0:
            return frame.step, 1.0, None
        ratio = d / self.d_ref[codes[i], codes[j]]
        k = int(np.argmin(ratio))
        a, b = self.labels[codes[i[k]]], self.labels[codes[j[k]]]
        pair = (f"{a}{frame.ids[i[k]]}", f"{b}{frame.ids[j[k]]}", float(d[k]), float(ratio[k]))
        return frame.step, min(1.0, float(ratio[k])), pair

    def conclude(self, records, stop_step=None) -> None:
        for record in records:
            if record is None:
                continue
            step, value, pair = record
            reason = (
                ""
                if pair is None
                else (f"atoms {pair[0]} and {pair[1]} at {pair[2]:.2f} Å = {pair[3]:.2f} x d_ref")
            )
            self.results.record(step, value, value < self.fraction, reason)

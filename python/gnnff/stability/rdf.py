"""Criterion (b): structural drift of the radial distribution function.

Periodic boxes use the total g(r),

    g(r_k) = 2 n_k / (N rho (4/3) pi (r_{k+1}^3 - r_k^3)),   rho = N / V,

with n_k the pairs (i<j, images included) in bin k. Non-periodic systems (molecules) use the
MDsim h(r): the histogram of all pair distances up to r_max normalised to unit area.
The curve at frame t is averaged over a trailing window of ``window`` frames (t-window+1..t)
and compared with the reference curve (mean over a reference trajectory, else over the first
full window, in which case the curve starts at frame window-1; with a reference trajectory the
first window-1 frames are scored with the frames available so far):

    error(t) = sum_k |f_window(t)(r_k) - f_ref(r_k)| dr     (Å for g(r), dimensionless for h(r))

The frame is unstable when error(t) > threshold. The failure time is that of the window's
last frame, so it never uses frames from the future.
"""

from collections import deque
from typing import Iterable, Optional

import numpy as np

from .base import CriterionResult, FrameAnalysis
from .frame import Frame
from .pairs import distances_only


def radial_distribution(frame: Frame, edges: np.ndarray, kind: str) -> np.ndarray:
    """g(r) ('g', periodic) or h(r) ('h', unit-area distance histogram) of one frame."""
    d = distances_only(frame, edges[-1])
    counts = np.histogram(d, bins=edges)[0].astype(np.float64)
    if kind == "h":
        total = counts.sum()
        return counts / (total * np.diff(edges)) if total else counts
    n = frame.n_atoms
    shells = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return 2.0 * counts / (n * (n / frame.volume) * shells)


class RDFDrift(FrameAnalysis):
    """Sliding-window g(r)/h(r) error against a reference; see module docstring.

    ``active=None`` (auto) makes the criterion count for periodic (condensed-phase) systems
    and only be reported (h(r) error) for molecules.
    """

    def __init__(self, threshold: Optional[float] = None, window: int = 10,
                 r_max: Optional[float] = None, n_bins: Optional[int] = None,
                 reference: Optional[Iterable[Frame]] = None, active: Optional[bool] = None,
                 kind: Optional[str] = None, start_step: Optional[int] = None, every: int = 1):
        super().__init__()
        if window < 1:
            raise ValueError(f"RDF window must be at least 1 frame, got {window}")
        if every < 1:
            raise ValueError(f"--rdf-every must be at least 1 (use every frame), got {every}")
        self.threshold, self.window, self.r_max, self.n_bins = threshold, window, r_max, n_bins
        self.reference, self.active, self.kind = reference, active, kind
        # frames before start_step (equilibration) are neither scored nor part of the reference
        self.start_step = start_step
        # the RDF of large systems costs most of the analysis: use every `every`-th frame only
        self.every, self.n_seen = every, 0

    def prepare(self, first: Frame) -> None:
        kind = self.kind or ("g" if first.pbc.all() else "h")
        r_max = self.r_max or (6.0 if kind == "g" else 10.0)
        threshold = self.threshold if self.threshold is not None else (1.0 if kind == "g" else 0.5)
        self.kind_used = kind
        self.edges = np.linspace(0.0, r_max, (self.n_bins or int(round(r_max / 0.05))) + 1)
        self.dr = float(self.edges[1] - self.edges[0])
        name = "g(r)" if kind == "g" else "h(r)"
        sampling = f" of every {self.every}th frame" if self.every > 1 else ""
        self.results = CriterionResult(
            name="rdf", description=f"{name} error sum|f - f_ref| dr over a "
            f"{self.window}-frame window{sampling}", unit="Å" if kind == "g" else "",
            threshold=threshold, fails_when="above")
        self.results.active = (kind == "g") if self.active is None else self.active
        if self.reference is not None:
            curves = [radial_distribution(f, self.edges, kind) for f in self.reference]
            if not curves:
                raise ValueError("the reference trajectory has no frame; check --reference")
            self.reference_curve = np.mean(curves, axis=0)
            self.results.note = f"{name} reference: mean over {len(curves)} reference frames"
        else:
            self.reference_curve = None  # set from the first window
            self.results.note = f"{name} reference: first {self.window} frames"
        self.recent = deque(maxlen=self.window)  # (step, curve) of the trailing window
        self.window_sum = np.zeros(len(self.edges) - 1)
        self.stable_sum, self.stable_count, self.pending, self.frozen = 0.0, 0, None, False
        self.last_window = None

    def single_frame(self, frame: Frame) -> None:
        if self.start_step is not None and frame.step < self.start_step:
            return
        self.n_seen += 1
        if (self.n_seen - 1) % self.every:
            return
        curve = radial_distribution(frame, self.edges, self.kind_used)
        if not self.frozen and self.pending is not None:
            self.stable_sum = self.stable_sum + self.pending
            self.stable_count += 1
        self.pending, self.pending_step = curve, frame.step
        if len(self.recent) == self.window:
            self.window_sum -= self.recent[0][1]
        self.recent.append((frame.step, curve))
        self.window_sum += curve
        window_mean = self.window_sum / len(self.recent)
        self.last_window = window_mean
        if self.reference_curve is None:
            if len(self.recent) < self.window:
                return  # no reference yet: the first full window becomes the reference
            self.reference_curve = window_mean.copy()
        self._score(frame.step, window_mean)

    def _score(self, step: int, window_mean: np.ndarray) -> None:
        error = float(np.abs(window_mean - self.reference_curve).sum() * self.dr)
        failed = error > self.results.threshold
        unit = " Å" if self.kind_used == "g" else ""
        reason = f"RDF error {error:.3f}{unit} > {self.results.threshold}{unit}"
        if failed and not self.results.steps:
            reason += (" from the first window: if the run starts from an ideal lattice, skip "
                       "the equilibration (--equilibration PS)")
        self.results.record(step, error, failed, reason)
        if failed and self.results.active:
            self.freeze(step)

    def freeze(self, at_step: int) -> None:
        """End the stable part: frames from ``at_step`` on stay out of its average."""
        if self.frozen:
            return
        if self.pending is not None and self.pending_step < at_step:
            self.stable_sum = self.stable_sum + self.pending
            self.stable_count += 1
        self.pending, self.frozen = None, True

    def conclude(self) -> None:
        if self.reference_curve is None and self.recent:  # fewer frames than one window
            self.reference_curve = self.window_sum / len(self.recent)
            self.results.note += f" (only {len(self.recent)} frames: no drift curve)"
        if not self.frozen and self.pending is not None:
            self.stable_sum = self.stable_sum + self.pending
            self.stable_count += 1
        r = 0.5 * (self.edges[1:] + self.edges[:-1])
        self.results.extra.update(r=r, reference=self.reference_curve, kind=self.kind_used,
                                  last_window=self.last_window)
        if self.stable_count:
            stable = self.stable_sum / self.stable_count
            self.results.extra["stable_part"] = stable
            self.results.extra["stable_error"] = float(
                np.abs(stable - self.reference_curve).sum() * self.dr)
            self.results.extra["stable_frames"] = self.stable_count

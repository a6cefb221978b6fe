"""Criterion (b): structural drift of the radial distribution function.

Periodic boxes use the total g(r),

    g(r_k) = 2 n_k / (N rho (4/3) pi (r_{k+1}^3 - r_k^3)),   rho = N / V,

with n_k the pairs (i<j, images included) in bin k. Non-periodic systems (molecules) use the
MDsim h(r): the histogram of all pair distances up to r_max normalised to unit area.
The curve at frame t is averaged over a trailing window of ``window`` frames (t-window+1..t)
and compared with the reference curve (mean over a reference trajectory, else over the first
full window). Only full windows are scored, so the curve starts at frame window-1: a g(r) of one
or two frames of a small cell is too noisy to judge drift (a 134-atom Tersoff SiO1.1 cell scored
1.05 Å on its first frame against its own reference MD, 0.25-0.35 Å on every full 10-frame
window). A run shorter than one window is scored once, on all its frames:

    error(t) = sum_k |f_window(t)(r_k) - f_ref(r_k)| dr     (Å for g(r), dimensionless for h(r))

The frame is unstable when error(t) > threshold. The failure time is that of the window's
last frame, so it never uses frames from the future. With ``--rdf-every N`` the RDF is computed
on frames 0, N, 2N, ... of the file (counted from the first frame, damaged ones included).
"""

from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .base import AnalysisContext, Criterion, CriterionResult
from .frame import Frame
from .options import option, register_criterion
from .pairs import bin_counts, distances_only


def radial_distribution(frame: Frame, edges: np.ndarray, kind: str) -> np.ndarray:
    """g(r) ('g', periodic) or h(r) ('h', unit-area distance histogram) of one frame."""
    counts = bin_counts(distances_only(frame, edges[-1]), edges).astype(np.float64)
    if kind == "h":
        total = counts.sum()
        return counts / (total * np.diff(edges)) if total else counts
    n = frame.n_atoms
    shells = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return 2.0 * counts / (n * (n / frame.volume) * shells)


@dataclass
class RDFOptions:
    threshold: Optional[float] = option(
        None,
        "sum|g-g_ref| dr in Å above which a window fails (default 1.0; 0.5 for h(r) of molecules)",
        key="rdf_threshold",
    )
    window: int = option(10, "frames per RDF window", key="rdf_window")
    r_max: Optional[float] = option(
        None, "Å (default 6 for g(r), 10 for h(r))", key="rdf_r_max", flag="--rdf-rmax"
    )
    bins: Optional[int] = option(None, "number of bins (default: 0.05 Å bins)", key="rdf_bins")
    every: int = option(
        1,
        "compute the RDF on every N-th frame of the file only (it dominates "
        "the cost for large systems)",
        key="rdf_every",
        metavar="N",
    )
    equilibration_ps: float = option(
        0.0,
        "the RDF criterion ignores frames before this time (runs from ideal lattices)",
        key="equilibration_ps",
        flag="--equilibration",
        metavar="PS",
    )

    def __post_init__(self):
        if self.window < 1:
            raise ValueError(f"RDF window must be at least 1 frame, got {self.window}")
        if self.every < 1:
            raise ValueError(f"--rdf-every must be at least 1 (use every frame), got {self.every}")


@register_criterion("rdf")
class RDFDrift(Criterion):
    """Sliding-window g(r)/h(r) error against a reference; see module docstring.

    Without ``--criteria`` the criterion counts for periodic (condensed-phase) systems and is
    only reported (h(r) error) for molecules. The per-frame record is the frame's curve; the
    windows, the reference of the first window and the stable-part average are formed in
    ``conclude`` from the curves in frame order, so any split of the frames gives the same sums.
    """

    Options = RDFOptions
    order = 20
    needs_stop_step = True

    def prepare(self, context: AnalysisContext) -> None:
        opts, first = self.options, context.first
        kind = "g" if first.pbc.all() else "h"
        r_max = opts.r_max or (6.0 if kind == "g" else 10.0)
        threshold = opts.threshold if opts.threshold is not None else (1.0 if kind == "g" else 0.5)
        self.kind_used, self.window, self.every = kind, opts.window, opts.every
        self.first_index = first.index
        # frames before start_step (equilibration) are neither scored nor part of the reference
        self.start_step = (
            first.step + int(np.ceil(opts.equilibration_ps / context.dt_ps - 1e-9))
            if opts.equilibration_ps
            else None
        )
        self.edges = np.linspace(0.0, r_max, (opts.bins or int(round(r_max / 0.05))) + 1)
        self.dr = float(self.edges[1] - self.edges[0])
        name = "g(r)" if kind == "g" else "h(r)"
        sampling = f" of every {self.every}th frame" if self.every > 1 else ""
        self.results = CriterionResult(
            name="rdf",
            description=f"{name} error sum|f - f_ref| dr over a "
            f"{self.window}-frame window{sampling}",
            unit="Å" if kind == "g" else "",
            threshold=threshold,
            fails_when="above",
        )
        forced = context.forced_active
        self.results.active = (kind == "g") if forced is None else forced
        if context.reference is not None:
            curves = [radial_distribution(f, self.edges, kind) for f in context.reference]
            if not curves:
                raise ValueError("the reference trajectory has no frame; check --reference")
            self.reference_curve = np.mean(curves, axis=0)
            self.results.note = f"{name} reference: mean over {len(curves)} reference frames"
        else:
            self.reference_curve = None  # set from the first window
            self.results.note = f"{name} reference: first {self.window} frames"

    def single_frame(self, frame: Frame):
        if self.start_step is not None and frame.step < self.start_step:
            return None
        if (frame.index - self.first_index) % self.every:
            return None
        return frame.step, radial_distribution(frame, self.edges, self.kind_used)

    def conclude(self, records, stop_step: Optional[int] = None) -> None:
        """``stop_step``: the stable part ends there (earliest failure of the other criteria
        that count, or the first frame with nan); the RDF's own failure ends it too."""
        sampled = [r for r in records if r is not None]
        reference = self.reference_curve
        recent = deque(maxlen=self.window)  # curves of the trailing window
        window_sum = np.zeros(len(self.edges) - 1)
        last_window = None
        for step, curve in sampled:
            if len(recent) == self.window:
                window_sum -= recent[0]
            recent.append(curve)
            window_sum += curve
            last_window = window_sum / len(recent)
            if len(recent) < self.window:
                continue  # partial windows are not scored (module docstring)
            if reference is None:
                reference = last_window.copy()  # the first full window is the reference
            self._score(step, last_window, reference)
        if len(recent) < self.window and recent:  # fewer frames than one window
            if reference is None:
                reference = window_sum / len(recent)
                self.results.note += f" (only {len(recent)} frames: no drift curve)"
            else:
                self._score(sampled[-1][0], last_window, reference)
                self.results.note += f" (only {len(recent)} frames: scored once, on all)"
        own = self.results.first_failure_step if self.results.active else None
        stops = [s for s in (stop_step, own) if s is not None]
        end = min(stops) if stops else None
        stable_sum, stable_count = 0.0, 0
        for step, curve in sampled:
            if end is not None and step >= end:
                break
            stable_sum, stable_count = stable_sum + curve, stable_count + 1
        r = 0.5 * (self.edges[1:] + self.edges[:-1])
        self.results.extra.update(
            r=r, reference=reference, kind=self.kind_used, last_window=last_window
        )
        if stable_count:
            stable = stable_sum / stable_count
            self.results.extra["stable_part"] = stable
            self.results.extra["stable_error"] = float(np.abs(stable - reference).sum() * self.dr)
            self.results.extra["stable_frames"] = stable_count

    def _score(self, step: int, window_mean: np.ndarray, reference: np.ndarray) -> None:
        error = float(np.abs(window_mean - reference).sum() * self.dr)
        failed = error > self.results.threshold
        unit = " Å" if self.kind_used == "g" else ""
        reason = f"RDF error {error:.3f}{unit} > {self.results.threshold}{unit}"
        if failed and not self.results.steps:
            reason += (
                " from the first window: if the run starts from an ideal lattice, skip "
                "the equilibration (--equilibration PS)"
            )
        self.results.record(step, error, failed, reason)

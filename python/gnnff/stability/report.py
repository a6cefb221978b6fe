"""StabilityReport: the combined answer, as a terminal table or JSON."""

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .base import CriterionResult


@dataclass
class StabilityReport:
    trajectory: str
    log: Optional[str]
    reference: Optional[str]
    n_frames: int
    n_atoms: int
    first_step: int
    last_step: int
    dt_ps: float
    time_unit: str
    timestep_source: str
    criteria: List[CriterionResult]
    warnings: List[str] = field(default_factory=list)
    # frame slots of the file that were not analysed (readers.FrameProblem): damaged or truncated
    frame_problems: List[Any] = field(default_factory=list)
    stable_time: float = 0.0  # from the first frame to the earliest failure (or the last frame)
    stable_through_end: bool = True
    first_failed: List[str] = field(default_factory=list)
    energy_drift_rate: Optional[float] = None  # meV/atom/ps over the stable part
    energy_drift_rate_all: Optional[float] = None  # meV/atom/ps over the whole log

    @property
    def total_time(self) -> float:
        return (self.last_step - self.first_step) * self.dt_ps

    def criterion(self, name: str) -> CriterionResult:
        return next(c for c in self.criteria if c.name == name)

    @property
    def complete(self) -> bool:
        """Whether every frame the file holds was analysed."""
        return not self.frame_problems

    def coverage_note(self) -> str:
        """'' for a complete file, else what the analysis left out (for the headline)."""
        damaged = [p for p in self.frame_problems if not p.truncated]
        truncated = [p for p in self.frame_problems if p.truncated]
        parts = []
        if damaged:
            steps = ", ".join("?" if p.step is None else str(p.step) for p in damaged[:5])
            more = ", ..." if len(damaged) > 5 else ""
            s = "s" if len(damaged) > 1 else ""
            parts.append(f"{len(damaged)} damaged frame{s} skipped (step{s} {steps}{more})")
        if truncated:
            step = truncated[0].step
            parts.append(
                "truncated last frame dropped" + ("" if step is None else f" (step {step})")
            )
        return "NOT the whole file: " + "; ".join(parts) if parts else ""

    def headline(self) -> str:
        u, note = self.time_unit, self.coverage_note()
        if self.stable_through_end:
            text = (
                f"STABLE for every frame read: {self.stable_time:.4g} {u}"
                if note
                else f"STABLE for the whole run: {self.stable_time:.4g} {u}"
            )
        else:
            text = (
                f"stable time: {self.stable_time:.4g} {u} of {self.total_time:.4g} {u} "
                f"(first failure: {', '.join(self.first_failed)})"
            )
        return f"{text} -- {note}" if note else text

    def finalize(self, energy_drift=None) -> None:
        failures = [c for c in self.criteria if c.active and c.first_failure_step is not None]
        stable_step = None
        if failures:
            stable_step = min(c.first_failure_step for c in failures)
            self.stable_through_end = False
            self.stable_time = (stable_step - self.first_step) * self.dt_ps
            self.first_failed = [c.name for c in failures if c.first_failure_step == stable_step]
        else:
            self.stable_time = self.total_time
        if energy_drift is not None:
            self.energy_drift_rate = energy_drift.drift_rate(self.dt_ps, stable_step)
            self.energy_drift_rate_all = energy_drift.drift_rate(self.dt_ps)

    # ---- output ------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        rdf = self.criterion("rdf")
        return _clean(
            {
                "trajectory": self.trajectory,
                "log": self.log,
                "reference": self.reference,
                "n_frames": self.n_frames,
                "n_atoms": self.n_atoms,
                "first_step": self.first_step,
                "last_step": self.last_step,
                "timestep": self.dt_ps,
                "time_unit": self.time_unit,
                "timestep_source": self.timestep_source,
                "total_time": self.total_time,
                "stable_time": self.stable_time,
                "stable_through_end": self.stable_through_end,
                "first_failed": self.first_failed,
                "rdf_error_stable": rdf.extra.get("stable_error"),
                "rdf_kind": rdf.extra.get("kind"),
                "energy_drift_meV_per_atom_per_ps": self.energy_drift_rate,
                "energy_drift_all_meV_per_atom_per_ps": self.energy_drift_rate_all,
                "criteria": [self._criterion_dict(c) for c in self.criteria],
                "rdf": {
                    k: rdf.extra.get(k) for k in ("r", "reference", "stable_part", "last_window")
                },
                "warnings": self.warnings,
                "complete_file": self.complete,
                "frames_not_analysed": [
                    {
                        "index": p.index,
                        "step": p.step,
                        "truncated": p.truncated,
                        "message": p.message,
                    }
                    for p in self.frame_problems
                ],
            }
        )

    def _criterion_dict(self, c: CriterionResult) -> Dict[str, Any]:
        extra = {k: v for k, v in c.extra.items() if np.ndim(v) == 0 or isinstance(v, dict)}
        return {
            "name": c.name,
            "description": c.description,
            "active": c.active,
            "note": c.note,
            "unit": c.unit,
            "threshold": c.threshold,
            "fails_when": c.fails_when,
            "first_failure_step": c.first_failure_step,
            "first_failure_time": c.first_failure_time_ps,
            "failure_reason": c.failure_reason,
            "extra": extra,
            "curve": {"time": c.times_ps(self.first_step, self.dt_ps).tolist(), "value": c.values},
        }

    def format_table(self) -> str:
        u = self.time_unit
        lines = [
            f"trajectory: {self.trajectory}  ({self.n_frames} frames, {self.n_atoms} atoms, "
            f"steps {self.first_step}..{self.last_step})",
            f"time step:  {self.dt_ps:g} {u} per step, from {self.timestep_source}; times are "
            "measured from the first frame",
            "",
            f"{'criterion':<15} {'counts':<6} {'fails when':<20} {'first failure':>14}  details",
        ]
        for c in self.criteria:
            limit = "-" if c.threshold is None else f"{c.fails_when} {c.threshold:g} {c.unit}"
            limit = limit.strip()
            when = "-" if c.first_failure_time_ps is None else f"{c.first_failure_time_ps:.4g} {u}"
            details = c.failure_reason if c.first_failure_step is not None else c.note
            lines.append(
                f"{c.name:<15} {'yes' if c.active else 'no':<6} {limit:<20} {when:>14}  {details}"
            )
        lines.append("")
        lines.append(self.headline())
        rdf = self.criterion("rdf").extra
        if rdf.get("stable_error") is not None:
            name, unit = ("g(r)", " Å") if rdf["kind"] == "g" else ("h(r)", "")
            lines.append(
                f"{name} error over the stable part: {rdf['stable_error']:.4f}{unit} "
                f"({rdf['stable_frames']} frames)"
            )
        if self.energy_drift_rate is not None:
            lines.append(
                f"energy drift over the stable part: {self.energy_drift_rate:.4g} "
                f"meV/atom/{u} (whole run {self.energy_drift_rate_all:.4g})"
            )
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _clean(value):
    """JSON-safe copy: numpy to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value

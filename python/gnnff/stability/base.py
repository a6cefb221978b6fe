"""The lifecycle every stability criterion follows (MDAnalysis ``AnalysisBase``).

``prepare(context)`` once, ``single_frame(item)`` for each item (a trajectory frame, or a thermo
row for criteria whose ``source`` is ``"log"``), then ``conclude(records)``. ``single_frame``
*returns* a small record instead of updating the criterion, and may depend only on the item and
on what ``prepare`` computed. That makes the per-frame work mergeable across MPI ranks, as in
MDAnalysis's parallel analysis (per-frame results aggregated, then ``_conclude``): each rank
runs ``single_frame`` on its own contiguous range of frames, the records are concatenated in
frame order on rank 0, and ``conclude`` builds ``self.results`` (a :class:`CriterionResult`)
from them there. A serial run is the same with one range, so both give the same answer.
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Iterable, List, Optional

import numpy as np

from .frame import Frame


@dataclass
class CriterionResult:
    name: str
    description: str
    unit: str  # unit of ``values``
    threshold: Optional[float]
    fails_when: str  # "above" or "below" the threshold
    active: bool = True  # whether it counts towards the stable time
    note: str = ""  # what reference was used, or why the criterion is inactive
    steps: List[int] = field(default_factory=list)
    values: List[float] = field(default_factory=list)
    first_failure_step: Optional[int] = None
    failure_reason: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)
    # set by StabilityAnalysis once the time step is known: t = (step - step0) * dt
    first_failure_time_ps: Optional[float] = None

    def record(self, step: int, value: float, failed: bool, reason: str = "") -> None:
        self.steps.append(int(step))
        self.values.append(float(value))
        if failed and self.first_failure_step is None:
            self.first_failure_step = int(step)
            self.failure_reason = reason

    def fail_at(self, step: int, reason: str) -> None:
        """Record failure evidence without a curve point (e.g. an ERROR line in the log)."""
        if self.first_failure_step is None or step < self.first_failure_step:
            self.first_failure_step, self.failure_reason = int(step), reason

    def times_ps(self, step0: int, dt_ps: float) -> np.ndarray:
        return (np.asarray(self.steps, dtype=float) - step0) * dt_ps

    def set_time(self, step0: int, dt_ps: float) -> None:
        if self.first_failure_step is not None:
            self.first_failure_time_ps = (self.first_failure_step - step0) * dt_ps


@dataclass
class AnalysisContext:
    """What a criterion may use in ``prepare``: the same on every rank."""

    first: Frame  # first usable frame of the trajectory
    reference: Optional[Iterable[Frame]] = None  # --reference trajectory (a reader), if any
    log: Optional[Any] = None  # ThermoLog from the first frame's step on, if --log was given
    dt_ps: float = 0.001  # time per MD step
    forced_active: Optional[bool] = None  # --criteria's choice for this criterion; None: auto


@dataclass
class NoOptions:
    """Options of a criterion that has none."""


class Criterion:
    """Base class of the registered criteria; see the module docstring for the lifecycle."""

    name: ClassVar[str] = ""  # registry name (also CriterionResult.name)
    Options: ClassVar[type] = NoOptions  # dataclass: its fields become CLI flags
    source: ClassVar[str] = "frames"  # "frames" (trajectory) or "log" (thermo rows)
    order: ClassVar[int] = 50  # position in the report (lower first)
    #: frames with non-finite coordinates are passed only to criteria that set this
    accepts_nonfinite: ClassVar[bool] = False
    #: conclude() needs ``stop_step``, the end of the stable part set by the other criteria
    needs_stop_step: ClassVar[bool] = False

    def __init__(self, options=None):
        self.options = options if options is not None else self.Options()
        self.results: Optional[CriterionResult] = None  # created in prepare()

    def prepare(self, context: AnalysisContext) -> None:
        raise NotImplementedError

    def single_frame(self, item) -> Any:
        """The record of one frame (or thermo row): small, picklable, None to skip it."""
        raise NotImplementedError

    def conclude(self, records: List[Any], stop_step: Optional[int] = None) -> None:
        raise NotImplementedError

    def run(self, items: Iterable, context: Optional[AnalysisContext] = None) -> "Criterion":
        """Drive this criterion alone over ``items`` (frames, or thermo rows for log criteria);
        without a context, frame criteria take the first frame as their reference."""
        items = list(items) if context is None else items
        if context is None:
            if not items:
                raise ValueError("the trajectory has no complete frame; nothing to analyse")
            context = AnalysisContext(first=items[0])
        self.prepare(context)
        records = [
            self.single_frame(item)
            for item in items
            if self.source == "log" or self.accepts_nonfinite or not item.has_nonfinite()
        ]
        self.conclude(records)
        return self


FrameAnalysis = Criterion  # the name used before criteria were registered


def frame_indices(frame: Frame, ids: np.ndarray) -> np.ndarray:
    """Row of each atom id in ``frame`` (-1 where the atom is missing)."""
    if len(frame.ids) == len(ids) and np.array_equal(frame.ids, ids):
        return np.arange(len(ids))
    rows = np.searchsorted(frame.ids, ids)
    rows = np.clip(rows, 0, len(frame.ids) - 1)
    return np.where(frame.ids[rows] == ids, rows, -1)

"""MDAnalysis-style skeleton shared by all stability criteria.

A criterion is a class with ``run()`` that fills ``self.results`` (a :class:`CriterionResult`):
a curve over MD steps, the threshold, and the first step at which the curve crosses it.
Frame criteria implement ``prepare(first_frame)``, ``single_frame(frame)`` and ``conclude()``
so that :class:`~gnnff.stability.pipeline.StabilityAnalysis` can drive many of them in a single
pass over a large dump; ``run(frames)`` drives one of them on its own.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

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


class FrameAnalysis:
    """Base class for criteria computed frame by frame from a trajectory."""

    #: frames with non-finite coordinates are passed only to analyses that set this
    accepts_nonfinite = False

    def __init__(self):
        self.results: CriterionResult = None  # created in prepare()

    def prepare(self, first: Frame) -> None:
        raise NotImplementedError

    def single_frame(self, frame: Frame) -> None:
        raise NotImplementedError

    def conclude(self) -> None:
        pass

    def run(self, frames: Iterable[Frame]) -> "FrameAnalysis":
        iterator = iter(frames)
        try:
            first = next(iterator)
        except StopIteration:
            raise ValueError("the trajectory has no complete frame; nothing to analyse") from None
        self.prepare(first)
        for frame in _chain(first, iterator):
            if self.accepts_nonfinite or not frame.has_nonfinite():
                self.single_frame(frame)
        self.conclude()
        return self


def _chain(first, rest):
    yield first
    yield from rest


def frame_indices(frame: Frame, ids: np.ndarray) -> np.ndarray:
    """Row of each atom id in ``frame`` (-1 where the atom is missing)."""
    if len(frame.ids) == len(ids) and np.array_equal(frame.ids, ids):
        return np.arange(len(ids))
    rows = np.searchsorted(frame.ids, ids)
    rows = np.clip(rows, 0, len(frame.ids) - 1)
    return np.where(frame.ids[rows] == ids, rows, -1)

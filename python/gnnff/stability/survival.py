"""Stable times as survival data: Kaplan-Meier, log-rank test, medians with bootstrap intervals.

A stability run that never failed says "stable for >= T" (T = the run length it reached), not
"stable for T": its stable time is *right-censored*. Averaging such times, or a rank test that
treats T as a value, biases every comparison towards the run length. Here a run is a
(time, failed) pair; failed=False marks a censored run. Kaplan-Meier curves and the log-rank
test come from scipy.stats (``ecdf`` on ``CensoredData``, ``logrank``); the median stable time is
the first time the Kaplan-Meier survival drops to 0.5 or below (the usual definition; it is
"not reached" when the curve stays above 0.5, and then only ">= the longest run" is known).
numpy/scipy only (no torch): imported by benchmark summaries that never build a model.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class StableTimes:
    """Stable times (ps) of independent runs; ``failed[i]`` False = run i never failed (censored)."""

    times: np.ndarray
    failed: np.ndarray

    @classmethod
    def from_runs(cls, times: Sequence[float], failed: Sequence[bool]) -> "StableTimes":
        times, failed = np.asarray(times, dtype=float), np.asarray(failed, dtype=bool)
        if times.ndim != 1 or times.shape != failed.shape or times.size == 0:
            raise ValueError(
                f"need equally long, non-empty 1-D times and failed flags; got "
                f"shapes {times.shape} and {failed.shape}"
            )
        if not np.all(np.isfinite(times)) or np.any(times < 0):
            raise ValueError(f"stable times must be finite and >= 0 ps, got {times.tolist()}")
        return cls(times, failed)

    def censored_data(self) -> stats.CensoredData:
        return stats.CensoredData.right_censored(self.times, ~self.failed)

    def resample(self, rng: np.random.Generator) -> "StableTimes":
        pick = rng.integers(0, self.times.size, self.times.size)
        return StableTimes(self.times[pick], self.failed[pick])


@dataclass(frozen=True)
class KaplanMeier:
    """Step function S(t): ``survival[k]`` holds on [times[k], times[k+1]); S = 1 before times[0]."""

    times: np.ndarray
    survival: np.ndarray

    def __call__(self, t) -> np.ndarray:
        index = np.searchsorted(self.times, np.asarray(t, dtype=float), side="right") - 1
        return np.where(index >= 0, self.survival[np.clip(index, 0, None)], 1.0)


def kaplan_meier(sample: StableTimes) -> KaplanMeier:
    sf = stats.ecdf(sample.censored_data()).sf
    return KaplanMeier(np.asarray(sf.quantiles, float), np.asarray(sf.probabilities, float))


@dataclass(frozen=True)
class Median:
    """Median stable time; ``reached`` False: S stayed above 0.5, the median is >= ``value``
    (the longest run's time)."""

    value: float
    reached: bool


def median_stable_time(sample: StableTimes) -> Median:
    curve = kaplan_meier(sample)
    below = np.nonzero(curve.survival <= 0.5)[0]
    if below.size:
        return Median(float(curve.times[below[0]]), True)
    return Median(float(sample.times.max()), False)


@dataclass(frozen=True)
class LogRank:
    """Two-sided log-rank test; ``p_value`` None when neither group has a failure (no test)."""

    chi2: Optional[float]
    p_value: Optional[float]


def logrank_test(a: StableTimes, b: StableTimes) -> LogRank:
    if not (a.failed.any() or b.failed.any()):
        return LogRank(None, None)
    result = stats.logrank(a.censored_data(), b.censored_data(), alternative="two-sided")
    return LogRank(float(result.statistic) ** 2, float(result.pvalue))


def bootstrap_median_ci(
    sample: StableTimes, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> Tuple[float, float]:
    """Percentile bootstrap interval of the median (runs resampled with replacement). A
    resample whose median is not reached contributes its longest time (a lower bound), so an
    upper limit equal to the run length means "at least"."""
    rng = np.random.default_rng(seed)
    medians = [median_stable_time(sample.resample(rng)).value for _ in range(n_boot)]
    return _percentiles(medians, level)


@dataclass(frozen=True)
class MedianRatio:
    """method median / baseline median. ``kind``: "estimate"; ">=" when only the method's median
    is not reached; "<=" when only the baseline's is not; "undefined" when neither is reached."""

    value: Optional[float]
    kind: str
    ci95: Optional[Tuple[float, float]]


def median_ratio(
    method: StableTimes,
    baseline: StableTimes,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> MedianRatio:
    """Ratio of medians with a percentile bootstrap interval (each group resampled on its own;
    medians not reached enter as their lower bound, the longest time of the resample)."""
    m, b = median_stable_time(method), median_stable_time(baseline)
    kind = {
        (True, True): "estimate",
        (False, True): ">=",
        (True, False): "<=",
        (False, False): "undefined",
    }[(m.reached, b.reached)]
    if kind == "undefined" or b.value <= 0:
        return MedianRatio(None, "undefined", None)
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_boot):
        denominator = median_stable_time(baseline.resample(rng)).value
        numerator = median_stable_time(method.resample(rng)).value
        ratios.append(numerator / denominator if denominator > 0 else np.inf)
    return MedianRatio(m.value / b.value, kind, _percentiles(ratios, level))


def _percentiles(values, level: float) -> Tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(np.asarray(values, float), [tail, 100 - tail])
    return float(low), float(high)

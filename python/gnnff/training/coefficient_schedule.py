"""Schedules for the decorrelation coefficient lambda(t) (see docs/decorrelation.md).

Each schedule is a small object with ``value`` (the current lambda), ``on_step`` (after every
optimiser step), ``on_epoch_end`` and ``state_dict``/``load_state_dict``. Time t counts the
completed optimiser steps (unit "step") or completed epochs (unit "epoch"), counted by the
schedule itself, so it does not depend on whether the trainer numbers from 0 or 1.

* constant:       lambda(t) = lambda_value
* warmup_cosine:  lambda(t) = lambda_value * t / T_w                                 t < T_w
                  lambda(t) = lambda_min + (lambda_value - lambda_min)
                              * (1 + cos(pi * (t - T_w) / T_d)) / 2                  T_w <= t < T_w + T_d
                  lambda(t) = lambda_min                                             afterwards
* adaptive:       a multiplicative controller that holds lambda * L_D at target * L_F,
                  with L_F the force loss and L_D the unweighted decorrelation loss, both
                  smoothed by exponential moving averages (decay beta) over training steps:
                      F <- beta F + (1-beta) L_F,   D <- beta D + (1-beta) L_D
                      lambda <- clamp(lambda * clip((target * F / (lambda * D)) ** rate,
                                                    1/max_change, max_change),
                                      lambda_min, lambda_max)
                  In log space this is log lambda <- log lambda + rate * (log lambda* - log lambda)
                  with lambda* = target F / D: an EMA of log lambda towards the balancing value.
"""

import math
from typing import Dict


class ConstantSchedule:
    def __init__(self, lambda_value: float = 1.0):
        if not lambda_value >= 0:
            raise ValueError(f"lambda_value must be >= 0, got {lambda_value}")
        self.value = float(lambda_value)

    def on_step(self, loss_force: float, loss_decorrelation: float) -> None:
        pass

    def on_epoch_end(self) -> None:
        pass

    def state_dict(self) -> Dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: Dict[str, float]) -> None:
        self.value = float(state["value"])


class WarmupCosineSchedule:
    def __init__(
        self,
        lambda_value: float = 1.0,
        lambda_min: float = 0.0,
        warmup: int = 0,
        decay: int = 100,
        unit: str = "epoch",
    ):
        if unit not in ("epoch", "step"):
            raise ValueError(f"schedule_unit must be 'epoch' or 'step', got {unit!r}")
        if warmup < 0 or decay < 0:
            raise ValueError(
                f"warmup and decay must be >= 0 {unit}s, got warmup={warmup}, decay={decay}"
            )
        if not 0 <= lambda_min <= lambda_value:
            raise ValueError(
                f"warmup_cosine needs 0 <= lambda_min <= lambda_value, got lambda_min={lambda_min}, "
                f"lambda_value={lambda_value}"
            )
        self.peak = float(lambda_value)
        self.floor = float(lambda_min)
        self.warmup = int(warmup)
        self.decay = int(decay)
        self.unit = unit
        self.t = 0

    @property
    def value(self) -> float:
        t = self.t
        if t < self.warmup:
            return self.peak * t / self.warmup
        if t >= self.warmup + self.decay:
            return self.floor
        phase = (t - self.warmup) / self.decay
        return self.floor + (self.peak - self.floor) * 0.5 * (1.0 + math.cos(math.pi * phase))

    def on_step(self, loss_force: float, loss_decorrelation: float) -> None:
        if self.unit == "step":
            self.t += 1

    def on_epoch_end(self) -> None:
        if self.unit == "epoch":
            self.t += 1

    def state_dict(self) -> Dict[str, float]:
        return {"t": self.t}

    def load_state_dict(self, state: Dict[str, float]) -> None:
        self.t = int(state["t"])


class AdaptiveSchedule:
    def __init__(
        self,
        lambda_value: float = 1.0,
        target_fraction: float = 0.1,
        rate: float = 0.1,
        ema_decay: float = 0.9,
        max_change: float = 2.0,
        lambda_min: float = 1e-6,
        lambda_max: float = 1e4,
    ):
        if not 0 < lambda_min <= lambda_value <= lambda_max:
            raise ValueError(
                f"adaptive schedule needs 0 < lambda_min <= lambda_value <= lambda_max, got "
                f"{lambda_min}, {lambda_value}, {lambda_max}"
            )
        if not target_fraction > 0:
            raise ValueError(
                f"target_fraction must be > 0 (e.g. 0.1 = 10% of the force loss), got {target_fraction}"
            )
        if not 0 < rate <= 1:
            raise ValueError(f"adaptation_rate must be in (0, 1], got {rate}")
        if not 0 <= ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        if not max_change > 1:
            raise ValueError(f"max_change must be > 1 (largest factor per step), got {max_change}")
        self.value = float(lambda_value)
        self.target = float(target_fraction)
        self.rate = float(rate)
        self.beta = float(ema_decay)
        self.max_change = float(max_change)
        self.lambda_min = float(lambda_min)
        self.lambda_max = float(lambda_max)
        self.ema_force = None
        self.ema_decorrelation = None

    def _ema(self, old, new: float) -> float:
        return new if old is None else self.beta * old + (1.0 - self.beta) * new

    def on_step(self, loss_force: float, loss_decorrelation: float) -> None:
        if not (math.isfinite(loss_force) and math.isfinite(loss_decorrelation)):
            return  # a non-finite step says nothing about the balance; the trainer handles it
        self.ema_force = self._ema(self.ema_force, loss_force)
        self.ema_decorrelation = self._ema(self.ema_decorrelation, loss_decorrelation)
        weighted = self.value * self.ema_decorrelation
        if weighted <= 0.0:
            # features already uncorrelated (or no edges): lambda cannot be inferred; grow
            # as fast as allowed so the term is ready when correlation reappears
            factor = self.max_change if self.ema_force > 0 else 1.0
        else:
            ratio = self.target * self.ema_force / weighted
            factor = ratio**self.rate if ratio > 0 else 1.0 / self.max_change
            factor = min(max(factor, 1.0 / self.max_change), self.max_change)
        self.value = min(max(self.value * factor, self.lambda_min), self.lambda_max)

    def on_epoch_end(self) -> None:
        pass

    def state_dict(self) -> Dict[str, float]:
        return {
            "value": self.value,
            "ema_force": self.ema_force,
            "ema_decorrelation": self.ema_decorrelation,
        }

    def load_state_dict(self, state: Dict[str, float]) -> None:
        self.value = float(state["value"])
        self.ema_force = state["ema_force"]
        self.ema_decorrelation = state["ema_decorrelation"]


SCHEDULES = {
    "constant": ConstantSchedule,
    "warmup_cosine": WarmupCosineSchedule,
    "adaptive": AdaptiveSchedule,
}

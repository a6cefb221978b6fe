"""lambda(t) schedules against hand-computed values and the adaptive controller's fixed point."""

import math

import pytest

from gnnff.training.coefficient_schedule import (
    AdaptiveSchedule,
    ConstantSchedule,
    WarmupCosineSchedule,
)


def test_constant():
    s = ConstantSchedule(0.3)
    for _ in range(5):
        s.on_step(1.0, 0.5)
        s.on_epoch_end()
    assert s.value == 0.3


def test_warmup_cosine_by_epoch_hand_values():
    s = WarmupCosineSchedule(lambda_value=2.0, lambda_min=0.5, warmup=4, decay=6, unit="epoch")
    values = []
    for _ in range(12):
        values.append(s.value)
        s.on_step(1.0, 1.0)  # steps do not move an epoch schedule
        s.on_epoch_end()
    expected = [0.0, 0.5, 1.0, 1.5]  # linear warm-up 2.0 * t / 4
    expected += [
        0.5 + 1.5 * 0.5 * (1 + math.cos(math.pi * k / 6)) for k in range(6)
    ]  # cosine 2.0 -> 0.5
    expected += [0.5, 0.5]
    assert values == pytest.approx(expected, abs=1e-12)
    assert values[4] == pytest.approx(2.0) and values[7] == pytest.approx(1.25)


def test_warmup_cosine_by_step_and_state_roundtrip():
    s = WarmupCosineSchedule(lambda_value=1.0, warmup=0, decay=4, unit="step")
    s.on_step(1.0, 1.0)
    s.on_step(1.0, 1.0)
    assert s.value == pytest.approx(0.5)  # half-way down the cosine
    t = WarmupCosineSchedule(lambda_value=1.0, warmup=0, decay=4, unit="step")
    t.load_state_dict(s.state_dict())
    assert t.value == s.value


def test_adaptive_reaches_target_fraction():
    # a decorrelation loss that falls as 1/(1+lambda) (stronger weight, less correlation)
    s = AdaptiveSchedule(lambda_value=1.0, target_fraction=0.05, rate=0.2, ema_decay=0.5)
    loss_force = 2.0
    for _ in range(300):
        loss_dec = 0.8 / (1.0 + s.value)
        s.on_step(loss_force, loss_dec)
    loss_dec = 0.8 / (1.0 + s.value)
    assert s.value * loss_dec == pytest.approx(0.05 * loss_force, rel=1e-3)


def test_adaptive_limits_each_step_and_clamps():
    s = AdaptiveSchedule(
        lambda_value=1.0, target_fraction=1.0, max_change=1.5, lambda_max=3.0, rate=1.0
    )
    s.on_step(1000.0, 1.0)  # wants lambda = 1000: grows by at most 1.5 per step
    assert s.value == pytest.approx(1.5)
    for _ in range(10):
        s.on_step(1000.0, 1.0)
    assert s.value == 3.0  # lambda_max
    s.on_step(float("nan"), 1.0)  # a non-finite step does not move lambda
    assert s.value == 3.0
    s.on_step(1.0, 0.0)  # perfectly decorrelated: lambda cannot be inferred, stays clamped
    assert s.value == 3.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lambda_value": 1.0, "lambda_min": 2.0}, "lambda_min <= lambda_value"),
        ({"target_fraction": 0.0}, "target_fraction must be > 0"),
        ({"rate": 2.0}, "adaptation_rate must be in"),
        ({"max_change": 1.0}, "max_change must be > 1"),
    ],
)
def test_adaptive_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaptiveSchedule(**kwargs)


def test_warmup_cosine_bad_options():
    with pytest.raises(ValueError, match="schedule_unit must be 'epoch' or 'step'"):
        WarmupCosineSchedule(unit="epochs")
    with pytest.raises(ValueError, match="lambda_min <= lambda_value"):
        WarmupCosineSchedule(lambda_value=0.1, lambda_min=1.0)
    with pytest.raises(ValueError, match="lambda_value must be >= 0"):
        ConstantSchedule(-1.0)

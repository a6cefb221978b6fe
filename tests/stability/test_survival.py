"""gnnff.stability.survival against hand-computed Kaplan-Meier / log-rank values and the
textbook remission data of Freireich et al. (1963), as analysed in Kleinbaum & Klein,
"Survival Analysis" (ch. 2): 6-MP vs placebo, log-rank chi-square 16.79 (1 dof)."""

import numpy as np
import pytest
from scipy import stats

from gnnff.stability.survival import (
    Median,
    StableTimes,
    bootstrap_median_ci,
    kaplan_meier,
    logrank_test,
    median_ratio,
    median_stable_time,
)

# Freireich et al. 1963, weeks in remission; failed=False: still in remission (censored)
SIX_MP = StableTimes.from_runs(
    [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35],
    [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
)
PLACEBO = StableTimes.from_runs(
    [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23], [1] * 21
)


def test_kaplan_meier_by_hand_with_a_tie_between_failure_and_censoring():
    # times 1 2 2 3 4 5 (the 2nd "2" and the 4 censored). By hand, product of (1 - d/n):
    # t=1: 5/6; t=2: n=5 (a run censored at 2 is still at risk at 2), d=1 -> 5/6*4/5 = 2/3;
    # t=3: n=3, d=1 -> 2/3*2/3 = 4/9; t=4 censored: no step; t=5: n=1, d=1 -> 0
    sample = StableTimes.from_runs([1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1])
    curve = kaplan_meier(sample)
    at = [0.5, 1.0, 1.5, 2.0, 2.9, 3.0, 4.5, 5.0, 9.0]
    expected = [1, 5 / 6, 5 / 6, 2 / 3, 2 / 3, 4 / 9, 4 / 9, 0, 0]
    np.testing.assert_allclose(curve(at), expected, rtol=1e-12)
    assert median_stable_time(sample) == Median(3.0, True)  # first S <= 0.5


def test_kaplan_meier_and_medians_of_the_remission_data():
    # Kleinbaum & Klein, table of the 6-MP group: S(6)=.857, S(7)=.807, S(10)=.753,
    # S(13)=.690, S(16)=.627, S(22)=.538, S(23)=.448; median 23 weeks (placebo: 8)
    curve = kaplan_meier(SIX_MP)
    np.testing.assert_allclose(
        curve([6, 7, 10, 13, 16, 22, 23, 35]),
        [0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448, 0.448],
        atol=6e-4,
    )
    assert median_stable_time(SIX_MP) == Median(23.0, True)
    assert median_stable_time(PLACEBO) == Median(8.0, True)


def test_logrank_reproduces_the_published_chi_square():
    result = logrank_test(SIX_MP, PLACEBO)
    assert result.chi2 == pytest.approx(16.79, abs=0.005)
    assert result.p_value == pytest.approx(stats.chi2.sf(16.7929, 1), rel=1e-3)  # 4.17e-5


def test_logrank_by_hand():
    # A fails at 1, 3; B fails at 2, censored at 4. Per failure time (n, n_A, d):
    # t=1 (4, 2, 1): E_A = 1/2, V = 2*2*1*3/(16*3) = 1/4;  t=2 (3, 1, 1): E_A = 1/3, V = 2/9;
    # t=3 (2, 1, 1): E_A = 1/2, V = 1/4.  O_A - E_A = 2 - 4/3 = 2/3; V = 13/18; chi2 = 8/13
    a = StableTimes.from_runs([1, 3], [True, True])
    b = StableTimes.from_runs([2, 4], [True, False])
    result = logrank_test(a, b)
    assert result.chi2 == pytest.approx(8 / 13, rel=1e-12)
    assert result.p_value == pytest.approx(stats.chi2.sf(8 / 13, 1), rel=1e-9)
    assert logrank_test(b, a).chi2 == pytest.approx(8 / 13, rel=1e-12)  # symmetric


def test_no_failure_anywhere_is_censored_not_a_value():
    never = StableTimes.from_runs([5.0, 5.0, 4.2], [False, False, False])
    assert median_stable_time(never) == Median(5.0, False)  # ">= 5 ps"
    np.testing.assert_array_equal(kaplan_meier(never)([0, 5, 10]), [1, 1, 1])
    assert logrank_test(never, never).p_value is None


def test_bootstrap_interval_is_reproducible_and_brackets_the_median():
    first = bootstrap_median_ci(SIX_MP, n_boot=400, seed=3)
    assert first == bootstrap_median_ci(SIX_MP, n_boot=400, seed=3)
    assert first[0] <= 23.0 <= first[1]
    # Without censoring the KM median is the order statistic x_(ceil(n/2)) (lower median):
    # the same resamples through that plain formula must give the same interval
    low, high = bootstrap_median_ci(PLACEBO, n_boot=400, seed=0)
    rng, n = np.random.default_rng(0), PLACEBO.times.size
    plain = [np.sort(PLACEBO.times[rng.integers(0, n, n)])[(n + 1) // 2 - 1] for _ in range(400)]
    assert (low, high) == pytest.approx(tuple(np.percentile(plain, [2.5, 97.5])))
    assert low <= 8.0 <= high and high - low > 0
    same = StableTimes.from_runs([2.0] * 6, [True] * 6)  # no spread -> no width
    assert bootstrap_median_ci(same, n_boot=50) == (2.0, 2.0)


def test_median_ratio_and_its_censoring_kind():
    ratio = median_ratio(SIX_MP, PLACEBO, n_boot=400, seed=0)
    assert ratio.kind == "estimate" and ratio.value == pytest.approx(23 / 8)
    assert ratio.ci95[0] <= 23 / 8 <= ratio.ci95[1] and ratio.ci95[0] > 1
    # method never failed in 5 ps, baseline median 2 ps (S: 2/3 after 1, 1/3 after 2)
    never = StableTimes.from_runs([5, 5, 5], [False] * 3)
    fails = StableTimes.from_runs([1, 2, 3], [True] * 3)
    assert median_ratio(never, fails, n_boot=50).value == pytest.approx(2.5)
    assert median_ratio(never, fails, n_boot=50).kind == ">="
    assert median_ratio(fails, never, n_boot=50).kind == "<="
    assert median_ratio(never, never, n_boot=50).value is None


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="equally long"):
        StableTimes.from_runs([1.0, 2.0], [True])
    with pytest.raises(ValueError, match="finite and >= 0"):
        StableTimes.from_runs([1.0, float("nan")], [True, True])
    with pytest.raises(ValueError, match="confidence level"):
        bootstrap_median_ci(PLACEBO, n_boot=10, level=95)

"""Backtest statistics: hand-computed likelihood ratios, the Basel traffic-light table,
degenerate series, clustering, and scipy cross-checks of the binomial numbers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from volcal.margin.coverage import (
    Zone,
    christoffersen,
    coverage_report,
    detectable_miscoverage,
    kupiec,
    traffic_light,
)

from .conftest import DATA

#: Statistics computed two ways in double precision (different but exact formulas).
EXACT = 1e-12
#: Basel traffic-light table (BCBS 1996, Table 2: 250 observations, 99% coverage) from
#: tests/data/basel_traffic_light.csv, whose header gives the source and the columns:
#: exceptions -> (zone, cumulative probability in percent of that many exceptions or fewer).
BASEL_TABLE = {
    int(row.exceptions): (row.zone, float(row.cumulative_percent))
    for row in pd.read_csv(DATA / "basel_traffic_light.csv", comment="#").itertuples()
}
#: The table's rounding: half a unit in the second decimal, in percent.
BASEL_ROUNDING = 0.005


def chi2_1_sf(x: float) -> float:
    """P(chi2(1) > x) = erfc(sqrt(x / 2)), written without scipy."""
    return math.erfc(math.sqrt(x / 2.0))


def chi2_2_sf(x: float) -> float:
    """P(chi2(2) > x) = exp(-x / 2)."""
    return math.exp(-x / 2.0)


# ---------------------------------------------------------------------------------------------
# Kupiec


def test_kupiec_by_hand_10_days_2_breaches():
    # n = 10, x = 2, p = 0.1: p_hat = 0.2.
    expected = -2.0 * (
        8 * math.log(0.9) + 2 * math.log(0.1) - 8 * math.log(0.8) - 2 * math.log(0.2)
    )
    result = kupiec([0, 1, 0, 0, 0, 0, 1, 0, 0, 0], coverage=0.9)
    assert (result.n, result.breaches, result.observed_rate) == (10, 2, 0.2)
    assert result.statistic == pytest.approx(expected, abs=EXACT)
    assert result.p_value == pytest.approx(chi2_1_sf(expected), abs=EXACT)
    assert not result.reject(0.05)


@pytest.mark.parametrize("breaches", [0, 7])
def test_kupiec_no_breach_and_all_breaches(breaches):
    # 0 ln 0 = 0: x = 0 gives -2 n ln(1 - p), x = n gives -2 n ln p.
    n, p = 7, 0.01
    indicator = np.zeros(n, dtype=bool)
    indicator[:breaches] = True
    expected = -2 * n * (math.log(1 - p) if breaches == 0 else math.log(p))
    result = kupiec(indicator, coverage=0.99)
    assert result.statistic == pytest.approx(expected, rel=EXACT)
    assert np.isfinite(result.p_value)


def test_kupiec_p_value_one_when_rate_matches():
    result = kupiec(np.r_[1, np.zeros(99)], coverage=0.99)
    assert result.statistic == pytest.approx(0.0, abs=EXACT)
    assert result.p_value == pytest.approx(1.0, abs=EXACT)


@pytest.mark.parametrize("coverage", [0.9, 0.975, 0.99])
def test_kupiec_statistic_nonnegative_for_every_count(coverage):
    n = 60
    for x in range(n + 1):
        result = kupiec(np.arange(n) < x, coverage)
        assert result.statistic >= 0.0, (x, result.statistic)
        assert 0.0 <= result.p_value <= 1.0


def test_kupiec_rejects_too_many_breaches():
    result = kupiec(np.arange(250) < 12, coverage=0.99)
    assert result.reject(0.05)
    assert result.p_value < 1e-4


# ---------------------------------------------------------------------------------------------
# Christoffersen

TWELVE = [0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1]


def test_christoffersen_by_hand_12_days():
    # Transitions (11): 00 01 11 10 00 00 01 10 00 01 11 -> n00 4, n01 3, n10 2, n11 2.
    n00, n01, n10, n11 = 4, 3, 2, 2
    pi01, pi11, pi = 3 / 7, 2 / 4, 5 / 11
    lr_ind = -2.0 * (
        (n00 + n10) * math.log(1 - pi)
        + (n01 + n11) * math.log(pi)
        - n00 * math.log(1 - pi01)
        - n01 * math.log(pi01)
        - n10 * math.log(1 - pi11)
        - n11 * math.log(pi11)
    )
    # Kupiec on all 12 days: 5 breaches at p = 0.1.
    lr_pof = -2.0 * (
        7 * math.log(0.9) + 5 * math.log(0.1) - 7 * math.log(7 / 12) - 5 * math.log(5 / 12)
    )
    result = christoffersen(TWELVE, coverage=0.9)
    assert (result.n00, result.n01, result.n10, result.n11) == (n00, n01, n10, n11)
    assert (result.pi01, result.pi11, result.pi) == pytest.approx((pi01, pi11, pi), abs=EXACT)
    assert result.statistic == pytest.approx(lr_ind, abs=EXACT)
    assert result.p_value == pytest.approx(chi2_1_sf(lr_ind), abs=EXACT)
    assert result.conditional_coverage_statistic == pytest.approx(lr_pof + lr_ind, abs=EXACT)
    assert result.conditional_coverage_p_value == pytest.approx(
        chi2_2_sf(lr_pof + lr_ind), abs=EXACT
    )


@pytest.mark.parametrize(
    "series",
    [
        np.zeros(50),  # no breach
        np.ones(50),  # breaches only
        np.r_[np.zeros(49), 1],  # one breach, on the last day: no transition out of it
        np.r_[1, np.zeros(49)],  # one breach, on the first day: pi11 from n10 = 1
    ],
)
def test_christoffersen_degenerate_series_give_no_nan(series):
    result = christoffersen(series, coverage=0.99)
    numbers = [
        result.pi01,
        result.pi11,
        result.pi,
        result.statistic,
        result.p_value,
        result.conditional_coverage_statistic,
        result.conditional_coverage_p_value,
    ]
    assert np.isfinite(numbers).all(), result
    assert result.n00 + result.n01 + result.n10 + result.n11 == 49


def test_christoffersen_without_breaches_is_no_evidence():
    result = christoffersen(np.zeros(100))
    assert result.statistic == 0.0 and result.p_value == 1.0
    assert result.pi11 == result.pi == 0.0
    with pytest.raises(ValueError, match="needs the coverage"):
        result.reject_conditional_coverage()


def test_clustered_breaches_rejected_even_at_the_right_rate():
    # 10 breaches in 1000 days at p = 1%: the count is perfect, the timing is not.
    indicator = np.zeros(1000, dtype=bool)
    indicator[200:205] = indicator[700:705] = True
    assert kupiec(indicator, 0.99).p_value == pytest.approx(1.0, abs=EXACT)
    result = christoffersen(indicator, 0.99)
    assert result.reject(0.01), result
    assert result.reject_conditional_coverage(0.01), result


def test_independent_bernoulli_breaches_not_rejected():
    indicator = np.random.default_rng(1).random(2000) < 0.01
    result = christoffersen(indicator, 0.99)
    assert not result.reject(0.05), result
    assert not result.reject_conditional_coverage(0.05), result
    assert not kupiec(indicator, 0.99).reject(0.05)


# ---------------------------------------------------------------------------------------------
# Traffic light


def test_basel_table_file_has_every_row():
    assert sorted(BASEL_TABLE) == list(range(11)), sorted(BASEL_TABLE)
    assert {zone for zone, _ in BASEL_TABLE.values()} == {"green", "yellow", "red"}


@pytest.mark.parametrize("count", sorted(BASEL_TABLE))
def test_basel_traffic_light_table(count):
    zone, cumulative_percent = BASEL_TABLE[count]
    result = traffic_light(count, 250, 0.99)
    assert result.zone is Zone(zone)
    assert 100 * result.cumulative_probability == pytest.approx(
        cumulative_percent, abs=BASEL_ROUNDING
    )


def test_traffic_light_zones_beyond_the_table():
    zones = [traffic_light(x, 250, 0.99).zone for x in range(251)]
    assert zones[:5] == [Zone.GREEN] * 5
    assert zones[5:10] == [Zone.YELLOW] * 5
    assert set(zones[10:]) == {Zone.RED}
    assert Zone.RED.message


def test_traffic_light_matches_scipy_binomial():
    for n, coverage, count in [(500, 0.99, 8), (1000, 0.975, 30), (60, 0.95, 2)]:
        result = traffic_light(count, n, coverage)
        expected = stats.binom.pmf(np.arange(count + 1), n, 1 - coverage).sum()
        assert result.cumulative_probability == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------------------------------------
# Detectable miscoverage


def independent_region(n: int, p: float, alpha: float) -> np.ndarray:
    """Counts Kupiec's test rejects, from the likelihood written with math.log."""

    def lr(x):
        loglik_p = (n - x) * math.log(1 - p) + x * math.log(p)
        loglik_hat = sum(k * math.log(k / n) for k in (x, n - x) if k > 0)
        return -2.0 * (loglik_p - loglik_hat)

    critical = stats.chi2.ppf(1 - alpha, 1)
    return np.array([lr(x) > critical for x in range(n + 1)])


@pytest.mark.parametrize("n", [250, 1000, 3000])
def test_detectable_miscoverage_against_scipy(n):
    p, alpha, power = 0.01, 0.05, 0.8
    result = detectable_miscoverage(n, 0.99, alpha=alpha, power=power)
    region = independent_region(n, p, alpha)
    counts = np.arange(n + 1)
    assert result.lower_critical == (counts[region & (counts < n * p)].max(initial=-1))
    assert result.upper_critical == counts[region & (counts > n * p)].min()

    def rejection(q):
        return stats.binom.pmf(counts[region], n, q).sum()

    assert result.size == pytest.approx(rejection(p), abs=1e-10)
    assert rejection(result.breach_rate) == pytest.approx(power, abs=1e-8)
    # The smallest such rate: a little below it the power is not reached.
    below = np.linspace(p * (1 + 1e-6), result.breach_rate - 1e-7, 400)
    assert max(rejection(q) for q in below) < power
    assert result.multiplier == pytest.approx(result.breach_rate / p, rel=EXACT)


def test_detectable_miscoverage_n250_by_hand():
    # n = 250, p = 1%: LR(0) = -500 ln 0.99 = 5.03 and LR(7) = 5.49 exceed chi2(1)'s 3.84 at 5%,
    # LR(1) = 1.18 and LR(6) = 3.55 do not, so the test rejects 0 and 7 or more breaches.
    result = detectable_miscoverage(250, 0.99)
    assert (result.lower_critical, result.upper_critical) == (0, 7)
    assert 3.0 < result.multiplier < 4.0


def test_detectable_miscoverage_shrinks_with_sample_size():
    multipliers = [detectable_miscoverage(n, 0.99).multiplier for n in (250, 1000, 5000, 20000)]
    assert all(a > b > 1.0 for a, b in itertools.pairwise(multipliers))


def test_detectable_miscoverage_impossible_sample_raises():
    # n = 1, p = 50%: no count is rejected, nothing is detectable.
    with pytest.raises(ValueError, match="no miscoverage is detectable"):
        detectable_miscoverage(1, 0.5)


# ---------------------------------------------------------------------------------------------
# Report and input errors


def test_coverage_report_gathers_the_tests():
    indicator = np.random.default_rng(3).random(750) < 0.015
    report = coverage_report(indicator, 0.99)
    assert report.kupiec_p_value == kupiec(indicator, 0.99).p_value
    assert report.christoffersen_p_value == christoffersen(indicator).p_value
    assert report.zone is traffic_light(int(indicator.sum()), 750, 0.99).zone
    assert report.detectable_rate == detectable_miscoverage(750, 0.99).breach_rate
    assert report.breaches == int(indicator.sum()) and report.n == 750
    row = report.as_dict()
    assert row["zone"] == report.zone.value and row["breaches"] == report.breaches


@pytest.mark.parametrize(
    ("breaches", "coverage", "message"),
    [
        ([0, 1, np.nan], 0.99, "without missing days"),
        ([0, 2, 1], 0.99, "0/1"),
        ([], 0.99, "non-empty"),
        ([0, 1], 1.0, "coverage must be"),
        (["a", "b"], 0.99, "booleans or 0/1"),
    ],
)
def test_bad_input_raises_clearly(breaches, coverage, message):
    with pytest.raises(ValueError, match=message):
        kupiec(breaches, coverage)


def test_christoffersen_needs_two_days():
    with pytest.raises(ValueError, match="at least 2 days"):
        christoffersen([1])

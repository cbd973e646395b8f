"""Price risk-parameter calibration: scan-range quantiles against known distributions,
out-of-sample coverage on GARCH-t paths (tested with the coverage module), no look-ahead, the
stress floor, and the map of a whole calibration onto the risk matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from volcal.margin import risk_matrix
from volcal.margin.coverage import christoffersen, kupiec
from volcal.margin.risk_parameters import (
    EWMA_SEED_DAYS,
    backtest_breaches,
    calibrate_risk_parameters,
    log_returns,
    rolling_scan_range,
    scan_range_filtered,
    scan_range_historical,
    simulate_garch_t,
    stress_floor,
)
from volcal.margin.scenarios import RISK_MATRIX_DEFAULTS

from .test_vol_shocks import synthetic_vol_history

#: A crypto-like GARCH(1,1)-t: daily vol sqrt(omega / (1 - alpha - beta)) = 3%, persistence
#: 0.98, 5 degrees of freedom (fat tails), in the range of Bollerslev-style fits to BTC.
GARCH = {"omega": 1.8e-5, "alpha": 0.08, "beta": 0.90, "nu": 5.0}
BACKTEST_DAYS = 3000
WINDOW = 500
#: Sampling error of the 99% quantile of |move| on 100,000 iid normal days: relative standard
#: deviation sqrt(p (1 - p) / n) / (q f(q)) = 0.3% for one day and about 0.7% for overlapping
#: 5-day sums; the tolerances are 5 standard deviations.
NORMAL_DAYS = 100_000
QUANTILE_TOLERANCE = {1: 0.015, 5: 0.035}
#: Identities that hold up to rounding: the filtered range of constant returns, and the
#: exact power law recovered through the whole calibration.
EXACT = 1e-10


def daily(values, start="2020-01-01", name=None) -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="D"), name=name)


@pytest.fixture(scope="module")
def garch_returns() -> pd.Series:
    return simulate_garch_t(WINDOW + BACKTEST_DAYS, seed=11, **GARCH)


# ---------------------------------------------------------------------------------------------
# Quantiles on known distributions


def exact_abs_move_quantile(sigma: float, confidence: float) -> float:
    """R with P(|exp(X) - 1| > R) = 1 - c for X ~ N(0, sigma^2), from scipy.stats.norm."""

    def excess(move):
        up = stats.norm.sf(np.log1p(move) / sigma)
        down = stats.norm.cdf(np.log1p(-move) / sigma)
        return up + down - (1.0 - confidence)

    return optimize.brentq(excess, 1e-12, 1.0 - 1e-12, xtol=1e-15)


@pytest.mark.parametrize("horizon", [1, 5])
def test_historical_quantile_of_normal_returns(horizon):
    sigma = 0.02
    returns = daily(np.random.default_rng(5).normal(0.0, sigma, NORMAL_DAYS))
    computed = scan_range_historical(returns, 0.99, horizon)
    expected = exact_abs_move_quantile(sigma * np.sqrt(horizon), 0.99)
    assert computed == pytest.approx(expected, rel=QUANTILE_TOLERANCE[horizon])
    # The exact value is the normal quantile to first order in sigma.
    first_order = sigma * np.sqrt(horizon) * stats.norm.ppf(0.995)
    assert expected == pytest.approx(first_order, rel=0.01)


def test_filtered_range_of_constant_returns_by_hand():
    # |r_t| = s every day: the EWMA variance is s^2 throughout, every residual is +-1, so the
    # range is exp(sqrt(h) s) - 1 (up moves are the larger ones).
    s = 0.01
    returns = daily(np.tile([s, -s], 100))
    for horizon in (1, 4):
        computed = scan_range_filtered(returns, 0.99, horizon)
        assert computed == pytest.approx(np.expm1(np.sqrt(horizon) * s), rel=EXACT)


def test_log_returns_by_hand():
    close = daily([100.0, 110.0, 99.0, 120.0, 130.0])
    overlapping = log_returns(close, 2)
    assert overlapping.to_numpy() == pytest.approx(np.log([99 / 100, 120 / 110, 130 / 99]))
    assert list(overlapping.index) == list(close.index[2:])
    apart = log_returns(close, 2, overlapping=False)
    assert apart.to_numpy() == pytest.approx(np.log([99 / 100, 130 / 99]))
    assert list(apart.index) == [close.index[2], close.index[4]]


# ---------------------------------------------------------------------------------------------
# Out-of-sample coverage on GARCH-t paths


def test_filtered_scan_range_covers_garch_out_of_sample(garch_returns):
    ranges = rolling_scan_range(garch_returns, 0.99, 1, WINDOW, method="filtered")
    breaches = backtest_breaches(ranges, garch_returns, 1)
    assert breaches.size == BACKTEST_DAYS
    result = kupiec(breaches, 0.99)
    assert not result.reject(0.05), result
    assert not christoffersen(breaches, 0.99).reject(0.05)
    too_small = kupiec(backtest_breaches(ranges / 2, garch_returns, 1), 0.99)
    assert too_small.reject(0.05) and too_small.observed_rate > 0.05, too_small


def test_breaches_are_realised_moves_after_the_day():
    returns = daily([0.0, 0.1, -0.2, 0.05, 0.3])
    ranges = daily([0.15, 0.15, 0.15], start="2020-01-02")
    # Moves after day 1: exp(-0.2 + 0.05) - 1 = -0.139 (no breach); after day 2:
    # exp(0.05 + 0.3) - 1 = 0.419 (breach); day 3 has one later return only.
    overlapping = backtest_breaches(ranges, returns, 2, overlapping=True)
    assert overlapping.tolist() == [False, True]
    assert backtest_breaches(ranges, returns, 2).tolist() == [False]


# ---------------------------------------------------------------------------------------------
# No look-ahead


@pytest.mark.parametrize("method", ["historical", "filtered"])
@pytest.mark.parametrize("window", [300, None])
def test_rolling_range_ignores_the_future(garch_returns, method, window):
    returns = garch_returns.iloc[:1200]
    cut = 800
    altered = returns.copy()
    altered.iloc[cut + 1 :] = 10 * returns.iloc[cut + 1 :].to_numpy()[::-1]
    kwargs = {"method": method, "min_observations": 200 if window is None else None}
    before = rolling_scan_range(returns, 0.99, 2, window, **kwargs)
    after = rolling_scan_range(altered, 0.99, 2, window, **kwargs)
    known = before.index <= returns.index[cut]
    pd.testing.assert_series_equal(before[known], after[: known.sum()], check_exact=True)
    assert not np.allclose(before[~known], after[known.sum() :])
    # The rolling value is the one-shot calibration on the data up to that day.
    one_shot = scan_range_filtered if method == "filtered" else scan_range_historical
    for day in (before.index[0], returns.index[cut]):
        value = one_shot(returns.loc[:day], 0.99, 2, window=window)
        assert before[day] == pytest.approx(value, rel=1e-14)


def test_filtered_values_start_after_the_ewma_seed(garch_returns):
    ranges = rolling_scan_range(garch_returns.iloc[:400], 0.9, 1, None, method="filtered")
    assert ranges.index[0] == garch_returns.index[EWMA_SEED_DAYS - 1]


# ---------------------------------------------------------------------------------------------
# Stress floor


def test_stress_floor_is_the_worst_window(garch_returns):
    returns = garch_returns.iloc[:800]
    value = stress_floor(returns, 0.99, 1, 250)
    rolling = rolling_scan_range(returns, 0.99, 1, 250)
    worst = rolling.idxmax()
    window = returns.loc[:worst].iloc[-250:]
    assert value == scan_range_historical(window, 0.99, 1)
    assert (rolling <= value).all()


# ---------------------------------------------------------------------------------------------
# Whole calibration


def test_calibrate_risk_parameters_end_to_end(garch_returns):
    returns = garch_returns.iloc[:900]
    vols = synthetic_vol_history(900, 0.3, 0.13, seed=2)
    vols.index = returns.index
    parameters = calibrate_risk_parameters(
        "SOL", returns, vols, window=365, buffer=0.25, stressed_weight=0.25, floor_window=730
    )
    assert parameters.as_of == returns.index[-1]
    assert set(parameters.overrides()) == set(RISK_MATRIX_DEFAULTS["BTC"])
    assert len(risk_matrix("SOL", **parameters.overrides())) == 35
    base = rolling_scan_range(returns, 0.99, 1, 365, method="filtered").iloc[-1]
    assert parameters.price_range >= base
    assert parameters.short_term_vega_power == pytest.approx(0.3, abs=EXACT)
    assert "buffer" in parameters.audit["price_range"]
    # Without vol history the published vol parameters are kept, and said so.
    plain = calibrate_risk_parameters("BTC", returns, method="historical")
    assert plain.vol_range_up == risk_matrix("BTC").parameters["vol_range_up"]
    assert "Deribit" in plain.audit["vol_range_up"]


# ---------------------------------------------------------------------------------------------
# Errors


def test_bad_inputs_raise_clearly(garch_returns):
    short = garch_returns.iloc[:50]
    with pytest.raises(ValueError, match="needs at least 100"):
        scan_range_historical(short, 0.99, 1)
    with pytest.raises(ValueError, match="non-finite"):
        scan_range_historical(garch_returns.where(garch_returns > -0.1), 0.99, 1)
    with pytest.raises(ValueError, match="increasing, unique"):
        scan_range_historical(garch_returns.iloc[::-1], 0.99, 1)
    with pytest.raises(ValueError, match="unknown method"):
        rolling_scan_range(garch_returns, 0.99, 1, 200, method="garch")

"""Risk-parameter calibration: scan-range quantiles against known distributions, out-of-sample
coverage on GARCH-t paths (tested with the coverage module), no look-ahead, anti-procyclicality
tools on a stress episode, vol shocks and the vega power law, and the map onto the risk matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from volcal.margin import risk_matrix
from volcal.margin.coverage import christoffersen, kupiec
from volcal.margin.risk_parameters import (
    APC_BUFFER_RATE,
    APC_STRESSED_WEIGHT,
    EWMA_SEED_DAYS,
    MarginBuffer,
    RiskParameters,
    apply_apc,
    backtest_breaches,
    calibrate_risk_parameters,
    fit_vega_power,
    log_returns,
    rolling_scan_range,
    scan_range_filtered,
    scan_range_historical,
    simulate_garch_t,
    stress_floor,
    vol_shocks,
)
from volcal.margin.scenarios import RISK_MATRIX_DEFAULTS

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
#: Exact round trips (fit of exact power-law data, risk-matrix scale).
EXACT = 1e-10
#: Power recovered from shocks with 3% lognormal noise: standard error about 0.015 on this
#: tenor grid; tolerance about 3 standard errors.
NOISY_POWER_TOLERANCE = 0.05
TENORS = np.array([1.0, 3.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0])


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
# Anti-procyclicality


@pytest.fixture(scope="module")
def stress_episode() -> pd.Series:
    """A base scan range: 10% for 300 days, up to 25% over 10 days, 150 days at 25%, back to
    10% (the stressed days leave the lookback window)."""
    ramp = np.linspace(0.10, 0.25, 11)[1:]
    return daily(np.r_[np.full(300, 0.10), ramp, np.full(150, 0.25), np.full(240, 0.10)])


def largest_increase(series, days=5) -> float:
    """Largest relative increase of the margin over ``days`` days."""
    values = np.asarray(series)
    return float(np.max(values[days:] / values[:-days] - 1.0))


def peak_to_trough(series) -> float:
    return float(np.max(series) / np.min(series))


def test_buffer_behaves_as_defined(stress_episode):
    base = stress_episode.to_numpy()
    result = apply_apc(stress_episode, buffer=MarginBuffer())
    margin = result.parameter.to_numpy()
    stressed = result.buffer_stressed.to_numpy()
    rate = APC_BUFFER_RATE
    first_stress = int(np.argmax(stressed))
    assert first_stress == 300
    np.testing.assert_allclose(margin[:first_stress], base[:first_stress] * (1 + rate), rtol=EXACT)
    assert (margin >= base * (1 - EXACT)).all() and (margin <= base * (1 + rate + EXACT)).all()
    for t in np.flatnonzero(stressed):
        expected = np.clip(margin[t - 1], base[t], base[t] * (1 + rate))
        assert margin[t] == pytest.approx(expected, rel=EXACT), t
    # The first stress day: the base rises 15%, the margin not at all.
    assert margin[300] == pytest.approx(margin[299], rel=EXACT)
    assert largest_increase(margin) < largest_increase(base)
    np.testing.assert_allclose(result.effects.sum(axis=1), margin - base, atol=EXACT)


def test_partial_release_keeps_part_of_the_buffer(stress_episode):
    result = apply_apc(stress_episode, buffer=MarginBuffer(release=0.5))
    floor = stress_episode * (1 + 0.5 * APC_BUFFER_RATE)
    assert (result.parameter >= floor * (1 - EXACT)).all()
    assert result.buffer_stressed.any()
    assert largest_increase(result.parameter) < largest_increase(stress_episode)


def test_stressed_weight_given_value(stress_episode):
    stressed = 0.30
    result = apply_apc(stress_episode, stressed_weight=APC_STRESSED_WEIGHT, stressed_value=stressed)
    margin = result.parameter
    expected = APC_STRESSED_WEIGHT * stressed + (1 - APC_STRESSED_WEIGHT) * stress_episode
    np.testing.assert_allclose(margin, expected, rtol=EXACT)
    assert (margin >= APC_STRESSED_WEIGHT * stressed).all()
    assert peak_to_trough(margin) < peak_to_trough(stress_episode)
    assert largest_increase(margin) < largest_increase(stress_episode)


def test_stressed_weight_default_is_the_worst_so_far(stress_episode):
    margin = apply_apc(stress_episode, stressed_weight=APC_STRESSED_WEIGHT).parameter
    worst_so_far = stress_episode.cummax()
    assert (margin >= APC_STRESSED_WEIGHT * worst_so_far - EXACT).all()
    assert (margin >= stress_episode - EXACT).all()
    # After the episode the margin keeps a quarter of the stressed level.
    after = stress_episode.index[-1]
    assert margin[after] == pytest.approx(0.25 * 0.25 + 0.75 * 0.10, rel=EXACT)


def test_lookback_floor(stress_episode):
    floor = daily(np.linspace(0.14, 0.16, stress_episode.size))
    result = apply_apc(stress_episode, lookback_floor=floor)
    margin = result.parameter
    assert (margin >= floor).all() and (margin >= stress_episode).all()
    np.testing.assert_allclose(margin, np.maximum(stress_episode, floor), rtol=EXACT)
    assert peak_to_trough(margin) < peak_to_trough(stress_episode)
    assert largest_increase(margin) < largest_increase(stress_episode)
    with pytest.raises(ValueError, match="no value on"):
        apply_apc(stress_episode, lookback_floor=floor.iloc[10:])


def test_apc_tools_compose_on_a_garch_stress_episode(garch_returns):
    returns = garch_returns.iloc[:1500].copy()
    returns.iloc[700:760] *= 3.0  # a stress episode
    base = rolling_scan_range(returns, 0.99, 1, 250)
    floor = rolling_scan_range(returns, 0.99, 1, 1000, min_observations=250)
    result = apply_apc(base, buffer=0.25, stressed_weight=0.25, lookback_floor=floor)
    assert (result.effects >= -EXACT).all().all()
    np.testing.assert_allclose(result.effects.sum(axis=1), result.parameter - base, atol=EXACT)
    assert (result.parameter >= np.maximum(base, floor) - EXACT).all()
    assert largest_increase(result.parameter) < largest_increase(base)
    # Causal: changing returns after a day leaves the adjusted parameter up to it unchanged.
    cut = returns.index[900]
    altered = returns.copy()
    altered[altered.index > cut] *= 0.2
    base2 = rolling_scan_range(altered, 0.99, 1, 250)
    floor2 = rolling_scan_range(altered, 0.99, 1, 1000, min_observations=250)
    again = apply_apc(base2, buffer=0.25, stressed_weight=0.25, lookback_floor=floor2)
    pd.testing.assert_series_equal(result.parameter[:cut], again.parameter[:cut])


def test_stress_floor_is_the_worst_window(garch_returns):
    returns = garch_returns.iloc[:800]
    value = stress_floor(returns, 0.99, 1, 250)
    rolling = rolling_scan_range(returns, 0.99, 1, 250)
    worst = rolling.idxmax()
    window = returns.loc[:worst].iloc[-250:]
    assert value == scan_range_historical(window, 0.99, 1)
    assert (rolling <= value).all()


# ---------------------------------------------------------------------------------------------
# Vol shocks and the vega power law


def power_law(days, level, short_power, long_power):
    days = np.maximum(days, 1.0)
    return level * (30.0 / days) ** np.where(days < 30.0, short_power, long_power)


def test_vol_shocks_by_hand():
    vols = pd.DataFrame(
        {7: [0.5, 0.6, 0.3, 0.45, 0.9], 30: [0.4, 0.44, np.nan, 0.5, 0.55]},
        index=pd.date_range("2024-01-01", periods=5, freq="D"),
    )
    table = vol_shocks(vols, 1, 0.5).table
    # Tenor 7: relative changes 0.2, -0.5, 0.5, 1.0 (median 0.35; of the negatives -0.35),
    # absolute 0.1, -0.3, 0.15, 0.45 (medians 0.125 and -0.125).
    assert table.loc[7.0, ["up", "down"]].tolist() == pytest.approx([0.35, -0.35])
    assert table.loc[7.0, ["up_absolute", "down_absolute"]].tolist() == pytest.approx(
        [0.125, -0.125]
    )
    # Tenor 30: the missing day drops the two changes around it, leaving 0.1 and 0.1.
    assert table.loc[30.0, "observations"] == 2 and table.loc[7.0, "observations"] == 4
    assert table.loc[30.0, ["up", "down"]].tolist() == pytest.approx([0.1, -0.1])
    with pytest.raises(ValueError, match="needs at least 20"):
        vol_shocks(vols, 1, 0.95)


def test_fit_vega_power_exact():
    shocks = pd.DataFrame(
        {"up": power_law(TENORS, 0.5, 0.3, 0.13), "down": power_law(TENORS, 0.25, 0.3, 0.13)},
        index=TENORS,
    )
    fit = fit_vega_power(shocks)
    assert fit.short_power == pytest.approx(0.3, abs=EXACT)
    assert fit.long_power == pytest.approx(0.13, abs=EXACT)
    assert fit.pivot_shock.to_dict() == pytest.approx({"up": 0.5, "down": 0.25}, abs=EXACT)
    assert fit.rmse_log < EXACT
    single = fit_vega_power(shocks["up"])
    assert (single.short_power, single.long_power) == pytest.approx((0.3, 0.13), abs=EXACT)


def test_fit_vega_power_noisy():
    noise = np.exp(np.random.default_rng(8).normal(0.0, 0.03, TENORS.size))
    fit = fit_vega_power(pd.Series(power_law(TENORS, 0.5, 0.35, 0.1) * noise, index=TENORS))
    assert fit.short_power == pytest.approx(0.35, abs=NOISY_POWER_TOLERANCE)
    assert fit.long_power == pytest.approx(0.1, abs=NOISY_POWER_TOLERANCE)
    assert fit.pivot_shock.iloc[0] == pytest.approx(0.5, rel=0.05)


def test_fit_vega_power_needs_both_sides():
    with pytest.raises(ValueError, match="below the pivot"):
        fit_vega_power(pd.Series([0.5, 0.4, 0.3], index=[30, 90, 180]))


def synthetic_vol_history(days: int, short_power: float, long_power: float, seed: int):
    """ATM vols whose daily relative change at tenor d is (30/d)^p g_t, for one common g."""
    common = np.random.default_rng(seed).normal(0.0, 0.03, days - 1)
    scale = power_law(TENORS, 1.0, short_power, long_power)
    growth = np.vstack([np.ones(TENORS.size), 1.0 + np.outer(common, scale)])
    vols = 0.6 * np.cumprod(growth, axis=0)
    return pd.DataFrame(vols, index=pd.date_range("2023-01-01", periods=days), columns=TENORS)


def test_vol_shocks_recover_the_risk_matrix_rule():
    vols = synthetic_vol_history(600, 0.3, 0.13, seed=4)
    shocks = vol_shocks(vols, 1, 0.99)
    fit = fit_vega_power(shocks.table[["up", "down"]])
    assert (fit.short_power, fit.long_power) == pytest.approx((0.3, 0.13), abs=EXACT)
    parameters = RiskParameters(
        underlying="SOL",
        as_of=vols.index[-1],
        confidence=0.99,
        horizon_days=1,
        method="historical",
        price_range=0.2,
        vol_range_up=float(fit.pivot_shock["up"]),
        vol_range_down=float(fit.pivot_shock["down"]),
        short_term_vega_power=fit.short_power,
        long_term_vega_power=fit.long_power,
    )
    scenarios = risk_matrix("SOL", **parameters.overrides())
    scale, _, _ = scenarios.vol_terms(TENORS)
    up = scenarios.vol_direction > 0
    down = scenarios.vol_direction < 0
    # Deribit's rule sigma (1 + up s(DTE)) reproduces the calibrated shock at every tenor.
    expected_up = np.broadcast_to(1.0 + shocks.table[["up"]].to_numpy(), scale[:, up].shape)
    expected_down = np.broadcast_to(1.0 - shocks.table[["down"]].to_numpy(), scale[:, down].shape)
    np.testing.assert_allclose(scale[:, up], expected_up, rtol=EXACT)
    np.testing.assert_allclose(scale[:, down], expected_down, rtol=EXACT)


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
    with pytest.raises(ValueError, match="stressed_value without stressed_weight"):
        apply_apc(garch_returns.abs() + 0.01, stressed_value=0.3)
    with pytest.raises(ValueError, match="release"):
        MarginBuffer(release=1.5)

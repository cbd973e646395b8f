"""Vol shocks and the vega power law: quantiles of ATM vol changes by hand, exact and noisy
power-law fits, and Deribit's vol rule reproducing the calibrated shocks at every tenor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volcal.margin import risk_matrix
from volcal.margin.risk_parameters import RiskParameters
from volcal.margin.vol_shocks import fit_vega_power, vol_shocks

#: Exact round trips (fit of exact power-law data, risk-matrix scale).
EXACT = 1e-10
#: Power recovered from shocks with 3% lognormal noise: standard error about 0.015 on this
#: tenor grid; tolerance about 3 standard errors.
NOISY_POWER_TOLERANCE = 0.05
TENORS = np.array([1.0, 3.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0])


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

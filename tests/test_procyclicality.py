"""Anti-procyclicality tools on a stress episode and on a GARCH-t path: the margin buffer as
defined, the stressed weight, the lookback floor, their composition, causality and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volcal.margin.procyclicality import (
    APC_BUFFER_RATE,
    APC_STRESSED_WEIGHT,
    MarginBuffer,
    apply_apc,
)
from volcal.margin.risk_parameters import rolling_scan_range, simulate_garch_t

from .test_risk_parameters import BACKTEST_DAYS, GARCH, WINDOW, daily

#: The tools' formulas hold up to rounding (relative).
EXACT = 1e-10


@pytest.fixture(scope="module")
def garch_returns() -> pd.Series:
    """The same GARCH-t path as tests/test_risk_parameters.py."""
    return simulate_garch_t(WINDOW + BACKTEST_DAYS, seed=11, **GARCH)


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


# ---------------------------------------------------------------------------------------------
# Errors


def test_bad_apc_inputs_raise_clearly(garch_returns):
    with pytest.raises(ValueError, match="stressed_value without stressed_weight"):
        apply_apc(garch_returns.abs() + 0.01, stressed_value=0.3)
    with pytest.raises(ValueError, match="release"):
        MarginBuffer(release=1.5)

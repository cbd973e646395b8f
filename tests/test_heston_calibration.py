"""Heston calibration: the smile pricer used inside the solve, recovery of known parameters on
the demo market's expiries and strikes, and the flat-smile limit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import volcal as vc
from volcal.calibrate import CalibrationStatus
from volcal.models import Heston
from volcal.models.heston import heston_price, heston_smile_prices
from volcal.sources.demo import demo_chain

#: Smile pricer against heston_price, in units of the forward (heston.py, SMILE_NODES).
SMILE_TOLERANCE = {"typical": 1e-14, "hard": 2e-8}
SMILE_SETS = {
    "equity": ("typical", Heston(v0=0.04, kappa=1.5, theta=0.06, xi=0.6, rho=-0.7)),
    "crypto": ("typical", Heston(v0=0.36, kappa=3.0, theta=0.30, xi=1.8, rho=0.1)),
    "fang_oosterlee": (
        "typical",
        Heston(v0=0.0175, kappa=1.5768, theta=0.0398, xi=0.5751, rho=-0.5711),
    ),
    "rho_-0.95": ("hard", Heston(v0=0.04, kappa=2.0, theta=0.04, xi=0.8, rho=-0.95)),
    "tiny_v0": ("hard", Heston(v0=0.0025, kappa=1.0, theta=0.01, xi=1.0, rho=-0.3)),
}
SMILE_T = np.array([1, 2, 7, 30, 91, 182, 365, 730, 1825]) / 365.0
SMILE_Z = np.linspace(-3.0, 3.0, 21)


@pytest.mark.parametrize("name", list(SMILE_SETS))
def test_smile_pricer_matches_the_reference_pricer(name):
    kind, model = SMILE_SETS[name]
    deviation = np.sqrt(np.asarray(model.average_variance(SMILE_T)) * SMILE_T)
    forward = np.full(len(SMILE_T), 100.0)
    strike = forward[:, None] * np.exp(SMILE_Z[None, :] * deviation[:, None])
    is_call = strike >= forward[:, None]
    fast = np.asarray(heston_smile_prices(model, forward, strike, SMILE_T, is_call))
    reference = np.asarray(heston_price(model, forward[:, None], strike, SMILE_T[:, None],
                                        is_call))  # fmt: skip
    error = np.abs(fast - reference) / 100.0
    assert error.max() <= SMILE_TOLERANCE[kind], f"{name}: {error.max():.3g} of the forward"


TRUE = Heston(v0=0.30, kappa=2.5, theta=0.25, xi=1.2, rho=-0.25)


@pytest.fixture(scope="module")
def demo_layout():
    """The demo market's cleaned grid: 1 day to a year, its forwards and strikes."""
    return vc.clean(demo_chain())


def with_vols(grid, vol):
    return dataclasses.replace(grid, mid_iv=vol, bid_iv=vol - 0.005, ask_iv=vol + 0.005)


def test_recovers_parameters_on_the_demo_market_layout(demo_layout):
    grid = demo_layout
    vol = np.asarray(TRUE.implied_vol(grid.forward, grid.strike, grid.t))
    vol = np.where(grid.mask, vol, grid.mid_iv)
    assert np.all(np.isfinite(vol[grid.mask]))
    result = vc.calibrate(Heston, with_vols(grid, vol))
    assert result.ok and result.rmse < 1e-6
    for name in ("v0", "kappa", "theta", "xi", "rho"):
        fitted, true = float(getattr(result.model, name)), float(getattr(TRUE, name))
        assert abs(fitted / true - 1) <= 1e-6, f"{name}: {fitted} vs {true}"
    # A warm start from the answer stays there in a few steps.
    again = vc.calibrate(result.model, with_vols(grid, vol))
    assert again.ok and again.steps[0] <= 5


def test_flat_smile_gives_vanishing_vol_of_variance(demo_layout):
    grid = demo_layout
    flat = np.where(grid.mask, 0.5, grid.mid_iv)
    result = vc.calibrate(Heston, with_vols(grid, flat))
    assert result.ok, [CalibrationStatus(int(s)).meaning for s in result.status]
    assert float(result.model.xi) < 1e-3
    assert result.rmse < 1e-3  # vol points
    np.testing.assert_allclose(result.model.v0, 0.25, rtol=1e-5)
    np.testing.assert_allclose(result.model.theta, 0.25, rtol=1e-5)

"""The arbitrage checker on a numerically priced model (Heston): grid points whose price is
below the pricer's resolution carry no vol information and are skipped and counted, never
reported; real violations are still found, for closed-form and priced models alike."""

from __future__ import annotations

from typing import ClassVar

import jax
import numpy as np
import pytest

from volcal import arbitrage, black_price
from volcal.models import Heston
from volcal.models.heston import heston_price
from volcal.models.svi import SVI

#: Crypto-like parameters (benchmarks/calibration.md; tests/test_heston_calibration.py).
CRYPTO = Heston(v0=0.36, kappa=3.0, theta=0.30, xi=1.8, rho=0.1)
EQUITY = Heston(v0=0.04, kappa=1.5, theta=0.06, xi=0.6, rho=-0.7)
#: 1 day to 2 years.
T = np.array([1, 7, 30, 91, 365, 730]) / 365.0
FORWARD = np.full(len(T), 100.0)
#: The skip threshold for Heston, in units of the forward (volcal/arbitrage.py).
THRESHOLD = 1e-12
# Axel Vogt's slice (Gatheral & Jacquier 2014, Example 3.1): butterfly arbitrage, t = 1.
VOGT = SVI(a=np.array([-0.0410]), b=np.array([0.1331]), rho=np.array([0.3060]),
           m=np.array([0.3586]), sigma=np.array([0.4153]))  # fmt: skip


def otm_price(model, forward, t, log_moneyness):
    """The model's own out-of-the-money price over the forward, from the Fourier pricer."""
    strike = forward[:, None] * np.exp(log_moneyness)
    is_call = strike >= forward[:, None]
    price = heston_price(model, forward[:, None], strike, t[:, None], is_call)
    return np.asarray(price) / forward[:, None]


@pytest.fixture(scope="module")
def crypto():
    """``check`` on the crypto set, its grid, and the model's prices on the grid and on each
    pair's calendar grid (the wider of the two slices' grids)."""
    grid = arbitrage.default_grid(CRYPTO, FORWARD, T)
    report = arbitrage.check(CRYPTO, FORWARD, T)
    wide = np.maximum(np.abs(grid[:-1]).max(axis=1), np.abs(grid[1:]).max(axis=1))
    pair_grid = np.linspace(-1.0, 1.0, grid.shape[1])[None, :] * wide[:, None]
    # One pricer call: the butterfly grids, then each pair's grid for the earlier and the later
    # slice.
    rows = np.vstack([grid, pair_grid, pair_grid])
    forward = np.concatenate([FORWARD, FORWARD[:-1], FORWARD[1:]])
    t = np.concatenate([T, T[:-1], T[1:]])
    price = otm_price(CRYPTO, forward, t, rows)
    n = len(T)
    return grid, report, price[:n], price[n : 2 * n - 1], price[2 * n - 1 :]


def test_threshold_is_a_hundred_times_hestons_price_resolution():
    assert arbitrage.INFORMATIVE_PRICE_MULTIPLE * Heston.price_resolution == THRESHOLD
    assert SVI.price_resolution == 0.0


def test_heston_from_one_day_to_two_years_has_no_violations(crypto):
    _, report, *_ = crypto
    assert report.ok, report.summary()
    assert report.butterfly.empty and report.calendar.empty
    assert report.skipped_points > 0
    assert "skipped" in report.summary()


def test_points_are_skipped_exactly_where_the_price_is_below_the_threshold(crypto):
    grid, report, price, earlier, later = crypto
    below = ~(price >= THRESHOLD)  # negative rounding noise and NaN count as below
    skipped = report.skipped.set_index("slice")
    np.testing.assert_array_equal(skipped["butterfly"], below.sum(axis=1))
    np.testing.assert_array_equal(skipped["points"], grid.shape[1])
    # Only the short expiries' deep wings: the day has skipped points, two years none.
    assert skipped["butterfly"].iloc[0] > 0
    assert skipped["butterfly"].iloc[-1] == 0
    # Skipped points are the wings: the informative points of each slice are one run of the
    # grid, through the money.
    for k, hole in zip(grid, below, strict=True):
        kept = np.flatnonzero(~hole)
        assert np.all(np.diff(kept) == 1) and k[kept[0]] < 0.0 < k[kept[-1]]
    # Calendar: a pair's point is skipped where either slice's price is below the threshold.
    pair_below = ~(earlier >= THRESHOLD) | ~(later >= THRESHOLD)
    np.testing.assert_array_equal(skipped["calendar"].iloc[:-1], pair_below.sum(axis=1))
    assert skipped["calendar"].iloc[-1] == 0


def test_a_skipped_point_is_never_reported_as_a_violation(crypto):
    """The skipped wings are where Durrleman's g of the noise is negative, infinite or NaN:
    the spurious violations of the unskipped checker."""
    grid, report, price, *_ = crypto
    g = np.asarray(arbitrage.durrleman_g(CRYPTO, FORWARD, T, grid))
    spurious = ~(g >= -arbitrage.G_TOLERANCE)
    below = ~(price >= THRESHOLD)
    assert spurious.sum() > 0 and np.all(below[spurious]), "a negative g where priced well"
    assert report.butterfly.empty


def test_a_second_heston_model_reuses_the_compiled_checks(crypto):
    """Parameters are traced, not compiled in: another parameter set (as Python floats) on the
    same expiries traces no new program."""
    traced = []

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/jaxpr_trace_duration":
            traced.append(kwargs)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        report = arbitrage.check(EQUITY, FORWARD, T)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert report.ok, report.summary()
    assert traced == []


def test_vogt_slice_is_still_flagged_with_nothing_skipped():
    report = arbitrage.check(VOGT, [1.0], [1.0])
    assert not report.ok
    assert report.skipped_points == 0
    flagged = report.butterfly["log_moneyness"]
    # Gatheral & Jacquier (2014), Fig. 3.1: g < 0 for k in about (0.64, 1.26).
    assert flagged.min() == pytest.approx(0.644, abs=0.01)
    assert flagged.max() == pytest.approx(1.256, abs=0.01)


class PricedVogt(SVI):
    """Vogt's slice as if its vols were inverted from prices known to 4e-7 of the forward (a
    threshold of 4e-5, inside the range of its prices where g < 0): the skip rule of a priced
    model on a slice with real arbitrage."""

    price_resolution: ClassVar[float] = 4e-7


def test_a_priced_models_arbitrage_is_found_where_its_prices_carry_information():
    """Skipping hides nothing above the threshold: the violations found are exactly those of
    the closed-form check at points whose price is at least the threshold."""
    model = PricedVogt(**{name: getattr(VOGT, name) for name in ("a", "b", "rho", "m", "sigma")})
    threshold = arbitrage.INFORMATIVE_PRICE_MULTIPLE * PricedVogt.price_resolution
    grid = arbitrage.default_grid(VOGT, [1.0], [1.0])
    plain = arbitrage.check(VOGT, [1.0], [1.0])
    priced = arbitrage.check(model, [1.0], [1.0])
    # The out-of-the-money Black price at the slice's vol, over the forward (F = 1, t = 1).
    vol = np.sqrt(np.asarray(VOGT.total_variance(grid)))
    strike = np.exp(grid)
    price = np.asarray(black_price(1.0, strike, 1.0, vol, strike >= 1.0))
    informative = price >= threshold
    assert 0 < (~informative).sum() < informative.sum()
    assert int(priced.skipped["butterfly"].iloc[0]) == int((~informative).sum())
    kept = plain.butterfly["log_moneyness"].isin(grid[informative])
    assert 0 < kept.sum() < len(plain.butterfly), "the threshold should cut the violations"
    np.testing.assert_array_equal(priced.butterfly["log_moneyness"],
                                  plain.butterfly["log_moneyness"][kept])  # fmt: skip


def test_differences_match_autodiff_for_numerically_priced_models():
    """Heston's g by central differences against g by autodiff through its pricer (a subclass
    with price resolution 0 takes the autodiff path): within 1e-3 at informative points, where
    g itself is at least 0.2, on three parameter sets from 1 day to 2 years."""
    import jax.numpy as jnp

    class AutodiffHeston(Heston):
        price_resolution = 0.0

    t = np.array([1 / 365, 7 / 365, 30 / 365, 0.25, 1.0, 2.0])
    forward = np.full(len(t), 100.0)
    for parameters in (dict(v0=0.36, kappa=3.0, theta=0.3, xi=1.8, rho=0.1),
                       dict(v0=0.04, kappa=1.5, theta=0.06, xi=0.6, rho=-0.7),
                       dict(v0=0.2, kappa=10.0, theta=0.25, xi=5.0, rho=-0.3)):  # fmt: skip
        model = Heston(**parameters)
        grid = jnp.asarray(arbitrage.default_grid(model, forward, t))
        args = (jnp.asarray(forward), jnp.asarray(t), grid)
        g, _, informative = arbitrage._butterfly_pass(arbitrage._traced(model), *args)
        reference = arbitrage._butterfly_pass(arbitrage._traced(AutodiffHeston(**parameters)),
                                              *args)[0]  # fmt: skip
        informative = np.asarray(informative)
        difference = np.abs(np.asarray(g) - np.asarray(reference))[informative]
        assert difference.max() <= 1e-3, (parameters, difference.max())
        assert np.asarray(g)[informative].min() >= 0.2

"""VolSurface: node values, calendar-free interpolation and extrapolation on the real
snapshots, the forward curve, greeks against finite differences and Black-76's closed forms,
constant-maturity quantities against their definitions, and the record round trip."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

import volcal as vc
from volcal.black import black_delta, black_vega
from volcal.surface import VolSurface

#: Tolerances: float64 arithmetic on O(1) quantities (node identities), central differences of
#: step h (error O(h^2) relative, h = 1e-4 for the forward, 1e-5 for vol and time).
EXACT = 1e-12
FD_RELATIVE = 1e-6


@pytest.fixture(scope="module")
def demo_surface(demo_essvi_fit) -> VolSurface:
    return VolSurface.from_calibration(demo_essvi_fit)


def test_nodes_reproduce_the_calibrated_model(demo_essvi_fit, demo_surface):
    """At a node expiry, the surface's vol is the model's (eSSVI nodes never conflict)."""
    grid = demo_essvi_fit.grid
    k = np.linspace(-0.5, 0.5, 11)
    for i in (0, len(grid.t) // 2, len(grid.t) - 1):
        strike = grid.forward[i] * np.exp(k)
        expected = np.asarray(
            demo_essvi_fit.model.implied_vol(
                grid.forward, np.tile(strike, (len(grid.t), 1)), grid.t
            )
        )[i]
        got = np.asarray(demo_surface.implied_vol_at(k, grid.t[i]))
        np.testing.assert_allclose(got, expected, rtol=EXACT, err_msg=f"node {i}")
        np.testing.assert_allclose(demo_surface.forward_at(grid.t[i]), grid.forward[i], rtol=EXACT)
        np.testing.assert_allclose(
            demo_surface.discount_at(grid.t[i]), grid.discount[i], rtol=EXACT
        )
    assert not demo_surface.calendar_adjusted


def test_interpolation_is_linear_in_total_variance_and_extrapolation_keeps_vol(demo_surface):
    t = np.asarray(demo_surface.t)
    k = np.array([-0.3, 0.0, 0.2])
    middle = 0.5 * (t[3] + t[4])
    w3, w4 = (np.asarray(demo_surface.total_variance(k, t[i])) for i in (3, 4))
    np.testing.assert_allclose(demo_surface.total_variance(k, middle), 0.5 * (w3 + w4), rtol=EXACT)
    # Before the first node and beyond the last, the vol at fixed k is the end node's.
    for inside, outside in ((t[0], 0.3 * t[0]), (t[-1], 3.0 * t[-1])):
        np.testing.assert_allclose(
            demo_surface.implied_vol_at(k, outside),
            demo_surface.implied_vol_at(k, inside),
            rtol=EXACT,
        )
    # The forward curve: log-linear between nodes.
    f3, f4 = (float(demo_surface.forward_at(t[i])) for i in (3, 4))
    np.testing.assert_allclose(demo_surface.forward_at(middle), np.sqrt(f3 * f4), rtol=EXACT)


def _calendar_decreases(surface: VolSurface, t_max: float) -> float:
    """Largest fall of total variance along t at fixed k on a dense (k, t) grid that covers
    every node interval, the stretch before the first node and beyond the last."""
    k = np.linspace(-1.0, 1.0, 41)
    t = np.unique(np.concatenate([np.geomspace(1e-4, t_max, 300), np.asarray(surface.t)]))
    kk, tt = np.meshgrid(k, t)
    w = np.asarray(surface.total_variance(kk, tt))
    assert np.isfinite(w).all()
    return float(np.max(w[:-1] - w[1:]))


def test_real_snapshots_interpolate_without_calendar_arbitrage(snapshot_essvi_fits):
    """eSSVI on all five snapshots, BTC and ETH: total variance never falls in t at fixed k,
    between, before and beyond the nodes (tolerance: 1e-14, rounding of w ~ 1)."""
    for key, fit in snapshot_essvi_fits.items():
        surface = VolSurface.from_calibration(fit)
        assert _calendar_decreases(surface, 2.0 * float(surface.t[-1])) <= 1e-14, key


def test_conflicting_slices_are_made_monotone(snapshot_files):
    """Raw SVI slices fitted independently cross on a real snapshot; the surface's running
    maximum removes the conflict (and says so)."""
    from volcal.sources.files import read_deribit_snapshot

    grid = vc.clean(read_deribit_snapshot(snapshot_files[-1]), underlying="BTC")
    fit = vc.calibrate(vc.models.SVI, grid, throw=False)
    surface = VolSurface.from_calibration(fit)
    if fit.arbitrage.calendar.empty:
        pytest.skip("no calendar conflict between the SVI slices of this snapshot")
    assert surface.calendar_adjusted
    assert _calendar_decreases(surface, 2.0 * float(surface.t[-1])) <= 1e-14


@pytest.mark.parametrize("dynamics", ["sticky_strike", "sticky_moneyness"])
def test_greeks_match_finite_differences(demo_surface, dynamics):
    forward = float(demo_surface.forward_at(0.1))
    strike = jnp.array([0.8, 0.95, 1.0, 1.1, 1.3]) * forward
    t = jnp.array([0.02, 0.1, 0.1, 0.4, 0.9])
    is_call = jnp.array([False, False, True, True, True])
    greeks = demo_surface.greeks(strike, t, is_call, dynamics=dynamics)
    h = 1e-4

    def price(**shift):
        return np.asarray(demo_surface.price(strike, t, is_call, dynamics=dynamics, **shift))

    f = np.asarray(demo_surface.forward_at(t))
    up, mid, down = price(forward_shift=1 + h), price(), price(forward_shift=1 - h)
    np.testing.assert_allclose(greeks.price, mid, rtol=EXACT)
    np.testing.assert_allclose(greeks.delta, (up - down) / (2 * h * f), rtol=FD_RELATIVE, atol=1e-9)
    np.testing.assert_allclose(greeks.gamma, (up - 2 * mid + down) / (h * f) ** 2, rtol=1e-4)
    dv = 1e-5
    vega = (price(vol_shift=dv) - price(vol_shift=-dv)) / (2 * dv)
    np.testing.assert_allclose(greeks.vega, vega, rtol=FD_RELATIVE)


def test_sticky_strike_greeks_are_black_76s_closed_forms(demo_surface):
    """With the vol at a fixed strike unmoved, delta and vega are Black-76's (volcal.black's
    closed forms, independent of the autodiff path) at the surface's vol."""
    t = jnp.array([0.05, 0.3, 0.7])
    forward = demo_surface.forward_at(t)
    strike = forward * jnp.array([0.9, 1.0, 1.2])
    is_call = jnp.array([False, True, True])
    vol = demo_surface.implied_vol(strike, t)
    discount = demo_surface.discount_at(t)
    greeks = demo_surface.greeks(strike, t, is_call)
    np.testing.assert_allclose(
        greeks.delta, black_delta(forward, strike, t, vol, is_call, discount), rtol=1e-12
    )
    np.testing.assert_allclose(
        greeks.vega, black_vega(forward, strike, t, vol, is_call, discount), rtol=1e-12
    )


def test_theta_matches_finite_differences_at_fixed_vol(demo_surface):
    t, strike = 0.25, 0.9 * float(demo_surface.forward_at(0.25))
    greeks = demo_surface.greeks(strike, t, False)
    forward = demo_surface.forward_at(t)
    vol = demo_surface.implied_vol(strike, t)
    rate = -np.log(float(demo_surface.discount_at(t))) / t
    h = 1e-5

    def black(tt):
        return float(vc.black_price(forward, strike, tt, vol, False, np.exp(-rate * tt)))

    np.testing.assert_allclose(
        greeks.theta, -(black(t + h) - black(t - h)) / (2 * h), rtol=FD_RELATIVE
    )


def test_delta_strikes_and_constant_maturity_quantities(demo_surface):
    """The 25-delta log-moneyness has forward delta Phi(d1) = 0.25 (scipy's normal cdf, from
    the surface's own vol there); RR and BF follow their definitions."""
    t = np.array([7.0, 30.0, 180.0]) / 365.0
    for is_call, target in ((True, 0.25), (False, 0.75)):
        k = np.asarray(demo_surface.delta_log_moneyness(t, 0.25, is_call))
        s = np.sqrt(np.asarray(demo_surface.total_variance(k, t)))
        np.testing.assert_allclose(norm.cdf(-k / s + s / 2), target, atol=1e-12)
    call = demo_surface.implied_vol_at(demo_surface.delta_log_moneyness(t, 0.25, True), t)
    put = demo_surface.implied_vol_at(demo_surface.delta_log_moneyness(t, 0.25, False), t)
    np.testing.assert_allclose(demo_surface.risk_reversal(t), call - put, rtol=EXACT)
    np.testing.assert_allclose(
        demo_surface.butterfly(t), 0.5 * (call + put) - demo_surface.atm_vol(t), rtol=EXACT
    )
    table = demo_surface.constant_maturity()
    assert list(table.index) == [7.0, 30.0, 60.0, 90.0, 180.0, 365.0]
    # The demo surface is a negatively skewed crypto smile: puts richer than calls.
    assert (table["rr25"] < 0).all() and (table["bf25"] > 0).all()


def test_record_round_trip_and_bad_records(demo_surface):
    again = VolSurface.from_record(demo_surface.to_record(), surface_id="abc")
    k, t = np.linspace(-0.4, 0.4, 9), np.full(9, 0.33)
    np.testing.assert_array_equal(again.implied_vol_at(k, t), demo_surface.implied_vol_at(k, t))
    assert again.surface_id == "abc"
    record = demo_surface.to_record()
    with pytest.raises(ValueError, match="unknown model 'Nope'"):
        VolSurface.from_record({**record, "model": "Nope"})
    with pytest.raises(ValueError, match="needs parameters"):
        VolSurface.from_record({**record, "parameters": {"theta": [0.1]}})
    with pytest.raises(ValueError, match="increasing positive"):
        VolSurface.from_record({**record, "t": record["t"][::-1]})
    with pytest.raises(ValueError, match="dynamics"):
        demo_surface.price(1.0, 0.1, True, dynamics="sticky_delta")


def test_every_model_gives_a_surface(demo_grid):
    """Slice models (SABR: static expansion kept) and Heston round-trip through records."""
    fit = vc.calibrate(
        vc.models.SABR, demo_grid, fixed={"beta": 1.0, "expansion": "obloj"}, throw=False
    )
    surface = VolSurface.from_calibration(fit)
    again = VolSurface.from_record(surface.to_record())
    assert again.model.expansion == "obloj"
    np.testing.assert_array_equal(again.implied_vol_at(0.1, 0.2), surface.implied_vol_at(0.1, 0.2))
    heston = VolSurface(
        model=vc.models.Heston(v0=0.3, kappa=2.0, theta=0.35, xi=1.0, rho=-0.3),
        t=jnp.array([0.1, 0.5]),
        forward=jnp.array([100.0, 101.0]),
        discount=jnp.ones(2),
    )
    assert np.isfinite(np.asarray(heston.implied_vol([90.0, 110.0], 0.3))).all()
    assert dataclasses.is_dataclass(again)


def test_two_node_evaluation_equals_the_all_node_curves(demo_surface):
    """Calendar-free models are evaluated at the two nodes around each point only; that
    equals interpolating the running-maximum curves of every node (exactly, up to rounding)."""
    k = np.linspace(-1.2, 1.2, 25)
    t_nodes = np.asarray(demo_surface.t)
    for t in (0.3 * t_nodes[0], 0.5 * (t_nodes[2] + t_nodes[3]), t_nodes[5], 2.0 * t_nodes[-1]):
        nodes = np.vstack([np.zeros(len(k)), np.asarray(demo_surface.node_total_variance(k))])
        grid = np.concatenate([[0.0], t_nodes])
        if t > t_nodes[-1]:
            expected = nodes[-1] * t / t_nodes[-1]
        else:
            expected = np.array([np.interp(t, grid, nodes[:, j]) for j in range(len(k))])
        np.testing.assert_allclose(demo_surface.total_variance(k, t), expected, rtol=1e-13)

"""Black-76 prices and greeks: published values, QuantLib, mpmath, identities, degenerate cases."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import QuantLib as ql

import volcal as vc
from volcal._special import erfcx, norm_cdf
from volcal.black import otm_normalised_call

EPS = float(np.finfo(np.float64).eps)


def close(computed, expected, tolerance, what=""):
    computed, expected = np.asarray(computed), np.asarray(expected)
    error = np.abs(computed - expected)
    worst = int(np.argmax(error - tolerance)) if error.ndim else 0
    assert np.all(error <= tolerance), (
        f"{what}: computed {computed.flat[worst]!r}, expected {expected.flat[worst]!r}, "
        f"tolerance {np.broadcast_to(tolerance, error.shape).flat[worst]!r}"
    )


# --- published values ------------------------------------------------------------------------


def test_haug_black76_example():
    # E. G. Haug, The Complete Guide to Option Pricing Formulas, 2nd ed. (2007), section 1.1.2:
    # futures option F = 19, K = 19, T = 0.75, r = 10%, sigma = 28%: call = put = 1.7011.
    discount = np.exp(-0.10 * 0.75)
    for is_call in (True, False):
        price = vc.black_price(19.0, 19.0, 0.75, 0.28, is_call, discount)
        close(price, 1.7011, 5e-5, "Haug Black-76")


def test_hull_futures_put_example():
    # J. C. Hull, Options, Futures and Other Derivatives, 8th ed., Example 18.6: European put on
    # crude-oil futures, F = K = 20, r = 9%, T = 4 months, sigma = 25%: p = 1.12.
    price = vc.black_price(20.0, 20.0, 4 / 12, 0.25, False, np.exp(-0.09 * 4 / 12))
    close(price, 1.12, 5e-3, "Hull futures put")


# --- QuantLib as an oracle -------------------------------------------------------------------

STRIKES = np.array([20.0, 50.0, 80.0, 95.0, 100.0, 105.0, 125.0, 200.0, 500.0])
STDDEVS = np.array([0.01, 0.1, 0.3, 1.0, 2.5])
DISCOUNTS = np.array([1.0, 0.95])


def _quantlib_grid():
    rows = []
    for strike in STRIKES:
        for std in STDDEVS:
            for discount in DISCOUNTS:
                for is_call in (True, False):
                    kind = ql.Option.Call if is_call else ql.Option.Put
                    payoff = ql.PlainVanillaPayoff(kind, float(strike))
                    calc = ql.BlackCalculator(payoff, 100.0, float(std), float(discount))
                    rows.append(
                        (
                            strike,
                            std,
                            discount,
                            is_call,
                            calc.value(),
                            calc.deltaForward(),
                            calc.gammaForward(),
                            calc.vega(1.0),
                        )
                    )
    return np.array(rows, dtype=float)


def test_prices_and_greeks_match_quantlib():
    grid = _quantlib_grid()
    strike, std, discount, is_call = grid[:, 0], grid[:, 1], grid[:, 2], grid[:, 3] > 0
    # t = 1 so that stdDev = vol and QuantLib's vega(1.0) is dV/dsigma.
    greeks = vc.black_greeks(100.0, strike, 1.0, std, is_call, discount)
    # QuantLib evaluates F Phi(d1) - K Phi(d2) directly: absolute accuracy ~1e-14 of the forward.
    close(greeks.price, grid[:, 4], 1e-12 * 100.0, "price vs QuantLib blackFormula")
    close(greeks.delta, grid[:, 5], 1e-12, "delta vs QuantLib deltaForward")
    close(greeks.gamma, grid[:, 6], 1e-12 + 1e-10 * np.abs(grid[:, 6]), "gamma")
    close(greeks.vega, grid[:, 7], 1e-10 + 1e-12 * np.abs(grid[:, 7]), "vega")


def test_price_matches_quantlib_black_formula_function():
    for strike in STRIKES:
        for std in STDDEVS:
            expected = ql.blackFormula(ql.Option.Put, float(strike), 100.0, float(std), 0.9)
            computed = vc.black_price(100.0, strike, 4.0, std / 2.0, False, 0.9)
            close(computed, expected, 1e-12 * 100.0, f"put K={strike} s={std}")


# --- mpmath: relative accuracy of the normalised Black function in every regime ---------------


def _mp_otm_call(x, s):
    x, s = mp.mpf(x), mp.mpf(s)
    return mp.exp(x / 2) * mp.ncdf(x / s + s / 2) - mp.exp(-x / 2) * mp.ncdf(x / s - s / 2)


@pytest.mark.parametrize(
    ("regime", "h_range", "t_range"),
    [
        ("asymptotic expansion", (-40.0, -10.5), (0.001, 0.15)),
        ("small-t expansion", (-9.0, -0.001), (1e-4, 0.2)),
        ("erfcx form", (-9.0, -1.0), (0.25, 1.5)),
        ("cumulative normal form", (-1.0, 0.0), (1.0, 8.0)),
    ],
)
def test_otm_call_relative_accuracy_per_regime(regime, h_range, t_range):
    mp.mp.dps = 40
    rng = np.random.default_rng(7)
    h = rng.uniform(*h_range, 40)
    t = rng.uniform(*t_range, 40)
    s = 2.0 * t
    x = h * s
    computed = np.asarray(otm_normalised_call(x, s))
    expected = np.array([float(_mp_otm_call(a, b)) for a, b in zip(x, s, strict=True)])
    # Tolerance from the problem's own conditioning: rounding h = x/s and h^2 + t^2 moves
    # ln b by about (h^2 + t^2) eps, on top of a few ulp of evaluation error.
    tolerance = 16 * EPS * (1.0 + h * h + t * t) * expected
    close(computed, expected, tolerance, regime)


def test_far_out_of_the_money_price_keeps_relative_accuracy():
    mp.mp.dps = 60
    forward, strike, t, vol = 100.0, 400.0, 0.05, 0.3  # about 1e-65 of the forward
    expected = 100.0 * float(
        mp.ncdf(mp.log(mp.mpf(forward) / strike) / (vol * mp.sqrt(t)) + vol * mp.sqrt(t) / 2)
    ) - strike * float(
        mp.ncdf(mp.log(mp.mpf(forward) / strike) / (vol * mp.sqrt(t)) - vol * mp.sqrt(t) / 2)
    )
    reference = _mp_otm_call(np.log(forward / strike), vol * np.sqrt(t)) * mp.sqrt(forward * strike)
    computed = float(vc.black_price(forward, strike, t, vol, True))
    assert 0.0 < computed < 1e-60
    close(computed, float(reference), 1e-11 * float(reference), "1e-65 price")
    del expected  # the naive difference of two cumulative normals is all rounding here


# --- special functions against mpmath -------------------------------------------------------


def test_erfcx_against_mpmath_including_the_jax_failure_window():
    mp.mp.dps = 40
    # jax.scipy.special.erfcx returns 0 on about [26.54, 26.64] (jax issue 38607).
    x = np.concatenate([np.linspace(-0.6, 30.0, 601), np.linspace(26.5, 26.7, 41), [1e3, 1e8]])
    expected = np.array([float(mp.exp(mp.mpf(v) ** 2) * mp.erfc(mp.mpf(v))) for v in x])
    close(erfcx(x), expected, 4 * EPS * expected, "erfcx")


def test_norm_cdf_tail_against_mpmath():
    mp.mp.dps = 40
    # log_ndtr is inaccurate for x in [6, 26]; the lower tail there is what deep OTM prices use.
    z = np.concatenate([np.linspace(-37.0, 8.0, 451), -np.linspace(6.0, 26.0, 41)])
    expected = np.array([float(mp.ncdf(mp.mpf(v))) for v in z])
    close(norm_cdf(z), expected, 4 * EPS * expected, "norm_cdf")


# --- identities and greeks --------------------------------------------------------------------


def test_put_call_parity():
    rng = np.random.default_rng(3)
    strike = rng.uniform(10.0, 300.0, 200)
    vol = rng.uniform(0.05, 3.0, 200)
    t = rng.uniform(0.01, 5.0, 200)
    call = vc.black_price(100.0, strike, t, vol, True, 0.9)
    put = vc.black_price(100.0, strike, t, vol, False, 0.9)
    close(call - put, 0.9 * (100.0 - strike), 1e-13 * np.maximum(100.0, strike), "parity")


def _greek_inputs():
    rng = np.random.default_rng(11)
    n = 64
    strike = 100.0 * np.exp(rng.uniform(-1.0, 1.0, n))
    vol = rng.uniform(0.1, 1.5, n)
    t = rng.uniform(0.05, 3.0, n)
    is_call = rng.random(n) < 0.5
    return strike, vol, t, is_call


def test_closed_form_greeks_match_autodiff():
    strike, vol, t, is_call = _greek_inputs()
    rate = 0.04

    def price(forward, volatility, expiry, k, c):
        return vc.black_price(forward, k, expiry, volatility, c, jnp.exp(-rate * expiry))

    def per_option(derivative):
        return jax.vmap(derivative)(jnp.full(strike.shape, 100.0), vol, t, strike, is_call)

    greeks = vc.black_greeks(100.0, strike, t, vol, is_call, np.exp(-rate * t))
    close(greeks.delta, per_option(jax.grad(price)), 1e-13, "delta vs autodiff")
    close(greeks.vega, per_option(jax.grad(price, 1)), 1e-11, "vega vs autodiff")
    close(greeks.theta, -per_option(jax.grad(price, 2)), 1e-11, "theta vs -dV/dT, fixed rate")
    close(greeks.gamma, per_option(jax.grad(jax.grad(price))), 1e-13, "gamma vs autodiff")
    close(greeks.volga, per_option(jax.grad(jax.grad(price, 1), 1)), 1e-10, "volga vs autodiff")
    close(greeks.vanna, per_option(jax.grad(jax.grad(price), 1)), 1e-12, "vanna vs autodiff")


def test_vanna_and_volga_against_finite_differences():
    strike, vol, t, is_call = _greek_inputs()
    greeks = vc.black_greeks(100.0, strike, t, vol, is_call)
    bump = 1e-6

    def vega_at(forward, volatility):
        return np.asarray(vc.black_vega(forward, strike, t, volatility, is_call))

    vanna = (vega_at(100.0 + bump, vol) - vega_at(100.0 - bump, vol)) / (2 * bump)
    volga = (vega_at(100.0, vol + bump) - vega_at(100.0, vol - bump)) / (2 * bump)
    # Central differences: truncation O(bump^2 / sigma^3) ~ 1e-9, rounding ~1e-16 vega / bump.
    close(greeks.vanna, vanna, 1e-6 * (1 + np.abs(vanna)), "vanna vs finite differences")
    close(greeks.volga, volga, 1e-6 * (1 + np.abs(volga)), "volga vs finite differences")


def test_delta_at_the_money_is_smooth():
    # The price is assembled from intrinsic + OTM call at -|x|: the kink must cancel at F = K.
    for is_call in (True, False):
        autodiff = jax.grad(lambda f, c=is_call: vc.black_price(f, 100.0, 0.5, 0.4, c))(100.0)
        closed = vc.black_delta(100.0, 100.0, 0.5, 0.4, is_call)
        close(autodiff, closed, 1e-14, f"ATM delta call={is_call}")


def test_zero_vol_and_zero_time_give_intrinsic_value_with_finite_gradients():
    strike = jnp.array([80.0, 100.0, 120.0])
    for t, vol in ((1.0, 0.0), (0.0, 0.3)):
        for is_call in (True, False):
            intrinsic = np.maximum((1 if is_call else -1) * (100.0 - np.asarray(strike)), 0.0)
            close(
                vc.black_price(100.0, strike, t, vol, is_call, 0.9),
                0.9 * intrinsic,
                0.0,
                "intrinsic",
            )
            gradients = jax.vmap(
                jax.grad(
                    lambda f, k, tt, v, c=is_call: vc.black_price(f, k, tt, v, c, 0.9),
                    argnums=(0, 1, 2, 3),
                ),
                in_axes=(None, 0, None, None),
            )(100.0, strike, t, vol)
            for g in gradients:
                assert np.isfinite(np.asarray(g)).all()
            greeks = vc.black_greeks(100.0, strike, t, vol, is_call, 0.9)
            for name, value in greeks._asdict().items():
                assert np.isfinite(np.asarray(value)).all(), name
            sign = 1.0 if is_call else -1.0
            close(
                greeks.delta,
                sign * 0.9 * np.array([1.0, 0.5, 0.0] if is_call else [0.0, 0.5, 1.0]),
                1e-15,
                "delta",
            )


def test_jit_vmap_and_broadcasting():
    price = jax.jit(vc.black_price)(
        100.0, jnp.array([[90.0], [110.0]]), jnp.array([0.5, 1.0]), 0.3, True
    )
    assert price.shape == (2, 2)
    batched = jax.vmap(vc.black_price, in_axes=(None, 0, None, None, None))(
        100.0, jnp.array([90.0, 110.0]), 1.0, 0.3, True
    )
    close(batched, price[:, 1], 1e-14, "vmap vs broadcast")

"""implied_vol: QuantLib's blackformula cases, statuses, parity mapping, autodiff, properties."""

from __future__ import annotations

import datetime as dt

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import volcal as vc
from volcal import IVStatus
from volcal.black import otm_normalised_call
from volcal.implied import _b_at_inflection, _bucket_size

from .test_black import close

N = 64  # fixed array length for property tests: one compiled program for every example


# --- QuantLib test-suite cases (test-suite/blackformula.cpp) ----------------------------------


def test_quantlib_adaptive_sor_case():
    # testImpliedVolAdaptiveSuccessiveOverRelaxation: 12 Jul 2017 + 15 months (ACT/365), r = 10%,
    # q = 6%, S = 100, vol = 20%; QuantLib asks 1e-8 of its own solver. Prices from QuantLib.
    expiry_days = (dt.date(2018, 10, 12) - dt.date(2017, 7, 12)).days
    t = expiry_days / 365.0
    discount = np.exp(-0.10 * t)
    forward = 100.0 * np.exp(-0.06 * t) / discount
    std = 0.20 * np.sqrt(t)
    for strike in (50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 125.0, 150.0, 200.0):
        for kind, is_call in ((ql.Option.Call, True), (ql.Option.Put, False)):
            price = ql.blackFormula(kind, strike, forward, std, discount)
            result = vc.implied_vol(price, forward, strike, t, is_call, discount)
            assert int(result.status) == IVStatus.OK
            close(result.vol, 0.20, 1e-12, f"K={strike} call={is_call}")


def test_quantlib_radoicic_stefanica_case():
    # testRadoicicStefanicaImpliedVol: T = 1.7, r = 10%, F = 100, vol = 30%, strikes 50..300
    # (QuantLib's approximation is held to 2e-2; the exact inversion to 1e-12).
    t, forward = 1.7, 100.0
    discount = np.exp(-0.1 * t)
    strikes = np.array([50, 60, 70, 80, 90, 100, 110, 125, 150, 200, 300], dtype=float)
    for kind, is_call in ((ql.Option.Call, True), (ql.Option.Put, False)):
        prices = [ql.blackFormula(kind, k, forward, 0.3 * np.sqrt(t), discount) for k in strikes]
        result = vc.implied_vol(np.array(prices), forward, strikes, t, is_call, discount)
        close(result.vol, 0.3, 1e-12, f"call={is_call}")


def test_agrees_with_quantlib_implied_stddev_at_full_accuracy():
    rng = np.random.default_rng(5)
    for _ in range(40):
        strike = float(100 * np.exp(rng.uniform(-0.8, 0.8)))
        std = float(rng.uniform(0.2, 1.5))  # within 4 standard deviations of the money
        is_call = bool(rng.random() < 0.5)
        kind = ql.Option.Call if is_call else ql.Option.Put
        price = ql.blackFormula(kind, strike, 100.0, std, 1.0)
        expected = ql.blackFormulaImpliedStdDev(
            kind, strike, 100.0, price, 1.0, 0.0, ql.nullDouble(), 1e-14, 200
        )
        computed = vc.implied_vol(price, 100.0, strike, 1.0, is_call).vol
        # QuantLib prices as F Phi(d1) - K Phi(d2): absolute error ~1e-14 F, i.e. 1e-12 / vega
        # in vol, which dominates far from the money.
        vega = float(vc.black_vega(100.0, strike, 1.0, std, is_call))
        close(computed, expected, 1e-11 + 1e-12 / vega, f"K={strike} std={std}")


# --- Jaeckel (2015) structure -------------------------------------------------------------------


def test_value_at_the_inflection_point():
    # b(x, s_c) with s_c = sqrt(2|x|) is e^{x/2}(1 - erfcx(sqrt|x|))/2 (Jaeckel 2015, eq. 4.2ff).
    x = -np.geomspace(1e-12, 50.0, 60)
    expected = otm_normalised_call(x, np.sqrt(-2.0 * x))
    close(_b_at_inflection(x), expected, 1e-15 + 1e-12 * np.asarray(expected), "b(x, s_c)")


@pytest.mark.parametrize("x", [-1.0, -10.0, -50.0, -100.0, -200.0])
def test_extreme_log_moneyness_up_to_the_limit(x):
    # The whole range of total vol for |ln(F/K)| up to LOG_MONEYNESS_LIMIT, prices from the
    # normalised Black function down to 1e-300; bound as in test_implied_accuracy with
    # u = 4 eps (b + |db/dx|) / vega. Near b_max only the summed form of b_max - b holds it.
    from volcal.black import otm_call_and_vega
    from volcal.implied import normalised_implied_vol

    s = np.geomspace(1e-3, 80.0, 2000)
    x_arr = np.full_like(s, x)
    b, vega = (np.asarray(a) for a in otm_call_and_vega(x_arr, s))
    slope = np.asarray(jax.vmap(jax.grad(otm_normalised_call))(x_arr, s))
    recovered = np.asarray(normalised_implied_vol(b, x_arr))
    with np.errstate(divide="ignore", invalid="ignore"):
        u = 4 * 2.2e-16 * (b + np.abs(slope)) / vega
    informative = (b > 1e-300) & (b < np.exp(x / 2)) & (u <= 1e-3 * s)
    assert informative.sum() > 250
    error = np.abs(recovered - s)
    close(error[informative], 0.0, np.maximum(1e-13 * s, u)[informative], f"x={x}")


# --- statuses ------------------------------------------------------------------------------------


def test_status_for_every_kind_of_bad_input():
    cases = [
        # price, forward, strike, t, is_call, discount, expected
        (5.0, 100.0, 100.0, 1.0, True, 1.0, IVStatus.OK),
        (19.0, 100.0, 80.0, 1.0, True, 1.0, IVStatus.BELOW_INTRINSIC),
        (100.0, 100.0, 80.0, 1.0, True, 1.0, IVStatus.ABOVE_UPPER_BOUND),
        (80.0, 100.0, 80.0, 1.0, False, 1.0, IVStatus.ABOVE_UPPER_BOUND),
        (5.0, 100.0, 100.0, 0.0, True, 1.0, IVStatus.NON_POSITIVE_TIME),
        (5.0, 100.0, 100.0, -1.0, True, 1.0, IVStatus.NON_POSITIVE_TIME),
        (5.0, 0.0, 100.0, 1.0, True, 1.0, IVStatus.NON_POSITIVE_FORWARD),
        (5.0, -3.0, 100.0, 1.0, True, 1.0, IVStatus.NON_POSITIVE_FORWARD),
        (5.0, 100.0, 0.0, 1.0, True, 1.0, IVStatus.NON_POSITIVE_STRIKE),
        (5.0, 100.0, 100.0, 1.0, True, 0.0, IVStatus.NON_POSITIVE_DISCOUNT),
        (np.nan, 100.0, 100.0, 1.0, True, 1.0, IVStatus.NAN_INPUT),
        (5.0, np.inf, 100.0, 1.0, True, 1.0, IVStatus.NAN_INPUT),
        (5.0, 100.0, 100.0, np.nan, True, 1.0, IVStatus.NAN_INPUT),
        (0.0, 100.0, 120.0, 1.0, True, 1.0, IVStatus.NO_VOL_INFORMATION),
        (20.0, 100.0, 80.0, 1.0, True, 1.0, IVStatus.NO_VOL_INFORMATION),  # exactly intrinsic
        (1e-320, 100.0, 120.0, 1.0, True, 1.0, IVStatus.NO_VOL_INFORMATION),  # subnormal
        (1e-302, 100.0, 120.0, 1.0, True, 1.0, IVStatus.NO_VOL_INFORMATION),  # near underflow
        (1e-3, 100.0, 100.0 * np.exp(201.0), 1.0, True, 1.0, IVStatus.LOG_MONEYNESS_OUT_OF_RANGE),
        (-1.0, 100.0, 120.0, 1.0, True, 1.0, IVStatus.BELOW_INTRINSIC),
    ]
    columns = list(zip(*cases, strict=True))
    result = vc.implied_vol(*(np.array(c) for c in columns[:6]))
    for case, status, vol in zip(
        cases, np.asarray(result.status), np.asarray(result.vol), strict=True
    ):
        assert IVStatus(int(status)) is case[-1], f"{case}: got {IVStatus(int(status)).name}"
        assert np.isnan(vol) == (case[-1] is not IVStatus.OK)
    assert result.summary()[IVStatus.NO_VOL_INFORMATION] == 4


def test_every_status_has_a_meaning():
    for status in IVStatus:
        assert isinstance(status.meaning, str) and len(status.meaning) > 10


# --- mapping, discounting, shapes -------------------------------------------------------------


def test_in_the_money_prices_invert_like_their_out_of_the_money_twins():
    strikes = np.array([60.0, 90.0, 100.0, 110.0, 160.0])
    vol, t = 0.45, 0.7
    calls = vc.black_price(100.0, strikes, t, vol, True)
    puts = vc.black_price(100.0, strikes, t, vol, False)
    from_calls = vc.implied_vol(calls, 100.0, strikes, t, True).vol
    from_puts = vc.implied_vol(puts, 100.0, strikes, t, False).vol
    close(from_calls, vol, 1e-13, "calls")
    close(from_puts, vol, 1e-13, "puts")


def test_discount_factor_is_applied_to_the_premium():
    price = vc.black_price(100.0, 120.0, 2.0, 0.35, True, 0.8)
    close(vc.implied_vol(price, 100.0, 120.0, 2.0, True, 0.8).vol, 0.35, 1e-14, "discounted")


def test_shapes_and_scalars():
    strikes = np.linspace(80.0, 120.0, 6).reshape(2, 3)
    prices = vc.black_price(100.0, strikes, 0.5, 0.6, True)
    result = vc.implied_vol(prices, 100.0, strikes, 0.5, True)
    assert result.vol.shape == (2, 3) and result.status.shape == (2, 3)
    assert result.status.dtype == jnp.int8
    scalar = vc.implied_vol(float(prices[0, 0]), 100.0, 80.0, 0.5, True)
    assert scalar.vol.shape == ()
    close(scalar.vol, 0.6, 1e-14, "scalar")


def test_bucket_sizes_bound_the_padding():
    for n in (1, 255, 256, 257, 1000, 4097, 10_000, 123_457, 1_000_000):
        size = _bucket_size(n)
        assert size >= n
        assert size <= max(256, n * 1.0625 + 1)


def test_jit_and_vmap():
    strikes = jnp.linspace(70.0, 130.0, 8)
    prices = vc.black_price(100.0, strikes, 1.0, 0.3, False)
    jitted = jax.jit(lambda p: vc.implied_vol(p, 100.0, strikes, 1.0, False))(prices)
    close(jitted.vol, 0.3, 1e-14, "under jit")
    mapped = jax.vmap(lambda p, k: vc.implied_vol(p, 100.0, k, 1.0, False).vol)(prices, strikes)
    close(mapped, 0.3, 1e-14, "under vmap")


# --- derivatives (implicit function theorem) ----------------------------------------------------


def test_derivative_with_respect_to_price_is_one_over_vega():
    strikes = jnp.array([70.0, 95.0, 100.0, 130.0, 250.0])
    t, vol = 0.4, 0.8
    prices = vc.black_price(100.0, strikes, t, vol, True, 0.97)
    gradient = jax.vmap(jax.grad(lambda p, k: vc.implied_vol(p, 100.0, k, t, True, 0.97).vol))(
        prices, strikes
    )
    vega = vc.black_vega(100.0, strikes, t, vol, True, 0.97)
    close(gradient, 1.0 / vega, 1e-12 / np.asarray(vega), "dsigma/dprice")


def test_derivatives_with_respect_to_market_inputs_match_finite_differences():
    price = float(vc.black_price(100.0, 110.0, 0.5, 0.4, False, 0.95))

    def vol(forward, strike, t, discount):
        return vc.implied_vol(price, forward, strike, t, False, discount).vol

    grads = jax.grad(vol, argnums=(0, 1, 2, 3))(100.0, 110.0, 0.5, 0.95)
    base = (100.0, 110.0, 0.5, 0.95)
    for i, g in enumerate(grads):
        bump = 1e-5 * base[i]
        up = list(base)
        down = list(base)
        up[i] += bump
        down[i] -= bump
        fd = (float(vol(*up)) - float(vol(*down))) / (2 * bump)
        close(g, fd, 1e-7 * max(1.0, abs(fd)), f"d vol / d input {i}")


def test_failed_elements_have_zero_not_nan_gradients():
    prices = jnp.array([5.0, -1.0, jnp.nan, 200.0])

    def total(p):
        result = vc.implied_vol(p, 100.0, 100.0, 1.0, True)
        return jnp.sum(jnp.where(result.ok, result.vol, 0.0))

    gradient = np.asarray(jax.grad(total)(prices))
    assert np.isfinite(gradient).all()
    assert (gradient[1:] == 0.0).all() and gradient[0] > 0.0


# --- properties (hypothesis), fixed shapes -------------------------------------------------------

finite = dict(allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    log_vol=hnp.arrays(np.float64, N, elements=st.floats(np.log(0.01), np.log(5.0), **finite)),
    log_t=hnp.arrays(np.float64, N, elements=st.floats(np.log(1 / 8760), np.log(5.0), **finite)),
    z=hnp.arrays(np.float64, N, elements=st.floats(-6.0, 6.0, **finite)),
    is_call=hnp.arrays(np.bool_, N),
)
def test_round_trip_price_vol_price(log_vol, log_t, z, is_call):
    vol, t = np.exp(log_vol), np.exp(log_t)
    strike = 100.0 * np.exp(z * vol * np.sqrt(t))
    price = np.asarray(vc.black_price(100.0, strike, t, vol, is_call))
    result = vc.implied_vol(price, 100.0, strike, t, is_call)
    ok = np.asarray(result.ok)
    repriced = np.asarray(vc.black_price(100.0, strike, t, np.where(ok, result.vol, 0.1), is_call))
    # Repricing error: a few ulp of the price (and of the strike, through delta).
    tolerance = 32 * 2.2e-16 * (price + strike)
    assert (np.abs(repriced - price)[ok] <= tolerance[ok]).all()
    # Whatever fails must fail for a stated reason about information, never silently.
    assert np.isin(
        np.asarray(result.status)[~ok], [IVStatus.NO_VOL_INFORMATION, IVStatus.ABOVE_UPPER_BOUND]
    ).all()


any_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1e-320, -1e-300, 1e300, 5e-324]),
)


@settings(max_examples=60, deadline=None)
@given(
    price=hnp.arrays(np.float64, N, elements=any_float),
    forward=hnp.arrays(np.float64, N, elements=any_float),
    strike=hnp.arrays(np.float64, N, elements=any_float),
    t=hnp.arrays(np.float64, N, elements=any_float),
    discount=hnp.arrays(np.float64, N, elements=any_float),
    is_call=hnp.arrays(np.bool_, N),
)
def test_garbage_in_gives_statuses_not_exceptions(price, forward, strike, t, discount, is_call):
    with np.errstate(all="ignore"):
        result = vc.implied_vol(price, forward, strike, t, is_call, discount)
    status = np.asarray(result.status)
    vol = np.asarray(result.vol)
    assert set(np.unique(status)) <= {int(s) for s in IVStatus}
    ok = status == IVStatus.OK
    assert np.isfinite(vol[ok]).all() and (vol[ok] >= 0).all()
    assert np.isnan(vol[~ok]).all()
    bad_input = ~(
        np.isfinite(price)
        & np.isfinite(forward)
        & np.isfinite(strike)
        & np.isfinite(t)
        & np.isfinite(discount)
    )
    assert (status[bad_input] == IVStatus.NAN_INPUT).all()


@pytest.mark.parametrize("argument", ["price", "forward", "strike", "t", "discount"])
def test_a_nan_in_any_argument_is_reported_as_nan_input(argument):
    values = dict(price=5.0, forward=100.0, strike=100.0, t=1.0, discount=1.0)
    values[argument] = np.array([np.nan, values[argument]])
    result = vc.implied_vol(
        values["price"], values["forward"], values["strike"], values["t"], True, values["discount"]
    )
    assert list(np.asarray(result.status)) == [IVStatus.NAN_INPUT, IVStatus.OK]

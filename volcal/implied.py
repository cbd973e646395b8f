"""Implied Black volatility: vectorised, jit-able, never raising, with a status per element.

The inversion follows P. Jaeckel, "Let's Be Rational" (Wilmott, 2015): prices are normalised,
mapped to an out-of-the-money call by put-call parity, a rational-cubic initial guess is taken
from one of four branches of the normalised Black function, and two third-order Householder
steps on a branch-dependent objective reach machine precision. All branches are evaluated for
all elements and one is selected per element, so the work per option is fixed and the whole
computation is one fused XLA program.
"""

from __future__ import annotations

import enum
from functools import partial
from math import pi, sqrt
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from volcal._special import _SMALL, _erf_small, erfcx, norm_cdf
from volcal.black import ONE_OVER_SQRT_TWO_PI, black_price, black_vega, otm_call_and_vega

_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)  # smallest normal float64
_SQRT_DBL_MAX = sqrt(float(np.finfo(np.float64).max))
_SQRT_THREE = sqrt(3.0)
_TWO_PI_OVER_SQRT_27 = 2.0 * pi / sqrt(27.0)
# Rational cubic control parameter bounds (Delbourgo & Gregory 1985): r > -1 keeps the
# denominator positive; r -> infinity tends to linear interpolation.
_MIN_CONTROL = -(1.0 - sqrt(_EPS))
_MAX_CONTROL = 2.0 / (_EPS * _EPS)
#: Householder(3) steps after the rational guess; Jaeckel (2015), section 5: two suffice.
HOUSEHOLDER_STEPS = 2
# A time value below this many ulps of the price is rounding noise: the price then carries no
# information about the volatility.
_TIME_VALUE_ULPS = 4.0
# Normalised time values below this are within a few hundred ulps of float64's underflow, where
# the lowest branch's logarithms lose their precision (Jaeckel returns 0 below DBL_MIN).
_MIN_NORMALISED_TIME_VALUE = 1e-300
#: Largest |ln(F/K)| the inversion is verified for (tests/test_implied.py); beyond it the
#: status is LOG_MONEYNESS_OUT_OF_RANGE. e^200 ~ 7e86: no market quotes such strikes.
LOG_MONEYNESS_LIMIT = 200.0


class IVStatus(enum.IntEnum):
    """Outcome of one implied-volatility inversion; ``.meaning`` says it in words."""

    OK = 0
    BELOW_INTRINSIC = 1
    ABOVE_UPPER_BOUND = 2
    NON_POSITIVE_TIME = 3
    NON_POSITIVE_FORWARD = 4
    NON_POSITIVE_STRIKE = 5
    NAN_INPUT = 6
    NO_VOL_INFORMATION = 7
    NON_POSITIVE_DISCOUNT = 8
    LOG_MONEYNESS_OUT_OF_RANGE = 9

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    IVStatus.OK: "implied volatility found",
    IVStatus.BELOW_INTRINSIC: "price below the intrinsic value: no volatility reproduces it",
    IVStatus.ABOVE_UPPER_BOUND: (
        "price at or above the upper bound (the forward for a call, the strike for a put)"
    ),
    IVStatus.NON_POSITIVE_TIME: "time to expiry is zero or negative",
    IVStatus.NON_POSITIVE_FORWARD: "forward is zero or negative",
    IVStatus.NON_POSITIVE_STRIKE: "strike is zero or negative",
    IVStatus.NAN_INPUT: "an input is NaN or infinite",
    IVStatus.NO_VOL_INFORMATION: (
        "time value is zero, subnormal or lost in the price's rounding: "
        "the price carries no volatility information"
    ),
    IVStatus.NON_POSITIVE_DISCOUNT: "discount factor is zero or negative",
    IVStatus.LOG_MONEYNESS_OUT_OF_RANGE: (
        f"|ln(forward/strike)| above {LOG_MONEYNESS_LIMIT:g}: outside the verified domain"
    ),
}


class ImpliedVol(NamedTuple):
    """Result of :func:`implied_vol` (a pytree; both arrays have the broadcast input shape).

    Attributes
    ----------
    vol : Array
        Black volatility (decimal); NaN wherever ``status != IVStatus.OK``.
    status : Array of int8
        :class:`IVStatus` codes.
    """

    vol: jax.Array
    status: jax.Array

    @property
    def ok(self) -> jax.Array:
        """Boolean mask of successful inversions."""
        return self.status == IVStatus.OK

    def summary(self) -> dict[IVStatus, int]:
        """Count of elements per status (only statuses that occur)."""
        codes, counts = np.unique(np.asarray(self.status), return_counts=True)
        return {IVStatus(int(c)): int(n) for c, n in zip(codes, counts, strict=True)}


# ---------------------------------------------------------------------------------------------
# Rational cubic interpolation (Delbourgo & Gregory 1985; Jaeckel 2015, section 4)


def _rational_cubic(x, x_l, x_r, y_l, y_r, d_l, d_r, r):
    """Delbourgo-Gregory rational cubic through (x_l, y_l), (x_r, y_r) with slopes d_l, d_r."""
    h = x_r - x_l
    h_safe = jnp.where(h != 0.0, h, 1.0)
    t = (x - x_l) / h_safe
    u = 1.0 - t
    cubic = (
        y_r * t * t * t
        + (r * y_r - h * d_r) * t * t * u
        + (r * y_l + h * d_l) * t * u * u
        + y_l * u * u * u
    ) / (1.0 + (r - 3.0) * t * u)
    linear = y_r * t + y_l * u
    value = jnp.where(r >= _MAX_CONTROL, linear, cubic)
    return jnp.where(h != 0.0, value, 0.5 * (y_l + y_r))


def _control_to_fit(numerator, denominator):
    """r = numerator / denominator with Jaeckel's guards for vanishing terms."""
    tiny_num = jnp.abs(numerator) < _TINY
    tiny_den = jnp.abs(denominator) < _TINY
    ratio = numerator / jnp.where(tiny_den, 1.0, denominator)
    extreme = jnp.where(numerator > 0.0, _MAX_CONTROL, _MIN_CONTROL)
    return jnp.where(tiny_num, 0.0, jnp.where(tiny_den, extreme, ratio))


def _minimum_control(d_l, d_r, secant, prefer_shape):
    """Smallest r keeping the interpolant monotone and convex/concave where the data are."""
    monotonic = (d_l * secant >= 0.0) & (d_r * secant >= 0.0)
    convex = (d_l <= secant) & (secant <= d_r)
    concave = (d_l >= secant) & (secant >= d_r)
    secant_zero = jnp.abs(secant) < _TINY
    r1 = jnp.where(
        monotonic & ~secant_zero,
        (d_r + d_l) / jnp.where(secant_zero, 1.0, secant),
        jnp.where(monotonic & prefer_shape, _MAX_CONTROL, -np.inf),
    )
    s_minus_dl = secant - d_l
    dr_minus_s = d_r - secant
    degenerate = (jnp.abs(s_minus_dl) < _TINY) | (jnp.abs(dr_minus_s) < _TINY)
    spread = d_r - d_l
    r2_shape = jnp.maximum(
        jnp.abs(spread / jnp.where(degenerate, 1.0, dr_minus_s)),
        jnp.abs(spread / jnp.where(degenerate, 1.0, s_minus_dl)),
    )
    r2 = jnp.where(
        convex | concave,
        jnp.where(degenerate, jnp.where(prefer_shape, _MAX_CONTROL, -np.inf), r2_shape),
        jnp.where(monotonic & prefer_shape, _MAX_CONTROL, -np.inf),
    )
    result = jnp.maximum(_MIN_CONTROL, jnp.maximum(r1, r2))
    return jnp.where(monotonic | convex | concave, result, _MIN_CONTROL)


def _convex_control(x_l, x_r, y_l, y_r, d_l, d_r, second, fit_right, prefer_shape):
    """Control parameter matching ``second`` derivative at the right (or left) end, but never
    below the shape-preserving minimum."""
    h = x_r - x_l
    h_safe = jnp.where(h != 0.0, h, 1.0)
    secant = (y_r - y_l) / h_safe
    numerator = 0.5 * h * second + (d_r - d_l)
    denominator = jnp.where(fit_right, d_r - secant, secant - d_l)
    r = _control_to_fit(numerator, denominator)
    return jnp.maximum(r, _minimum_control(d_l, d_r, secant, prefer_shape))


# ---------------------------------------------------------------------------------------------
# Transformation maps of the outer branches (Jaeckel 2015, section 4)


def _lower_map(x, s, cdf):
    """``f(s) = 2pi/sqrt(27) |x| Phi(-|x|/(sqrt(3) s))^3`` and its first two beta-derivatives;
    ``cdf`` is ``Phi(-|x|/(sqrt(3) s))``."""
    ax = jnp.abs(x)
    z = ax / (_SQRT_THREE * s)
    y = z * z
    s2 = s * s
    density = ONE_OVER_SQRT_TWO_PI * jnp.exp(-0.5 * y)
    fpp = (
        (pi / 6.0)
        * y
        / (s2 * s)
        * cdf
        * (8.0 * _SQRT_THREE * s * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x) * cdf / density)
        * jnp.exp(2.0 * y + 0.25 * s2)
    )
    fp = 2.0 * pi * y * cdf * cdf * jnp.exp(y + 0.125 * s2)
    f = _TWO_PI_OVER_SQRT_27 * ax * cdf * cdf * cdf
    return f, fp, fpp


def _upper_map(x, s, cdf):
    """``f(s) = Phi(-s/2)`` (given as ``cdf``) and its first two beta-derivatives."""
    f = cdf
    w = (x / s) ** 2
    fp = -0.5 * jnp.exp(0.5 * w)
    fpp = sqrt(pi / 2.0) * jnp.exp(w + 0.125 * s * s) * w / s
    return f, fp, fpp


def _b_at_inflection(x):
    """``b(x, s_c)`` at ``s_c = sqrt(2|x|)``, where ``h + t = 0``.

    There ``b = e^{x/2} (1 - erfcx(sqrt|x|)) / 2``;

    ``1 - erfcx(y) = e^{y^2} erf(y) - expm1(y^2)`` for small y avoids the cancellation.
    """
    y = jnp.sqrt(-x)
    one_minus = jnp.where(
        y <= _SMALL, jnp.exp(y * y) * _erf_small(y) - jnp.expm1(y * y), 1.0 - erfcx(y)
    )
    return 0.5 * jnp.exp(0.5 * x) * one_minus


def _householder_factor(newton, halley, hh3):
    return (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


def normalised_implied_vol(beta, x):
    """Total volatility ``s`` with ``b(x, s) = beta`` for an out-of-the-money call.

    Parameters
    ----------
    beta : array_like
        Normalised price ``price / (D sqrt(F K))`` of the out-of-the-money option, in
        ``(0, e^{x/2})``; outside that range the result is meaningless (callers check).
    x : array_like
        ``-|ln(F/K)| <= 0``.

    Returns
    -------
    Array
        ``s = sigma sqrt(t)``.

    Notes
    -----
    Four branches of beta, split at ``b_c = b(x, s_c)``, ``s_c = sqrt(2|x|)`` (the inflection
    point of ``b`` in ``s``) and at the values ``b_l``, ``b_u`` at the points where the tangent at
    ``s_c`` meets 0 and ``b_max = e^{x/2}``. The two inner branches interpolate ``s(beta)``
    directly; the outer ones interpolate the maps ``f_lower``, ``f_upper`` (exact asymptotics of
    ``b`` for small and large ``s``) and invert them. Objectives for the Householder steps are
    ``1/ln b - 1/ln beta`` (lowest branch), ``ln((b_max - beta)/(b_max - b))`` (upper branch
    above ``b_max/2``) and ``b - beta`` otherwise.

    References
    ----------
    P. Jaeckel, "Let's Be Rational", Wilmott (2015), pp. 40-53, sections 4-5.
    """
    beta = jnp.asarray(beta, jnp.float64)
    x = jnp.asarray(x, jnp.float64)
    b_max = jnp.exp(0.5 * x)
    s_c = jnp.sqrt(-2.0 * x)
    b_c = _b_at_inflection(x)
    v_c = ONE_OVER_SQRT_TWO_PI * b_max  # vega at s_c: exp(-(h^2 + t^2)/2) with h^2 = t^2 = |x|/2
    lower_half = beta < b_c
    s_l = s_c - b_c / v_c
    s_u = jnp.where(v_c > _TINY, s_c + (b_max - b_c) / v_c, s_c)
    # The outer point: s_l below b_c, s_u above. s_l > 0 in exact arithmetic whenever it is used.
    s_o = jnp.where(lower_half, s_l, s_u)
    s_o = jnp.where(s_o > 0.0, s_o, s_c)
    s_o_safe = jnp.where(s_o > 0.0, s_o, 1.0)
    b_o, v_o = otm_call_and_vega(x, s_o_safe)
    lowest = lower_half & (beta < b_o)
    upper = ~lower_half & (beta > b_o)
    outer = lowest | upper

    # Outer-branch maps at the outer point (each evaluated where meaningful, safe elsewhere).
    x_map = jnp.where(x < 0.0, x, -1.0)
    s_map = jnp.where(lowest, s_o_safe, 1.0)
    cdf = norm_cdf(jnp.where(lowest, jnp.abs(x_map) / (-_SQRT_THREE * s_map), -0.5 * s_o_safe))
    f_l, fp_l, fpp_l = _lower_map(x_map, s_map, cdf)
    f_u, fp_u, fpp_u = _upper_map(x, s_o_safe, cdf)
    upper_curvature_ok = jnp.abs(fpp_u) < _SQRT_DBL_MAX

    # One rational cubic per element, with the end data of its branch.
    x_l = jnp.where(lowest, 0.0, jnp.where(lower_half, b_o, jnp.where(upper, b_o, b_c)))
    x_r = jnp.where(lowest, b_o, jnp.where(lower_half, b_c, jnp.where(upper, b_max, b_o)))
    y_l = jnp.where(lowest, 0.0, jnp.where(lower_half, s_o, jnp.where(upper, f_u, s_c)))
    y_r = jnp.where(lowest, f_l, jnp.where(lower_half, s_c, jnp.where(upper, 0.0, s_o)))
    d_l = jnp.where(
        lowest, 1.0, jnp.where(lower_half, 1.0 / v_o, jnp.where(upper, fp_u, 1.0 / v_c))
    )
    d_r = jnp.where(
        lowest, fp_l, jnp.where(lower_half, 1.0 / v_c, jnp.where(upper, -0.5, 1.0 / v_o))
    )
    second = jnp.where(lowest, fpp_l, jnp.where(upper, fpp_u, 0.0))
    r = _convex_control(x_l, x_r, y_l, y_r, d_l, d_r, second, lower_half, outer)
    interpolated = _rational_cubic(beta, x_l, x_r, y_l, y_r, d_l, d_r, r)

    # Outer branches: fall back to a quadratic where the rational cubic fails (extreme |x|).
    t_low = beta / jnp.where(b_o > 0.0, b_o, 1.0)
    f_low = jnp.where(interpolated > 0.0, interpolated, (f_l * t_low + b_o * (1.0 - t_low)) * t_low)
    width = b_max - b_o
    t_up = (beta - b_o) / jnp.where(width > 0.0, width, 1.0)
    f_up = jnp.where(
        upper_curvature_ok & (interpolated > 0.0),
        interpolated,
        (f_u * (1.0 - t_up) + 0.5 * width * t_up) * (1.0 - t_up),
    )
    ax = jnp.abs(x_map)
    probability = jnp.where(
        lowest, jnp.cbrt(f_low / (_TWO_PI_OVER_SQRT_27 * ax)), jnp.where(upper, f_up, 0.25)
    )
    z = ndtri(probability)
    s = jnp.where(lowest, jnp.abs(ax / (_SQRT_THREE * z)), jnp.where(upper, -2.0 * z, interpolated))

    use_log_lower = lowest
    use_log_upper = upper & (beta > 0.5 * b_max)
    ln_beta = jnp.log(jnp.where(use_log_lower, beta, 0.5))
    for _ in range(HOUSEHOLDER_STEPS):
        s = jnp.where(s > 0.0, s, _TINY)
        b, bp = otm_call_and_vega(x, s)
        b_halley = (x / s) ** 2 / s - 0.25 * s
        b_hh3 = b_halley * b_halley - 3.0 * (x / (s * s)) ** 2 - 0.25
        # g = b - beta
        newton = (beta - b) / bp
        halley = b_halley
        hh3 = b_hh3
        # g = 1/ln(b) - 1/ln(beta)
        lower_valid = use_log_lower & (b > 0.0) & (bp > 0.0) & (b < 1.0)
        ln_b = jnp.log(jnp.where(lower_valid, b, 0.5))
        bpob = bp / jnp.where(lower_valid, b, 1.0)
        newton_lo = (ln_beta - ln_b) * ln_b / ln_beta / bpob
        factor = 1.0 + 2.0 / ln_b
        halley_lo = b_halley - bpob * factor
        hh3_lo = (
            b_hh3
            + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b))
            - 3.0 * b_halley * bpob * factor
        )
        # g = ln((b_max - beta) / (b_max - b)), with b_max - b = e^{x/2} Phi(-h-t) +
        # e^{-x/2} Phi(h-t) summed from two positive terms: the plain difference would keep
        # only the absolute precision eps * b_max where b is within a hair of b_max.
        h = x / s
        gap = jnp.where(
            use_log_upper,
            b_max * norm_cdf(-h - 0.5 * s) + norm_cdf(h - 0.5 * s) / b_max,
            b_max - b,
        )
        upper_valid = use_log_upper & (gap > 0.0) & (bp > _TINY)
        gap_safe = jnp.where(upper_valid, gap, 1.0)
        g = jnp.log(jnp.where(upper_valid, (b_max - beta) / gap_safe, 1.0))
        gp = bp / gap_safe
        newton_up = -g / gp
        halley_up = b_halley + gp
        hh3_up = b_hh3 + gp * (2.0 * gp + 3.0 * b_halley)

        newton = jnp.where(lower_valid, newton_lo, jnp.where(upper_valid, newton_up, newton))
        halley = jnp.where(lower_valid, halley_lo, jnp.where(upper_valid, halley_up, halley))
        hh3 = jnp.where(lower_valid, hh3_lo, jnp.where(upper_valid, hh3_up, hh3))
        step = newton * _householder_factor(newton, halley, hh3)
        step = jnp.where(jnp.isfinite(step), jnp.maximum(step, -0.5 * s), 0.0)
        s = s + step
    return s


# ---------------------------------------------------------------------------------------------
# Public entry point


def _status_and_normalised(price, forward, strike, t, theta, discount):
    """Per-element status and the out-of-the-money normalised problem ``(beta, x)``."""
    inputs = (price, forward, strike, t, discount)
    nan_input = ~jnp.isfinite(price)
    for value in inputs[1:]:
        nan_input = nan_input | ~jnp.isfinite(value)
    undiscounted = price / discount
    intrinsic = jnp.maximum(theta * (forward - strike), 0.0)
    upper_bound = jnp.where(theta > 0.0, forward, strike)
    time_value = undiscounted - intrinsic
    sqrt_fk = jnp.sqrt(forward) * jnp.sqrt(strike)
    beta = time_value / sqrt_fk
    x = -jnp.abs(jnp.log(forward / strike))
    no_information = (time_value <= _TIME_VALUE_ULPS * _EPS * undiscounted) | (
        beta < _MIN_NORMALISED_TIME_VALUE
    )
    status = jnp.select(
        [
            nan_input,
            t <= 0.0,
            forward <= 0.0,
            strike <= 0.0,
            discount <= 0.0,
            x < -LOG_MONEYNESS_LIMIT,
            undiscounted < intrinsic,
            (undiscounted >= upper_bound) | (beta >= jnp.exp(0.5 * x)),
            no_information,
        ],
        [
            IVStatus.NAN_INPUT,
            IVStatus.NON_POSITIVE_TIME,
            IVStatus.NON_POSITIVE_FORWARD,
            IVStatus.NON_POSITIVE_STRIKE,
            IVStatus.NON_POSITIVE_DISCOUNT,
            IVStatus.LOG_MONEYNESS_OUT_OF_RANGE,
            IVStatus.BELOW_INTRINSIC,
            IVStatus.ABOVE_UPPER_BOUND,
            IVStatus.NO_VOL_INFORMATION,
        ],
        IVStatus.OK,
    ).astype(jnp.int8)
    return status, beta, x


@jax.custom_jvp
def _implied_vol_core(price, forward, strike, t, theta, discount):
    status, beta, x = _status_and_normalised(price, forward, strike, t, theta, discount)
    ok = status == IVStatus.OK
    # Feed failed elements a harmless problem so nothing overflows or traps.
    beta_safe = jnp.where(ok, beta, 0.5 * jnp.exp(-0.5))
    x_safe = jnp.where(ok, x, -1.0)
    t_safe = jnp.where(ok, t, 1.0)
    s = normalised_implied_vol(beta_safe, x_safe)
    vol = jnp.where(ok, s / jnp.sqrt(t_safe), jnp.nan)
    return vol, status


@_implied_vol_core.defjvp
def _implied_vol_core_jvp(primals, tangents):
    """Implicit function theorem: ``dsigma = (dP - dV|_sigma) / vega`` on the solved vol."""
    _, forward, strike, t, theta, discount = primals
    d_price, d_forward, d_strike, d_t, _, d_discount = tangents
    vol, status = _implied_vol_core(*primals)
    ok = status == IVStatus.OK
    vol_safe = jnp.where(ok, vol, 0.2)
    forward_s = jnp.where(ok, forward, 1.0)
    strike_s = jnp.where(ok, strike, 1.0)
    t_s = jnp.where(ok, t, 1.0)
    discount_s = jnp.where(ok, discount, 1.0)
    is_call = theta > 0.0

    def price_at_vol(f, k, tt, d):
        return black_price(f, k, tt, vol_safe, is_call, d)

    _, d_model = jax.jvp(
        price_at_vol,
        (forward_s, strike_s, t_s, discount_s),
        (d_forward, d_strike, d_t, d_discount),
    )
    vega = black_vega(forward_s, strike_s, t_s, vol_safe, is_call, discount_s)
    d_vol = jnp.where(
        ok & (vega > 0.0), (d_price - d_model) / jnp.where(vega > 0.0, vega, 1.0), 0.0
    )
    return (vol, status), (d_vol, np.zeros(status.shape, dtype=jax.dtypes.float0))


def _bucket_size(n: int) -> int:
    """Pad lengths to 16 sizes per power of two (at least 256) so that chains of similar size
    share one compiled program (at most 6% padding)."""
    if n <= 256:
        return 256
    step = 1 << (int(n - 1).bit_length() - 5)
    return -(-n // step) * step


# Padding values form a valid, cheap problem whose result is discarded.
_PADDING = (0.1, 1.0, 1.0, 1.0, 1.0, 1.0)


def implied_vol(price, forward, strike, t, is_call, discount=1.0) -> ImpliedVol:
    """Black-76 implied volatility of option prices, with a status for every element.

    Parameters
    ----------
    price : array_like
        Option premium in the quote currency (discounted with ``discount``).
    forward, strike : array_like
        F and K, quote currency.
    t : array_like
        Time to expiry in years.
    is_call : array_like of bool
        True for calls, False for puts.
    discount : array_like, default 1.0
        Discount factor D applied to the premium.

    Returns
    -------
    ImpliedVol
        ``vol`` (decimal, NaN where not OK) and ``status`` (:class:`IVStatus` codes), both of
        the broadcast shape of the inputs. Never raises on bad data.

    Notes
    -----
    In-the-money prices are reduced to the out-of-the-money option of the other type by
    put-call parity before inversion (so the time value, not the whole premium, is inverted).
    Accuracy: ``|sigma - sigma*| <= max(1e-13 sigma*, u)`` with ``u`` the vol change that a
    4-ulp change of the price and log-moneyness causes (tests/test_implied_accuracy.py).
    Differentiable: derivatives follow the implicit function theorem, e.g.
    ``dsigma/dprice = 1/vega``; elements without a vol have zero derivatives.

    Under ``jax.jit`` the inputs are used as they are; called eagerly, arrays are flattened and
    padded to a bucket size so that calls with similar sizes reuse one compiled program (and
    the persistent compilation cache); scalar arguments are broadcast inside the program.
    """
    theta = jnp.where(jnp.asarray(is_call), 1.0, -1.0)
    values = [price, forward, strike, t, theta, discount]
    if any(isinstance(a, jax.core.Tracer) for a in values):
        args = jnp.broadcast_arrays(*(jnp.asarray(a, jnp.float64) for a in values))
        return ImpliedVol(*_implied_vol_core(*args))
    arrays = [np.asarray(a, dtype=np.float64) for a in values]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    n = int(np.prod(shape))
    size = _bucket_size(n)
    flat = []
    for a, fill in zip(arrays, _PADDING, strict=True):
        if a.ndim == 0:
            flat.append(a)  # broadcast inside the compiled program
            continue
        a = np.broadcast_to(a, shape).reshape(-1)
        flat.append(np.concatenate([a, np.full(size - n, fill)]) if size > n else a)
    vol, status = _core_batched(*flat, size=size)
    return ImpliedVol(vol[:n].reshape(shape), status[:n].reshape(shape))


@partial(jax.jit, static_argnames="size")
def _core_batched(price, forward, strike, t, theta, discount, *, size):
    args = (jnp.broadcast_to(a, (size,)) for a in (price, forward, strike, t, theta, discount))
    return _implied_vol_core(*args)

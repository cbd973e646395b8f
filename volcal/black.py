"""Black-76 prices and greeks on the forward, with an optional discount factor.

Conventions (see DESIGN.md, "Units and conventions"):

* ``forward`` F and ``strike`` K in the quote currency, both > 0;
* ``t`` the time to expiry in years (ACT/365 from UTC timestamps), ``vol`` sigma as a decimal;
* ``discount`` D the discount factor to the payment date (1.0 for undiscounted, forward-premium
  quotes such as Deribit's); prices are ``D * E[payoff]`` under the forward measure;
* ``is_call`` a boolean array: True for calls, False for puts.

All functions broadcast their arguments, are jit-able and differentiable. At zero total
volatility (``vol * sqrt(t) == 0``) they return the discounted intrinsic value and the greeks of
the intrinsic value (zero gamma, vega, vanna, volga, theta) with finite gradients.

The price is evaluated through the normalised Black function
``b(x, s) = e^{x/2} Phi(x/s + s/2) - e^{-x/2} Phi(x/s - s/2)`` with ``x = ln(F/K)`` and
``s = sigma sqrt(t)``, split into intrinsic value plus an out-of-the-money call, which is computed
to near machine precision (relative) everywhere, including prices far below 1e-100 of the
forward. The four evaluation regimes are those of Jaeckel (2015), section 3.
"""

from __future__ import annotations

from math import comb, factorial, pi, sqrt
from typing import NamedTuple

import jax
import jax.numpy as jnp

from volcal._special import erfcx, norm_cdf

ONE_OVER_SQRT_TWO_PI = 1.0 / sqrt(2.0 * pi)
ONE_OVER_SQRT_TWO = 1.0 / sqrt(2.0)
SQRT_PI_OVER_TWO = sqrt(pi / 2.0)
#: One volatility point (1% vol) as a decimal: ``vega * VOL_POINT`` is the value change per point.
VOL_POINT = 0.01

# Regime boundaries for the out-of-the-money normalised call (Jaeckel 2015, section 3), with
# h = x/s and t = s/2:
#   asymptotic expansion     h < -10 and h + t < -10 + tau  (Phi(h +- t) far in the lower tail)
#   small-t expansion        t < tau                       (the erfcx difference would cancel)
#   cumulative normal form   h + t > 0.85                  (no cancellation in the difference)
#   erfcx form               otherwise
_ASYMPTOTIC_H = -10.0
# tau = 2 * eps^(1/16) ~ 0.21: the 12th-order small-t expansion is accurate to eps below it.
_SMALL_T = 2.0 * float(jnp.finfo(jnp.float64).eps) ** (1.0 / 16.0)
_CDF_H_PLUS_T = 0.85
_ASYMPTOTIC_ORDER = 17  # terms in q = (h/r)^2; relative accuracy 1.6e-16 for h <= -10
_SMALL_T_ORDER = 6  # terms in w = t^2, i.e. up to t^13


def _asymptotic_coefficients(order: int) -> list[list[int]]:
    """Coefficients of the asymptotic series of ``A(h, t) = (r/t)[Y(h+t) - Y(h-t)]``.

    ``Y(z) = Phi(z)/phi(z) ~ -1/z * sum_k (-1)^k (2k-1)!! / z^(2k)`` (Abramowitz & Stegun
    26.2.12). Expanding in ``q = (h/r)^2`` with ``r = (h+t)(h-t)`` and ``e = (t/h)^2`` gives
    ``A = 2 + q(c_1 + 3q(c_2 + 5q(c_3 + ...)))`` with
    ``c_k(e) = (-1)^k 2 sum_j C(2k+1, 2j+1) e^j``; entry k-1 lists ``c_k``'s coefficients.
    """
    return [
        [(-1) ** k * 2 * comb(2 * k + 1, 2 * j + 1) for j in range(k + 1)]
        for k in range(1, order + 1)
    ]


def _small_t_coefficients(order: int) -> list[tuple[list[int], list[int]]]:
    """Odd derivatives of ``Y(h) = Phi(h)/phi(h)`` as ``P(h^2) * a + Q(h^2)``, ``a = 1 + h Y(h)``.

    ``Y' = 1 + h Y`` gives every derivative as ``A_n(h) + B_n(h) Y``; for odd n, ``B_n`` is odd,
    so ``B_n Y = (B_n / h)(a - 1)``. Entry m holds the coefficient lists (ascending powers of
    h^2) of ``P`` and ``Q`` for the derivative of order ``2m + 1``, so that
    ``Y(h+t) - Y(h-t) = 2 sum_m t^(2m+1) Y^(2m+1)(h) / (2m+1)!``.
    """

    # Polynomials in h as coefficient lists, ascending powers.
    def add(p, q):
        n = max(len(p), len(q))
        return [(p[i] if i < len(p) else 0) + (q[i] if i < len(q) else 0) for i in range(n)]

    def derivative(p):
        return [i * p[i] for i in range(1, len(p))] or [0]

    def times_h(p):
        return [0, *p]

    a_poly, b_poly = [0], [1]  # Y itself: A_0 = 0, B_0 = 1
    out = []
    for n in range(1, 2 * order + 2):
        a_poly, b_poly = add(derivative(a_poly), b_poly), add(derivative(b_poly), times_h(b_poly))
        if n % 2 == 1:
            b_over_h = b_poly[1:]  # B_n is odd in h
            p_even = b_over_h[0::2]  # coefficients of a, in powers of h^2
            q_even = add(a_poly, [-c for c in b_over_h])[0::2]
            out.append((p_even, q_even))
    return out


_ASYMPTOTIC = _asymptotic_coefficients(_ASYMPTOTIC_ORDER)
_SMALL_T_SERIES = [
    ([c / factorial(2 * m + 1) for c in p], [c / factorial(2 * m + 1) for c in q])
    for m, (p, q) in enumerate(_small_t_coefficients(_SMALL_T_ORDER))
]


def _polyval(coefficients, x):
    """Horner evaluation of ascending ``coefficients`` at ``x``."""
    result = jnp.zeros_like(x) + coefficients[-1]
    for c in reversed(coefficients[:-1]):
        result = result * x + c
    return result


def _asymptotic_bracket(h, t):
    """``(t/r) A(h, t)``: the asymptotic expansion of ``sqrt(2 pi) e^{(h^2+t^2)/2} b``."""
    e = (t / h) ** 2
    r = (h + t) * (h - t)
    q = (h / r) ** 2
    series = _polyval(_ASYMPTOTIC[-1], e)
    for k in range(_ASYMPTOTIC_ORDER - 1, 0, -1):
        series = _polyval(_ASYMPTOTIC[k - 1], e) + (2 * k + 1) * q * series
    return (t / r) * (2.0 + q * series)


def _small_t_bracket(h, t):
    """Small-t expansion of ``Y(h+t) - Y(h-t)`` to order t^13 (Jaeckel 2015, eq. 3.x)."""
    a = 1.0 + h * SQRT_PI_OVER_TWO * erfcx(-ONE_OVER_SQRT_TWO * h)
    h2 = h * h
    w = t * t
    series = jnp.zeros_like(h)
    for p, q in reversed(_SMALL_T_SERIES):
        series = series * w + (_polyval(p, h2) * a + _polyval(q, h2))
    return 2.0 * t * series


def otm_call_and_vega(x, s):
    """``(b(x, s), db/ds)`` for ``x <= 0``, sharing the exponential; see
    :func:`otm_normalised_call`. Not differentiable by itself (use the public function)."""
    x, s = jnp.broadcast_arrays(jnp.asarray(x, jnp.float64), jnp.asarray(s, jnp.float64))
    positive = s > 0.0
    s_safe = jnp.where(positive, s, 1.0)
    x_safe = jnp.where(positive, x, -1.0)
    h = x_safe / s_safe
    t = 0.5 * s_safe
    asymptotic = (h < _ASYMPTOTIC_H) & (h + t < _ASYMPTOTIC_H + _SMALL_T)
    small_t = ~asymptotic & (t < _SMALL_T)
    use_cdf = ~asymptotic & ~small_t & (h + t > _CDF_H_PLUS_T)

    # Each regime gets arguments inside its own domain, so unused lanes stay finite.
    h_asym = jnp.where(asymptotic, h, 2.0 * _ASYMPTOTIC_H)
    t_asym = jnp.where(asymptotic, t, 0.0)
    bracket_asym = ONE_OVER_SQRT_TWO_PI * _asymptotic_bracket(h_asym, t_asym)
    bracket_small = ONE_OVER_SQRT_TWO_PI * _small_t_bracket(h, jnp.where(small_t, t, 0.0))
    bracket_erfcx = 0.5 * (
        erfcx(-ONE_OVER_SQRT_TWO * (h + t)) - erfcx(-ONE_OVER_SQRT_TWO * (h - t))
    )
    scale = jnp.exp(-0.5 * (h * h + t * t))
    via_series = scale * jnp.where(
        asymptotic, bracket_asym, jnp.where(small_t, bracket_small, bracket_erfcx)
    )
    via_cdf = norm_cdf(h + t) * jnp.exp(0.5 * x_safe) - norm_cdf(h - t) * jnp.exp(-0.5 * x_safe)
    b = jnp.where(use_cdf, via_cdf, via_series)
    b = jnp.where(positive, jnp.maximum(b, 0.0), 0.0)
    vega = jnp.where(
        positive, ONE_OVER_SQRT_TWO_PI * scale, jnp.where(x < 0.0, 0.0, ONE_OVER_SQRT_TWO_PI)
    )
    return b, vega


@jax.custom_jvp
def otm_normalised_call(x, s):
    """Normalised Black call ``b(x, s)`` for out-of-the-money or at-the-money ``x <= 0``.

    Parameters
    ----------
    x : array_like
        Log-moneyness ``ln(F/K) <= 0``.
    s : array_like
        Total volatility ``sigma sqrt(t) >= 0``; ``b = 0`` at ``s = 0``.

    Returns
    -------
    Array
        ``b = e^{x/2} Phi(x/s + s/2) - e^{-x/2} Phi(x/s - s/2)``, relative error of a few ulp.

    Notes
    -----
    With ``h = x/s``, ``t = s/2`` and ``Y = Phi/phi``,
    ``b = e^{-(h^2+t^2)/2} / sqrt(2 pi) * [Y(h+t) - Y(h-t)]``; the bracket is evaluated by an
    asymptotic series, a small-t series, erfcx (Cody) or plain cumulative normals depending on
    the regime, so that no branch subtracts nearly equal numbers. Derivatives are analytic:
    ``db/ds = e^{-(h^2+t^2)/2} / sqrt(2 pi)`` and ``db/dx = b/2 + e^{-x/2} Phi(h - t)``.

    References
    ----------
    P. Jaeckel, "Let's Be Rational", Wilmott (2015), pp. 40-53, section 3.
    """
    return otm_call_and_vega(x, s)[0]


@otm_normalised_call.defjvp
def _otm_normalised_call_jvp(primals, tangents):
    x, s = primals
    dx, ds = tangents
    b, vega = otm_call_and_vega(x, s)
    positive = s > 0.0
    h_minus_t = x / jnp.where(positive, s, 1.0) - 0.5 * s
    # At s = 0 the OTM call is worth 0 for x < 0 and has slope 1/2 in x at x = 0.
    at_zero = jnp.where(x < 0.0, 0.0, 0.5)
    slope_x = jnp.where(positive, 0.5 * b + jnp.exp(-0.5 * x) * norm_cdf(h_minus_t), at_zero)
    return b, slope_x * dx + vega * ds


def normalised_black(x, s, is_call):
    """Normalised Black price ``price / (D sqrt(F K))`` of a call or put.

    Parameters
    ----------
    x : array_like
        Log-moneyness ``ln(F/K)``, any real.
    s : array_like
        Total volatility ``sigma sqrt(t) >= 0``.
    is_call : array_like of bool
        True for calls, False for puts.

    Returns
    -------
    Array
        ``theta [e^{x/2} Phi(theta(x/s + s/2)) - e^{-x/2} Phi(theta(x/s - s/2))]``, theta = +-1.

    Notes
    -----
    Written as intrinsic value ``2 sinh(|x|/2)`` (when in the money) plus the out-of-the-money
    call at ``-|x|``, by put-call parity and the symmetry ``b_put(x) = b_call(-x)``.
    """
    x = jnp.asarray(x, jnp.float64)
    theta = jnp.where(is_call, 1.0, -1.0)
    intrinsic = jnp.where(theta * x > 0.0, 2.0 * jnp.sinh(0.5 * jnp.abs(x)), 0.0)
    return intrinsic + otm_normalised_call(-jnp.abs(x), s)


def _total_vol(t, vol):
    """``sigma sqrt(t)``, 0 for ``t <= 0``, with zero (not NaN) derivative in t there."""
    t = jnp.asarray(t, jnp.float64)
    positive = t > 0.0
    return jnp.where(
        positive, jnp.asarray(vol, jnp.float64) * jnp.sqrt(jnp.where(positive, t, 1.0)), 0.0
    )


@jax.custom_jvp
def _undiscounted_price(forward, strike, total_vol, theta):
    """``max(theta (F - K), 0) + sqrt(F K) b_otm(-|ln(F/K)|, s)``: the exact split of the price."""
    x = jnp.log(forward / strike)
    time_value = jnp.sqrt(forward) * jnp.sqrt(strike) * otm_normalised_call(-jnp.abs(x), total_vol)
    return jnp.maximum(theta * (forward - strike), 0.0) + time_value


@_undiscounted_price.defjvp
def _undiscounted_price_jvp(primals, tangents):
    """Analytic partials, so the split above has no kink at the money:
    dV/dF = theta Phi(theta d1), dV/dK = -theta Phi(theta d2), dV/ds = F phi(d1)."""
    forward, strike, total_vol, theta = primals
    d_forward, d_strike, d_total_vol, _ = tangents
    price = _undiscounted_price(forward, strike, total_vol, theta)
    positive = total_vol > 0.0
    s = jnp.where(positive, total_vol, 1.0)
    x = jnp.log(forward / strike)
    d1 = x / s + 0.5 * s
    d2 = d1 - s
    # At s = 0: the intrinsic value's slopes, split evenly at the money (the s -> 0 limit).
    itm = jnp.where(theta * x > 0.0, 1.0, jnp.where(x == 0.0, 0.5, 0.0))
    d_price_d_forward = jnp.where(positive, theta * norm_cdf(theta * d1), theta * itm)
    d_price_d_strike = jnp.where(positive, -theta * norm_cdf(theta * d2), -theta * itm)
    density = jnp.where(
        positive,
        forward * ONE_OVER_SQRT_TWO_PI * jnp.exp(-0.5 * d1 * d1),
        jnp.where(x == 0.0, forward * ONE_OVER_SQRT_TWO_PI, 0.0),
    )
    tangent = d_price_d_forward * d_forward + d_price_d_strike * d_strike + density * d_total_vol
    return price, tangent


def black_price(forward, strike, t, vol, is_call, discount=1.0):
    """Black-76 price ``D (theta F Phi(theta d1) - theta K Phi(theta d2))``.

    Parameters
    ----------
    forward, strike : array_like
        F > 0 and K > 0, quote currency.
    t : array_like
        Time to expiry in years; ``t <= 0`` gives the intrinsic value.
    vol : array_like
        Black volatility sigma >= 0 (decimal); ``vol = 0`` gives the intrinsic value.
    is_call : array_like of bool
        True for calls, False for puts.
    discount : array_like, default 1.0
        Discount factor D to the premium payment date.

    Returns
    -------
    Array
        The broadcast price in the quote currency.

    Notes
    -----
    ``d1,2 = ln(F/K)/(sigma sqrt t) +- sigma sqrt(t)/2``. Evaluated as
    ``D (max(theta (F - K), 0) + sqrt(F K) b_otm(-|ln(F/K)|, sigma sqrt t))`` so that far
    out-of-the-money prices keep their relative accuracy; derivatives are analytic (delta,
    dual delta, vega), and second derivatives follow by differentiating those.
    """
    forward = jnp.asarray(forward, jnp.float64)
    strike = jnp.asarray(strike, jnp.float64)
    theta = jnp.where(jnp.asarray(is_call), 1.0, -1.0)
    forward, strike, total_vol, theta = jnp.broadcast_arrays(
        forward, strike, _total_vol(t, vol), theta
    )
    return discount * _undiscounted_price(forward, strike, total_vol, theta)


class BlackGreeks(NamedTuple):
    """Black-76 price and sensitivities (all arrays of the broadcast shape).

    Attributes
    ----------
    price : value in the quote currency.
    delta : dV/dF, per unit of forward (``D Phi(d1)`` for a call, ``-D Phi(-d1)`` for a put).
    gamma : d2V/dF2.
    vega : dV/dsigma per unit of volatility (1.0 = 100 vol points); ``vega * VOL_POINT`` per
        vol point.
    theta : dV/d(valuation time) per year, holding the continuously compounded rate
        ``r = -ln(D)/t`` fixed: ``r V - D F phi(d1) sigma / (2 sqrt t)``; divide by 365 per day.
    vanna : d2V/dF dsigma.
    volga : d2V/dsigma2 (vomma).
    """

    price: jax.Array
    delta: jax.Array
    gamma: jax.Array
    vega: jax.Array
    theta: jax.Array
    vanna: jax.Array
    volga: jax.Array


def black_greeks(forward, strike, t, vol, is_call, discount=1.0) -> BlackGreeks:
    """Black-76 price and greeks in closed form; arguments as :func:`black_price`.

    At zero total volatility the greeks are those of the intrinsic value: delta ``D`` for a
    call in the money (``-D`` for a put, ``D/2`` in magnitude at the money), everything else 0.
    """
    forward, strike, t, vol, discount = (
        jnp.asarray(a, jnp.float64) for a in (forward, strike, t, vol, discount)
    )
    theta_sign = jnp.where(is_call, 1.0, -1.0)
    price = black_price(forward, strike, t, vol, is_call, discount)
    s = _total_vol(t, vol)
    positive = s > 0.0
    s_safe = jnp.where(positive, s, 1.0)
    t_safe = jnp.where(t > 0.0, t, 1.0)
    vol_safe = jnp.where(vol > 0.0, vol, 1.0)
    d1 = jnp.log(forward / strike) / s_safe + 0.5 * s_safe
    d2 = d1 - s_safe
    density = ONE_OVER_SQRT_TWO_PI * jnp.exp(-0.5 * d1 * d1)
    moneyness_sign = jnp.sign(theta_sign * (forward - strike))
    delta = jnp.where(
        positive,
        theta_sign * discount * norm_cdf(theta_sign * d1),
        theta_sign * discount * 0.5 * (1.0 + moneyness_sign),
    )
    vega = discount * forward * density * jnp.sqrt(t_safe)
    gamma = discount * density / (forward * s_safe)
    rate = -jnp.log(discount) / t_safe
    theta = rate * price - discount * forward * density * vol / (2.0 * jnp.sqrt(t_safe))
    vanna = -discount * density * d2 / vol_safe
    volga = vega * d1 * d2 / vol_safe
    zero = jnp.zeros_like(price)
    return BlackGreeks(
        price=price,
        delta=delta,
        gamma=jnp.where(positive, gamma, zero),
        vega=jnp.where(positive, vega, zero),
        theta=jnp.where(positive, theta, zero),
        vanna=jnp.where(positive, vanna, zero),
        volga=jnp.where(positive, volga, zero),
    )


def black_delta(forward, strike, t, vol, is_call, discount=1.0):
    """dV/dF; see :class:`BlackGreeks`."""
    return black_greeks(forward, strike, t, vol, is_call, discount).delta


def black_gamma(forward, strike, t, vol, is_call, discount=1.0):
    """d2V/dF2; see :class:`BlackGreeks`."""
    return black_greeks(forward, strike, t, vol, is_call, discount).gamma


def black_vega(forward, strike, t, vol, is_call, discount=1.0):
    """dV/dsigma per unit vol (multiply by ``VOL_POINT`` for per vol point)."""
    return black_greeks(forward, strike, t, vol, is_call, discount).vega


def black_theta(forward, strike, t, vol, is_call, discount=1.0):
    """dV/d(valuation time) per year; see :class:`BlackGreeks`."""
    return black_greeks(forward, strike, t, vol, is_call, discount).theta


def black_vanna(forward, strike, t, vol, is_call, discount=1.0):
    """d2V/dF dsigma; see :class:`BlackGreeks`."""
    return black_greeks(forward, strike, t, vol, is_call, discount).vanna


def black_volga(forward, strike, t, vol, is_call, discount=1.0):
    """d2V/dsigma2; see :class:`BlackGreeks`."""
    return black_greeks(forward, strike, t, vol, is_call, discount).volga

"""The Heston (1993) stochastic-volatility model: European option prices to near machine
precision, Black implied vols, and its calibration spec.

Model, under the forward measure of the expiry (F the forward, v the instantaneous variance):

.. math::

    dF_t = \\sqrt{v_t} F_t dW_t, \\quad dv_t = \\kappa(\\theta - v_t) dt + \\xi \\sqrt{v_t} dZ_t,
    \\quad dW_t dZ_t = \\rho dt, \\quad v_0 \\text{ given}.

``v0`` and ``theta`` are variances per year (a 20% vol is 0.04), ``kappa`` (mean-reversion
speed) is per year, ``xi`` (the vol of variance) per sqrt(year), ``-1 < rho < 1``. The Feller
condition ``2 kappa theta >= xi^2`` keeps v away from 0; it is not required (market fits
usually violate it) and nothing here assumes it.

Pricing (:func:`heston_price`) is Lewis's (2000) single Fourier integral with a Black-76 control
variate (Andersen & Piterbarg 2010), on a contour turned by a small angle where that makes the
integrand decay faster (Andersen & Lake 2018), evaluated by Gauss-Legendre quadrature after a
``sinh`` change of variable. The characteristic function is in the form of Albrecher, Mayer,
Schoutens & Tistaert (2007), rewritten so that every expression stays finite as ``xi -> 0``
(where the model is Black-76 with the expected average variance). The method and its
constants are justified in :func:`heston_price`.

The calibration spec (STYLE.md item 5) lives beside the model: :func:`to_unconstrained`,
:func:`from_unconstrained` (softplus and tanh bijection, constants below) and
:func:`initial_guess` (from the ATM term structure and the short-expiry skew).

References
----------
S. L. Heston, "A closed-form solution for options with stochastic volatility with applications
to bond and currency options", Review of Financial Studies 6(2) (1993), pp. 327-343.

A. L. Lewis, Option Valuation under Stochastic Volatility, Finance Press (2000), chapter 2.

H. Albrecher, P. Mayer, W. Schoutens, J. Tistaert, "The little Heston trap", Wilmott Magazine
(January 2007), pp. 83-92.

L. B. G. Andersen, V. V. Piterbarg, Interest Rate Modeling, Atlantic Financial Press (2010),
vol. I: Fourier integration for the Heston model with a Black-Scholes control variate whose
variance is the expected average variance; M. Joshi, C. Yang, "Fourier transforms, option
pricing and controls", SSRN 1941464 (2011), on the choice of that variance and contour.

L. B. G. Andersen, M. Lake, "Robust high-precision option pricing by Fourier transforms: contour
deformations and double-exponential quadrature", SSRN 3231626 (2018).

R. Lord, C. Kahl, "Complex logarithms in Heston-like models", Mathematical Finance 20(4)
(2010), pp. 671-694.
"""

from __future__ import annotations

import functools
from math import pi, tan

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from volcal.black import black_price
from volcal.implied import implied_vol as _black_implied_vol
from volcal.models.base import Model, SurfaceSpec


class Heston(Model):
    """Heston model parameters: one set for a whole surface (or arrays for a batch of sets).

    Parameters
    ----------
    v0 : float or array
        Initial variance ``v0 >= 0``, per year (variance units: a 50% vol is 0.25).
    kappa : float or array
        Mean-reversion speed ``kappa > 0``, per year (half-life ``ln 2 / kappa`` years).
    theta : float or array
        Long-run variance ``theta >= 0``, per year.
    xi : float or array
        Volatility of variance ``xi >= 0``, per sqrt(year); ``xi = 0`` is Black-76 with the
        expected average variance (see :meth:`average_variance`).
    rho : float or array
        Correlation of the forward's and the variance's Brownian motions, ``-1 < rho < 1``.

    Notes
    -----
    Array-valued fields broadcast with the option arrays of :func:`heston_price` (a batch of
    parameter sets); ``jax.vmap`` over a ``Heston`` works too (it is a pytree).

    Examples
    --------
    >>> model = Heston(v0=0.0175, kappa=1.5768, theta=0.0398, xi=0.5751, rho=-0.5711)
    >>> float(heston_price(model, 100.0, 100.0, 1.0, True))  # Fang & Oosterlee (2008)
    5.78515543437...
    """

    v0: ArrayLike
    kappa: ArrayLike
    theta: ArrayLike
    xi: ArrayLike
    rho: ArrayLike

    def average_variance(self, t: ArrayLike) -> jax.Array:
        """Expected average variance ``E[(1/t) int_0^t v_s ds]`` over ``[0, t]``, per year.

        ``theta + (v0 - theta) (1 - e^{-kappa t}) / (kappa t)``; ``v0`` at ``t = 0``. Its square
        root is the Black vol of the ``xi -> 0`` limit, and of the control variate in
        :func:`heston_price`.
        """
        t = jnp.asarray(t, jnp.float64)
        return self.theta + (self.v0 - self.theta) * _one_minus_exp_over(self.kappa * t)

    def implied_vol(self, forward: ArrayLike, strike: ArrayLike, t: ArrayLike) -> jax.Array:
        """Black-76 implied vol of Heston prices.

        Parameters
        ----------
        forward : float or array, shape (expiry,)
            Forward ``F > 0`` of each expiry, quote currency.
        strike : array_like, shape (strike,) for one expiry or (expiry, strike)
            Strikes ``K > 0``.
        t : float or array, shape (expiry,)
            Time to expiry in years, ``t > 0``.

        Returns
        -------
        Array
            Black vol (decimal) of the shape of ``strike`` broadcast with the expiries:
            ``forward`` and ``t`` gain a trailing strike axis, as for the other surface model
            (``SSVI``) and in :func:`volcal.calibrate`. NaN where the price carries no vol
            information (a time value below float64 resolution; see
            :func:`volcal.implied_vol`).

        Notes
        -----
        The out-of-the-money option (call for ``K >= F``, put below) is priced with
        :func:`heston_price` and inverted with :func:`volcal.implied_vol`; derivatives follow
        from both (implicit function theorem for the inversion).
        """
        forward = jnp.expand_dims(jnp.asarray(forward, jnp.float64), -1)
        t = jnp.expand_dims(jnp.asarray(t, jnp.float64), -1)
        strike = jnp.asarray(strike, jnp.float64)
        is_call = strike >= forward
        price = heston_price(self, forward, strike, t, is_call)
        return _black_implied_vol(price, forward, strike, t, is_call).vol

    def calibration_vol(self, forward: ArrayLike, strike: ArrayLike, t: ArrayLike) -> jax.Array:
        """:meth:`implied_vol` by the faster smile pricer :func:`heston_smile_prices` (one
        set of quadrature nodes per expiry, shared by its strikes), used inside
        :func:`volcal.calibrate`'s solve; its error is stated there. ``strike`` is
        ``(expiry, strike)``."""
        forward = jnp.asarray(forward, jnp.float64)
        t = jnp.asarray(t, jnp.float64)
        strike = jnp.asarray(strike, jnp.float64)
        is_call = strike >= forward[:, None]
        price = heston_smile_prices(self, forward, strike, t, is_call)
        return _black_implied_vol(price, forward[:, None], strike, t[:, None], is_call).vol


# ---------------------------------------------------------------------------------------------
# Characteristic function


# Below this |y| the series in the two helpers below are used: their next terms (y^3/24,
# y^3/4) are below 1e-24.
_SERIES_CUTOFF = 1e-8


def _one_minus_exp_over(y):
    """``(1 - e^{-y}) / y``, 1 at y = 0, with finite derivatives there (double-where)."""
    y = jnp.asarray(y, jnp.float64)
    small = jnp.abs(y) < _SERIES_CUTOFF
    y_safe = jnp.where(small, 1.0, y)
    return jnp.where(small, 1.0 - 0.5 * y + y * y / 6.0, -jnp.expm1(-y_safe) / y_safe)


def _log1p_over(y):
    """``ln(1 + y) / y`` for complex y, 1 at y = 0, finite derivatives there (double-where)."""
    small = jnp.abs(y) < _SERIES_CUTOFF
    y_safe = jnp.where(small, 1.0, y)
    return jnp.where(small, 1.0 - 0.5 * y + y * y / 3.0, jnp.log1p(y_safe) / y_safe)


def _log_characteristic(z, t, v0, kappa, theta, xi, rho):
    """``(ln phi(z), z^2 + i z)`` with ``phi(z) = E[exp(i z ln(F_t/F_0))]``; see
    :func:`heston_characteristic_exponent`."""
    lam = z * z + 1j * z
    beta = kappa - 1j * rho * xi * z
    d = jnp.sqrt(beta * beta + xi * xi * lam)
    beta_plus_d = beta + d
    one_minus_e = -jnp.expm1(-d * t)
    # g = (beta - d)/(beta + d) = -xi^2 lam/(beta + d)^2: no 0/0 as xi -> 0.
    g = -(xi * xi * lam) / (beta_plus_d * beta_plus_d)
    b = -lam / beta_plus_d * one_minus_e / (1.0 - g * (1.0 - one_minus_e))
    # ln[(1 - g e^{-dt})/(1 - g)] = ln(1 + xi^2 y), y = -lam (1 - e^{-dt})/((beta+d)^2 + xi^2 lam)
    y = -lam * one_minus_e / (beta_plus_d * beta_plus_d + xi * xi * lam)
    a = kappa * theta * (-lam * t / beta_plus_d - 2.0 * y * _log1p_over(xi * xi * y))
    return a + b * v0, lam


def heston_characteristic_exponent(params: Heston, z: ArrayLike, t: ArrayLike) -> jax.Array:
    """``ln E[exp(i z X_t)]`` for ``X_t = ln(F_t / F_0)``, at complex ``z``.

    Parameters
    ----------
    params : Heston
    z : array_like, complex
        Where ``-Im z`` is an exponent ``p`` with ``E[(F_t/F_0)^p] < infinity`` (always for
        ``0 <= p <= 1``), or the analytic continuation from there.
    t : array_like
        Time in years, ``t >= 0``.

    Returns
    -------
    Array, complex
        ``A(z, t) + B(z, t) v0`` (arguments broadcast).

    Notes
    -----
    With ``lam = z^2 + i z``, ``beta = kappa - i rho xi z`` and
    ``d = sqrt(beta^2 + xi^2 lam)`` (principal root), Albrecher et al.'s (2007) form

    .. math::

        B = \\frac{\\beta - d}{\\xi^2} \\frac{1 - e^{-dt}}{1 - g e^{-dt}}, \\quad
        A = \\frac{\\kappa\\theta}{\\xi^2}\\Big[(\\beta - d) t
            - 2 \\ln \\frac{1 - g e^{-dt}}{1 - g}\\Big], \\quad
        g = \\frac{\\beta - d}{\\beta + d}

    is evaluated through ``beta - d = -xi^2 lam / (beta + d)``, so that ``B`` and ``A`` carry
    no ``0/0`` at ``xi = 0``, and the logarithm as ``ln(1 + xi^2 y)`` (``log1p``). This form
    keeps the logarithm on its principal branch along the contours used for pricing (Albrecher
    et al. 2007; Lord & Kahl 2010), which the tests check against a numerical solution of the
    Riccati equations ``B' = -lam/2 - beta B + xi^2 B^2 / 2``, ``A' = kappa theta B``. At
    ``xi = 0`` it is ``-lam/2`` times the expected integrated variance (Black-76).
    """
    z = jnp.asarray(z, jnp.complex128)
    fields = (params.v0, params.kappa, params.theta, params.xi, params.rho)
    return _log_characteristic(z, jnp.asarray(t, jnp.float64), *fields)[0]


# ---------------------------------------------------------------------------------------------
# Quadrature


#: Gauss-Legendre nodes of :func:`heston_price` (the default): every price in the reference
#: set (tests/data/heston_reference.csv) within max(1e-10 price, 1e-14 forward).
PRICE_NODES = 192
#: Absolute error of :func:`heston_price` at PRICE_NODES, in units of the forward (the
#: 1e-14 F bar of tests/test_heston.py); :attr:`Heston.price_resolution`.
PRICE_RESOLUTION = 1e-14
#: Fewer nodes for calibration loops, ``heston_price(..., nodes=CALIBRATION_NODES)``; error
#: measured on the same set below max(1e-8 price, 1e-12 forward) (see the tests).
CALIBRATION_NODES = 96

# The integration contour is the line Im z = -_CONTOUR_SHIFT (Lewis 2000): it lies in the
# middle of the strip 0 < -Im z < 1 where the characteristic function always exists, so the
# integrand is analytic at least 1/2 on either side of it whatever the parameters and expiry.
_CONTOUR_SHIFT = 0.5
# Angle of the turned contour, as in QuantLib's AnalyticHestonEngine (AngledContour), which
# follows Andersen & Lake (2018): small enough that the Black term's Gaussian decay
# exp(-w cos(2 phi) u^2/2) keeps 87% of its rate.
_CONTOUR_ANGLE = pi / 12
_TAN_ANGLE = tan(_CONTOUR_ANGLE)
# Largest log-growth allowed for e^{izx} over the Gaussian core when the contour turns against
# it: exp(-(1 - tan^2) w u^2/2 + |x| tan u) peaks at exp((x tan)^2 / (2 (1 - tan^2) w)).
_CORE_GROWTH_LIMIT = 1.0
# Scale of the sinh map u = _SINH_SCALE sinh(s): uniform nodes for u below the strip half-width
# 1/2 (where the integrand can vary on that scale), geometric beyond (exponential tails, which
# can reach u ~ 1e4 for Feller-violating, strongly correlated parameters at short expiries).
_SINH_SCALE = 0.5
# Truncation: the integrand's envelope times u, an upper estimate of the tail integral beyond u
# for tails decaying at least like 1/u^2, must fall below this fraction of the forward.
_TRUNCATION_TOLERANCE = 1e-18
# Probes of the envelope: geometric from _PROBE_START / sqrt(w) (w the total variance; the Black
# term has decayed by e^-0.03 there) by the ratio _PROBE_RATIO, _PROBES of them (a range of
# 1.5^47 = 2e8, from the Gaussian core to the longest exponential tail).
_PROBE_START = 0.25
_PROBE_RATIO = 1.5
_PROBES = 48


def _legendre(n: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P_n(x), P_n'(x))`` by the three-term recurrence."""
    previous, current = np.ones_like(x), x.copy()
    for j in range(2, n + 1):
        previous, current = current, ((2 * j - 1) * x * current - (j - 1) * previous) / j
    return current, n * (x * current - previous) / (x * x - 1.0)


@functools.lru_cache(maxsize=8)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (ascending) and weights of the n-point Gauss-Legendre rule on [-1, 1], by Newton's
    method from Tricomi's estimates (accurate to a few ulp for any n; numpy's ``leggauss``
    loses digits for n in the hundreds)."""
    x = np.cos(np.pi * (np.arange(n, 0, -1) - 0.25) / (n + 0.5))
    for _ in range(100):
        value, slope = _legendre(n, x)
        step = value / slope
        x = x - step
        if np.max(np.abs(step)) < 1e-16:
            break
    slope = _legendre(n, x)[1]
    return x, 2.0 / ((1.0 - x * x) * slope * slope)


def _integrand(u, log_moneyness, log_strike, tan_angle, t, total_variance, fields):
    """``Re[K e^{i z x} (phi_H(z) - phi_B(z)) / (z^2 + i z) dz/du]`` on the contour
    ``z = u (1 + i tan_angle) - i/2``, u >= 0, and its envelope (for the truncation)."""
    slope = 1.0 + 1j * tan_angle
    z = u * slope - 1j * _CONTOUR_SHIFT
    log_heston, lam = _log_characteristic(z, t, *fields)
    log_black = -0.5 * total_variance * lam
    log_scale = log_strike + 1j * z * log_moneyness
    difference = log_heston - log_black
    close = jnp.abs(difference) < 1.0
    # exp(a) expm1(b - a) keeps the relative accuracy of a small difference (xi -> 0).
    value = jnp.where(
        close,
        jnp.exp(log_scale + log_black) * jnp.expm1(jnp.where(close, difference, 0.0)),
        jnp.exp(log_scale + log_heston) - jnp.exp(log_scale + log_black),
    )
    integrand = jnp.real(value * slope / lam)
    envelope = (
        (jnp.exp(jnp.real(log_scale + log_heston)) + jnp.exp(jnp.real(log_scale + log_black)))
        * jnp.abs(slope)
        / jnp.abs(lam)
    )
    return integrand, envelope


@functools.partial(jax.jit, static_argnames="nodes")
def _heston_price(v0, kappa, theta, xi, rho, forward, strike, t, is_call, discount, *, nodes):
    fields = (v0, kappa, theta, xi, rho)
    positive_t = t > 0.0
    t_safe = jnp.where(positive_t, t, 1.0)
    total_variance = (theta + (v0 - theta) * _one_minus_exp_over(kappa * t_safe)) * t_safe
    positive_variance = total_variance > 0.0
    total_variance = jnp.where(positive_variance, total_variance, 1.0)
    black_vol = jnp.where(positive_variance, jnp.sqrt(total_variance / t_safe), 0.0)
    control = black_price(forward, strike, t, black_vol, is_call, 1.0)

    log_moneyness = jnp.log(forward / strike)
    log_strike = jnp.log(strike)
    # Turn the contour towards the side where the characteristic function's asymptotic
    # phase, -rho V u / xi with V = v0 + kappa theta t, and e^{izx} together decay faster,
    # unless e^{izx} then grows first: by at most e^1 over the Gaussian core.
    asymptotic_variance = v0 + kappa * theta * t_safe
    direction = jnp.sign(log_moneyness - rho * asymptotic_variance / jnp.where(xi > 0, xi, 1.0))
    direction = jnp.where(xi > 0, direction, jnp.sign(log_moneyness))
    core_growth = jnp.where(
        log_moneyness * direction >= 0.0,
        0.0,
        (_TAN_ANGLE * log_moneyness) ** 2 / (2.0 * (1.0 - _TAN_ANGLE**2) * total_variance),
    )
    tan_angle = jnp.where(core_growth <= _CORE_GROWTH_LIMIT, direction * _TAN_ANGLE, 0.0)
    tan_angle = jax.lax.stop_gradient(tan_angle)

    def per_node(u):
        expand = lambda a: jnp.expand_dims(a, -1)  # noqa: E731
        return _integrand(
            u,
            expand(log_moneyness),
            expand(log_strike),
            expand(tan_angle),
            expand(t_safe),
            expand(total_variance),
            tuple(expand(f) for f in fields),
        )

    # Truncation point: the first probe beyond which the envelope times u stays below the
    # tolerance (the envelope of exponential tails is monotone there).
    probes = jnp.expand_dims(_PROBE_START / jnp.sqrt(total_variance), -1) * (
        _PROBE_RATIO ** jnp.arange(_PROBES)
    )
    _, envelope = per_node(jax.lax.stop_gradient(probes))
    above = jax.lax.stop_gradient(envelope * probes) > _TRUNCATION_TOLERANCE * jnp.expand_dims(
        forward, -1
    )
    last = jnp.max(jnp.where(above, jnp.arange(_PROBES), -1), axis=-1)
    end = jnp.take_along_axis(probes, jnp.expand_dims(jnp.minimum(last + 1, _PROBES - 1), -1), -1)
    end = jax.lax.stop_gradient(end)

    # u = a sinh(s), s in [0, asinh(end / a)], Gauss-Legendre in s.
    unit_nodes, unit_weights = _gauss_legendre(nodes)
    s_end = jnp.arcsinh(end / _SINH_SCALE)
    s = 0.5 * s_end * (1.0 + unit_nodes)
    u = _SINH_SCALE * jnp.sinh(s)
    weights = 0.5 * s_end * unit_weights * _SINH_SCALE * jnp.cosh(s)
    integrand, _ = per_node(u)
    correction = jnp.sum(weights * integrand, axis=-1) / pi

    price = discount * (control - correction)
    intrinsic = discount * jnp.maximum(jnp.where(is_call, 1.0, -1.0) * (forward - strike), 0.0)
    return jnp.where(positive_t, price, intrinsic)


def heston_price(
    params: Heston,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
    *,
    nodes: int = PRICE_NODES,
) -> jax.Array:
    """European option prices under the Heston model, ``discount * E[payoff]``.

    Parameters
    ----------
    params : Heston
        Model parameters (fields broadcast with the option arrays).
    forward, strike : array_like
        ``F > 0`` (the forward to the expiry) and ``K > 0``, quote currency.
    t : array_like
        Time to expiry in years; ``t <= 0`` gives the discounted intrinsic value.
    is_call : array_like of bool
        True for calls, False for puts.
    discount : array_like, default 1.0
        Discount factor D to the premium payment date (1 for forward premiums).
    nodes : int, default PRICE_NODES (192)
        Gauss-Legendre nodes per option (static). ``CALIBRATION_NODES`` (96) halves the work
        for calibration, with the error stated there.

    Returns
    -------
    Array
        Prices of the broadcast shape. Jit-able, vmap-able and differentiable in the
        parameters, the forward, the strike and the discount factor.

    Notes
    -----
    **Formula.** With ``x = ln(F/K)``, ``phi`` the characteristic function of ``ln(F_t/F)``
    (:func:`heston_characteristic_exponent`) and ``phi_B(z) = exp(-w (z^2 + iz)/2)`` that of
    Black-76 with total variance ``w = t * average_variance(t)``, the call is

    .. math::

        C = C_{B}(w) - \\frac{K}{\\pi} \\mathrm{Re} \\int_0^\\infty
            e^{izx} \\frac{\\phi(z) - \\phi_B(z)}{z^2 + iz} \\frac{dz}{du} du,
        \\quad z = u (1 + i \\tan\\omega) - \\tfrac{i}{2},

    with ``C_B`` the Black-76 call (:func:`volcal.black_price`, accurate to a few ulp). For
    ``omega = 0`` this is Lewis's (2000) formula less the same formula for Black-76 (the
    control variate of Andersen & Piterbarg); the poles of ``1/(z^2 + iz)`` at ``z = 0, -i``
    cancel in the difference (``phi(0) = phi(-i) = 1`` for both), so the contour may be moved
    without residues. Puts use the Black put with the same correction, so put-call parity
    holds to rounding. The correction carries the whole stochastic-volatility effect and
    vanishes with ``xi``: at ``xi = 0`` the price is exactly Black-76 with the expected
    average variance.

    **Contour.** Along ``z = u(1 + i tan(omega)) - i/2`` the factor ``e^{izx}`` decays like
    ``e^{-x u tan(omega)}`` and the characteristic function, asymptotically
    ``exp(-V (sqrt(1 - rho^2) + i rho) z / xi)`` with ``V = v0 + kappa theta t``, at the rate
    ``V (sqrt(1 - rho^2) - rho tan(omega)) / xi``: together at
    ``V sqrt(1 - rho^2)/xi + tan(omega) (x - rho V/xi)``. So
    ``omega = sign(x - rho V/xi) pi/12``, unless ``e^{izx}`` then grows over the Gaussian
    core by more than ``e`` (when ``x`` has the other sign and
    ``(x tan(omega))^2 / (2 (1 - tan^2(omega)) w) > 1``), in which case ``omega = 0``. This
    extends the rule of QuantLib's ``AngledContour`` (after Andersen & Lake 2018) to the money
    and removes the slow, oscillating tails that otherwise need thousands of nodes (far
    strikes, ``|rho|`` near 1, short expiries).

    **Quadrature.** Truncation at ``u_max``, the first of 48 geometric probes
    (``0.25/sqrt(w)`` times ``1.5^j``) beyond which the integrand's envelope times ``u`` stays
    below ``1e-18 F``; it reaches the exponential tails (to ``u ~ 1e4`` and beyond) of
    Feller-violating, strongly correlated parameters at short expiries. With
    ``u = sinh(s)/2``, ``nodes``-point Gauss-Legendre in ``s`` on ``[0, asinh(2 u_max)]``:
    uniform resolution below ``u ~ 1/2`` (the integrand is analytic at least 1/2 either side of
    the contour, as moments of order 0 to 1 always exist) and geometric beyond. Lewis's form
    was preferred to the COS method, whose error depends on truncating the density: Heston's
    has exponential tails and, at short expiries, a sharp peak. Here the integrand is smooth
    and decays exponentially for every expiry.

    **Accuracy** (tests/test_heston.py; tests/data/heston_reference.csv: mpmath at 24 digits
    by an independent formula, Lewis's 2000 table, Fang & Oosterlee 2008; Feller violated and
    satisfied, ``rho`` from -0.95 to 0.9, ``xi`` to 2.5, expiries 1 day to 30 years,
    ``|ln(K/F)| <= 3``): within ``max(1e-10 price, 1e-14 F)``. The truncation point and the
    angle are piecewise constant (no gradient flows through them); sizes are fixed, so one
    compiled program serves all inputs of a shape.

    References
    ----------
    Lewis (2000), ch. 2; Andersen & Piterbarg (2010); Andersen & Lake (2018); Albrecher et al.
    (2007). See the module docstring.
    """
    arrays = jnp.broadcast_arrays(
        *(jnp.asarray(a, jnp.float64) for a in (params.v0, params.kappa, params.theta)),
        *(jnp.asarray(a, jnp.float64) for a in (params.xi, params.rho, forward, strike, t)),
        jnp.asarray(is_call, bool),
        jnp.asarray(discount, jnp.float64),
    )
    return _heston_price(*arrays, nodes=int(nodes))


#: Nodes of :func:`heston_smile_prices` per expiry.
SMILE_NODES = 256
#: Its truncation: the envelope times u below this fraction of the forward.
_SMILE_TRUNCATION_TOLERANCE = 1e-14


def heston_smile_prices(
    params: Heston,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    *,
    nodes: int = SMILE_NODES,
) -> jax.Array:
    """Undiscounted prices of whole smiles, for calibration: every strike of an expiry shares
    one set of quadrature nodes, so the characteristic function is evaluated ``nodes`` times
    per expiry rather than per option.

    Parameters
    ----------
    params : Heston
        One parameter set (scalar fields).
    forward, t : array_like, shape (expiry,)
    strike, is_call : array_like, shape (expiry, strike)

    Notes
    -----
    The same formula as :func:`heston_price` (Lewis with the Black-76 control variate) on the
    straight contour ``Im z = -1/2`` (no turn: the turn depends on the strike), truncated per
    expiry where the envelope times ``u`` falls below ``1e-14 F`` over all its strikes, with
    ``nodes`` Gauss-Legendre points after the same ``sinh`` map. Error against
    :func:`heston_price` (tests/test_heston.py: expiries 1 day to 5 years, strikes within 3
    standard deviations): below 1e-15 of the forward for equity- and crypto-like parameters;
    below 1e-8 of the forward for the hardest sets (``rho = -0.95``; ``v0 = 0.0025`` with
    ``xi = 1``), whose slowly decaying, oscillating tails the untuned contour resolves less
    well (128 nodes would leave 1e-5 there). A quote's spread is ~1e-4 of the forward or
    more.
    """
    fields = tuple(jnp.asarray(getattr(params, n), jnp.float64) for n in PARAMETER_NAMES)
    v0, kappa, theta = fields[:3]
    forward = jnp.asarray(forward, jnp.float64)
    t = jnp.asarray(t, jnp.float64)
    strike = jnp.asarray(strike, jnp.float64)
    total_variance = (theta + (v0 - theta) * _one_minus_exp_over(kappa * t)) * t  # (expiry,)
    black_vol = jnp.sqrt(total_variance / t)
    f, tt = forward[:, None], t[:, None]
    control = black_price(f, strike, tt, black_vol[:, None], is_call, 1.0)
    log_moneyness = jnp.log(f / strike)  # (expiry, strike)

    def difference(u):
        """``(phi - phi_B)(u - i/2) / (u^2 + 1/4)`` at u of shape (expiry, node), and its
        envelope."""
        z = u - 0.5j
        log_heston, lam = _log_characteristic(z, t[:, None], *fields)
        log_black = -0.5 * total_variance[:, None] * lam
        delta = log_heston - log_black
        close = jnp.abs(delta) < 1.0
        value = jnp.where(close, jnp.exp(log_black) * jnp.expm1(jnp.where(close, delta, 0.0)),
                          jnp.exp(log_heston) - jnp.exp(log_black))  # fmt: skip
        envelope = (jnp.exp(jnp.real(log_heston)) + jnp.exp(jnp.real(log_black))) / jnp.abs(lam)
        return value / jnp.real(lam), envelope

    probes = (_PROBE_START / jnp.sqrt(total_variance))[:, None] * (
        _PROBE_RATIO ** jnp.arange(_PROBES)
    )
    probes = jax.lax.stop_gradient(probes)
    _, envelope = difference(probes)
    # sqrt(F K) e^{...}: the strike factor of the integrand, largest over the smile.
    scale = jnp.max(jnp.sqrt(f * strike), axis=-1, keepdims=True)
    above = jax.lax.stop_gradient(envelope * probes * scale) > (_SMILE_TRUNCATION_TOLERANCE * f)
    last = jnp.max(jnp.where(above, jnp.arange(_PROBES), -1), axis=-1)
    end = jnp.take_along_axis(probes, jnp.minimum(last + 1, _PROBES - 1)[:, None], -1)
    end = jax.lax.stop_gradient(end)  # (expiry, 1)

    unit_nodes, unit_weights = _gauss_legendre(nodes)
    s_end = jnp.arcsinh(end / _SINH_SCALE)
    s_nodes = 0.5 * s_end * (1.0 + unit_nodes)
    u = _SINH_SCALE * jnp.sinh(s_nodes)  # (expiry, node)
    weights = 0.5 * s_end * unit_weights * _SINH_SCALE * jnp.cosh(s_nodes)
    values, _ = difference(u)
    # Re[e^{iux} value] summed over nodes, for every strike: (expiry, strike, node).
    phase = u[:, None, :] * log_moneyness[..., None]
    integral = jnp.sum(weights[:, None, :] * (jnp.cos(phase) * jnp.real(values)[:, None, :]
                                              - jnp.sin(phase) * jnp.imag(values)[:, None, :]),
                       axis=-1)  # fmt: skip
    return control - jnp.sqrt(f * strike) / pi * integral


# ---------------------------------------------------------------------------------------------
# Calibration spec

#: Order of the unconstrained vector's entries (names at the boundary, positions inside).
PARAMETER_NAMES = ("v0", "kappa", "theta", "xi", "rho")
#: |rho| bound of the bijection ``rho = RHO_LIMIT tanh(u)``: the pricer's accuracy is verified
#: up to |rho| = 0.99 (tests/test_heston.py); a fit that runs into the bound is a misfit to
#: look at rather than perfect correlation.
RHO_LIMIT = 0.99
#: Mean-reversion speeds (per year) tried by :func:`initial_guess`: half-lives from about 4
#: weeks (kappa = 8) to 3 years (kappa = 0.25).
GUESS_KAPPAS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: Smallest starting variance (1% vol): keeps the start inside the softplus' responsive range.
GUESS_VARIANCE_MIN = 1e-4
#: Starting |rho| bound and vol-of-variance range (per sqrt(year)) of the initial guess: the
#: solver starts where tanh has slope, and xi between a nearly flat smile and crypto-like
#: levels; a start beyond xi = 2 with |rho| near 1 lies where the calibration pricer is least
#: accurate (heston_smile_prices), and the solver reaches it if the data ask for it.
GUESS_RHO_LIMIT = 0.9
GUESS_XI_MIN = 0.05
GUESS_XI_MAX = 2.0
#: The skew is read on the expiry nearest this many years: short expiries of real surfaces
#: (and of the demo market's SSVI) carry skews growing like t^-1/2 that no Heston parameters
#: reproduce, and at a quarter the small-t formula below still errs on the small side.
GUESS_SKEW_EXPIRY = 0.25
#: The skew gives rho xi only; the guess splits it with this |rho| (typical of equity and
#: crypto Heston fits, whose correlations mostly lie between 0.5 and 0.9 in magnitude).
GUESS_RHO_MAGNITUDE = 0.7
#: Quotes within this many ATM standard deviations of the money enter the skew estimate.
GUESS_SKEW_STDDEVS = 1.5


def _softplus(x):
    return jnp.logaddexp(x, 0.0)


def _softplus_inverse(y):
    # ln(e^y - 1) = y + ln(1 - e^-y), written to stay exact for small and for large y.
    return y + jnp.log(-jnp.expm1(-y))


def to_unconstrained(model: Heston, t: ArrayLike | None = None) -> jax.Array:
    """``[softplus^-1(v0), softplus^-1(kappa), softplus^-1(theta), softplus^-1(xi),
    artanh(rho / RHO_LIMIT)]`` (order :data:`PARAMETER_NAMES`), shape ``(5,)``.

    ``t`` (the expiries) is accepted for the surface-spec signature and not used. Parameters
    must lie in the open domain (``v0, kappa, theta, xi > 0``, ``|rho| < RHO_LIMIT``); on its
    boundary the image is infinite.
    """
    del t
    positive = [
        _softplus_inverse(jnp.asarray(getattr(model, name), jnp.float64))
        for name in PARAMETER_NAMES[:4]
    ]
    rho = jnp.arctanh(jnp.asarray(model.rho, jnp.float64) / RHO_LIMIT)
    return jnp.stack([*positive, rho])


def from_unconstrained(u: ArrayLike, t: ArrayLike | None = None) -> Heston:
    """The model of the unconstrained vector ``u`` (any reals, order :data:`PARAMETER_NAMES`).

    ``v0, kappa, theta, xi = softplus(u[0:4])`` (``softplus(x) = ln(1 + e^x)``: positive,
    close to ``e^x`` for small values and to ``x`` for large ones, so small variances and large
    mean-reversion speeds are both reached by moderate steps); ``rho = RHO_LIMIT tanh(u[4])``.
    The inverse of :func:`to_unconstrained`; ``t`` is not used.
    """
    del t
    u = jnp.asarray(u, jnp.float64)
    v0, kappa, theta, xi = (_softplus(u[..., i]) for i in range(4))
    return Heston(v0=v0, kappa=kappa, theta=theta, xi=xi, rho=RHO_LIMIT * jnp.tanh(u[..., 4]))


def initial_guess(t, log_moneyness, total_variance, mask) -> Heston:
    """A starting point from the ATM term structure and the short-expiry skew.

    Parameters
    ----------
    t : array, shape (expiry,)
        Expiries in years.
    log_moneyness, total_variance, mask : arrays, shape (expiry, quote)
        ``ln(K/F)``, implied total variance ``sigma^2 t`` and the valid-quote mask of an
        ``IVGrid``.

    Returns
    -------
    Heston

    Notes
    -----
    1. ATM variance per expiry: ``s_i = w_i / t_i`` from the quote nearest the money.
    2. ``v0``, ``theta``, ``kappa``: for each ``kappa`` in :data:`GUESS_KAPPAS`, the
       least-squares fit over the expiries with quotes of
       ``s_i = theta + (v0 - theta) b(kappa t_i)``, ``b(y) = (1 - e^{-y})/y`` (linear in
       ``v0``, ``theta``): the expected average variance, which is the ATM variance of the
       ``xi -> 0`` limit. The ``kappa`` with the smallest residual wins (the first one with a
       single expiry); variances are floored at :data:`GUESS_VARIANCE_MIN`.
    3. ``rho xi`` from the ATM skew ``psi = d sigma / d k`` of the expiry nearest
       :data:`GUESS_SKEW_EXPIRY` (a
       least-squares straight line through implied vol against ``k`` within
       :data:`GUESS_SKEW_STDDEVS` ATM standard deviations): for small ``t``,
       ``psi -> rho xi / (4 sqrt(v0))`` (the vol ``sqrt(v)`` has lognormal volatility
       ``xi / (2 sqrt(v0))``, and a stochastic volatility model's short-expiry skew is ``rho``
       times half of that, as in the ``beta = 1`` SABR formula of Hagan et al. 2002).
    4. ``rho`` and ``xi`` apart: the skew fixes only their product, so the split assumes
       ``|rho| =`` :data:`GUESS_RHO_MAGNITUDE` with the skew's sign:
       ``xi = |rho xi| / GUESS_RHO_MAGNITUDE`` clipped to ``[GUESS_XI_MIN, GUESS_XI_MAX]``,
       then ``rho = rho xi / xi`` clipped to ``+-GUESS_RHO_LIMIT``. A flat smile gives
       ``rho = 0`` and ``xi = GUESS_XI_MIN``.
    """
    t = jnp.asarray(t, jnp.float64)
    k = jnp.asarray(log_moneyness, jnp.float64)
    w = jnp.asarray(total_variance, jnp.float64)
    mask = jnp.asarray(mask, bool)
    k = jnp.where(mask, k, 0.0)
    w = jnp.where(mask, w, 0.0)
    atm = jnp.argmin(jnp.where(mask, jnp.abs(k), jnp.inf), axis=1)
    atm_total_variance = jnp.take_along_axis(w, atm[:, None], axis=1)[:, 0]
    has_quotes = jnp.any(mask, axis=1)
    atm_variance = jnp.where(has_quotes, atm_total_variance / t, 0.0)
    weight = has_quotes.astype(jnp.float64)

    def fit(kappa):
        b = _one_minus_exp_over(kappa * t)
        design = jnp.stack([b, 1.0 - b], axis=-1) * weight[:, None]
        solution, *_ = jnp.linalg.lstsq(design, atm_variance * weight)
        miss = jnp.sum((design @ solution - atm_variance * weight) ** 2)
        return solution, miss

    kappas = jnp.asarray(GUESS_KAPPAS)
    solutions, misses = jax.vmap(fit)(kappas)
    best = jnp.argmin(misses)  # ties (one expiry) go to the first
    v0, theta = jnp.maximum(solutions[best], GUESS_VARIANCE_MIN)
    kappa = kappas[best]

    # Skew of the expiry nearest GUESS_SKEW_EXPIRY with quotes.
    first = jnp.argmin(jnp.where(has_quotes, jnp.abs(t - GUESS_SKEW_EXPIRY), jnp.inf))
    k_first, w_first, mask_first = k[first], w[first], mask[first]
    t_first = t[first]
    vol = jnp.sqrt(jnp.where(mask_first, w_first, 1.0) / t_first)
    atm_vol = jnp.sqrt(jnp.maximum(atm_variance[first], GUESS_VARIANCE_MIN))
    near = mask_first & (jnp.abs(k_first) <= GUESS_SKEW_STDDEVS * atm_vol * jnp.sqrt(t_first))
    n = jnp.sum(near)
    k_mean = jnp.sum(jnp.where(near, k_first, 0.0)) / jnp.maximum(n, 1)
    vol_mean = jnp.sum(jnp.where(near, vol, 0.0)) / jnp.maximum(n, 1)
    spread = jnp.sum(jnp.where(near, (k_first - k_mean) ** 2, 0.0))
    covariance = jnp.sum(jnp.where(near, (k_first - k_mean) * (vol - vol_mean), 0.0))
    skew = jnp.where(
        (n >= 2) & (spread > 0.0), covariance / jnp.where(spread > 0, spread, 1.0), 0.0
    )
    rho_xi = 4.0 * jnp.sqrt(v0) * skew
    xi = jnp.clip(jnp.abs(rho_xi) / GUESS_RHO_MAGNITUDE, GUESS_XI_MIN, GUESS_XI_MAX)
    rho = jnp.clip(rho_xi / xi, -GUESS_RHO_LIMIT, GUESS_RHO_LIMIT)
    return Heston(v0=v0, kappa=kappa, theta=theta, xi=xi, rho=rho)


# Heston's implied vol is inverted from heston_price: below its error a price carries no vol.
Heston.price_resolution = PRICE_RESOLUTION
Heston.calendar_free = True  # a martingale model: call prices increase with expiry
Heston.calibration = SurfaceSpec(
    from_unconstrained=from_unconstrained,
    to_unconstrained=to_unconstrained,
    initial_guess=initial_guess,
    parameter_names=PARAMETER_NAMES,
)

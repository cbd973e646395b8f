"""Special functions with full float64 accuracy where JAX's own fall short.

``jax.scipy.special.erfcx`` returns 0 for arguments in about [26.54, 26.64] (jax 0.10, jax issue
38607) and ``log_ndtr`` loses digits for x in [6, 26]; the normalised Black function needs
``erfcx`` to near machine precision on all of [-0.61, inf). So volcal evaluates it with
W. J. Cody's rational Chebyshev approximations, which reach about 18 significant digits without
an exponential for x > 4.

References
----------
W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969),
pp. 631-638; coefficients as in Cody's Netlib SPECFUN routine CALERF (revision of 19 March 1990).
"""

from __future__ import annotations

import jax.numpy as jnp

# erf(x) = x * A(x^2) / B(x^2) for |x| <= 0.46875 (Cody, Table I).
_ERF_A = (
    3.1611237438705656,
    113.864154151050156,
    377.485237685302021,
    3209.37758913846947,
    0.185777706184603153,
)
_ERF_B = (23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062)
# erfcx(x) = C(x) / D(x) for 0.46875 <= x <= 4 (Cody, Table II).
_ERFC_C = (
    0.564188496988670089,
    8.88314979438837594,
    66.1191906371416295,
    298.635138197400131,
    881.95222124176909,
    1712.04761263407058,
    2051.07837782607147,
    1230.33935479799725,
    2.15311535474403846e-8,
)
_ERFC_D = (
    15.7449261107098347,
    117.693950891312499,
    537.181101862009858,
    1621.38957456669019,
    3290.79923573345963,
    4362.61909014324716,
    3439.36767414372164,
    1230.33935480374942,
)
# erfcx(x) = (1/sqrt(pi) - P(1/x^2)/Q(1/x^2) / x^2) / x for x > 4 (Cody, Table III).
_ERFC_P = (
    0.305326634961232344,
    0.360344899949804439,
    0.125781726111229246,
    0.0160837851487422766,
    6.58749161529837803e-4,
    0.0163153871373020978,
)
_ERFC_Q = (
    2.56852019228982242,
    1.87295284992346047,
    0.527905102951428412,
    0.0605183413124413191,
    0.00233520497626869185,
)

_ONE_OVER_SQRT_PI = 0.56418958354775628695
# Cody's split points between the three approximations.
_SMALL = 0.46875
_LARGE = 4.0
# exp(+-x^2) is evaluated as exp(+-hi) * (1 +- lo) where hi + lo = x^2 exactly (Dekker's
# product with Veltkamp's split), so the rounding of x^2 (relative error up to x^2 * eps in the
# result) does not reach the exponential. _VELTKAMP = 2^27 + 1 splits a double into 26+27 bits.
_VELTKAMP = 134217729.0


def exp_x2(x, sign: float = 1.0):
    """``exp(sign * x**2)`` without the rounding error of forming ``x**2`` first."""
    c = _VELTKAMP * x
    high = c - (c - x)
    low = x - high
    square = x * x
    error = ((high * high - square) + 2.0 * high * low) + low * low
    return jnp.exp(sign * square) * (1.0 + sign * error)


def _horner_ratio(y, top, top_last, bottom, bottom_last, leading):
    """Cody's nested evaluation ``(leading*y^n + ... + top_last) / (y^n + ... + bottom_last)``."""
    num = leading * y
    den = y
    for t, b in zip(top, bottom, strict=True):
        num = (num + t) * y
        den = (den + b) * y
    return (num + top_last) / (den + bottom_last)


def erfcx(x):
    """Scaled complementary error function ``exp(x**2) * erfc(x)``, float64-accurate.

    Parameters
    ----------
    x : array_like
        Any real; overflows to ``inf`` below about -26.6 as the true value does.

    Notes
    -----
    Three ranges of ``|x|`` (Cody 1969): ``|x| <= 0.46875`` from erf's odd rational form,
    ``0.46875 < |x| <= 4`` a rational in ``|x|``, ``|x| > 4`` a rational in ``1/x^2`` with no
    exponential. For ``x < -0.46875``: ``erfcx(x) = 2 exp(x^2) - erfcx(-x)``. All ranges are
    evaluated and one is selected, as vectorised code must.
    """
    x = jnp.asarray(x)
    y = jnp.abs(x)
    exp_square = exp_x2(x)
    small = exp_square * (1.0 - _erf_small(x))
    positive = _erfc_scaled_rational(y)
    reflected = 2.0 * exp_square - positive
    return jnp.where(y <= _SMALL, small, jnp.where(x > 0.0, positive, reflected))


def _erf_small(x):
    """erf(x) for |x| <= 0.46875."""
    return x * _horner_ratio(x * x, _ERF_A[:3], _ERF_A[3], _ERF_B[:3], _ERF_B[3], _ERF_A[4])


def _erfc_scaled_rational(y):
    """erfcx(y) for y > 0.46875 (the middle and large ranges; no exponential)."""
    middle = _horner_ratio(y, _ERFC_C[:7], _ERFC_C[7], _ERFC_D[:7], _ERFC_D[7], _ERFC_C[8])
    safe_y = jnp.where(y > _LARGE, y, _LARGE)
    inv_y2 = 1.0 / (safe_y * safe_y)
    tail = _horner_ratio(inv_y2, _ERFC_P[:4], _ERFC_P[4], _ERFC_Q[:4], _ERFC_Q[4], _ERFC_P[5])
    large = (_ONE_OVER_SQRT_PI - inv_y2 * tail) / safe_y
    return jnp.where(y <= _LARGE, middle, large)


def norm_cdf(z):
    """Standard normal distribution function, relatively accurate in the lower tail.

    ``Phi(z) = erfc(-z/sqrt 2)/2``: from erf's rational form near 0, and as
    ``exp(-z^2/2) erfcx(|z|/sqrt 2)/2`` (upper tail ``1 - Phi(-z)``) elsewhere.
    """
    z = jnp.asarray(z)
    y = jnp.abs(z) * _ONE_OVER_SQRT_TWO
    central = 0.5 - 0.5 * _erf_small(-z * _ONE_OVER_SQRT_TWO)
    lower_tail = 0.5 * exp_x2(z, -0.5) * _erfc_scaled_rational(y)
    tail = jnp.where(z <= 0.0, lower_tail, 1.0 - lower_tail)
    return jnp.where(y <= _SMALL, central, tail)


_ONE_OVER_SQRT_TWO = 0.7071067811865475244008443621048490392848

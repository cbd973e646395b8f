"""The SABR stochastic-volatility model: Black implied vols by asymptotic expansion, and its
calibration spec.

Model (Hagan et al. 2002), under the forward measure:

.. math::

    dF_t = \\hat\\alpha_t F_t^{\\beta} dW_t, \\quad d\\hat\\alpha_t = \\nu \\hat\\alpha_t dZ_t,
    \\quad dW_t dZ_t = \\rho dt, \\quad \\hat\\alpha_0 = \\alpha.

``beta`` (the CEV exponent, in [0, 1]) is chosen by the user and never calibrated: it and
``rho`` both move the skew, and a smile of one expiry cannot tell them apart. ``alpha > 0`` sets
the level (the ATM vol is about ``alpha / F^(1 - beta)``), ``-1 < rho < 1`` the skew and
``nu >= 0`` (the vol of vol, per sqrt(year)) the curvature.

Two expansions of the Black vol are offered (the ``expansion`` field):

* ``"hagan"``: Hagan, Kumar, Lesniewski & Woodward (2002), eq. (2.17a);
* ``"obloj"``: the same first-order correction with Obloj's (2008) corrected leading term, whose
  ``nu -> 0`` limit is the exact short-expiry CEV smile and which is consistent as
  ``beta -> 1``.

The calibration spec (STYLE.md item 5) lives beside the model: :func:`to_unconstrained` and
:func:`from_unconstrained` (the bijection used by the least-squares solver, on the vector
:func:`free_parameters` names), :func:`initial_guess`, :func:`default_weights` and
:data:`FIXABLE`.

References
----------
P. S. Hagan, D. Kumar, A. S. Lesniewski, D. E. Woodward, "Managing smile risk", Wilmott
Magazine (2002), pp. 84-108, eqs. (2.17a)-(2.18).

J. Obloj, "Fine-tune your smile: correction to Hagan et al.", Wilmott Magazine (May 2008);
arXiv:0708.0998v3 (the corrected zero-order term, from Berestycki, Busca & Florent 2004).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from volcal.models.base import Model, SliceSpec

Expansion = Literal["hagan", "obloj"]
#: The implied-vol expansions :class:`SABR` knows.
EXPANSIONS: tuple[str, ...] = ("hagan", "obloj")

# z/x(z) by its Taylor series for |z| < _Z_SERIES, in closed form above. With x(z)/z =
# sum_n P_n(rho) z^n / (n + 1) (Legendre, |P_n| <= 1 on [-1, 1]) the truncation error after 16
# terms is below |z|^16 / 17 / (1 - |z|) < 1e-17 at |z| = 0.1; above, the closed form's
# logarithm loses at most log10(1/|z|) = 1 digit (and its second derivative eps/z^2, 2e-14).
_Z_SERIES = 0.1
_Z_SERIES_TERMS = 16
# sinh(y)/y (Obloj's leading term) by its series for |y| < _SINHC_SERIES: the first omitted term,
# y^10 / 11!, is below 3e-18 there; above, sinh(y)/y is evaluated directly without cancellation.
_SINHC_SERIES = 0.1
_SINHC_COEFFICIENTS = (1.0, 1.0 / 6.0, 1.0 / 120.0, 1.0 / 5040.0, 1.0 / 362880.0)


def _z_over_x(z: jax.Array, rho: jax.Array) -> jax.Array:
    """``z / x(z)`` with ``x(z) = ln[(sqrt(1 - 2 rho z + z^2) + z - rho) / (1 - rho)]``.

    Near z = 0 (the money, or nu = 0) the ratio is 0/0: there ``x(z)/z`` is summed from its
    series, ``x(z) = sum_n P_n(rho) z^(n+1) / (n + 1)`` since ``dx/dz = (1 - 2 rho z +
    z^2)^(-1/2)`` is the Legendre generating function. Each branch sees only arguments of its
    own domain (the double-where), so no NaN reaches values or gradients.

    In closed form the logarithm's argument is ``(s + z - rho) / (1 - rho)`` when ``z > rho``
    and the equal ``(1 + rho) / (s - z + rho)`` otherwise, and ``s^2 = (z - rho)^2 + (1 - rho)
    (1 + rho)``, so nothing cancels as ``rho -> +-1``. At ``|rho| = 1`` the limits come out
    (``x = -ln(1 - z)`` for rho = 1, infinite for ``z >= 1``, making ``z/x(z) = 0``).
    """
    small = jnp.abs(z) < _Z_SERIES
    z_series = jnp.where(small, z, 0.0)
    z_closed = jnp.where(small, 2.0 * _Z_SERIES, z)  # any value of the closed-form domain

    # x(z)/z by Horner over the Legendre coefficients P_n(rho) / (n + 1).
    legendre = [jnp.ones_like(rho), rho]
    for n in range(1, _Z_SERIES_TERMS - 1):
        legendre.append(((2 * n + 1) * rho * legendre[n] - n * legendre[n - 1]) / (n + 1))
    x_over_z = jnp.zeros_like(z_series * rho)
    for n in reversed(range(_Z_SERIES_TERMS)):
        x_over_z = x_over_z * z_series + legendre[n] / (n + 1)
    via_series = 1.0 / x_over_z

    above = (z_closed > rho) | ((z_closed == rho) & (rho < 0.0))
    s = jnp.sqrt((z_closed - rho) ** 2 + (1.0 - rho) * (1.0 + rho))
    ratio = jnp.where(above, (s + z_closed - rho) / (1.0 - rho), (1.0 + rho) / (s - z_closed + rho))
    via_closed_form = z_closed / jnp.log(ratio)
    return jnp.where(small, via_series, via_closed_form)


def _sinhc(y: jax.Array) -> jax.Array:
    """``sinh(y) / y``, 1 at y = 0, with finite derivatives everywhere (double-where)."""
    small = jnp.abs(y) < _SINHC_SERIES
    y_series = jnp.where(small, y, 0.0)
    y_closed = jnp.where(small, 1.0, y)
    y2 = y_series * y_series
    series = jnp.zeros_like(y2)
    for c in reversed(_SINHC_COEFFICIENTS):
        series = series * y2 + c
    return jnp.where(small, series, jnp.sinh(y_closed) / y_closed)


def _concrete_values(value) -> np.ndarray | None:
    """``value`` as a numpy array, or None while traced (no check possible)."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


class SABR(Model):
    """SABR model of one expiry slice, or a batch of slices.

    Parameters
    ----------
    alpha : float or array
        Initial volatility of the forward, ``alpha > 0``, in units of ``forward^(1 - beta)``
        per sqrt(year) (the ATM Black vol is about ``alpha / F^(1 - beta)``).
    beta : float or array
        CEV exponent in ``[0, 1]`` (0: normal-like backbone, 1: lognormal), fixed by the user.
    rho : float or array
        Correlation of forward and volatility, ``-1 < rho < 1`` (``+-1`` are allowed as limits).
    nu : float or array
        Volatility of volatility, ``nu >= 0``, per sqrt(year).
    expansion : {"hagan", "obloj"}, default "hagan"
        Which implied-vol expansion :meth:`implied_vol` evaluates (static: part of the
        compiled program, not a traced value).

    Notes
    -----
    Parameters are scalars for one slice or arrays ``(expiry,)``, one entry per slice (see
    :meth:`implied_vol`; a ``SABR`` is a pytree, so ``jax.vmap`` over slices works too).
    Domains are checked when the values are concrete (not while traced under ``jit``).

    Examples
    --------
    >>> model = SABR(alpha=0.3 * 100.0**0.3, beta=0.7, rho=-0.4, nu=0.8)
    >>> vols = model.implied_vol(100.0, jnp.array([80.0, 100.0, 125.0]), 0.5)
    """

    alpha: ArrayLike
    beta: ArrayLike
    rho: ArrayLike
    nu: ArrayLike
    expansion: Expansion = eqx.field(static=True, default="hagan")

    def __check_init__(self):
        if self.expansion not in EXPANSIONS:
            raise ValueError(f"expansion must be one of {EXPANSIONS}, got {self.expansion!r}")
        checks = {
            "alpha": (lambda v: v > 0.0, "alpha > 0"),
            "beta": (lambda v: (v >= 0.0) & (v <= 1.0), "0 <= beta <= 1"),
            "rho": (lambda v: (v >= -1.0) & (v <= 1.0), "-1 <= rho <= 1"),
            "nu": (lambda v: v >= 0.0, "nu >= 0"),
        }
        for name, (inside, domain) in checks.items():
            values = _concrete_values(getattr(self, name))
            if values is not None and not np.all(inside(values)):
                raise ValueError(f"SABR needs {domain}, got {name}={values}")

    def implied_vol(self, forward: ArrayLike, strike: ArrayLike, t: ArrayLike) -> jax.Array:
        """Black-76 implied vol of the SABR model by the chosen asymptotic expansion.

        Parameters
        ----------
        forward : float or array, shape (expiry,)
            Forward ``F > 0`` of each slice, quote currency.
        strike : array_like, shape (strike,) for one slice or (expiry, strike)
            Strikes ``K > 0``, same currency.
        t : float or array, shape (expiry,)
            Time to expiry in years, ``t >= 0``.

        Returns
        -------
        Array
            Black vol (decimal), the shape of ``strike`` (broadcast with the slices): per-slice
            arrays (parameters, ``forward``, ``t``) gain a trailing strike axis, as in ``SVI``,
            :func:`volcal.calibrate` and :mod:`volcal.arbitrage`.

        Notes
        -----
        With ``u = ln(F/K)``, ``m = sqrt(F K)``, ``a = 1 - beta`` and
        ``x(z) = ln[(sqrt(1 - 2 rho z + z^2) + z - rho) / (1 - rho)]``, both expansions read

        .. math::

            \\sigma_B = \\frac{\\alpha}{m^{a}}\\, L(u)\\, \\frac{z}{x(z)}
            \\Big[1 + \\Big(\\frac{a^2 \\alpha^2}{24 m^{2a}}
            + \\frac{\\rho \\beta \\nu \\alpha}{4 m^{a}}
            + \\frac{2 - 3\\rho^2}{24} \\nu^2\\Big) t\\Big].

        Hagan et al. (2002), eq. (2.17a): ``L = 1 / (1 + a^2 u^2/24 + a^4 u^4/1920)`` and
        ``z = (nu/alpha) m^a u``.

        Obloj (2008): the leading term is ``nu u / x(z)`` with
        ``z = nu (F^a - K^a) / (alpha a)`` (``z = nu u / alpha`` at ``beta = 1``). Since
        ``F^a - K^a = 2 m^a sinh(a u/2)``, this is the form above with
        ``L = (a u/2) / sinh(a u/2)`` and ``z = (nu/alpha) m^a u sinh(a u/2)/(a u/2)``, free of
        the 0/0 of ``F^a - K^a`` at K = F and ``beta = 1``. Hagan's ``L`` is the start of the
        Taylor series of Obloj's; at ``beta = 1`` the two expansions coincide.

        At the money (K = F) both give Hagan's eq. (2.18),
        ``alpha/F^a [1 + (a^2 alpha^2/(24 F^(2a)) + rho beta nu alpha/(4 F^a)
        + (2 - 3 rho^2) nu^2/24) t]``. ``z/x(z)`` is summed from its series near z = 0 and
        ``sinh(y)/y`` near y = 0, so values and derivatives of every order are smooth across
        K = F, ``nu = 0`` and ``beta = 1``.

        The expansion is asymptotic in ``nu^2 t``: it loses accuracy (and can give butterfly
        arbitrage) in the far wings and at long expiries. Values are returned as the formula
        gives them.

        References
        ----------
        Hagan et al. (2002), eqs. (2.17a), (2.18); Obloj (2008), the corrected zero-order term.
        """
        per_slice = (self.alpha, self.beta, self.rho, self.nu, forward, t)
        alpha, beta, rho, nu, forward, t = (_per_slice(x) for x in per_slice)
        return _implied_vol(alpha, beta, rho, nu, forward, strike, t, self.expansion)


def _per_slice(value) -> jax.Array:
    """A per-slice array with a trailing axis for the strikes; scalars unchanged."""
    value = jnp.asarray(value, jnp.float64)
    return value[..., None] if value.ndim > 0 else value


# One compiled program per expansion and shape, also outside jit (op-by-op dispatch of the
# series would compile dozens of small programs per call).
@functools.partial(jax.jit, static_argnames="expansion")
def _implied_vol(alpha, beta, rho, nu, forward, strike, t, expansion: str) -> jax.Array:
    """The formula of :meth:`SABR.implied_vol`, elementwise (arguments broadcast)."""
    forward = jnp.asarray(forward, jnp.float64)
    strike = jnp.asarray(strike, jnp.float64)
    t = jnp.asarray(t, jnp.float64)
    alpha, beta, rho, nu = (jnp.asarray(p, jnp.float64) for p in (alpha, beta, rho, nu))
    one_minus_beta = 1.0 - beta
    log_forward_over_strike = jnp.log(forward / strike)
    # (F K)^((1 - beta)/2) as a power of the geometric mean: exactly 1 at beta = 1, and no
    # overflow of F K for large forwards.
    backbone = (jnp.sqrt(forward) * jnp.sqrt(strike)) ** one_minus_beta
    z = nu / alpha * backbone * log_forward_over_strike

    if expansion == "hagan":
        moneyness_squared = (one_minus_beta * log_forward_over_strike) ** 2
        leading = 1.0 / (1.0 + moneyness_squared / 24.0 + moneyness_squared**2 / 1920.0)
    else:
        sinhc = _sinhc(0.5 * one_minus_beta * log_forward_over_strike)
        leading = 1.0 / sinhc
        z = z * sinhc

    correction = (
        (one_minus_beta * alpha / backbone) ** 2 / 24.0
        + rho * beta * nu * alpha / (4.0 * backbone)
        + (2.0 - 3.0 * rho**2) * nu**2 / 24.0
    )
    return alpha / backbone * leading * _z_over_x(z, rho) * (1.0 + correction * t)


# ---------------------------------------------------------------------------------------------
# Calibration spec
# ---------------------------------------------------------------------------------------------

#: Parameters a calibration fits, in the order the solver sees them; ``beta`` is always fixed.
CALIBRATED: tuple[str, ...] = ("alpha", "rho", "nu")
#: Parameters that may additionally be held at the template's value (``alpha`` sets the level
#: and is always fitted).
FIXABLE: frozenset[str] = frozenset({"rho", "nu"})

#: The bijection maps the reals onto ``|rho| < RHO_LIMIT``. In float64 ``tanh(x)`` rounds to 1
#: for x > 19, and at ``|rho| = 1`` the expansion degenerates (``x(z)`` is infinite for
#: ``rho z >= 1``, the smile zero beyond, gradients NaN); 0.9999 keeps every image inside while
#: being indistinguishable from perfect correlation for any option chain.
RHO_LIMIT = 0.9999

#: Width, in ATM standard deviations ``sigma_ATM sqrt(t)`` of log-moneyness, over which the
#: default weights taper: a quote that far out counts half. The expansion (in
#: ``z ~ nu ln(K/F)/sigma``) is accurate near the money and increasingly wrong, even
#: arbitrageable, in the wings (Hagan et al. 2002; Obloj 2008), so wing quotes should not pull
#: the fit away from the money; three deviations cover the liquid part of a smile.
WING_TAPER_STDDEVS = 3.0

#: Bounds of the initial guess (not of the fit). The starting correlation stays inside
#: +-0.9 so the solver starts where ``tanh`` has slope; the starting vol of vol lies in
#: [0.01, 10] per sqrt(year): 0.01 when the smile shows no convexity (keeps ``log nu`` finite),
#: 10 bounding the noisy curvature of a handful of very short-dated quotes (crypto smiles one day
#: out reach nu of a few, not tens).
GUESS_RHO_LIMIT = 0.9
GUESS_NU_MIN = 0.01
GUESS_NU_MAX = 10.0
#: Newton steps on Hagan's cubic for alpha given the ATM vol (eq. 2.18); it starts at the
#: leading-order root and the bracket's t-term is a small correction, so 8 steps reach float64.
ATM_NEWTON_STEPS = 8


def free_parameters(fixed: Iterable[str] = ()) -> tuple[str, ...]:
    """Names of the fitted parameters, in the order of the unconstrained vector's last axis:
    :data:`CALIBRATED` less ``fixed`` (a subset of :data:`FIXABLE`, else ``ValueError``)."""
    fixed = frozenset(fixed)
    unknown = fixed - FIXABLE
    if unknown:
        raise ValueError(
            f"only {sorted(FIXABLE)} may be fixed in a SABR calibration (beta always is), "
            f"got {sorted(unknown)}"
        )
    return tuple(name for name in CALIBRATED if name not in fixed)


def to_unconstrained(model: SABR, *, fixed: Iterable[str] = ()) -> jax.Array:
    """The fitted parameters of ``model`` as unconstrained reals.

    Parameters
    ----------
    model : SABR
        Parameters inside the spec's domain: ``alpha > 0``, ``|rho| < RHO_LIMIT``, ``nu > 0``;
        scalars or arrays of shape ``(expiry,)``.
    fixed : iterable of str, default ()
        Parameters held fixed (a subset of :data:`FIXABLE`); they are left out.

    Returns
    -------
    Array, shape (..., n)
        ``ln(alpha)``, ``artanh(rho / RHO_LIMIT)``, ``ln(nu)`` stacked on the last axis in the
        order :func:`free_parameters` names (fixed ones left out): the ``u`` of a least-squares
        solve, as SVI's spec makes it.

    Raises
    ------
    equinox.EquinoxRuntimeError
        When a parameter lies outside the domain (its image would be infinite or NaN), also
        under ``jit``; ``ValueError`` for a fixed name outside :data:`FIXABLE`.

    Notes
    -----
    ``ln`` maps the scale parameters ``alpha`` (which scales as ``F^(1 - beta)``) and ``nu`` to
    steps of equal relative size; ``nu = 0`` (the CEV limit) is ``ln nu -> -inf``.
    """
    names = free_parameters(fixed)
    alpha, rho, nu = (jnp.asarray(p, jnp.float64) for p in (model.alpha, model.rho, model.nu))
    alpha = eqx.error_if(alpha, ~(alpha > 0.0), "SABR spec: alpha must be > 0")
    rho = eqx.error_if(
        rho, ~(jnp.abs(rho) < RHO_LIMIT), f"SABR spec: |rho| must be < RHO_LIMIT = {RHO_LIMIT}"
    )
    nu = eqx.error_if(nu, ~(nu > 0.0), "SABR spec: nu must be > 0 (nu = 0 is ln nu = -inf)")
    images = {"alpha": jnp.log(alpha), "rho": jnp.arctanh(rho / RHO_LIMIT), "nu": jnp.log(nu)}
    return jnp.stack(jnp.broadcast_arrays(*(images[name] for name in names)), axis=-1)


def from_unconstrained(u: ArrayLike, template: SABR, *, fixed: Iterable[str] = ()) -> SABR:
    """The model whose fitted parameters are ``u`` (unconstrained) and the rest ``template``'s.

    Parameters
    ----------
    u : array, shape (..., n)
        Unconstrained reals, any values, on the last axis in the order of
        :func:`free_parameters` ``(fixed)``.
    template : SABR
        Supplies ``beta``, the expansion and the values of the ``fixed`` parameters.
    fixed : iterable of str, default ()
        The parameters held at the template's values, as given to :func:`to_unconstrained`.

    Returns
    -------
    SABR
        ``alpha = exp(.)``, ``rho = RHO_LIMIT tanh(.)``, ``nu = exp(.)``: the inverse of
        :func:`to_unconstrained` on the spec's domain.
    """
    names = free_parameters(fixed)
    u = jnp.asarray(u, jnp.float64)
    if u.shape[-1:] != (len(names),):
        raise ValueError(f"u must end in an axis of {len(names)} values {names}, not {u.shape}")
    maps = {"alpha": jnp.exp, "rho": lambda x: RHO_LIMIT * jnp.tanh(x), "nu": jnp.exp}
    values = {name: getattr(template, name) for name in ("alpha", "beta", "rho", "nu")}
    for column, name in enumerate(names):
        values[name] = maps[name](u[..., column])
    return SABR(**values, expansion=template.expansion)


def default_weights(
    quote_weight: ArrayLike, log_moneyness: ArrayLike, t: ArrayLike, atm_vol: ArrayLike
) -> jax.Array:
    """Default weights of implied-vol residuals in a SABR fit.

    ``quote_weight / (1 + (d / WING_TAPER_STDDEVS)^2)`` with ``d = k / (atm_vol sqrt(t))``,
    for quote weights (an ``IVGrid``'s ``weight``, 0 for padding), log-moneyness
    ``k = ln(K/F)``, expiry ``t > 0`` (years) and the slice's ATM vol. Residuals are meant in
    implied vol (the expansion's own output). The taper keeps the fit where the expansion is
    accurate (see :data:`WING_TAPER_STDDEVS`) without dropping wing quotes: their weight
    falls off like ``d^-2``, never to zero.
    """
    standardised = jnp.asarray(log_moneyness, jnp.float64) / (
        jnp.asarray(atm_vol, jnp.float64) * jnp.sqrt(jnp.asarray(t, jnp.float64))
    )
    return jnp.asarray(quote_weight, jnp.float64) / (1.0 + (standardised / WING_TAPER_STDDEVS) ** 2)


def _quadratic_smile_fit(log_moneyness, vol, weight, t):
    """Weighted least-squares ``(c0, c1, c2)`` of ``vol ~ c0 + c1 k + c2 k^2``, solved in
    standardised moneyness (columns of order one) with the default weights' taper."""
    # Padding (weight 0) may hold any finite or non-finite placeholder: keep it out entirely.
    quoted = weight > 0.0
    vol = jnp.where(quoted, vol, 0.0)
    log_moneyness = jnp.where(quoted, log_moneyness, 0.0)
    rough_vol = jnp.sum(weight * vol) / jnp.sum(weight)
    scale = rough_vol * jnp.sqrt(t)
    standardised = log_moneyness / scale
    fit_weight = default_weights(weight, log_moneyness, t, rough_vol)
    root_weight = jnp.sqrt(fit_weight)
    design = jnp.stack([jnp.ones_like(standardised), standardised, standardised**2], axis=-1)
    coefficients = jnp.linalg.lstsq(design * root_weight[:, None], vol * root_weight)[0]
    return coefficients[0], coefficients[1] / scale, coefficients[2] / scale**2


def initial_guess(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    *,
    beta: float,
    weight: ArrayLike | None = None,
    rho: ArrayLike | None = None,
    nu: ArrayLike | None = None,
    expansion: Expansion = "hagan",
) -> SABR:
    """A starting point for a SABR fit of one slice from its smile's level, skew and curvature.

    Parameters
    ----------
    forward, t : float
        The slice's forward F and expiry in years (> 0).
    strike, vol : array, shape (strike,)
        Strikes K of the quotes and their implied vols (decimal).
    beta : float
        The CEV exponent in [0, 1] (fixed, never guessed).
    weight : array, shape (strike,), optional
        Quote weights, 0 for padding; default all ones. At least three strikes need weight.
    rho, nu : float, optional
        Fixed values (see :data:`FIXABLE`); the others are guessed given them.
    expansion : {"hagan", "obloj"}, default "hagan"
        Carried into the returned model.

    Returns
    -------
    SABR
        The guess (``jax.vmap`` over slices, ``beta`` closed over, for a whole grid).

    Notes
    -----
    The smile near the money is fitted by a weighted quadratic ``sigma(k) ~ c0 + c1 k + c2 k^2``
    in ``k = ln(K/F)`` and matched with the short-expiry expansion of eq. (2.17a) to second
    order in k (``a = 1 - beta``, ``sigma_0 = alpha / F^a``, ``g = nu / sigma_0``):

    .. math::

        \\sigma(k) \\approx \\sigma_0 \\Big[1 + \\frac{\\rho g - a}{2} k
        + \\frac{a^2 + (2 - 3\\rho^2) g^2}{12} k^2\\Big],

    hence ``rho g = 2 c1/c0 + a`` (skew) and ``g^2 = (12 c2/c0 - a^2 + 3 (rho g)^2) / 2``
    (curvature), so ``nu = g c0`` and ``rho = (rho g)/g``, within the guess bounds
    (:data:`GUESS_RHO_LIMIT`, :data:`GUESS_NU_MIN`, :data:`GUESS_NU_MAX`). With ``rho`` fixed,
    ``g`` comes from the curvature, ``g^2 = (12 c2/c0 - a^2) / (2 - 3 rho^2)``, or from the skew
    where ``2 - 3 rho^2`` is not positive; with ``nu`` fixed, ``rho`` comes from the skew;
    with both fixed, only ``alpha`` is guessed. Finally ``alpha`` solves the ATM condition,
    Hagan's cubic (eq. 2.18) ``c0 = alpha/F^a [1 + t (A alpha^2 + B alpha + C)]``, by Newton's
    method from its leading-order root ``c0 F^a`` (West 2005). The guess then reproduces the
    fitted ATM vol exactly.

    References
    ----------
    Hagan et al. (2002), eqs. (2.17a), (2.18). G. West, "Calibration of the SABR model in
    illiquid markets", Applied Mathematical Finance 12(4) (2005), on alpha from the ATM vol.
    """
    alpha, rho_guess, nu_guess = _initial_guess(forward, strike, t, vol, weight, beta, rho, nu)
    return SABR(alpha=alpha, beta=beta, rho=rho_guess, nu=nu_guess, expansion=expansion)


@jax.jit
def _initial_guess(forward, strike, t, vol, weight, beta, rho, nu):
    """``(alpha, rho, nu)`` of :func:`initial_guess`; ``rho``, ``nu`` are None unless fixed."""
    forward = jnp.asarray(forward, jnp.float64)
    strike = jnp.asarray(strike, jnp.float64)
    t = jnp.asarray(t, jnp.float64)
    vol = jnp.asarray(vol, jnp.float64)
    weight = jnp.ones_like(vol) if weight is None else jnp.asarray(weight, jnp.float64)
    beta = jnp.asarray(beta, jnp.float64)
    one_minus_beta = 1.0 - beta

    atm_vol, skew, curvature = _quadratic_smile_fit(jnp.log(strike / forward), vol, weight, t)
    rho_g_from_skew = 2.0 * skew / atm_vol + one_minus_beta
    curvature_term = 12.0 * curvature / atm_vol - one_minus_beta**2
    g_min, g_max = GUESS_NU_MIN / atm_vol, GUESS_NU_MAX / atm_vol

    if rho is not None and nu is not None:
        rho_guess, nu_guess = jnp.asarray(rho, jnp.float64), jnp.asarray(nu, jnp.float64)
    elif nu is not None:
        nu_guess = jnp.asarray(nu, jnp.float64)
        g = nu_guess / atm_vol
        rho_guess = rho_g_from_skew / jnp.where(g > 0.0, g, 1.0)
    elif rho is not None:
        rho_fixed = jnp.asarray(rho, jnp.float64)
        curvature_weight = 2.0 - 3.0 * rho_fixed**2
        safe_weight = jnp.where(curvature_weight > 0.0, curvature_weight, 1.0)
        safe_rho = jnp.where(rho_fixed != 0.0, rho_fixed, 1.0)
        g = jnp.where(
            curvature_weight > 0.0,
            jnp.sqrt(jnp.maximum(curvature_term / safe_weight, 0.0)),
            jnp.abs(rho_g_from_skew / safe_rho),
        )
        nu_guess = atm_vol * jnp.clip(g, g_min, g_max)
        rho_guess = rho_fixed
    else:
        g_squared = 0.5 * (curvature_term + 3.0 * rho_g_from_skew**2)
        g = jnp.clip(jnp.sqrt(jnp.maximum(g_squared, 0.0)), g_min, g_max)
        nu_guess = g * atm_vol
        rho_guess = rho_g_from_skew / g
    if rho is None:
        rho_guess = jnp.clip(rho_guess, -GUESS_RHO_LIMIT, GUESS_RHO_LIMIT)

    # Newton on f(alpha) = alpha F^-a (1 + t (A alpha^2 + B alpha + C)) - c0.
    backbone = forward**one_minus_beta
    a_coef = one_minus_beta**2 / (24.0 * backbone**2)
    b_coef = rho_guess * beta * nu_guess / (4.0 * backbone)
    c_coef = (2.0 - 3.0 * rho_guess**2) * nu_guess**2 / 24.0
    leading_order = atm_vol * backbone
    alpha = leading_order
    for _ in range(ATM_NEWTON_STEPS):
        value = alpha / backbone * (1.0 + t * (a_coef * alpha**2 + b_coef * alpha + c_coef))
        slope = (1.0 + t * (3.0 * a_coef * alpha**2 + 2.0 * b_coef * alpha + c_coef)) / backbone
        alpha = alpha - (value - atm_vol) / slope
    # A cubic without a nearby positive root (extreme t nu^2) keeps the leading order.
    alpha = jnp.where(jnp.isfinite(alpha) & (alpha > 0.0), alpha, leading_order)
    return alpha, rho_guess, nu_guess


def _spec_settings(model: SABR | None, fixed: dict) -> tuple:
    """``(beta, expansion, ((name, value), ...))`` from a model instance and/or ``fixed``.

    A SABR fit needs ``beta``: from ``fixed={"beta": 0.5}`` or from a warm-start model;
    ``fixed`` may also hold ``rho`` and/or ``nu`` (values, or None to keep the model's) and
    ``expansion``."""
    fixed = dict(fixed)
    expansion = fixed.pop("expansion", None) or (model.expansion if model is not None
                                                 else "hagan")  # fmt: skip
    if "beta" in fixed:
        beta = float(fixed.pop("beta"))
    elif model is not None:
        beta = float(np.asarray(model.beta).reshape(-1)[0])
    else:
        raise ValueError("a SABR calibration needs beta: calibrate(SABR, grid, "
                         "fixed={'beta': 0.5}) or a model to start from")  # fmt: skip
    free_parameters(fixed)  # validates the names
    values = []
    for name in sorted(fixed):
        value = fixed[name]
        if value is None:
            if model is None:
                raise ValueError(f"fixed {name!r} needs a value or a model to take it from")
            value = float(np.asarray(getattr(model, name)).reshape(-1)[0])
        values.append((name, float(value)))
    return beta, expansion, tuple(values)


def _spec_template(settings) -> SABR:
    beta, expansion, values = settings
    fixed = dict(values)
    return SABR(alpha=1.0, beta=beta, rho=fixed.get("rho", 0.0), nu=fixed.get("nu", 0.5),
                expansion=expansion)  # fmt: skip


def _spec_initial_guess(forward, t, strike, mid_iv, weight, mask, settings) -> SABR:
    beta, expansion, values = settings
    fixed = dict(values)
    return initial_guess(forward, strike, t, mid_iv, beta=beta,
                         weight=jnp.where(mask, weight, 0.0), rho=fixed.get("rho"),
                         nu=fixed.get("nu"), expansion=expansion)  # fmt: skip


SABR.calibration = SliceSpec(
    settings=_spec_settings,
    from_unconstrained=lambda u, settings: from_unconstrained(
        u, _spec_template(settings), fixed=dict(settings[2])
    ),
    to_unconstrained=lambda model, settings: to_unconstrained(model, fixed=dict(settings[2])),
    initial_guess=_spec_initial_guess,
    penalty=lambda model, atm_total_variance: jnp.zeros(0),
    parameter_names=("alpha", "beta", "rho", "nu"),
)

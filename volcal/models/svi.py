"""Raw SVI per expiry slice (Gatheral 2004), with jump-wings conversion and its calibration spec.

Total variance at log-moneyness ``k = ln(K/F)``:

    w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2)),

with ``b >= 0``, ``|rho| < 1``, ``sigma > 0`` and ``a + b sigma sqrt(1 - rho^2) >= 0`` (the
minimum of ``w`` is non-negative). Parameters are arrays with one entry per slice, so a whole
surface of independent slices is one pytree and one (batched, vmapped) solve.

References
----------
J. Gatheral, "A parsimonious arbitrage-free implied volatility parameterization", Global
Derivatives (2004). J. Gatheral & A. Jacquier, "Arbitrage-free SVI volatility surfaces",
Quantitative Finance 14 (2014), sections 3 (raw and jump-wings forms) and 2.2 (Durrleman's g).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from volcal.models.base import Model, SliceSpec


class SVI(Model):
    """Raw SVI slices; every field has shape ``(expiry,)`` (or is a scalar for one slice)."""

    a: jax.Array
    b: jax.Array
    rho: jax.Array
    m: jax.Array
    sigma: jax.Array

    def total_variance(self, log_moneyness) -> jax.Array:
        """``w(k)``; ``log_moneyness`` has shape ``(expiry, strike)`` (or broadcasts)."""
        a, b, rho, m, sigma = (jnp.expand_dims(jnp.asarray(p), -1) for p in self._params())
        k = jnp.asarray(log_moneyness) - m
        return a + b * (rho * k + jnp.sqrt(k * k + sigma * sigma))

    def total_variance_at(self, forward, log_moneyness, t) -> jax.Array:
        """Closed form: :meth:`total_variance` (``forward`` and ``t`` are not needed)."""
        return jnp.maximum(self.total_variance(log_moneyness), 0.0)

    def implied_vol(self, forward, strike, t) -> jax.Array:
        """``sqrt(w(ln(K/F)) / t)``; ``forward`` and ``t`` per slice ``(expiry,)``, ``strike``
        ``(expiry, strike)``."""
        forward = jnp.expand_dims(jnp.asarray(forward), -1)
        t = jnp.expand_dims(jnp.asarray(t), -1)
        w = self.total_variance(jnp.log(jnp.asarray(strike) / forward))
        return jnp.sqrt(jnp.maximum(w, 0.0) / t)

    def _params(self):
        return self.a, self.b, self.rho, self.m, self.sigma

    def derivatives(self, log_moneyness) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``w, dw/dk, d2w/dk2`` in closed form."""
        a, b, rho, m, sigma = (jnp.expand_dims(jnp.asarray(p), -1) for p in self._params())
        k = jnp.asarray(log_moneyness) - m
        root = jnp.sqrt(k * k + sigma * sigma)
        w = a + b * (rho * k + root)
        return w, b * (rho + k / root), b * sigma * sigma / root**3

    def durrleman_g(self, log_moneyness) -> jax.Array:
        """Durrleman's ``g(k) = (1 - k w'/(2w))^2 - w'^2/4 (1/w + 1/4) + w''/2``.

        The slice is free of butterfly arbitrage iff ``g >= 0`` everywhere (and ``d_+ -> -inf``);
        ``g`` is the risk-neutral density times ``sqrt(2 pi w) e^{d_-^2/2}`` (Gatheral &
        Jacquier 2014, Lemma 2.2)."""
        k = jnp.asarray(log_moneyness)
        w, w1, w2 = self.derivatives(k)
        return (1.0 - k * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2


class JumpWings(NamedTuple):
    """SVI jump-wings parameters of a slice at expiry ``t`` (Gatheral & Jacquier 2014, 3.3).

    ``v`` ATM variance, ``psi`` ATM skew ``d sigma_BS / dk`` scaled as in the paper, ``p`` and
    ``c`` the left and right wing slopes, ``v_tilde`` the minimum variance."""

    v: jax.Array
    psi: jax.Array
    p: jax.Array
    c: jax.Array
    v_tilde: jax.Array


def to_jump_wings(svi: SVI, t) -> JumpWings:
    """Raw SVI -> jump-wings at expiry ``t`` (Gatheral & Jacquier 2014, eq. 3.5)."""
    a, b, rho, m, sigma = (jnp.asarray(p) for p in svi._params())
    root = jnp.sqrt(m * m + sigma * sigma)
    w = a + b * (-rho * m + root)
    v = w / t
    sqrt_w = jnp.sqrt(w)
    psi = b / (2.0 * sqrt_w) * (-m / root + rho)
    p = b * (1.0 - rho) / sqrt_w
    c = b * (1.0 + rho) / sqrt_w
    v_tilde = (a + b * sigma * jnp.sqrt(1.0 - rho * rho)) / t
    return JumpWings(v, psi, p, c, v_tilde)


def from_jump_wings(jw: JumpWings, t) -> SVI:
    """Jump-wings -> raw SVI (Gatheral & Jacquier 2014, Lemma 3.2); needs ``m != 0``-safe
    handling: where ``beta = rho - 2 psi sqrt(w)/b`` is 1 in magnitude the slice is degenerate."""
    v, psi, p, c, v_tilde = (jnp.asarray(x) for x in jw)
    w = v * t
    sqrt_w = jnp.sqrt(w)
    b = 0.5 * sqrt_w * (c + p)
    rho = 1.0 - p * sqrt_w / b
    beta = rho - 2.0 * psi * sqrt_w / b
    alpha = jnp.sign(beta) * jnp.sqrt(1.0 / (beta * beta) - 1.0)
    m = (v - v_tilde) * t / (b * (-rho + jnp.sign(alpha) * jnp.sqrt(1.0 + alpha * alpha)
                                  - alpha * jnp.sqrt(1.0 - rho * rho)))  # fmt: skip
    sigma = alpha * m
    a = v_tilde * t - b * sigma * jnp.sqrt(1.0 - rho * rho)
    return SVI(a=a, b=b, rho=rho, m=m, sigma=sigma)


# ---------------------------------------------------------------------------------------------
# Calibration spec: bijection, initial guess, butterfly penalty (STYLE.md item 5)

#: |rho| stays below this, so sqrt(1 - rho^2) and the wing slopes stay well conditioned.
RHO_MAX = 0.999
#: Smallest sigma (ATM curvature scale): below it the smile has a kink a quote grid cannot see.
SIGMA_MIN = 1e-4
#: Points where Durrleman's g is penalised: PENALTY_POINTS_NEAR uniform in standardised
#: moneyness k / sqrt(w_ATM) over +-PENALTY_STANDARD_DEVIATIONS (g varies on the scale of the
#: ATM total vol, which is tiny for short expiries), plus PENALTY_POINTS_FAR uniform over the
#: whole range volcal.arbitrage checks.
PENALTY_POINTS_NEAR = 161
PENALTY_STANDARD_DEVIATIONS = 8.0
PENALTY_POINTS_FAR = 81
#: g is evaluated on every point, but only the point of lowest g on each side of the money
#: (_LEFT_OF_THE_MONEY) enters the least squares: at an optimum one or two points hold the
#: constraint, and differentiating two points instead of all 242 cuts each Levenberg-Marquardt
#: step's work on the penalty by about five sixths (on the benchmark's BTC surface the solve
#: took 6.7 ms against 12.2 ms, best of 30 interleaved runs). The penalty is the full one
#: whenever at most one point on each side falls short of the margin, and the worst of each
#: side otherwise. On the eleven real surfaces of docs/real_data_fits.md the fits, their
#: convergence and the arbitrage checks are those of the full penalty.
#: Penalty residual per unit of negative g (residuals are in vol, ~1e-3): 100 makes a g of
#: -1e-5 cost as much as a 0.1 vol point miss on one quote; the target is g >= PENALTY_MARGIN.
PENALTY_WEIGHT = 100.0
PENALTY_MARGIN = 2e-3
PENALTY_SMOOTHING = 2e-4
PARAMETER_NAMES = ("a", "b", "rho", "m", "sigma")


def _softplus(x):
    return jnp.logaddexp(x, 0.0)


def _softplus_inverse(y):
    return jnp.log(jnp.expm1(y))


def from_unconstrained(u) -> SVI:
    """Map unconstrained reals ``u[..., 5]`` to raw SVI parameters.

    ``b = softplus(u1)``, ``rho = RHO_MAX tanh(u2)``, ``m = u3``,
    ``sigma = SIGMA_MIN + softplus(u4)``, and ``a = -b sigma sqrt(1 - rho^2) + softplus(u0)``,
    so the minimum total variance ``a + b sigma sqrt(1 - rho^2)`` is positive. (Raw SVI has a
    near-degenerate direction -- sigma, -m, -a growing together, the smile tending to a
    parabola -- along which a solve may creep without converging; the status reports it.)
    """
    u = jnp.asarray(u)
    b = _softplus(u[..., 1])
    rho = RHO_MAX * jnp.tanh(u[..., 2])
    m = u[..., 3]
    sigma = SIGMA_MIN + _softplus(u[..., 4])
    a = -b * sigma * jnp.sqrt(1.0 - rho * rho) + _softplus(u[..., 0])
    return SVI(a=a, b=b, rho=rho, m=m, sigma=sigma)


def to_unconstrained(svi: SVI) -> jax.Array:
    """Inverse of :func:`from_unconstrained` (parameters must satisfy its constraints)."""
    a, b, rho, m, sigma = (jnp.asarray(p) for p in svi._params())
    minimum = a + b * sigma * jnp.sqrt(1.0 - rho * rho)
    return jnp.stack(
        [_softplus_inverse(minimum), _softplus_inverse(b), jnp.arctanh(rho / RHO_MAX), m,
         _softplus_inverse(sigma - SIGMA_MIN)],
        axis=-1,
    )  # fmt: skip


#: Quasi-explicit start (:func:`initial_guess`): candidate ``m`` at GUESS_M_POINTS fractions
#: evenly over 0.1-0.9 of the quoted log-moneyness range, candidate ``sigma`` at GUESS_SIGMA_POINTS
#: geometric steps over GUESS_SIGMA_RANGE times that range (from a near-kink to a near-parabola
#: smile); each candidate's butterfly check uses GUESS_PENALTY_POINTS_NEAR and
#: GUESS_PENALTY_POINTS_FAR points laid out like the penalty's own (a coarse copy: the start
#: only has to land in the right part of the valley, the solve's penalty is the dense one).
GUESS_M_POINTS = 8
GUESS_SIGMA_POINTS = 8
GUESS_SIGMA_RANGE = (0.01, 3.0)
GUESS_PENALTY_POINTS_NEAR = 21
GUESS_PENALTY_POINTS_FAR = 11


def heuristic_guess(log_moneyness, total_variance, mask) -> SVI:
    """A starting slice from a few quotes of one expiry (arrays of one slice, padded).

    ``m = 0``; ``w0`` = the total variance of the quote nearest the money; wing slopes
    ``s_left, s_right`` = secants from the money to the outermost quote on each side (floored
    at 1e-3 so b > 0); ``b = (s_left + s_right)/2``, ``rho = (s_right - s_left)/(s_left +
    s_right)``; ``sigma`` = half the quoted log-moneyness range (at least 0.05); and
    ``a = w0 - b sigma`` so that ``w(0) = w0``, lifted if needed to keep the minimum variance
    at least ``w0 / 10``.
    """
    k = jnp.asarray(log_moneyness)
    w = jnp.asarray(total_variance)
    big = 1e30
    atm = jnp.argmin(jnp.where(mask, jnp.abs(k), big))
    w0 = w[atm]
    left = jnp.argmin(jnp.where(mask, k, big))
    right = jnp.argmax(jnp.where(mask, k, -big))
    slope_left = jnp.maximum((w[left] - w0) / jnp.maximum(-k[left], 1e-3), 1e-3)
    slope_right = jnp.maximum((w[right] - w0) / jnp.maximum(k[right], 1e-3), 1e-3)
    b = 0.5 * (slope_left + slope_right)
    rho = jnp.clip((slope_right - slope_left) / (slope_left + slope_right), -0.9, 0.9)
    sigma = jnp.maximum(0.25 * (k[right] - k[left]), 0.05)
    a = w0 - b * sigma
    a = jnp.maximum(a, 0.1 * w0 - b * sigma * jnp.sqrt(1.0 - rho * rho))
    return SVI(a=a, b=b, rho=rho, m=jnp.zeros_like(a), sigma=sigma)


def _solve_symmetric_3(n00, n01, n02, n11, n12, n22, r0, r1, r2):
    """The solution of the symmetric 3x3 system ``N x = r`` by its adjugate (elementwise over
    any batch shape); a singular system gives non-finite entries."""
    c00 = n11 * n22 - n12 * n12
    c01 = n02 * n12 - n01 * n22
    c02 = n01 * n12 - n02 * n11
    c11 = n00 * n22 - n02 * n02
    c12 = n01 * n02 - n00 * n12
    c22 = n00 * n11 - n01 * n01
    det = n00 * c00 + n01 * c01 + n02 * c02
    return ((c00 * r0 + c01 * r1 + c02 * r2) / det, (c01 * r0 + c11 * r1 + c12 * r2) / det,
            (c02 * r0 + c12 * r1 + c22 * r2) / det)  # fmt: skip


def _feasible(a, b, rho, m, sigma, floor) -> SVI:
    """Candidate slices moved inside the bijection's domain: ``b >= 1e-4``, ``|rho| <= 0.95``,
    minimum total variance at least ``floor``."""
    b = jnp.maximum(b, 1e-4)
    rho = jnp.clip(rho, -0.95, 0.95)
    a = jnp.maximum(a, floor - b * sigma * jnp.sqrt(1.0 - rho * rho))
    return SVI(a=a, b=b, rho=rho, m=m, sigma=sigma)


def initial_guess(log_moneyness, total_variance, mask, weight, t) -> SVI:
    """A starting slice for one expiry (arrays of one slice, padded): the best of a grid of
    quasi-explicit fits (Zeliade Systems, "Quasi-explicit calibration of Gatheral's SVI model",
    2009) and of :func:`heuristic_guess`.

    For fixed ``(m, sigma)``, ``w(k) = a + d (k - m) + c sqrt((k - m)^2 + sigma^2)`` is linear
    in ``(a, d, c) = (a, b rho, b)``, so the best ``(a, d, c)`` is a 3x3 weighted least-squares
    solve. Its weights, ``weight / (2 sigma_mid t)^2`` in total variance, make each residual
    the vol residual to first order (``d sigma = dw / (2 sigma t)``), so candidates are ranked
    by (nearly) the calibration's own cost. Each candidate ``(m, sigma)`` of the GUESS_* grid
    is solved, moved into the bijection's domain (:func:`_feasible`; minimum variance at least
    a twentieth of the lowest quoted total variance), and scored by that cost plus the
    butterfly penalty on a coarse copy of the penalty's points, so that the start already sits
    where the constraint lets the fit go (raw SVI's valley is long and flat: the penalty, not
    the quotes, often fixes where along it the optimum lies).
    """
    k = jnp.asarray(log_moneyness)
    w = jnp.asarray(total_variance)
    big = 1e30
    weight = jnp.where(mask, weight / (4.0 * w * t), 0.0)  # weight (dsigma / dw)^2
    lowest, highest = jnp.min(jnp.where(mask, k, big)), jnp.max(jnp.where(mask, k, -big))
    span = jnp.maximum(highest - lowest, 1e-3)
    floor = 0.05 * jnp.min(jnp.where(mask, w, big))
    m = lowest + span * jnp.linspace(0.1, 0.9, GUESS_M_POINTS)
    sigma = jnp.maximum(span * jnp.geomspace(*GUESS_SIGMA_RANGE, GUESS_SIGMA_POINTS),
                        2.0 * SIGMA_MIN)  # fmt: skip
    m, sigma = (x.ravel() for x in jnp.meshgrid(m, sigma, indexing="ij"))
    x = k[None, :] - m[:, None]
    root = jnp.sqrt(x * x + sigma[:, None] ** 2)

    def total(values):
        return jnp.sum(weight * values, axis=-1)

    a, d, c = _solve_symmetric_3(total(jnp.ones_like(x)), total(x), total(root), total(x * x),
                                 total(x * root), total(root * root), total(w), total(x * w),
                                 total(root * w))  # fmt: skip
    rho = d / jnp.where(c > 0.0, c, 1.0)
    candidates = _feasible(a, c, rho, m, sigma, floor)
    heuristic = heuristic_guess(k, w, mask)
    candidates = jax.tree.map(lambda x, y: jnp.append(x, y), candidates, heuristic)
    model = candidates.total_variance(jnp.broadcast_to(k, (m.size + 1, k.size)))
    cost = total((model - w) ** 2)
    atm_w = w[jnp.argmin(jnp.where(mask, jnp.abs(k), big))]
    points = _penalty_points(atm_w, GUESS_PENALTY_POINTS_NEAR, GUESS_PENALTY_POINTS_FAR)
    g = candidates.durrleman_g(jnp.broadcast_to(points, (m.size + 1, points.size)))
    penalty = jnp.sum((PENALTY_WEIGHT * jnp.maximum(PENALTY_MARGIN - g, 0.0)) ** 2, axis=-1)
    score = jnp.where(jnp.isfinite(cost + penalty), cost + penalty, jnp.inf)
    # With fewer than three quotes every quasi-explicit solve is singular: the heuristic
    # (last) candidate is the fallback.
    score = score.at[-1].set(jnp.where(jnp.isfinite(score[-1]), score[-1], 1e300))
    return jax.tree.map(lambda x: x[jnp.argmin(score)], candidates)


#: Which penalty points lie left of the money (the first halves of the near and far points).
_LEFT_OF_THE_MONEY = np.concatenate([
    np.arange(PENALTY_POINTS_NEAR) < PENALTY_POINTS_NEAR // 2,
    np.arange(PENALTY_POINTS_FAR) < PENALTY_POINTS_FAR // 2,
])


def _penalty_points(atm_total_variance, near: int, far: int) -> jax.Array:
    """``near`` points evenly over +-PENALTY_STANDARD_DEVIATIONS ATM total vols and ``far``
    evenly over the arbitrage check's range (see the PENALTY_* constants)."""
    from volcal.arbitrage import half_width

    return jnp.concatenate([
        jnp.linspace(-1.0, 1.0, near)
        * (PENALTY_STANDARD_DEVIATIONS * jnp.sqrt(jnp.maximum(atm_total_variance, 0.0))),
        jnp.linspace(-1.0, 1.0, far) * half_width(atm_total_variance),
    ])  # fmt: skip


def butterfly_penalty(svi: SVI, atm_total_variance) -> jax.Array:
    """Residuals ``PENALTY_WEIGHT * max(PENALTY_MARGIN - g(k), 0)`` at the penalty point of
    lowest g in each quarter of the points (see the constants above); zero where the slice is
    free of butterfly arbitrage."""
    points = _penalty_points(atm_total_variance, PENALTY_POINTS_NEAR, PENALTY_POINTS_FAR)
    g = jax.lax.stop_gradient(svi.durrleman_g(points))
    left = _LEFT_OF_THE_MONEY
    lowest = jnp.stack([jnp.argmin(jnp.where(left, g, jnp.inf)),
                        jnp.argmin(jnp.where(left, jnp.inf, g))])  # fmt: skip
    g = svi.durrleman_g(points[lowest])
    # A softened hinge: smooth where the constraint starts to bind, so Levenberg-Marquardt
    # sees a continuous Jacobian; it equals the hinge to within PENALTY_SMOOTHING * ln 2.
    shortfall = (PENALTY_MARGIN - g) / PENALTY_SMOOTHING
    return PENALTY_WEIGHT * PENALTY_SMOOTHING * jax.nn.softplus(shortfall)


def _settings(model, fixed: dict) -> None:
    if fixed:
        raise ValueError(f"raw SVI fits all five parameters; cannot fix {sorted(fixed)}")
    return None


def _initial_guess(forward, t, strike, mid_iv, weight, mask, settings) -> SVI:
    del settings
    return initial_guess(jnp.log(strike / forward), mid_iv**2 * t, mask, weight, t)


SVI.calibration = SliceSpec(
    settings=_settings,
    from_unconstrained=lambda u, settings: from_unconstrained(u),
    to_unconstrained=lambda model, settings: to_unconstrained(model),
    initial_guess=_initial_guess,
    penalty=butterfly_penalty,
    parameter_names=PARAMETER_NAMES,
)

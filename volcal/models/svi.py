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

import functools
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
#: g is evaluated on every point, but only one point on each side of the money enters the
#: least squares: the point of lowest g there (:func:`_lowest`), moved by PENALTY_NEWTON_STEPS
#: Newton steps towards the minimum of g near it (:func:`_newton_minimum`), so that the point
#: held to the margin is g's own minimum rather than the nearest grid point. At an optimum one
#: or two points hold the constraint, and differentiating two points instead of all 242 cuts
#: each Levenberg-Marquardt step's work on the penalty by about five sixths. The penalty is
#: the full one whenever at most one point on each side falls short of the margin, and the
#: worst of each side otherwise. On the eleven real surfaces of docs/real_data_fits.md the
#: fits, their convergence and the arbitrage checks are those of the full penalty.
PENALTY_NEWTON_STEPS = 1
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
#: The best candidate is then refined GUESS_ZOOM_LEVELS times on a GUESS_ZOOM_POINTS squared
#: grid around it, one coarse step each way at first and half as far at each level. On the
#: eleven real surfaces of docs/real_data_fits.md (cost stop at 1e-8) the raw SVI solves took
#: 5,100 steps from this start, 5,600 from an 8 x 8 grid without refinement and 4,800 from
#: 8 x 8 with three 5 x 5 refinements, a start that cost twice as much.
GUESS_M_POINTS = 6
GUESS_SIGMA_POINTS = 6
GUESS_SIGMA_RANGE = (0.01, 3.0)
GUESS_PENALTY_POINTS_NEAR = 21
GUESS_PENALTY_POINTS_FAR = 11
GUESS_ZOOM_POINTS = 3
GUESS_ZOOM_LEVELS = 3


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
    by (nearly) the calibration's own cost; that cost, for the solved ``(a, d, c)`` and once
    they are moved into the domain, is a quadratic form in the same weighted sums, so each
    candidate takes one pass over the quotes. Each candidate ``(m, sigma)`` of the GUESS_* grid
    is solved, moved into the bijection's domain (:func:`_feasible`; minimum variance at least
    a twentieth of the lowest quoted total variance), and scored by that cost plus the
    butterfly penalty on a coarse copy of the penalty's points, so that the start already sits
    where the constraint lets the fit go (raw SVI's valley is long and flat: the penalty, not
    the quotes, often fixes where along it the optimum lies). The best is refined on ever
    finer grids of ``(m, sigma)`` around it (GUESS_ZOOM_*), so the solve starts close to the
    valley's floor.
    """
    k = jnp.asarray(log_moneyness)
    w = jnp.asarray(total_variance)
    big = 1e30
    weight = jnp.where(mask, weight / (4.0 * w * t), 0.0)  # weight (dsigma / dw)^2
    lowest, highest = jnp.min(jnp.where(mask, k, big)), jnp.max(jnp.where(mask, k, -big))
    span = jnp.maximum(highest - lowest, 1e-3)
    floor = 0.05 * jnp.min(jnp.where(mask, w, big))
    atm_w = w[jnp.argmin(jnp.where(mask, jnp.abs(k), big))]
    points = _penalty_points(atm_w, GUESS_PENALTY_POINTS_NEAR, GUESS_PENALTY_POINTS_FAR)

    def total(values):
        return jnp.sum(weight * values, axis=-1)

    # Weighted sums that do not depend on the candidate: those of each candidate's x = k - m
    # follow from them (with k centred, so that nothing cancels).
    centre = total(k) / total(1.0)
    kc = k - centre
    sums = {"1": total(1.0), "k": total(kc), "kk": total(kc * kc), "w": total(w),
            "kw": total(kc * w), "ww": total(w * w)}  # fmt: skip

    def scored(m, sigma, extra=None):
        """Quasi-explicit candidates at each ``(m, sigma)`` (plus ``extra``), and scores."""
        sigma = jnp.maximum(sigma, 2.0 * SIGMA_MIN)
        mc = m - centre
        x = kc[None, :] - mc[:, None]
        root = jnp.sqrt(x * x + sigma[:, None] ** 2)
        # The Gram matrix of (1, x, root) and its products with w, under the weights: the
        # normal equations of (a, d, c), and the cost of any (a, d, c) as a quadratic form.
        s1, sx, sxx = sums["1"], sums["k"] - mc * sums["1"], (
            sums["kk"] - 2.0 * mc * sums["k"] + mc * mc * sums["1"])
        sr, sxr, srw = total(root), total(x * root), total(root * w)
        srr, sw, sxw = sxx + sigma**2 * s1, sums["w"], sums["kw"] - mc * sums["w"]
        a, d, c = _solve_symmetric_3(s1, sx, sr, sxx, sxr, srr, sw, sxw, srw)
        rho = d / jnp.where(c > 0.0, c, 1.0)
        candidates = _feasible(a, c, rho, m, sigma, floor)
        a, d, c = candidates.a, candidates.b * candidates.rho, candidates.b
        cost = (sums["ww"] - 2.0 * (a * sw + d * sxw + c * srw) + a * a * s1 + d * d * sxx
                + c * c * srr + 2.0 * (a * d * sx + a * c * sr + d * c * sxr))  # fmt: skip
        cost = jnp.maximum(cost, 0.0)
        if extra is not None:
            candidates = jax.tree.map(lambda x, y: jnp.append(x, y), candidates, extra)
            cost = jnp.append(cost, total((extra.total_variance(k) - w) ** 2))
        n = candidates.a.size
        g = candidates.durrleman_g(jnp.broadcast_to(points, (n, points.size)))
        penalty = jnp.sum((PENALTY_WEIGHT * jnp.maximum(PENALTY_MARGIN - g, 0.0)) ** 2, axis=-1)
        return candidates, jnp.where(jnp.isfinite(cost + penalty), cost + penalty, jnp.inf)

    m_step = 0.8 * span / (GUESS_M_POINTS - 1)
    log_sigma_step = np.log(GUESS_SIGMA_RANGE[1] / GUESS_SIGMA_RANGE[0]) / (GUESS_SIGMA_POINTS - 1)
    m, sigma = jnp.meshgrid(lowest + span * jnp.linspace(0.1, 0.9, GUESS_M_POINTS),
                            span * jnp.geomspace(*GUESS_SIGMA_RANGE, GUESS_SIGMA_POINTS),
                            indexing="ij")  # fmt: skip
    candidates, score = scored(m.ravel(), sigma.ravel(), heuristic_guess(k, w, mask))
    # With fewer than three quotes every quasi-explicit solve is singular: the heuristic
    # (last) candidate is the fallback.
    score = score.at[-1].set(jnp.where(jnp.isfinite(score[-1]), score[-1], 1e300))
    best, best_score = _pick(candidates, score), jnp.min(score)
    offsets = np.linspace(-1.0, 1.0, GUESS_ZOOM_POINTS)
    for level in range(GUESS_ZOOM_LEVELS):
        dm, ds = np.meshgrid(offsets * 0.5**level, offsets * 0.5**level, indexing="ij")
        zoom, zoom_score = scored(best.m + m_step * dm.ravel(),
                                  best.sigma * jnp.exp(log_sigma_step * ds.ravel()))  # fmt: skip
        better = jnp.min(zoom_score) < best_score
        best = jax.tree.map(functools.partial(jnp.where, better), _pick(zoom, zoom_score), best)
        best_score = jnp.minimum(jnp.min(zoom_score), best_score)
    return best


def _pick(candidates: SVI, score) -> SVI:
    """The candidate of lowest score."""
    return jax.tree.map(lambda x: x[jnp.argmin(score)], candidates)


def _penalty_points(atm_total_variance, near: int, far: int) -> jax.Array:
    """``near`` points evenly over +-PENALTY_STANDARD_DEVIATIONS ATM total vols and ``far``
    evenly over the arbitrage check's range (see the PENALTY_* constants)."""
    from volcal.arbitrage import half_width

    return jnp.concatenate([
        jnp.linspace(-1.0, 1.0, near)
        * (PENALTY_STANDARD_DEVIATIONS * jnp.sqrt(jnp.maximum(atm_total_variance, 0.0))),
        jnp.linspace(-1.0, 1.0, far) * half_width(atm_total_variance),
    ])  # fmt: skip


def _lowest(points, g, among) -> jax.Array:
    """The point of lowest ``g`` (NaN counting as lowest) among ``points[among]``, found by
    two plain minimum reductions: XLA's CPU backend runs an argmin (a reduction over value
    and index pairs) several times slower than the whole evaluation of g on the points."""
    g = jnp.where(among, jnp.where(jnp.isnan(g), -jnp.inf, g), jnp.inf)
    return jnp.min(jnp.where(g == jnp.min(g), points, jnp.inf))


def _newton_minimum(svi: SVI, k, spacing) -> jax.Array:
    """One Newton step from each grid point ``k`` towards the minimum of g near it, at most
    ``spacing`` long (no step where g is not convex)."""

    def slope(k):
        return jax.jvp(svi.durrleman_g, (k,), (jnp.ones_like(k),))

    (g1, g2) = jax.jvp(slope, (k,), (jnp.ones_like(k),))[1]
    step = jnp.where(g2 > 0.0, -g1 / jnp.where(g2 > 0.0, g2, 1.0), 0.0)
    return k + jnp.clip(step, -spacing, spacing)


def butterfly_penalty(svi: SVI, atm_total_variance) -> jax.Array:
    """Residuals ``PENALTY_WEIGHT * max(PENALTY_MARGIN - g(k), 0)`` (a softened hinge) at the
    minimum of g on each side of the money (see the constants above); zero where the slice is
    free of butterfly arbitrage."""
    points = _penalty_points(atm_total_variance, PENALTY_POINTS_NEAR, PENALTY_POINTS_FAR)
    fixed = jax.lax.stop_gradient(svi)
    g = fixed.durrleman_g(points)
    lowest = jnp.stack([_lowest(points, g, points < 0.0), _lowest(points, g, points >= 0.0)])
    spacing = 2.0 * jnp.max(jnp.abs(points)) / (PENALTY_POINTS_FAR - 1)
    for _ in range(PENALTY_NEWTON_STEPS):
        lowest = _newton_minimum(fixed, lowest, spacing)
    g = svi.durrleman_g(lowest)
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

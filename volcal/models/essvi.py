"""eSSVI: SSVI with one correlation and one slope per expiry, free of static arbitrage by
construction. volcal's default published surface model.

Total variance of slice ``i`` at log-moneyness ``k = ln(K/F)``:

    w_i(k) = 1/2 (theta_i + rho_i psi_i k + sqrt((psi_i k + theta_i rho_i)^2
                                                 + theta_i^2 (1 - rho_i^2))),

``theta_i`` the ATM total variance, ``psi_i = theta_i phi_i`` the ATM "spread" (the smile's
asymptotic slopes in total variance are ``psi_i (1 + rho_i)/2`` for calls and
``psi_i (1 - rho_i)/2`` for puts) and ``rho_i`` the skew. With ``rho`` and ``phi`` following a
power law in ``theta`` this is Gatheral & Jacquier's SSVI (:class:`volcal.models.SSVI`); letting
them move freely per expiry is Hendriks & Martini's eSSVI, which fits short-dated skews far
better while keeping the arbitrage guarantees below.

Arbitrage-free domain (what the calibration bijection maps onto). Write
``L_i = psi_i (1 - rho_i)`` and ``R_i = psi_i (1 + rho_i)`` (twice the put- and call-wing
slopes).

* Butterfly, per slice (Gatheral & Jacquier 2014, Theorem 4.2):
  ``psi (1 + |rho|) < 4`` and ``psi^2 (1 + |rho|) <= 4 theta``, i.e. ``max(L, R) < 4`` and
  ``psi max(L, R) <= 4 theta``.
* Calendar, between slices ``i < j``: ``theta_j >= theta_i``, both wing slopes non-decreasing
  (``L_j >= L_i``, ``R_j >= R_i``), and ``theta_j / theta_i >= psi_j / psi_i`` (``phi``
  non-increasing). Proof: ``w(k) = theta h_rho(psi k / theta)`` with
  ``h_rho(x) = (1 + rho x + sqrt(x^2 + 2 rho x + 1))/2``, a perspective function: positively
  homogeneous in ``(psi k, theta)`` and non-decreasing in ``theta`` (its derivative is the
  intercept of a tangent of the convex ``h_rho``, which lies above ``min(1 +- rho)/2 > 0``).
  With ``s = psi_j / psi_i``: ``w_j(k) = s theta_j/s h_j(psi_i k s/theta_j) >=
  s theta_i h_j(psi_i k / theta_i)`` as ``theta_j / s >= theta_i``, and
  ``s h_j >= h_i`` everywhere because ``sup_x h_i(x)/h_j(x)`` is the larger of its limits
  ``(1 + rho_i)/(1 + rho_j)`` and ``(1 - rho_i)/(1 - rho_j)`` (checked numerically in
  tests/test_essvi.py), which is at most ``s`` exactly when both wing slopes grow. These are
  the sufficient conditions of Hendriks & Martini (2019, section 3) written in wing slopes;
  they are slightly stronger than necessary (Pasquazzi 2023 gives the exact ones), which
  costs little in fit and buys a simple global parametrisation in the spirit of Mingone (2022).

References
----------
J. Gatheral & A. Jacquier, "Arbitrage-free SVI volatility surfaces", Quantitative Finance 14
(2014). S. Hendriks & C. Martini, "The extended SSVI volatility surface", Journal of
Computational Finance 22(5) (2019). A. Mingone, "No arbitrage global parametrization for the
eSSVI volatility surface", Quantitative Finance 22(12) (2022). L. Pasquazzi, "A note about
characterization of calendar spread arbitrage in eSSVI surfaces", Theoretical Economics
Letters 13 (2023).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from volcal.models.base import Model, SurfaceSpec


class ESSVI(Model):
    """eSSVI slices: ``theta``, ``rho``, ``psi`` each of shape ``(expiry,)``.

    ``theta`` is the ATM total variance (vol^2 x years), ``rho`` in (-1, 1) the skew, ``psi``
    (total variance per unit log-moneyness) the ATM curvature scale; see the module docstring.
    """

    theta: jax.Array
    rho: jax.Array
    psi: jax.Array

    def total_variance(self, log_moneyness) -> jax.Array:
        """``w_i(k)`` for ``log_moneyness`` of shape ``(expiry, point)``."""
        theta, rho, psi = (jnp.expand_dims(jnp.asarray(p), -1)
                           for p in (self.theta, self.rho, self.psi))  # fmt: skip
        k = jnp.asarray(log_moneyness)
        root = jnp.sqrt((psi * k + theta * rho) ** 2 + theta * theta * (1.0 - rho * rho))
        return 0.5 * (theta + rho * psi * k + root)

    def total_variance_at(self, forward, log_moneyness, t) -> jax.Array:
        """Closed form: :meth:`total_variance` (``forward`` and ``t`` are not needed)."""
        return self.total_variance(log_moneyness)

    def implied_vol(self, forward, strike, t) -> jax.Array:
        forward = jnp.expand_dims(jnp.asarray(forward), -1)
        t = jnp.expand_dims(jnp.asarray(t), -1)
        return jnp.sqrt(self.total_variance(jnp.log(jnp.asarray(strike) / forward)) / t)

    def wing_slopes(self) -> tuple[jax.Array, jax.Array]:
        """``(L, R) = (psi (1 - rho), psi (1 + rho))``: twice the put- and call-wing slopes of
        total variance in log-moneyness."""
        psi, rho = jnp.asarray(self.psi), jnp.asarray(self.rho)
        return psi * (1.0 - rho), psi * (1.0 + rho)


# ---------------------------------------------------------------------------------------------
# Calibration spec: a global bijection onto the arbitrage-free domain

#: Gatheral & Jacquier's bound ``psi (1 + |rho|) < 4`` on the larger wing ``max(L, R)``.
WING_LIMIT = 4.0
#: Each slice's wing increment ``s`` stays below this fraction of the largest one the wing
#: limit allows, keeping ``max(L, R) < WING_LIMIT`` strict.
WING_FRACTION = 0.999
#: ``theta`` exceeds its lower bound (the larger of the calendar bound
#: ``theta_prev psi / psi_prev`` and the butterfly bound ``psi max(L, R) / 4``) by at least
#: this much total variance, so every slice is strictly inside the domain and the map smooth.
THETA_GAP = 1e-9
PARAMETER_NAMES = ("theta", "rho", "psi")


def _softplus(x):
    return jnp.logaddexp(x, 0.0)


def _softplus_inverse(y):
    return y + jnp.log(-jnp.expm1(-y))


def _logit(p):
    return jnp.log(p) - jnp.log1p(-p)


def _wing_room(left, right, share):
    """Largest increment ``s`` with ``max(left + s share, right + s (1 - share)) <=
    WING_LIMIT``."""
    return jnp.minimum((WING_LIMIT - left) / share, (WING_LIMIT - right) / (1.0 - share))


def _theta_bound(theta_prev, psi_prev, psi, widest, first):
    calendar = jnp.where(first, 0.0, theta_prev * psi / jnp.where(first, 1.0, psi_prev))
    return jnp.maximum(calendar, psi * widest / WING_LIMIT)


def from_unconstrained(u, t) -> ESSVI:
    """``u`` of shape ``(3 n,)``, ``n`` = number of expiries: per slice ``(u_share, u_size,
    u_theta)``, built in order of expiry.

    Slice ``i`` raises the wing slopes of slice ``i - 1`` (zero before the first) by
    ``s a`` and ``s (1 - a)``: ``a = logistic(u_share)`` splits the increment between the put
    and the call wing, ``s = WING_FRACTION * s_max * logistic(u_size)`` with ``s_max`` the
    largest increment the wing limit allows. Then
    ``theta = bound + THETA_GAP + softplus(u_theta)`` above the calendar and butterfly bounds
    (module docstring). Every ``u`` gives an arbitrage-free surface; every strictly interior
    surface has exactly one ``u``.
    """
    n = jnp.shape(t)[0]
    u = jnp.reshape(jnp.asarray(u), (n, 3))

    def step(carry, row):
        theta_prev, left_prev, right_prev, first = carry
        share = jax.nn.sigmoid(row[0])
        size = WING_FRACTION * _wing_room(left_prev, right_prev, share) * jax.nn.sigmoid(row[1])
        left, right = left_prev + size * share, right_prev + size * (1.0 - share)
        psi = 0.5 * (left + right)
        bound = _theta_bound(theta_prev, 0.5 * (left_prev + right_prev), psi,
                             jnp.maximum(left, right), first)  # fmt: skip
        theta = bound + THETA_GAP + _softplus(row[2])
        return (theta, left, right, False), (theta, (right - left) / (right + left), psi)

    zero = jnp.zeros((), u.dtype)
    _, (theta, rho, psi) = jax.lax.scan(step, (zero, zero, zero, True), u)
    return ESSVI(theta=theta, rho=rho, psi=psi)


def to_unconstrained(model: ESSVI, t=None) -> jax.Array:
    """Inverse of :func:`from_unconstrained` for a strictly interior surface (wing slopes
    strictly increasing, ``theta`` strictly above its bounds)."""
    del t
    theta = jnp.asarray(model.theta)
    left, right = model.wing_slopes()
    left_prev = jnp.concatenate([jnp.zeros(1), left[:-1]])
    right_prev = jnp.concatenate([jnp.zeros(1), right[:-1]])
    size = (left - left_prev) + (right - right_prev)
    share = (left - left_prev) / size
    room = WING_FRACTION * _wing_room(left_prev, right_prev, share)
    first = jnp.arange(theta.shape[0]) == 0
    theta_prev = jnp.concatenate([jnp.zeros(1), theta[:-1]])
    psi = 0.5 * (left + right)
    bound = _theta_bound(theta_prev, 0.5 * (left_prev + right_prev), psi,
                         jnp.maximum(left, right), first)  # fmt: skip
    rows = jnp.stack([_logit(share), _logit(size / room),
                      _softplus_inverse(theta - bound - THETA_GAP)], axis=-1)  # fmt: skip
    return rows.reshape(-1)


#: Initial guess: the smallest wing slope (total variance per unit log-moneyness) a slice starts
#: with, and the share of the room left by the bounds that a guessed increment may use (so the
#: start is strictly inside the domain).
GUESS_MIN_SLOPE = 1e-3
GUESS_ROOM_SHARE = 0.9


def initial_guess(t, log_moneyness, total_variance, mask) -> ESSVI:
    """A strictly arbitrage-free start from the quotes, slice by slice in expiry order.

    ``theta_i``: total variance of the quote nearest the money (at least 1e-6), made strictly
    increasing. Wing slopes ``L_i, R_i``: twice the secants from the money to the outermost
    quote on each side (the asymptotes of a hyperbola are steeper than its secants, so this
    errs small), at least ``GUESS_MIN_SLOPE``. Then projected onto the domain: each wing at
    least the previous slice's (plus ``GUESS_MIN_SLOPE``), the increment shrunk to
    ``GUESS_ROOM_SHARE`` of what ``theta_i`` allows under the calendar bound
    ``psi_i <= psi_{i-1} theta_i / theta_{i-1}`` and the butterfly bound
    ``psi max(L, R) <= 4 theta``, and ``theta_i`` raised above its bound if still needed.
    """
    t = np.asarray(t, dtype=float)
    k = np.asarray(log_moneyness, dtype=float)
    w = np.asarray(total_variance, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    n = len(t)
    theta = np.empty(n)
    left = np.empty(n)
    right = np.empty(n)
    theta_prev = left_prev = right_prev = 0.0
    for i in range(n):
        if mask[i].any():
            ki, wi = k[i][mask[i]], w[i][mask[i]]
            w0 = max(wi[np.argmin(np.abs(ki))], 1e-6)
            lo, hi = ki.min(), ki.max()
            want_left = 2 * (wi[np.argmin(ki)] - w0) / -lo if lo < 0 else GUESS_MIN_SLOPE
            want_right = 2 * (wi[np.argmax(ki)] - w0) / hi if hi > 0 else GUESS_MIN_SLOPE
        else:
            w0, want_left, want_right = theta_prev * 1.01, left_prev, right_prev
        th = max(w0, theta_prev * (1.0 + 1e-3), 1e-6)
        d_left = max(want_left - left_prev, GUESS_MIN_SLOPE)
        d_right = max(want_right - right_prev, GUESS_MIN_SLOPE)
        size, share = d_left + d_right, d_left / (d_left + d_right)
        psi_prev = 0.5 * (left_prev + right_prev)
        # Largest size the bounds allow at this theta (calendar: psi <= psi_prev th/theta_prev;
        # butterfly: psi max(L, R) <= 4 th, a quadratic in size; wing limit).
        room = float(_wing_room(left_prev, right_prev, share))
        if i > 0:
            room = min(room, 2.0 * (psi_prev * th / theta_prev - psi_prev))
        widest_share, widest_prev = (share, left_prev) if share >= 0.5 else (1 - share, right_prev)
        # (psi_prev + s/2)(widest_prev + s widest_share) <= 4 th
        qa, qb = 0.5 * widest_share, psi_prev * widest_share + 0.5 * widest_prev
        qc = psi_prev * widest_prev - WING_LIMIT * th
        if qc < 0:
            room = min(room, 2 * -qc / (qb + np.sqrt(qb * qb - 4 * qa * qc)))
        size = min(size, GUESS_ROOM_SHARE * room) if room > 0 else size
        size = max(size, 2 * GUESS_MIN_SLOPE * 1e-3)
        left_i, right_i = left_prev + size * share, right_prev + size * (1 - share)
        psi = 0.5 * (left_i + right_i)
        bound = float(_theta_bound(theta_prev, psi_prev, psi, max(left_i, right_i), i == 0))
        th = max(th, bound * (1.0 + 1e-6) + 2 * THETA_GAP)
        theta[i], left[i], right[i] = th, left_i, right_i
        theta_prev, left_prev, right_prev = th, left_i, right_i
    psi = 0.5 * (left + right)
    return ESSVI(theta=jnp.asarray(theta), rho=jnp.asarray((right - left) / (right + left)),
                 psi=jnp.asarray(psi))  # fmt: skip


ESSVI.calendar_free = True  # by construction (see the module docstring)
ESSVI.calibration = SurfaceSpec(
    from_unconstrained=from_unconstrained,
    to_unconstrained=to_unconstrained,
    initial_guess=initial_guess,
    parameter_names=PARAMETER_NAMES,
)

"""SSVI: Gatheral & Jacquier's surface SVI, free of static arbitrage by construction.

Total variance at log-moneyness ``k = ln(K/F)`` and expiry ``t_i``:

    w(k, t_i) = theta_i / 2 (1 + rho phi_i k + sqrt((phi_i k + rho)^2 + 1 - rho^2)),
    phi_i = eta / (theta_i^gamma (1 + theta_i)^(1 - gamma))   (power law),

with ``theta_i`` the ATM total variance of expiry i. No butterfly arbitrage when
``eta (1 + |rho|) <= 2`` and ``0 < gamma <= 1/2`` (Gatheral & Jacquier 2014, Remark 4.4 with
Theorem 4.2); no calendar arbitrage when ``theta`` is non-decreasing in t and
``theta phi(theta)`` is too (Theorem 4.1; the power law with ``gamma <= 1/2`` satisfies the
second). The calibration spec below enforces all of these through its bijection.

References
----------
J. Gatheral & A. Jacquier, "Arbitrage-free SVI volatility surfaces", Quantitative Finance 14
(2014), section 4.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from volcal.models.base import Model, SurfaceSpec


class SSVI(Model):
    """Power-law SSVI: ``theta`` per expiry ``(expiry,)``; ``rho``, ``eta``, ``gamma`` scalars."""

    theta: jax.Array
    rho: jax.Array
    eta: jax.Array
    gamma: jax.Array

    def phi(self) -> jax.Array:
        theta = jnp.asarray(self.theta)
        return self.eta / (theta**self.gamma * (1.0 + theta) ** (1.0 - self.gamma))

    def total_variance(self, log_moneyness) -> jax.Array:
        """``w(k, t_i)`` for ``log_moneyness`` of shape ``(expiry, point)``."""
        theta = jnp.expand_dims(jnp.asarray(self.theta), -1)
        phi = jnp.expand_dims(self.phi(), -1)
        k = jnp.asarray(log_moneyness)
        rho = self.rho
        return 0.5 * theta * (1.0 + rho * phi * k
                              + jnp.sqrt((phi * k + rho) ** 2 + 1.0 - rho * rho))  # fmt: skip

    def total_variance_at(self, forward, log_moneyness, t) -> jax.Array:
        """Closed form: :meth:`total_variance` (``forward`` and ``t`` are not needed)."""
        return self.total_variance(log_moneyness)

    def implied_vol(self, forward, strike, t) -> jax.Array:
        forward = jnp.expand_dims(jnp.asarray(forward), -1)
        t = jnp.expand_dims(jnp.asarray(t), -1)
        w = self.total_variance(jnp.log(jnp.asarray(strike) / forward))
        return jnp.sqrt(w / t)


# ---------------------------------------------------------------------------------------------
# Calibration spec

#: |rho| bound, as for raw SVI.
RHO_MAX = 0.999
#: gamma in (0, GAMMA_MAX]: 1/2 is the largest power for which the power law keeps both
#: arbitrage conditions (Gatheral & Jacquier 2014, Remark 4.4).
GAMMA_MAX = 0.5
#: eta is kept strictly below the butterfly bound 2 / (1 + |rho|) by this factor.
ETA_BOUND_FRACTION = 0.999
#: Smallest ATM total variance of the first expiry and smallest increment between expiries:
#: theta must be positive and non-decreasing (calendar), and strictly so for a smooth bijection.
THETA_FLOOR = 1e-8
PARAMETER_NAMES = ("theta", "rho", "eta", "gamma")


def _softplus(x):
    return jnp.logaddexp(x, 0.0)


def _softplus_inverse(y):
    return jnp.log(jnp.expm1(y))


def from_unconstrained(u, t) -> SSVI:
    """``u = [u_theta (expiry), u_rho, u_eta, u_gamma]`` -> SSVI.

    ``theta = cumsum(THETA_FLOOR + softplus(u_theta))`` (positive, increasing in t),
    ``rho = RHO_MAX tanh(u_rho)``, ``eta = ETA_BOUND_FRACTION 2/(1 + |rho|) logistic(u_eta)``,
    ``gamma = GAMMA_MAX logistic(u_gamma)``.
    """
    n = jnp.shape(t)[0]
    theta = jnp.cumsum(THETA_FLOOR + _softplus(u[:n]))
    rho = RHO_MAX * jnp.tanh(u[n])
    eta = ETA_BOUND_FRACTION * 2.0 / (1.0 + jnp.abs(rho)) * jax.nn.sigmoid(u[n + 1])
    gamma = GAMMA_MAX * jax.nn.sigmoid(u[n + 2])
    return SSVI(theta=theta, rho=rho, eta=eta, gamma=gamma)


def to_unconstrained(model: SSVI, t) -> jax.Array:
    """Inverse of :func:`from_unconstrained` (``theta`` strictly increasing)."""
    theta = jnp.asarray(model.theta)
    increments = jnp.diff(theta, prepend=0.0) - THETA_FLOOR
    rho = jnp.asarray(model.rho)
    eta_unit = model.eta * (1.0 + jnp.abs(rho)) / (2.0 * ETA_BOUND_FRACTION)
    gamma_unit = model.gamma / GAMMA_MAX
    logit = lambda p: jnp.log(p / (1.0 - p))  # noqa: E731
    return jnp.concatenate([
        _softplus_inverse(increments),
        jnp.stack([jnp.arctanh(rho / RHO_MAX), logit(eta_unit), logit(gamma_unit)]),
    ])  # fmt: skip


def initial_guess(t, log_moneyness, total_variance, mask) -> SSVI:
    """``theta_i`` = total variance of the quote nearest the money in slice i, made
    increasing by a running maximum (plus a small step); ``rho = -0.2`` (crypto and equity
    skews are mostly negative), ``eta = 1``, ``gamma = 0.4``."""
    big = 1e30
    atm = jnp.argmin(jnp.where(mask, jnp.abs(log_moneyness), big), axis=1)
    theta = jnp.take_along_axis(total_variance, atm[:, None], axis=1)[:, 0]
    theta = jax.lax.cummax(jnp.maximum(theta, 1e-6)) * (1.0 + 1e-3 * jnp.arange(len(t)))
    return SSVI(theta=theta, rho=jnp.asarray(-0.2), eta=jnp.asarray(1.0),
                gamma=jnp.asarray(0.4))  # fmt: skip


SSVI.calendar_free = True  # by construction (see the module docstring)
SSVI.calibration = SurfaceSpec(
    from_unconstrained=from_unconstrained,
    to_unconstrained=to_unconstrained,
    initial_guess=initial_guess,
    parameter_names=PARAMETER_NAMES,
)

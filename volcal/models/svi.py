"""Raw SVI per expiry slice (Gatheral 2004), with jump-wings conversion and its calibration spec.

Total variance at log-moneyness ``k = ln(K/F)``:

    w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2)),

with ``b >= 0``, ``|rho| < 1``, ``sigma > 0`` and ``a + b sigma sqrt(1 - rho^2) >= 0`` (the
minimum of ``w`` is non-negative). Parameters are arrays with one entry per slice, so a whole
surface of independent slices is one pytree and one vmapped solve.

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

from volcal.models.base import Model


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

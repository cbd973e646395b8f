"""The shared shape of every volatility model: an immutable pytree with named parameters.

A model answers one question, ``implied_vol(forward, strike, t)``: the Black-76 implied vol it
assigns to an option. Slice models (one parameter set per expiry: SVI, SABR) hold their
parameters as arrays with one entry per slice; surface models (SSVI, Heston) hold one set for
the whole surface. Each model file also owns its calibration spec (STYLE.md items 4-5): the
bijection between unconstrained and constrained parameters with every constant named, the
initial-guess heuristic, default weights and which parameters may be fixed.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax


class Model(eqx.Module):
    """Abstract base of volcal's models (equinox abstract/final pattern)."""

    @abc.abstractmethod
    def implied_vol(self, forward, strike, t) -> jax.Array:
        """Black-76 implied vol (decimal) of the model at ``strike`` for expiry ``t`` (years)
        on ``forward``; arguments broadcast."""

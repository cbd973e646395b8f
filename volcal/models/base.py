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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class SliceSpec:
    """How :func:`volcal.calibrate` fits a slice model: one independent solve per expiry.

    ``settings`` is a hashable value the spec derives from the user's choices (e.g. SABR's
    fixed beta and expansion) by ``settings(model_or_none, fixed)``; every other function
    receives it.

    Attributes
    ----------
    settings : callable
        ``(model instance or None, fixed: dict) -> hashable``; raises ``ValueError`` for
        choices the model does not accept.
    from_unconstrained, to_unconstrained : callables
        The bijection ``(u[..., n], settings) -> model`` and ``(model, settings) -> u``
        (batched over slices).
    initial_guess : callable
        ``(forward, t, strike, mid_iv, weight, mask, settings) -> model`` for one slice.
    penalty : callable
        ``(model_slice, atm_total_variance) -> residuals`` added to the fit (e.g. butterfly
        exclusion); a fixed-length array, possibly empty.
    parameter_names : tuple of str
    """

    settings: Callable[[Any, dict], Any]
    from_unconstrained: Callable[[Any, Any], Any]
    to_unconstrained: Callable[[Any, Any], Any]
    initial_guess: Callable[..., Any]
    penalty: Callable[..., Any]
    parameter_names: tuple[str, ...]


@dataclass(frozen=True)
class SurfaceSpec:
    """How :func:`volcal.calibrate` fits a surface model: one solve over all expiries.

    Attributes
    ----------
    from_unconstrained : callable
        ``(u, t) -> model`` for the flat unconstrained vector ``u`` and expiries ``t``.
    to_unconstrained : callable
        ``(model, t) -> u``.
    initial_guess : callable
        ``(t, log_moneyness, total_variance, mask) -> model`` from the whole grid.
    parameter_names : tuple of str
        Names reported per surface (arrays per expiry are reported per expiry).
    """

    from_unconstrained: Callable[[Any, Any], Any]
    to_unconstrained: Callable[[Any, Any], Any]
    initial_guess: Callable[..., Any]
    parameter_names: tuple[str, ...]


class Model(eqx.Module):
    """Abstract base of volcal's models (equinox abstract/final pattern).

    ``calibration`` (a class attribute) is the model's calibration spec, set in its file.
    ``price_resolution`` (a class attribute) is the absolute error, in units of the forward, of
    the option prices a model's implied vol is inverted from: 0 (the default) for models whose
    implied vol is a closed form, so that every vol they give carries information; a model
    priced numerically (Heston's Fourier integral) sets its pricer's error, below which its
    vols are rounding noise (:func:`volcal.arbitrage.check` skips such points)."""

    calibration: ClassVar[SliceSpec | SurfaceSpec | None] = None
    price_resolution: ClassVar[float] = 0.0
    #: True for models free of calendar arbitrage by construction (eSSVI, SSVI, Heston): a
    #: surface then uses their node curves as they are (``volcal.surface``).
    calendar_free: ClassVar[bool] = False

    @abc.abstractmethod
    def implied_vol(self, forward, strike, t) -> jax.Array:
        """Black-76 implied vol (decimal) of the model at ``strike`` for expiry ``t`` (years)
        on ``forward``; arguments broadcast."""

    def total_variance_at(self, forward, log_moneyness, t) -> jax.Array:
        """Total variance ``sigma^2 t`` at log-forward-moneyness ``log_moneyness`` ``(expiry,
        point)`` for per-slice ``forward`` and ``t`` ``(expiry,)``; by default through
        :meth:`implied_vol`, and in closed form where a model has one (SVI, SSVI, eSSVI)."""
        forward = jnp.asarray(forward)
        t = jnp.asarray(t)
        strike = jnp.expand_dims(forward, -1) * jnp.exp(log_moneyness)
        return self.implied_vol(forward, strike, t) ** 2 * jnp.expand_dims(t, -1)

    def calibration_vol(self, forward, strike, t) -> jax.Array:
        """The implied vol :func:`volcal.calibrate` fits inside its solve: by default
        :meth:`implied_vol`; a model with a faster, documented approximation overrides it
        (the reported model IVs always come from :meth:`implied_vol`)."""
        return self.implied_vol(forward, strike, t)

"""Static-arbitrage checks of a calibrated surface: butterfly and calendar.

* Butterfly (per expiry): Durrleman's condition ``g(k) >= 0`` on a dense log-moneyness grid,
  with ``g(k) = (1 - k w'/(2w))^2 - w'^2/4 (1/w + 1/4) + w''/2`` and ``w(k) = sigma^2(k) t``;
  ``g`` is the risk-neutral density of ``ln(S_T/F)`` divided by the positive factor
  ``e^{-d_-^2/2} / sqrt(2 pi w)`` (Gatheral & Jacquier 2014, Lemma 2.2), so a negative ``g``
  is a negative density, i.e. call prices concave in strike there. Derivatives of ``w`` in ``k``
  come from autodiff of the model's own implied vol, so any smooth model can be checked.
* Calendar (between consecutive expiries): total variance non-decreasing in expiry at fixed
  log-forward-moneyness, ``w(k, t_{i+1}) - w(k, t_i) >= 0`` (Gatheral & Jacquier 2014, Lemma
  2.1 with zero rates; with a forward curve, fixed ``k = ln(K/F_t)`` is the right comparison).

Units: ``g`` is dimensionless; calendar violations are in total variance (vol^2 x years).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from volcal.models.base import Model

#: Points of the dense log-moneyness grid of each slice (see ``_grid``).
GRID_POINTS = 401
#: Half-width of the grid in units of the slice's ATM total vol, and never less than
#: ``MIN_HALF_WIDTH`` in log-moneyness: far enough to see wing arbitrage, near enough to matter.
STANDARD_DEVIATIONS = 8.0
MIN_HALF_WIDTH = 1.5
#: Violations smaller than this are rounding, not arbitrage.
G_TOLERANCE = 1e-10
CALENDAR_TOLERANCE = 1e-12


@dataclass(frozen=True)
class ArbitrageReport:
    """Where and how large each violation is.

    Attributes
    ----------
    butterfly : DataFrame
        One row per grid point with ``g < -G_TOLERANCE``: ``slice`` (expiry index), ``t``,
        ``log_moneyness``, ``g``.
    calendar : DataFrame
        One row per grid point where total variance falls from slice ``slice`` to the next:
        ``slice``, ``t``, ``t_next``, ``log_moneyness``, ``decrease`` (> 0, total variance).
    """

    butterfly: pd.DataFrame
    calendar: pd.DataFrame

    @property
    def ok(self) -> bool:
        return self.butterfly.empty and self.calendar.empty

    def summary(self) -> str:
        if self.ok:
            return "no butterfly or calendar violations"
        parts = []
        if not self.butterfly.empty:
            worst = self.butterfly.loc[self.butterfly["g"].idxmin()]
            parts.append(f"butterfly: {self.butterfly['slice'].nunique()} slice(s), worst "
                         f"g = {worst['g']:.3g} at k = {worst['log_moneyness']:.3f} "
                         f"(slice {int(worst['slice'])})")  # fmt: skip
        if not self.calendar.empty:
            worst = self.calendar.loc[self.calendar["decrease"].idxmax()]
            parts.append(f"calendar: {self.calendar['slice'].nunique()} pair(s), worst total "
                         f"variance drop {worst['decrease']:.3g} at k = "
                         f"{worst['log_moneyness']:.3f} (slices {int(worst['slice'])}->"
                         f"{int(worst['slice']) + 1})")  # fmt: skip
        return "; ".join(parts)


def total_variance_on_grid(model: Model, forward, t, log_moneyness) -> jax.Array:
    """``w(k) = sigma^2 t`` of ``model`` at ``log_moneyness`` ``(expiry, point)``."""
    forward = jnp.asarray(forward)
    t = jnp.asarray(t)
    strike = forward[:, None] * jnp.exp(log_moneyness)
    return model.implied_vol(forward, strike, t) ** 2 * t[:, None]


def durrleman_g(model: Model, forward, t, log_moneyness) -> jax.Array:
    """Durrleman's ``g`` at ``log_moneyness`` ``(expiry, point)``, derivatives by autodiff."""

    def w(k):
        return total_variance_on_grid(model, forward, t, k)

    k = jnp.asarray(log_moneyness)
    ones = jnp.ones_like(k)

    def first(k):
        return jax.jvp(w, (k,), (ones,))

    (value, slope), (_, curvature) = jax.jvp(first, (k,), (ones,))
    return ((1.0 - k * slope / (2.0 * value)) ** 2
            - 0.25 * slope**2 * (1.0 / value + 0.25) + 0.5 * curvature)  # fmt: skip


def check(model: Model, forward, t, *, log_moneyness=None) -> ArbitrageReport:
    """Butterfly and calendar violations of ``model`` on its expiries.

    Parameters
    ----------
    model : Model
        A calibrated model whose ``implied_vol(forward, strike, t)`` takes per-slice
        ``forward`` and ``t`` of shape ``(expiry,)`` and strikes ``(expiry, point)``.
    forward, t : array_like
        Per expiry, ``t`` increasing.
    log_moneyness : array_like, optional
        Grid ``(expiry, point)``; default: :data:`GRID_POINTS` points over
        ``+-max(STANDARD_DEVIATIONS x ATM total vol, MIN_HALF_WIDTH)`` per slice, the union of
        neighbours' grids for the calendar check.
    """
    forward = np.asarray(forward, dtype=float)
    t = np.asarray(t, dtype=float)
    grid = _grid(model, forward, t) if log_moneyness is None else np.asarray(log_moneyness)
    g = np.asarray(durrleman_g(model, forward, t, grid))
    bad = ~(g >= -G_TOLERANCE)
    rows, cols = np.nonzero(bad)
    butterfly = pd.DataFrame({"slice": rows, "t": t[rows], "log_moneyness": grid[rows, cols],
                              "g": g[rows, cols]})  # fmt: skip
    calendar = pd.DataFrame(columns=["slice", "t", "t_next", "log_moneyness", "decrease"])
    if len(t) > 1:
        # Compare each pair on the wider of their two grids.
        wide = np.maximum(np.abs(grid[:-1]).max(axis=1), np.abs(grid[1:]).max(axis=1))
        k = np.linspace(-1.0, 1.0, grid.shape[1])[None, :] * wide[:, None]
        earlier = np.asarray(total_variance_on_grid(model, forward, t, np.vstack([k, k[-1:]])))
        later = np.asarray(total_variance_on_grid(model, forward, t, np.vstack([k[:1], k])))
        decrease = earlier[:-1] - later[1:]
        rows, cols = np.nonzero(~(decrease <= CALENDAR_TOLERANCE))
        calendar = pd.DataFrame({"slice": rows, "t": t[rows], "t_next": t[rows + 1],
                                 "log_moneyness": k[rows, cols],
                                 "decrease": decrease[rows, cols]})  # fmt: skip
    return ArbitrageReport(butterfly=butterfly, calendar=calendar)


def half_width(atm_total_variance):
    """Half-width in log-moneyness of a slice's check grid:
    ``max(STANDARD_DEVIATIONS x ATM total vol, MIN_HALF_WIDTH)``."""
    atm = jnp.maximum(jnp.asarray(atm_total_variance), 0.0)
    return jnp.maximum(STANDARD_DEVIATIONS * jnp.sqrt(atm), MIN_HALF_WIDTH)


def _grid(model: Model, forward, t) -> np.ndarray:
    atm = np.asarray(total_variance_on_grid(model, forward, t, np.zeros((len(t), 1))))[:, 0]
    return np.linspace(-1.0, 1.0, GRID_POINTS)[None, :] * np.asarray(half_width(atm))[:, None]

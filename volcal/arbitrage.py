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
* Points without information are skipped, and counted (:attr:`ArbitrageReport.skipped`). A
  model whose implied vol is inverted from a numerically computed price (Heston's Fourier
  integral) has an absolute price error, :attr:`Model.price_resolution` (``1e-14`` of the
  forward for Heston). In the deep wings of short expiries its out-of-the-money price falls to
  that error and below (to ``1e-20`` of the forward at one day, or to a rounding-negative
  number), and the vol inverted from it is noise or NaN: ``g`` there is ``-inf``, NaN or of
  either sign at random, and says nothing about the model. A grid point is *informative* where
  the model's out-of-the-money price ``P(k)/F`` (Black-76 at the model's own total variance,
  i.e. the price the vol was inverted from) is at least ``INFORMATIVE_PRICE_MULTIPLE`` (100)
  times the model's price resolution, so ``1e-12`` of the forward for Heston, and its vol is
  finite; at least 100 times the error, the price keeps two significant digits at the
  documented worst case. Measured on Heston (the equity, crypto, ``rho = -0.95`` and
  ``v0 = 0.0025`` sets of tests/test_heston_calibration.py and a fit to the demo market;
  expiries 1 day to 2 years, the default grids), ``g`` from the default pricer deviates from a
  reference pricer (768 nodes, truncation at ``1e-24`` of the forward) by at most ``4e-6``
  where ``P/F >= 1e-12`` (``g`` is at least 0.09 there), and spurious negative ``g`` occur only
  below ``P/F = 1e-16``: a margin of 1e4 in price. Models whose implied vol is a closed form (SVI,
  SSVI, eSSVI, SABR: resolution 0) have every point informative, and a NaN ``g`` or total
  variance of theirs is reported as a violation, as before.

Units: ``g`` is dimensionless; calendar violations are in total variance (vol^2 x years); prices
are in units of the forward.

Speed: the butterfly pass (``w`` and its first two derivatives in ``k`` by nested forward-mode
autodiff, ``g`` and the informative mask) and the total-variance pass of the calendar check are
compiled with ``equinox.filter_jit`` as module-level functions taking the model as an argument,
so one compiled program serves every model of a type on grids of one shape (parameters are
traced, never baked in). The calendar check reuses the butterfly pass wherever a pair's grid is
one of the two slices' own grids (always the wider one's with the default grids), so it prices
one further grid (two where a slice's grid is narrower than both neighbours'), and none when
neighbouring slices share their grids. On a Heston fit to the
demo market (10 expiries, 1 day to 1 year, 401 points per slice; shared 2-core x86_64 CPU, jax
0.10.2), ``python benchmarks/bench_arbitrage_check.py --baseline FILE`` with FILE the
unjitted version of this module (commit af35274) gives warm medians of 0.28 s against 0.65 s
(2.3x; 0.29 s against 0.75 s in another run). What remains is the Fourier pricer itself, 240
characteristic-function evaluations per option: about 0.17 s for the butterfly pass and 0.12 s
for the calendar's further grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from volcal.black import otm_normalised_call
from volcal.models.base import Model

#: Points of the dense log-moneyness grid of each slice (see :func:`default_grid`).
GRID_POINTS = 401
#: Half-width of the grid in units of the slice's ATM total vol, and never less than
#: ``MIN_HALF_WIDTH`` in log-moneyness: far enough to see wing arbitrage, near enough to matter.
STANDARD_DEVIATIONS = 8.0
MIN_HALF_WIDTH = 1.5
#: Violations smaller than this are rounding, not arbitrage.
G_TOLERANCE = 1e-10
CALENDAR_TOLERANCE = 1e-12
#: A grid point is informative where the model's out-of-the-money price, in units of the
#: forward, is at least this multiple of ``Model.price_resolution`` (``1e-12`` of the forward
#: for Heston): the price then keeps two significant digits at its documented worst error (see
#: the module docstring for the measured margin).
INFORMATIVE_PRICE_MULTIPLE = 100.0
#: Central-difference step for models priced numerically, as a fraction of each slice's ATM
#: total vol (the scale on which the smile bends; truncation error about STEP^2/12 of it).
#: Against autodiff through the pricer, on Heston sets with xi from 0.6 to 5 and expiries from
#: 1 day to 2 years, g differs by at most 4e-4 at informative points, where g is at least 0.26
#: (tests/test_arbitrage_checks.py): the sign of g, which is what is checked, never changes.
#: Autodiff would differentiate the Fourier pricer and the implied-vol inversion twice, which
#: compiles several times longer (about 20 s of a cold Heston calibration).
DIFFERENCE_STEP = 1e-2


def _no_skipped() -> pd.DataFrame:
    return pd.DataFrame(columns=["slice", "t", "points", "butterfly", "calendar"])


@dataclass(frozen=True)
class ArbitrageReport:
    """Where and how large each violation is, and how many points could not be checked.

    Attributes
    ----------
    butterfly : DataFrame
        One row per informative grid point with ``g < -G_TOLERANCE`` (or NaN): ``slice``
        (expiry index), ``t``, ``log_moneyness``, ``g``.
    calendar : DataFrame
        One row per informative grid point where total variance falls from slice ``slice`` to
        the next: ``slice``, ``t``, ``t_next``, ``log_moneyness``, ``decrease`` (> 0, total
        variance).
    skipped : DataFrame
        One row per slice: ``slice``, ``t``, ``points`` (grid points per slice),
        ``butterfly`` (points of the slice's grid skipped by the butterfly check) and
        ``calendar`` (points of the grid shared with the next slice skipped by the calendar
        check, where either slice has no information; 0 for the last slice). A point is
        skipped where the model's vol carries no information (see the module docstring);
        always 0 for models with closed-form vols.
    """

    butterfly: pd.DataFrame
    calendar: pd.DataFrame
    skipped: pd.DataFrame = field(default_factory=_no_skipped)

    @property
    def ok(self) -> bool:
        """No butterfly or calendar violation at any informative point."""
        return self.butterfly.empty and self.calendar.empty

    @property
    def skipped_points(self) -> int:
        """Grid points skipped by either check, summed over slices."""
        return int(self.skipped["butterfly"].sum() + self.skipped["calendar"].sum())

    def summary(self) -> str:
        skipped = self.skipped_points
        note = f" ({skipped} points without vol information skipped)" if skipped else ""
        if self.ok:
            return "no butterfly or calendar violations" + note
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
        return "; ".join(parts) + note


def total_variance_on_grid(model: Model, forward, t, log_moneyness) -> jax.Array:
    """``w(k) = sigma^2 t`` of ``model`` at ``log_moneyness`` ``(expiry, point)``."""
    forward = jnp.asarray(forward)
    t = jnp.asarray(t)
    strike = forward[:, None] * jnp.exp(log_moneyness)
    return model.implied_vol(forward, strike, t) ** 2 * t[:, None]


def _g_and_total_variance(model: Model, forward, t, log_moneyness):
    """``(g, w)`` at ``log_moneyness`` ``(expiry, point)``: ``w`` and its first two derivatives
    in ``k`` by nested jvps (one forward pass carries value, slope and curvature); for models
    priced numerically (``price_resolution > 0``), by central differences instead (see
    :data:`DIFFERENCE_STEP`)."""

    def w(k):
        return total_variance_on_grid(model, forward, t, k)

    k = jnp.asarray(log_moneyness)
    if type(model).price_resolution > 0.0:
        # Step per slice, in units of its ATM total vol: the scale on which the smile bends.
        atm = total_variance_on_grid(model, forward, t, jnp.zeros((k.shape[0], 1)))
        h = DIFFERENCE_STEP * jnp.sqrt(atm)
        points = k.shape[1]
        stacked = w(jnp.concatenate([k - h, k, k + h], axis=1))
        low, value, high = (stacked[:, i * points:(i + 1) * points] for i in range(3))
        slope = (high - low) / (2.0 * h)
        curvature = (high - 2.0 * value + low) / (h * h)
    else:
        ones = jnp.ones_like(k)

        def first(k):
            return jax.jvp(w, (k,), (ones,))

        (value, slope), (_, curvature) = jax.jvp(first, (k,), (ones,))
    g = ((1.0 - k * slope / (2.0 * value)) ** 2
         - 0.25 * slope**2 * (1.0 / value + 0.25) + 0.5 * curvature)  # fmt: skip
    return g, value


def _informative(model: Model, log_moneyness, total_variance) -> jax.Array:
    """Points where the model's vol carries information: its out-of-the-money price ``P/F``
    at least ``INFORMATIVE_PRICE_MULTIPLE * price_resolution`` (False where ``w`` is NaN);
    everywhere for models with closed-form vols (resolution 0)."""
    resolution = type(model).price_resolution
    k = jnp.asarray(log_moneyness)
    if resolution == 0.0:
        return jnp.ones(k.shape, dtype=bool)
    # P/F = sqrt(K/F) b(-|k|, s): the normalised Black price of the out-of-the-money option at
    # the model's total vol, equal (to the inversion's accuracy) to the price it came from.
    price = jnp.exp(0.5 * k) * otm_normalised_call(-jnp.abs(k), jnp.sqrt(total_variance))
    return price >= INFORMATIVE_PRICE_MULTIPLE * resolution


@eqx.filter_jit
def _butterfly_pass(model: Model, forward, t, log_moneyness):
    """``(g, w, informative)`` on ``log_moneyness`` ``(expiry, point)``, compiled."""
    g, w = _g_and_total_variance(model, forward, t, log_moneyness)
    return g, w, _informative(model, log_moneyness, w)


@eqx.filter_jit
def _total_variance_pass(model: Model, forward, t, log_moneyness):
    """``(w, informative)`` on ``log_moneyness`` ``(expiry, point)``, compiled."""
    w = total_variance_on_grid(model, forward, t, log_moneyness)
    return w, _informative(model, log_moneyness, w)


def _traced(model: Model) -> Model:
    """``model`` with Python-number fields as arrays: ``equinox.filter_jit`` traces arrays and
    would otherwise compile one program per parameter value (e.g. ``Heston(v0=0.04, ...)``)."""
    return jax.tree.map(lambda a: jnp.asarray(a) if isinstance(a, int | float) else a, model)


def durrleman_g(model: Model, forward, t, log_moneyness) -> jax.Array:
    """Durrleman's ``g`` at ``log_moneyness`` ``(expiry, point)``, derivatives by autodiff.

    Parameters
    ----------
    model : Model
        Any model; its ``implied_vol(forward, strike, t)`` takes ``forward`` and ``t`` of shape
        ``(expiry,)`` and strikes ``(expiry, point)``.
    forward, t : array_like, shape (expiry,)
        Forwards (quote currency) and expiries (years).
    log_moneyness : array_like, shape (expiry, point)
        ``k = ln(K/F)``.

    Returns
    -------
    Array, shape (expiry, point)
        ``g`` (dimensionless), evaluated everywhere: where the model's vol carries no
        information (see the module docstring) it is noise, NaN or ``-inf``; :func:`check`
        skips those points. Compiled once per model type and grid shape (the program of
        :func:`check`'s butterfly pass).
    """
    args = (jnp.asarray(a, jnp.float64) for a in (forward, t, log_moneyness))
    return _butterfly_pass(_traced(model), *args)[0]


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
        Grid ``(expiry, point)``; default: :func:`default_grid`. The calendar check compares
        each pair of neighbours on the wider of their two grids (scaled to its half-width).

    Returns
    -------
    ArbitrageReport
        Violations at informative points, and the count of points skipped per slice.
    """
    model = _traced(model)
    forward = np.asarray(forward, dtype=float)
    t = np.asarray(t, dtype=float)
    if log_moneyness is None:
        grid = default_grid(model, forward, t)
    else:
        grid = np.asarray(log_moneyness, dtype=float)
    forward_j, t_j = jnp.asarray(forward), jnp.asarray(t)
    passed = _butterfly_pass(model, forward_j, t_j, jnp.asarray(grid))
    g, w, informative = (np.asarray(a) for a in passed)
    rows, cols = np.nonzero(~(g >= -G_TOLERANCE) & informative)
    butterfly = pd.DataFrame({"slice": rows, "t": t[rows], "log_moneyness": grid[rows, cols],
                              "g": g[rows, cols]})  # fmt: skip
    calendar = pd.DataFrame(columns=["slice", "t", "t_next", "log_moneyness", "decrease"])
    calendar_skipped = np.zeros(len(t), dtype=int)
    if len(t) > 1:
        k, earlier, later, both = _pair_total_variance(model, forward_j, t_j, grid, w,
                                                       informative)  # fmt: skip
        decrease = earlier - later
        rows, cols = np.nonzero(~(decrease <= CALENDAR_TOLERANCE) & both)
        calendar = pd.DataFrame({"slice": rows, "t": t[rows], "t_next": t[rows + 1],
                                 "log_moneyness": k[rows, cols],
                                 "decrease": decrease[rows, cols]})  # fmt: skip
        calendar_skipped[:-1] = (~both).sum(axis=1)
    skipped = pd.DataFrame({"slice": np.arange(len(t)), "t": t, "points": grid.shape[1],
                            "butterfly": (~informative).sum(axis=1),
                            "calendar": calendar_skipped})  # fmt: skip
    return ArbitrageReport(butterfly=butterfly, calendar=calendar, skipped=skipped)


def _pair_total_variance(model: Model, forward, t, grid, w, informative):
    """Total variance of slices ``i`` and ``i + 1`` on the wider of their two grids.

    Returns ``(k, earlier, later, both)``, each ``(expiry - 1, point)``: the pair's grid, ``w``
    of slice ``i`` and of slice ``i + 1`` on it, and where both are informative. A slice whose
    own grid is the pair's grid takes its values from the butterfly pass (``w``,
    ``informative``); the rest are priced by :func:`_total_variance_pass` on full
    ``(expiry, point)`` grids (slice models need one row per slice), one row per slice at a
    time: a slice needs at most two other grids (those of its two pairs), so at most two passes.
    """
    n, points = grid.shape
    wide = np.maximum(np.abs(grid[:-1]).max(axis=1), np.abs(grid[1:]).max(axis=1))
    k = np.linspace(-1.0, 1.0, points)[None, :] * wide[:, None]
    values = {"earlier": np.empty((n - 1, points)), "later": np.empty((n - 1, points))}
    known = {"earlier": np.empty((n - 1, points), bool), "later": np.empty((n - 1, points), bool)}
    pending = [[] for _ in range(n)]  # per slice: (pair, role) still to be priced
    for pair in range(n - 1):
        for role, index in (("earlier", pair), ("later", pair + 1)):
            if np.array_equal(k[pair], grid[index]):
                values[role][pair], known[role][pair] = w[index], informative[index]
            else:
                pending[index].append((pair, role))
    while any(pending):
        rows = grid.copy()  # rows with nothing pending keep their own grid (discarded)
        taken = []
        for index, requests in enumerate(pending):
            if requests:
                pair, role = requests.pop()
                rows[index] = k[pair]
                taken.append((index, pair, role))
        extra_w, extra_informative = (np.asarray(a) for a in _total_variance_pass(
            model, forward, t, jnp.asarray(rows)))  # fmt: skip
        for index, pair, role in taken:
            values[role][pair] = extra_w[index]
            known[role][pair] = extra_informative[index]
    return k, values["earlier"], values["later"], known["earlier"] & known["later"]


def half_width(atm_total_variance):
    """Half-width in log-moneyness of a slice's check grid:
    ``max(STANDARD_DEVIATIONS x ATM total vol, MIN_HALF_WIDTH)``."""
    atm = jnp.maximum(jnp.asarray(atm_total_variance), 0.0)
    return jnp.maximum(STANDARD_DEVIATIONS * jnp.sqrt(atm), MIN_HALF_WIDTH)


def default_grid(model: Model, forward, t) -> np.ndarray:
    """The check grid of :func:`check`: per slice, :data:`GRID_POINTS` log-moneyness points
    evenly over ``+-half_width(ATM total variance)``; shape ``(expiry, GRID_POINTS)``."""
    zeros = np.zeros((len(t), 1))
    atm = np.asarray(total_variance_on_grid(model, forward, t, zeros))[:, 0]
    return np.linspace(-1.0, 1.0, GRID_POINTS)[None, :] * np.asarray(half_width(atm))[:, None]

"""``VolSurface``: a calibrated model as a queryable surface across strikes and expiries.

A calibration fixes a model on a set of expiries ``t_1 < ... < t_n`` (its nodes); the surface
answers for any strike and any expiry time:

* **Total variance between nodes** is interpolated linearly in ``t`` at constant log-forward-
  moneyness ``k = ln(K/F(t))``, from the node curves ``w_i(k)`` made non-decreasing in ``i``
  by a running maximum, ``W_i(k) = max_{j <= i} w_j(k)``. Each piece is then non-decreasing in
  ``t`` at fixed ``k``, so the whole surface is free of calendar arbitrage (Gatheral & Jacquier
  2014, Lemma 2.1) even when a slice model's nodes conflict; models free of calendar arbitrage
  (eSSVI, SSVI, Heston) have ``W_i = w_i``. Where a slice model's nodes do conflict, the
  surface's node values differ from the fit and :attr:`VolSurface.calendar_adjusted` says so.
* **Before the first node** the implied vol at fixed ``k`` is the first node's,
  ``w(k, t) = W_1(k) t / t_1`` (total variance falls to 0 at ``t = 0``); **beyond the last
  node** likewise the last node's, ``w(k, t) = W_n(k) t / t_n``. Both keep ``w`` increasing in
  ``t``; neither invents a term structure the quotes did not show.
* **The forward curve** ``F(t)`` interpolates ``ln F`` linearly in ``t`` through the nodes (a
  constant carry between expiries) and through the index price at ``t = 0`` when it is known;
  beyond the last node it continues the last segment's carry. **Discount factors** interpolate
  ``ln D`` linearly with ``D(0) = 1`` and continue the last segment's rate.

Prices are Black-76 on ``F(t)`` with the surface's vol, discounted by ``D(t)``; greeks are
autodiff derivatives of that price with respect to a multiplicative shift of the whole forward
curve and an additive shift of every vol (:meth:`VolSurface.greeks`), under sticky-strike
(the vol at a fixed strike stays put when the forward moves) or sticky-moneyness (the vol at a
fixed ``k`` stays put) dynamics.

Units: vols are decimals, ``t`` in years (ACT/365), total variance vol^2 x years, prices in
the quote currency of the forward.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from volcal.black import black_price
from volcal.models.base import Model

Dynamics = Literal["sticky_strike", "sticky_moneyness"]
DAYS_PER_YEAR = 365.0
#: Constant-maturity tenors (days) reported by :meth:`VolSurface.constant_maturity`.
STANDARD_TENORS_DAYS = (7, 30, 60, 90, 180, 365)
#: Bisection steps that find a delta's log-moneyness: the bracket below is narrowed by 2^-80,
#: far below float64 resolution of k.
DELTA_BISECTION_STEPS = 80
#: The bracket for a delta's log-moneyness: +-DELTA_BRACKET_DEVIATIONS ATM total vols (a 1e-6
#: delta lies within 5 deviations), and never less than DELTA_BRACKET_MIN.
DELTA_BRACKET_DEVIATIONS = 12.0
DELTA_BRACKET_MIN = 0.5


class Greeks(NamedTuple):
    """Greeks of an option on a :class:`VolSurface` (arrays broadcast like the inputs).

    ``price`` in the quote currency; ``delta`` per unit of forward (dP/dF, the whole forward
    curve moved proportionally); ``gamma`` d2P/dF2 per unit of forward squared; ``vega`` per
    unit of vol (decimal; multiply by 0.01 for one vol point), every vol shifted alike;
    ``theta`` per year, ``-dP/dt`` with the forward, the vol and the discount rate fixed.
    """

    price: jax.Array
    delta: jax.Array
    gamma: jax.Array
    vega: jax.Array
    theta: jax.Array


class VolSurface(eqx.Module):
    """A calibrated model's implied-vol surface (module docstring: interpolation, units).

    Parameters
    ----------
    model : Model
        Calibrated parameters (any volcal model), one slice per node for slice models.
    t, forward, discount : array ``(expiry,)``
        Node expiries (years from ``snapshot``, increasing), forwards and discount factors.
    spot : float, optional
        Index price at the snapshot; anchors the forward curve at ``t = 0`` (NaN: unknown).
    venue, underlying, snapshot, expiries, surface_id
        Labels: the snapshot time and node expiries as ISO-8601 UTC strings, the store's id.

    Examples
    --------
    >>> surface = VolSurface.from_calibration(vc.calibrate(vc.models.ESSVI, grid))
    >>> surface.implied_vol(strike=[90_000.0, 100_000.0], t=30 / 365)
    """

    model: Model
    t: jax.Array
    forward: jax.Array
    discount: jax.Array
    spot: jax.Array = eqx.field(default_factory=lambda: jnp.asarray(jnp.nan))
    venue: str = eqx.field(static=True, default="")
    underlying: str = eqx.field(static=True, default="")
    snapshot: str = eqx.field(static=True, default="")
    expiries: tuple[str, ...] = eqx.field(static=True, default=())
    surface_id: str = eqx.field(static=True, default="")

    def __check_init__(self):
        if isinstance(self.t, jax.core.Tracer):
            return  # built inside a compiled function: checked where it was built outside
        t = np.asarray(self.t)
        if t.ndim != 1 or len(t) == 0 or not np.all(np.diff(t) > 0) or not t[0] > 0:
            raise ValueError(f"VolSurface needs increasing positive node expiries, got {t}")

    def unlabelled(self) -> VolSurface:
        """The same numbers without the labels (venue, snapshot, expiries, id): what the
        compiled functions take, so that surfaces of different snapshots with the same model
        type and node count share one compiled program."""
        if not (self.venue or self.underlying or self.snapshot or self.expiries
                or self.surface_id):  # fmt: skip
            return self
        return VolSurface(model=self.model, t=self.t, forward=self.forward,
                          discount=self.discount, spot=self.spot)  # fmt: skip

    @classmethod
    def from_calibration(cls, calibration, *, surface_id: str = "") -> VolSurface:
        """The surface of a :class:`volcal.Calibration` (its grid gives nodes and labels)."""
        grid = calibration.grid
        spot = float("nan")
        forwards = grid.report.forwards
        if "index_price" in forwards and forwards["index_price"].notna().any():
            spot = float(forwards["index_price"].dropna().median())
        return cls(
            model=calibration.model,
            t=jnp.asarray(grid.t, dtype=float),
            forward=jnp.asarray(grid.forward, dtype=float),
            discount=jnp.asarray(grid.discount, dtype=float),
            spot=jnp.asarray(spot),
            venue=grid.venue,
            underlying=grid.underlying,
            snapshot=_iso(grid.snapshot),
            expiries=tuple(_iso(e) for e in grid.expiries),
            surface_id=surface_id,
        )

    # --- curves -------------------------------------------------------------------------

    def forward_at(self, t) -> jax.Array:
        """Forward price for expiry time ``t`` (years), module docstring's curve."""
        return _forward_at(self, t)

    def discount_at(self, t) -> jax.Array:
        """Discount factor to expiry time ``t`` (years): ``ln D`` linear, ``D(0) = 1``."""
        return _discount_at(self, t)

    # --- total variance and vols --------------------------------------------------------

    def node_total_variance(self, log_moneyness) -> jax.Array:
        """``W_i(k)``, the calendar-monotone node curves, shape ``(expiry, point)`` for
        ``log_moneyness`` of shape ``(point,)``."""
        k = jnp.atleast_1d(jnp.asarray(log_moneyness, dtype=float))
        w = self.model.total_variance_at(
            self.forward, jnp.broadcast_to(k, (len(self.t), k.shape[0])), self.t
        )
        # A node without a vol at k (NaN: a numerically priced model's deep wing at a short
        # expiry) neither sets nor breaks the running maximum of the later nodes.
        running = jax.lax.cummax(jnp.where(jnp.isnan(w), -jnp.inf, w), axis=0)
        return jnp.where(jnp.isnan(w), jnp.nan, running)

    @property
    def calendar_adjusted(self) -> bool:
        """Whether the running maximum changed a node curve (the model's nodes conflict) on a
        log-moneyness grid of +-1.5 around the money."""
        k = jnp.linspace(-1.5, 1.5, 121)
        strike = self.forward[:, None] * jnp.exp(k)[None, :]
        w = self.model.implied_vol(self.forward, strike, self.t) ** 2 * self.t[:, None]
        return bool(jnp.any(jax.lax.cummax(w, axis=0) > w))

    def total_variance(self, log_moneyness, t) -> jax.Array:
        """Total variance ``w(k, t)`` at log-forward-moneyness ``k`` and expiry ``t`` (years);
        arguments broadcast."""
        return _total_variance(self, log_moneyness, t)

    def total_variance_rows(self, log_moneyness, t) -> jax.Array:
        """:meth:`total_variance` for ``log_moneyness`` ``(row, point)`` with one expiry time
        per row, ``t`` ``(row,)``: the node search and parameter gathers run once per row (the
        margin engine's layout: positions x scenarios)."""
        return _total_variance_rows(self, log_moneyness, t)

    def implied_vol_at(self, log_moneyness, t) -> jax.Array:
        """Implied vol at log-forward-moneyness ``k = ln(K/F(t))`` and expiry ``t``."""
        t = jnp.asarray(t, dtype=float)
        return jnp.sqrt(self.total_variance(log_moneyness, t) / t)

    def implied_vol(self, strike, t) -> jax.Array:
        """Implied vol at ``strike`` for expiry ``t`` (years); arguments broadcast."""
        t = jnp.asarray(t, dtype=float)
        return self.implied_vol_at(
            jnp.log(jnp.asarray(strike, dtype=float) / self.forward_at(t)), t
        )

    # --- prices and greeks --------------------------------------------------------------

    def price(
        self,
        strike,
        t,
        is_call,
        *,
        forward_shift=1.0,
        vol_shift=0.0,
        vol_scale=1.0,
        dynamics: Dynamics = "sticky_strike",
    ) -> jax.Array:
        """Black-76 price, discounted, of options at ``strike`` expiring at ``t`` (years).

        ``forward_shift`` multiplies the whole forward curve; the vol becomes
        ``vol * vol_scale + vol_shift`` (absolute, decimal). Under ``dynamics`` =
        "sticky_strike" the unshifted vol is read at the option's strike on the unshifted
        surface; under "sticky_moneyness" at its shifted log-moneyness ``ln(K / (s F(t)))``.
        A shifted vol at or below zero prices the intrinsic value.
        """
        _check_dynamics(dynamics)
        shifts = (jnp.asarray(x, dtype=float) for x in (forward_shift, vol_shift, vol_scale))
        return _price(self, strike, t, is_call, *shifts, dynamics)

    def greeks(self, strike, t, is_call, *, dynamics: Dynamics = "sticky_strike") -> Greeks:
        """Price, delta, gamma, vega and theta by autodiff of :meth:`price` (see
        :class:`Greeks` for units); arguments broadcast."""
        _check_dynamics(dynamics)
        return _greeks(self, strike, t, is_call, dynamics)

    # --- constant-maturity quantities ---------------------------------------------------

    def atm_vol(self, t) -> jax.Array:
        """At-the-forward implied vol for expiry ``t`` (years)."""
        return self.implied_vol_at(0.0, t)

    def delta_log_moneyness(self, t, delta, is_call) -> jax.Array:
        """Log-moneyness whose undiscounted Black forward delta is ``delta`` (calls) or
        ``-delta`` (puts) on the surface's smile at ``t``: ``Phi(d1) = delta`` or
        ``Phi(d1) = 1 - delta`` with ``d1 = -k/s + s/2`` and ``s = sqrt(w(k, t))``, by
        bisection (the delta of an arbitrage-free smile falls as ``k`` rises)."""
        return _delta_log_moneyness(self, t, delta, is_call)

    def risk_reversal(self, t, delta: float = 0.25) -> jax.Array:
        """``vol(call delta) - vol(put delta)`` at expiry ``t`` (decimal vol)."""
        call, put = self._delta_vols(t, delta)
        return call - put

    def butterfly(self, t, delta: float = 0.25) -> jax.Array:
        """Smile strangle ``(vol(call delta) + vol(put delta)) / 2 - ATM vol`` (decimal)."""
        call, put = self._delta_vols(t, delta)
        return 0.5 * (call + put) - self.atm_vol(t)

    def _delta_vols(self, t, delta):
        t = jnp.asarray(t, dtype=float)
        k_call = self.delta_log_moneyness(t, delta, True)
        k_put = self.delta_log_moneyness(t, delta, False)
        return self.implied_vol_at(k_call, t), self.implied_vol_at(k_put, t)

    def constant_maturity(self, tenors_days=STANDARD_TENORS_DAYS) -> pd.DataFrame:
        """Per tenor (days): forward, ATM vol, 25-delta risk reversal and butterfly, and
        10-delta ones (decimal vols)."""
        days = np.asarray(tenors_days, dtype=float)
        t = jnp.asarray(days / DAYS_PER_YEAR)
        return pd.DataFrame(
            {
                "forward": np.asarray(self.forward_at(t)),
                "atm_vol": np.asarray(self.atm_vol(t)),
                "rr25": np.asarray(self.risk_reversal(t, 0.25)),
                "bf25": np.asarray(self.butterfly(t, 0.25)),
                "rr10": np.asarray(self.risk_reversal(t, 0.10)),
                "bf10": np.asarray(self.butterfly(t, 0.10)),
            },
            index=pd.Index(days, name="tenor_days"),
        )

    # --- serialisation ------------------------------------------------------------------

    def to_record(self) -> dict:
        """A JSON-ready description (model name, named parameters, nodes, labels) that
        :meth:`from_record` turns back into an equal surface."""
        return {
            "model": type(self.model).__name__,
            "parameters": model_parameters(self.model),
            "t": np.asarray(self.t).tolist(),
            "forward": np.asarray(self.forward).tolist(),
            "discount": np.asarray(self.discount).tolist(),
            "spot": float(self.spot) if np.isfinite(float(self.spot)) else None,
            "venue": self.venue,
            "underlying": self.underlying,
            "snapshot": self.snapshot,
            "expiries": list(self.expiries),
        }

    @classmethod
    def from_record(cls, record: dict, *, surface_id: str = "") -> VolSurface:
        """Inverse of :meth:`to_record`."""
        return cls(
            model=model_from_parameters(record["model"], record["parameters"]),
            t=jnp.asarray(record["t"], dtype=float),
            forward=jnp.asarray(record["forward"], dtype=float),
            discount=jnp.asarray(record["discount"], dtype=float),
            spot=jnp.asarray(np.nan if record.get("spot") is None else float(record["spot"])),
            venue=record.get("venue", ""),
            underlying=record.get("underlying", ""),
            snapshot=record.get("snapshot", ""),
            expiries=tuple(record.get("expiries", ())),
            surface_id=surface_id,
        )


def model_parameters(model: Model) -> dict:
    """Named parameters of ``model``: arrays as (nested) lists of floats, static settings
    (e.g. SABR's expansion) as they are."""
    parameters = {}
    for spec in dataclasses.fields(model):
        value = getattr(model, spec.name)
        if isinstance(value, str):
            parameters[spec.name] = value
        else:
            parameters[spec.name] = np.asarray(value, dtype=float).tolist()
    return parameters


def model_from_parameters(name: str, parameters: dict) -> Model:
    """The model named ``name`` (a key of :data:`volcal.models.MODELS`) from
    :func:`model_parameters`' output."""
    from volcal.models import MODELS

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    fields = {spec.name for spec in dataclasses.fields(MODELS[name])}
    if set(parameters) != fields:
        raise ValueError(f"{name} needs parameters {sorted(fields)}, got {sorted(parameters)}")
    values = {
        key: value if isinstance(value, str) else jnp.asarray(value, dtype=float)
        for key, value in parameters.items()
    }
    return MODELS[name](**values)


def _check_dynamics(dynamics: str) -> None:
    if dynamics not in ("sticky_strike", "sticky_moneyness"):
        raise ValueError(
            f"dynamics must be 'sticky_strike' or 'sticky_moneyness', not {dynamics!r}"
        )


def _iso(timestamp) -> str:
    return pd.Timestamp(timestamp).tz_convert("UTC").isoformat()


def _linear_extrapolated(x, nodes, values):
    """Piecewise-linear interpolation through ``(nodes, values)``, continued beyond both ends
    along the end segments (constant when there is one node)."""
    if nodes.shape[0] == 1:
        return jnp.broadcast_to(values[0], jnp.shape(x))
    i = jnp.clip(
        jnp.searchsorted(nodes, x, side="right", method="compare_all") - 1, 0, nodes.shape[0] - 2
    )
    slope = (values[i + 1] - values[i]) / (nodes[i + 1] - nodes[i])
    return values[i] + slope * (x - nodes[i])


def _compiled(function):
    """``equinox.filter_jit`` of ``function(surface, ...)``, called with the surface's labels
    removed (:meth:`VolSurface.unlabelled`) and Python numbers as arrays: one compiled program
    per model type and node count, not one per snapshot or argument value (strings, such as
    the dynamics, stay static)."""
    jitted = eqx.filter_jit(function)

    @functools.wraps(function)
    def call(surface, *args):
        # Python numbers become arrays: equinox would compile one program per value.
        args = tuple(jnp.asarray(a) if isinstance(a, (bool, int, float)) else a for a in args)
        return jitted(surface.unlabelled(), *args)

    return call


@_compiled
def _forward_at(surface, t):
    t_nodes, log_f = surface.t, jnp.log(surface.forward)
    # Without an index price, t = 0 continues the first segment (flat for one node).
    unanchored = _linear_extrapolated(jnp.zeros(1), t_nodes, log_f)
    anchor = jnp.where(jnp.isfinite(surface.spot), jnp.log(surface.spot), unanchored)
    t_nodes = jnp.concatenate([jnp.zeros(1), t_nodes])
    log_f = jnp.concatenate([anchor.reshape(1), log_f])
    return jnp.exp(_linear_extrapolated(jnp.asarray(t, dtype=float), t_nodes, log_f))


@_compiled
def _discount_at(surface, t):
    t_nodes = jnp.concatenate([jnp.zeros(1), surface.t])
    log_d = jnp.concatenate([jnp.zeros(1), jnp.log(surface.discount)])
    return jnp.exp(_linear_extrapolated(jnp.asarray(t, dtype=float), t_nodes, log_d))


@_compiled
def _total_variance(surface: VolSurface, log_moneyness, t):
    k, t = jnp.broadcast_arrays(
        jnp.asarray(log_moneyness, dtype=float), jnp.asarray(t, dtype=float)
    )
    shape = k.shape
    k, t = k.reshape(-1), t.reshape(-1)
    # Node 0 is (t = 0, w = 0); beyond the last node, w grows in proportion to t.
    t_nodes = jnp.concatenate([jnp.zeros(1), surface.t])
    last = surface.t.shape[0]
    i = jnp.clip(jnp.searchsorted(t_nodes, t, side="right", method="compare_all") - 1, 0, last - 1)
    if type(surface.model).calendar_free:
        # Nodes never conflict, so W_i = w_i: evaluate only the two nodes around each point
        # (beyond the last node, i + 1 is the last node itself).
        w_low = jnp.where(i > 0, _node_at(surface, jnp.maximum(i - 1, 0), k), 0.0)
        w_high = _node_at(surface, i, k)
        w_last = w_high
    else:
        nodes = surface.node_total_variance(k)  # (expiry, point)
        w_nodes = jnp.concatenate([jnp.zeros((1, k.shape[0])), nodes], axis=0)
        points = jnp.arange(k.shape[0])
        w_low, w_high, w_last = w_nodes[i, points], w_nodes[i + 1, points], nodes[-1, points]
    share = (t - t_nodes[i]) / (t_nodes[i + 1] - t_nodes[i])
    inside = w_low + share * (w_high - w_low)
    beyond = w_last * t / surface.t[-1]
    return jnp.where(t > surface.t[-1], beyond, inside).reshape(shape)


def _total_variance_rows(surface: VolSurface, log_moneyness, t):
    k = jnp.asarray(log_moneyness, dtype=float)
    t = jnp.asarray(t, dtype=float)
    if not type(surface.model).calendar_free:
        return _total_variance(surface, k, t[:, None])
    t_nodes = jnp.concatenate([jnp.zeros(1), surface.t])
    last = surface.t.shape[0]
    i = jnp.clip(jnp.searchsorted(t_nodes, t, side="right", method="compare_all") - 1, 0,
                 last - 1)  # fmt: skip
    w_low = jnp.where((i > 0)[:, None], _node_rows(surface, jnp.maximum(i - 1, 0), k), 0.0)
    w_high = _node_rows(surface, i, k)
    share = ((t - t_nodes[i]) / (t_nodes[i + 1] - t_nodes[i]))[:, None]
    inside = w_low + share * (w_high - w_low)
    beyond = w_high * (t / surface.t[-1])[:, None]
    return jnp.where((t > surface.t[-1])[:, None], beyond, inside)


def _node_rows(surface: VolSurface, node, k):
    """``w_{node[r]}(k[r, :])``: row ``r``'s node curve at its points."""
    n = surface.t.shape[0]
    model = jax.tree.map(lambda a: a[node] if jnp.ndim(a) >= 1 and a.shape[0] == n else a,
                         surface.model)  # fmt: skip
    return model.total_variance_at(surface.forward[node], k, surface.t[node])


def _node_at(surface: VolSurface, node, k):
    """``w_node(k)`` per point: node ``node[j]``'s model total variance at ``k[j]`` (per-expiry
    parameters gathered per point; surface-wide ones broadcast)."""
    n = surface.t.shape[0]
    model = jax.tree.map(lambda a: a[node] if jnp.ndim(a) >= 1 and a.shape[0] == n else a,
                         surface.model)  # fmt: skip
    return model.total_variance_at(surface.forward[node], k[:, None], surface.t[node])[:, 0]


@_compiled
def _price(surface, strike, t, is_call, forward_shift, vol_shift, vol_scale, dynamics):
    strike = jnp.asarray(strike, dtype=float)
    t = jnp.asarray(t, dtype=float)
    forward = surface.forward_at(t)
    shifted = forward * forward_shift
    reference = forward if dynamics == "sticky_strike" else shifted
    vol = surface.implied_vol_at(jnp.log(strike / reference), t) * vol_scale + vol_shift
    vol = jnp.maximum(vol, 0.0)
    return black_price(shifted, strike, t, vol, jnp.asarray(is_call), surface.discount_at(t))


@_compiled
def _greeks(surface, strike, t, is_call, dynamics):
    strike, t, is_call = jnp.broadcast_arrays(
        jnp.asarray(strike, dtype=float), jnp.asarray(t, dtype=float), jnp.asarray(is_call)
    )

    def price(shift, vol_shift, tt):
        return _price(surface, strike, tt, is_call, shift, vol_shift, 1.0, dynamics)

    def by_shift(shift):
        return jax.jvp(lambda s: price(s, 0.0, t), (shift,), (jnp.ones(()),))[1]

    value = price(1.0, 0.0, t)
    forward = surface.forward_at(t)
    first, second = jax.jvp(by_shift, (jnp.ones(()),), (jnp.ones(()),))
    vega = jax.jvp(lambda v: price(1.0, v, t), (jnp.zeros(()),), (jnp.ones(()),))[1]
    # Theta at a fixed forward, vol and discount rate: Black-76's own time decay.
    vol = surface.implied_vol_at(jnp.log(strike / forward), t)
    rate = -jnp.log(surface.discount_at(t)) / t

    def black(tt):
        return black_price(forward, strike, tt, vol, is_call, jnp.exp(-rate * tt))

    theta = -jax.jvp(black, (t,), (jnp.ones_like(t),))[1]
    return Greeks(
        price=value, delta=first / forward, gamma=second / forward**2, vega=vega, theta=theta
    )


@_compiled
def _delta_log_moneyness(surface, t, delta, is_call):
    t, delta, is_call = jnp.broadcast_arrays(
        jnp.asarray(t, dtype=float), jnp.asarray(delta, dtype=float), jnp.asarray(is_call)
    )
    target = jnp.where(is_call, delta, 1.0 - delta)  # Phi(d1) of the wanted strike
    atm = jnp.sqrt(surface.total_variance(jnp.zeros_like(t), t))
    half = jnp.maximum(DELTA_BRACKET_DEVIATIONS * atm, DELTA_BRACKET_MIN)

    def call_delta(k):
        s = jnp.sqrt(surface.total_variance(k, t))
        # Phi(d1) = the normalised Black call's derivative in x = -k: use the closed form.
        return jax.scipy.stats.norm.cdf(-k / s + 0.5 * s)

    def step(_, bracket):
        low, high = bracket
        middle = 0.5 * (low + high)
        above = call_delta(middle) > target  # delta still too high: move right
        return jnp.where(above, middle, low), jnp.where(above, high, middle)

    low, high = jax.lax.fori_loop(0, DELTA_BISECTION_STEPS, step, (-half, half))
    return 0.5 * (low + high)


__all__ = ["Greeks", "VolSurface", "model_from_parameters", "model_parameters"]

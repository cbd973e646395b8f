"""Scenario sets as data: SPAN-style, a Deribit-style risk matrix, user grids, history.

A :class:`ScenarioSet` lists scenarios, each a relative move of the index and every forward
(``price_move``), a vol move (``vol_direction``: +1 up, 0 unchanged, -1 down, under the set's
:class:`VolRule`) and the fraction of its loss that counts (``weight``). The shocked vol of a
position with base vol ``sigma`` (read on the surface as the dynamics say) is
``max(sigma * scale + shift, floor)``, with ``scale``, ``shift`` and ``floor`` from the rule
(:meth:`ScenarioSet.vol_terms`). Sources of every default are in :data:`RISK_MATRIX_DEFAULTS`,
:data:`SPAN_DEFAULTS` and ``../shared/MARGIN-METHODS.md``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: Shocked-down vols are floored here (decimal), above zero so every shocked price is a
#: Black-76 price with a vol; a volcal choice (the published down-shock formulas floor at 0).
VOL_FLOOR = 1e-4
#: The risk matrix's vol-shock pivot and the floor on days to expiry (Deribit and Paradex:
#: ``(30 / max(1, DTE))^power``).
PIVOT_DAYS = 30.0
MIN_DAYS = 1.0

#: Deribit Portfolio Margin parameters (MARGIN-METHODS.md section 2): BTC from the
#: ``private/pme/simulate`` example of docs.deribit.com (model of 2024-06-17), ETH from a live
#: response of 2026-02-15. The extended moves are Deribit's extended table; their weights
#: ``price_range / |move|`` are Paradex's published ones (section 3), and the minimum delta
#: requirement is Paradex's (2% of |net delta| + 1% of hedged delta, times spot), standing in
#: for Deribit's delta and roll shocks, whose formulas are not published.
RISK_MATRIX_DEFAULTS = {
    "BTC": {
        "price_range": 0.16,
        "vol_range_up": 0.50,
        "vol_range_down": 0.25,
        "short_term_vega_power": 0.30,
        "long_term_vega_power": 0.13,
        "min_vol_for_shock_up": 0.50,
    },
    "ETH": {
        "price_range": 0.18,
        "vol_range_up": 0.40,
        "vol_range_down": 0.25,
        "short_term_vega_power": 0.30,
        "long_term_vega_power": 0.13,
        "min_vol_for_shock_up": 0.50,
    },
}
RISK_MATRIX_BUCKETS = 4  # per side: 9 price moves including 0 (Deribit's buckets_count)
EXTENDED_MOVES = (-0.66, -0.33, 0.50, 1.00, 2.00, 3.00, 4.00, 5.00)
MIN_DELTA_NET_RATE = 0.02
MIN_DELTA_HEDGED_RATE = 0.01

#: SPAN (MARGIN-METHODS.md section 1): extreme moves of 2 price scan ranges counted at 35%
#: (NSE SPAN table; McMillan's CME example). Deribit's earlier portfolio margin charged 0.01
#: coin per net short option (section 2), used as the short option minimum. The scan ranges
#: themselves are per-product exchange parameters with no published crypto value: give them.
SPAN_DEFAULTS = {"extreme_multiple": 2.0, "extreme_weight": 0.35, "short_option_minimum": 0.01}


@dataclass(frozen=True)
class VolRule:
    """How a scenario's ``vol_direction`` becomes a shocked vol.

    ``kind`` "absolute": ``sigma + direction * up`` (SPAN's vol scan range, decimal vol);
    "relative": Deribit's ``sigma (1 + up s)`` (up), ``sigma (1 - down s)`` (down) with
    ``s = (PIVOT_DAYS / max(MIN_DAYS, DTE))^power``, ``power`` short-term below
    ``PIVOT_DAYS`` and long-term above, shocked-up vols floored at ``min_vol_up``;
    "table": per-scenario ``vol_scale`` (relative) and ``vol_shift`` (absolute) from a user grid;
    "historical": the change of each position's vol between two surfaces.
    """

    kind: str
    up: float = 0.0
    down: float = 0.0
    short_power: float = 0.0
    long_power: float = 0.0
    min_vol_up: float = 0.0


@dataclass(frozen=True)
class ScenarioSet:
    """Scenarios of one underlying (or of any, for user grids).

    Attributes
    ----------
    name : str
    labels : tuple of str
    price_move : ndarray ``(scenario,)``
        Relative move of the index and every forward (0.1 = +10%).
    vol_direction : ndarray ``(scenario,)``
        +1, 0 or -1.
    weight : ndarray ``(scenario,)``
        Fraction of the scenario's loss counted.
    rule : VolRule
    vol_scale, vol_shift : ndarray ``(scenario,)``
        For "table" rules only.
    short_option_minimum : float
        Charge per net short option, in coin per coin of underlying (0: none).
    min_delta : bool
        Apply the minimum delta requirement (the scan risk is floored by it).
    parameters : dict
        Every parameter used, for the result's audit trail; ``source`` says where they come
        from.
    history : tuple, optional
        The two surfaces of a historical scenario.
    """

    name: str
    labels: tuple[str, ...]
    price_move: np.ndarray
    vol_direction: np.ndarray
    weight: np.ndarray
    rule: VolRule
    vol_scale: np.ndarray | None = None
    vol_shift: np.ndarray | None = None
    short_option_minimum: float = 0.0
    min_delta: bool = False
    parameters: dict = field(default_factory=dict)
    history: tuple | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    def table(self) -> pd.DataFrame:
        """The scenarios as a table (label, price move, vol direction, weight)."""
        return pd.DataFrame(
            {
                "price_move": self.price_move,
                "vol_direction": self.vol_direction,
                "weight": self.weight,
            },
            index=pd.Index(self.labels, name="scenario"),
        )

    def vol_terms(self, days, strike=None, t=None, forward=None):
        """``(scale, shift, floor)`` arrays ``(position, scenario)`` for positions with
        ``days`` to expiry (and, for historical sets, their strike, expiry time and forward)."""
        days = np.asarray(days, dtype=float)[:, None]
        direction = self.vol_direction[None, :]
        n, m = days.shape[0], len(self)
        scale, shift = np.ones((n, m)), np.zeros((n, m))
        floor = np.full((n, m), VOL_FLOOR)
        rule = self.rule
        if rule.kind == "absolute":
            shift = np.broadcast_to(direction * rule.up, (n, m)).copy()
        elif rule.kind == "relative":
            clipped = np.maximum(days, MIN_DAYS)
            power = np.where(clipped < PIVOT_DAYS, rule.short_power, rule.long_power)
            size = (PIVOT_DAYS / clipped) ** power
            scale = np.where(
                direction > 0,
                1.0 + rule.up * size,
                np.where(direction < 0, 1.0 - rule.down * size, 1.0),
            )
            floor = np.where(direction > 0, rule.min_vol_up, VOL_FLOOR) * np.ones((n, m))
        elif rule.kind == "table":
            scale = np.broadcast_to(1.0 + self.vol_scale[None, :], (n, m)).copy()
            shift = np.broadcast_to(self.vol_shift[None, :], (n, m)).copy()
        elif rule.kind == "historical":
            before, after = self.history
            k = np.log(np.asarray(strike) / np.asarray(forward))
            change = np.asarray(after.implied_vol_at(k, t)) - np.asarray(
                before.implied_vol_at(k, t)
            )
            shift = np.broadcast_to(np.nan_to_num(change)[:, None], (n, m)).copy()
        else:
            raise ValueError(f"unknown vol rule {rule.kind!r}")
        return scale, shift, floor


def risk_matrix(underlying: str, **overrides) -> ScenarioSet:
    """Deribit-style risk matrix for ``underlying``: 9 price moves from ``-price_range`` to
    ``+price_range`` x vol up / unchanged / down (27, weight 1), and the 8 extended moves with
    vol up, weighted ``price_range / |move|``; minimum delta requirement on. Defaults
    :data:`RISK_MATRIX_DEFAULTS` (BTC, ETH); ``overrides`` change any of them, and other
    underlyings must give all six."""
    base = RISK_MATRIX_DEFAULTS.get(underlying.upper())
    names = set(RISK_MATRIX_DEFAULTS["BTC"])
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(
            f"unknown risk-matrix parameter(s) {sorted(unknown)}; known: {sorted(names)}"
        )
    if base is None and set(overrides) != names:
        raise ValueError(
            f"no published risk-matrix parameters for {underlying!r} (defaults "
            f"exist for {sorted(RISK_MATRIX_DEFAULTS)}); give all of {sorted(names)}"
        )
    p = {**(base or {}), **overrides}
    moves = np.linspace(-p["price_range"], p["price_range"], 2 * RISK_MATRIX_BUCKETS + 1)
    price, direction, weight, labels = [], [], [], []
    for move in moves:
        for vol, name in ((1, "vol up"), (0, "vol same"), (-1, "vol down")):
            price.append(move)
            direction.append(vol)
            weight.append(1.0)
            labels.append(f"{move:+.0%} {name}")
    for move in EXTENDED_MOVES:
        price.append(move)
        direction.append(1)
        weight.append(p["price_range"] / abs(move))
        labels.append(f"{move:+.0%} vol up (extended)")
    rule = VolRule(
        "relative",
        up=p["vol_range_up"],
        down=p["vol_range_down"],
        short_power=p["short_term_vega_power"],
        long_power=p["long_term_vega_power"],
        min_vol_up=p["min_vol_for_shock_up"],
    )
    source = (
        "Deribit Portfolio Margin parameters (MARGIN-METHODS.md section 2)"
        if not overrides
        else "user overrides of Deribit's parameters"
    )
    return ScenarioSet(
        name=f"riskmatrix {underlying}",
        labels=tuple(labels),
        price_move=np.array(price),
        vol_direction=np.array(direction, dtype=float),
        weight=np.array(weight),
        rule=rule,
        min_delta=True,
        parameters={
            **p,
            "extended_moves": EXTENDED_MOVES,
            "min_delta_net_rate": MIN_DELTA_NET_RATE,
            "min_delta_hedged_rate": MIN_DELTA_HEDGED_RATE,
            "source": source + "; extended weights and minimum delta: Paradex (section 3)",
        },
    )


def span(price_scan_range: float, vol_scan_range: float, **overrides) -> ScenarioSet:
    """SPAN's 16 scenarios: price moves 0, +-1/3, +-2/3, +-1 scan range, each with vol up and
    down by the vol scan range (absolute, decimal), plus +-``extreme_multiple`` scan ranges with
    vol unchanged counted at ``extreme_weight``; a short option minimum per net short option
    (coin per coin). Defaults :data:`SPAN_DEFAULTS`."""
    unknown = set(overrides) - set(SPAN_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown SPAN parameter(s) {sorted(unknown)}")
    if not (price_scan_range > 0 and vol_scan_range >= 0):
        raise ValueError("SPAN needs price_scan_range > 0 and vol_scan_range >= 0")
    p = {**SPAN_DEFAULTS, **overrides}
    price, direction, weight, labels = [], [], [], []
    for fraction, name in (
        (0, "0"),
        (1 / 3, "+1/3"),
        (-1 / 3, "-1/3"),
        (2 / 3, "+2/3"),
        (-2 / 3, "-2/3"),
        (1, "+1"),
        (-1, "-1"),
    ):
        for vol in (1, -1):
            price.append(fraction * price_scan_range)
            direction.append(vol)
            weight.append(1.0)
            labels.append(f"{name} PSR vol {'up' if vol > 0 else 'down'}")
    for sign in (1, -1):
        price.append(sign * p["extreme_multiple"] * price_scan_range)
        direction.append(0)
        weight.append(p["extreme_weight"])
        labels.append(f"{'+' if sign > 0 else '-'}{p['extreme_multiple']:g} PSR extreme")
    return ScenarioSet(
        name="span",
        labels=tuple(labels),
        price_move=np.array(price),
        vol_direction=np.array(direction, dtype=float),
        weight=np.array(weight),
        rule=VolRule("absolute", up=vol_scan_range),
        short_option_minimum=p["short_option_minimum"],
        parameters={
            "price_scan_range": price_scan_range,
            "vol_scan_range": vol_scan_range,
            **p,
            "source": "SPAN 16-scenario table (MARGIN-METHODS.md section 1); short "
            "option minimum: Deribit's earlier PM (section 2)",
        },
    )


def from_file(path: str | Path) -> ScenarioSet:
    """A user grid from CSV: columns ``price_move`` (relative), optional ``vol_shift``
    (absolute, decimal), ``vol_scale`` (relative: 0.2 = vols x 1.2), ``weight`` (default 1)
    and ``label``. Bad rows raise ``ValueError`` naming them."""
    frame = pd.read_csv(io.StringIO(Path(path).read_text()))
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if "price_move" not in frame:
        raise ValueError(f"scenario file {path} needs a price_move column")
    columns = {}
    for name, default in (
        ("price_move", None),
        ("vol_shift", 0.0),
        ("vol_scale", 0.0),
        ("weight", 1.0),
    ):
        values = frame[name] if name in frame else pd.Series(default, index=frame.index)
        numbers = pd.to_numeric(values, errors="coerce")
        bad = ~np.isfinite(numbers.to_numpy(dtype=float))
        if bad.any():
            rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:10])
            raise ValueError(
                f"scenario file {path}: {name} is not a finite number in row(s) {rows}"
            )
        columns[name] = numbers.to_numpy(dtype=float)
    if (columns["price_move"] <= -1).any() or (columns["weight"] < 0).any():
        raise ValueError(f"scenario file {path}: price_move must be > -1 and weight >= 0")
    labels = (
        frame["label"].astype(str).tolist()
        if "label" in frame
        else [f"scenario {i + 1}" for i in range(len(frame))]
    )
    return ScenarioSet(
        name=f"file {Path(path).name}",
        labels=tuple(labels),
        price_move=columns["price_move"],
        vol_direction=np.sign(columns["vol_shift"] + columns["vol_scale"]),
        weight=columns["weight"],
        rule=VolRule("table"),
        vol_scale=columns["vol_scale"],
        vol_shift=columns["vol_shift"],
        parameters={"source": str(path)},
    )


def historical(before, after, *, weight: float = 1.0) -> ScenarioSet:
    """One scenario: the index return and the implied-vol change (at each position's
    log-forward-moneyness and expiry time) from surface ``before`` to surface ``after``
    (:class:`volcal.VolSurface`, e.g. two stored surfaces)."""
    move = float(_index(after) / _index(before) - 1.0)
    return ScenarioSet(
        name="historical",
        labels=(f"{before.snapshot} -> {after.snapshot}",),
        price_move=np.array([move]),
        vol_direction=np.array([0.0]),
        weight=np.array([weight]),
        rule=VolRule("historical"),
        history=(before, after),
        parameters={
            "before": before.surface_id or before.snapshot,
            "after": after.surface_id or after.snapshot,
            "index_return": move,
            "source": "two stored surfaces",
        },
    )


def _index(surface) -> float:
    spot = float(surface.spot)
    return spot if np.isfinite(spot) else float(surface.forward_at(0.0))

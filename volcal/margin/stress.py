"""Stress tests: named scenarios applied to a book on its current surfaces, against the margin
it holds.

Historical scenarios come from the spot history (:func:`historical_scenarios`): the largest
1-day, 5-day and 10-day falls and rises of the index in the bridged daily series (moves never
span the gap between its segments). The option history does not cover those dates, so their
vol move comes from the calibrated vol-shock model: the relative vol-up shock of the risk
parameters (``vol_range_up`` at 30 days, scaled by ``(30 / DTE)^power`` as in the risk matrix)
times the move's severity ``|move| / scan range`` (a move twice the 99% scan range, before any
anti-procyclicality margin, gets twice the 99% vol shock), for falls and rises alike (crypto
vols rise in both). Hypothetical scenarios (:data:`HYPOTHETICAL`) give the price move and a
vol multiplier directly.

Each scenario is repriced by the margin engine (full revaluation, sticky-moneyness by
default) with weight 1; its loss is minus the P&L of each (account, underlying, settlement)
group, set beside the margin that group holds under the risk matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcal.margin.engine import margin
from volcal.margin.scenarios import ScenarioSet, VolRule

#: Hypothetical scenarios: (label, relative index move, vol multiplier).
HYPOTHETICAL = (
    ("spot -50%, vols x2", -0.50, 2.0),
    ("spot -30%, vols x1.5", -0.30, 1.5),
    ("spot +100%, vols x1.5", 1.00, 1.5),
    ("spot +50%, vols unchanged", 0.50, 1.0),
)
#: Horizons (days) of the historical moves.
HORIZONS_DAYS = (1, 5, 10)


@dataclass(frozen=True)
class StressScenario:
    """One named scenario: index move, and either a vol multiplier (hypothetical) or a
    relative vol-up shock at 30 days with its term-structure powers (historical)."""

    name: str
    price_move: float
    vol_multiplier: float | None = None
    vol_up: float = 0.0
    short_power: float = 0.0
    long_power: float = 0.0
    source: str = ""

    def scenario_set(self) -> ScenarioSet:
        if self.vol_multiplier is not None:
            return ScenarioSet(
                name=self.name,
                labels=(self.name,),
                price_move=np.array([self.price_move]),
                vol_direction=np.array([np.sign(self.vol_multiplier - 1.0)]),
                weight=np.ones(1),
                rule=VolRule("table"),
                vol_scale=np.array([self.vol_multiplier - 1.0]),
                vol_shift=np.zeros(1),
                parameters={"source": self.source},
            )
        rule = VolRule(
            "relative",
            up=self.vol_up,
            short_power=self.short_power,
            long_power=self.long_power,
            min_vol_up=0.0,
        )
        return ScenarioSet(
            name=self.name,
            labels=(self.name,),
            price_move=np.array([self.price_move]),
            vol_direction=np.ones(1),
            weight=np.ones(1),
            rule=rule,
            parameters={"source": self.source},
        )


def hypothetical_scenarios() -> list[StressScenario]:
    return [
        StressScenario(name, move, multiplier, source="hypothetical")
        for name, move, multiplier in HYPOTHETICAL
    ]


def historical_scenarios(returns: pd.Series, parameters, horizons=HORIZONS_DAYS, *,
                         scan_range: float | None = None) -> list:  # fmt: skip
    """The largest falls and rises over ``horizons`` days in ``returns`` (daily log returns,
    :func:`volcal.history.daily_returns`; an h-day move sums h returns of consecutive days),
    each with the vol move of ``parameters`` (a :class:`RiskParameters`) scaled by its
    severity ``|move| / scan_range`` (module docstring). ``scan_range`` is the plain
    quantile the vol shock belongs to (default ``parameters.price_range``, which may include
    anti-procyclicality margins)."""
    returns = returns.sort_index()
    days = pd.DatetimeIndex(returns.index)
    scenarios = []
    for h in horizons:
        sums = returns.rolling(h).sum()
        # Only windows of h consecutive calendar days (none across a gap).
        span = pd.Series(days, index=days).diff(h - 1) if h > 1 else None
        if span is not None:
            sums = sums[span == pd.Timedelta(days=h - 1)]
        sums = sums.dropna()
        if sums.empty:
            continue
        for name, end in (("fall", sums.idxmin()), ("rise", sums.idxmax())):
            move = float(np.expm1(sums[end]))
            first = end - pd.Timedelta(days=h - 1)
            when = f"{first:%Y-%m-%d}" + (f" to {end:%Y-%m-%d}" if h > 1 else "")
            severity = abs(move) / (scan_range or parameters.price_range)
            scenarios.append(
                StressScenario(
                    name=f"largest {h}-day {name} ({when}, {move:+.1%})",
                    price_move=move,
                    vol_up=parameters.vol_range_up * severity,
                    short_power=parameters.short_term_vega_power,
                    long_power=parameters.long_term_vega_power,
                    source=f"spot history; vol: calibrated shock x severity {severity:.2f}",
                )
            )
    return scenarios


def stress_test(
    book,
    market,
    scenarios,
    *,
    margin_scenarios="riskmatrix",
    dynamics: str = "sticky_moneyness",
    asof=None,
) -> pd.DataFrame:
    """Loss of each (account, underlying, settlement) group of ``book`` under each scenario,
    beside the margin it holds (``margin_scenarios``: "riskmatrix" or a dict per underlying).

    Returns one row per scenario and group: ``scenario``, ``price_move``, ``account``,
    ``underlying``, ``settlement``, ``loss`` (settlement currency), ``loss_usd``, ``margin``,
    ``margin_usd``, ``loss_over_margin`` and ``covered`` (loss <= margin)."""
    held = margin(book, market, margin_scenarios, dynamics=dynamics, asof=asof)
    keys = ["account", "underlying", "settlement"]
    margins = held.groups.set_index(keys)
    rows = []
    for scenario in scenarios:
        sets = {u: scenario.scenario_set() for u in book.underlyings}
        result = margin(book, market, sets, dynamics=dynamics, asof=asof)
        positions = result.positions
        for underlying in book.underlyings:
            pnl = result.pnl[underlying].iloc[:, 0]
            pnl_usd = result.pnl_usd[underlying].iloc[:, 0]
            mine = positions.loc[pnl.index]
            for key, index in mine.groupby(keys).groups.items():
                loss = -float(pnl[index].sum())
                held_margin = float(margins.loc[key, "margin"])
                rows.append(
                    {
                        "scenario": scenario.name,
                        "price_move": scenario.price_move,
                        **dict(zip(keys, key, strict=True)),
                        "loss": loss,
                        "loss_usd": -float(pnl_usd[index].sum()),
                        "margin": held_margin,
                        "margin_usd": float(margins.loc[key, "margin_usd"]),
                        "loss_over_margin": loss / held_margin if held_margin > 0 else np.inf,
                        "covered": loss <= held_margin,
                    }
                )
    return pd.DataFrame(rows)

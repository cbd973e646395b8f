"""Backtests of margin parameters on the backfilled history.

One observation per day (the accepted surface nearest 16:00 UTC,
:func:`volcal.margin.history.daily_observations`), and non-overlapping margin periods of
``horizon_days``: days ``d0, d0 + h, d0 + 2h, ...`` whose surface ``h`` days later exists.
On each such day the representative books of :data:`BOOKS` are built by rule on that day's
surface, their margin is computed under each parameter set with what was known that day, and
the realised loss of those same instruments is measured one margin period later by full
revaluation on the later surface (the engine's values: Black-76 on the surface, coin premiums
for inverse contracts). An option expiring inside the period is settled at intrinsic value on
the spot of the later snapshot (:func:`volcal.history.snapshot_spot`): the data hold no
delivery price. All books are of inverse (coin-settled) contracts, so margins and losses are in
coin; USD figures use the day's spot.

Parameter sets (:func:`parameter_sets`): "deribit" (the published risk matrix), "span" (SPAN's
16 scenarios with the published price range as scan range and :data:`SPAN_VOL_SCAN_RANGE`),
and "volcal" (the risk matrix with the parameters calibrated on the data known that day, for
the backtest's horizon: :class:`volcal.margin.history.MarginCalibration` with ``volcal
calibrate-margin``'s defaults, :data:`volcal.margin.history.DEFAULT_CALIBRATION`). "deribit"
and "span" keep their published values whatever the horizon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcal.margin.book import load_book
from volcal.margin.coverage import coverage_report
from volcal.margin.engine import margin
from volcal.margin.scenarios import RISK_MATRIX_DEFAULTS, risk_matrix, span

#: The books built each day (module docstring; :func:`build_books` says how).
BOOKS = (
    "short straddle",
    "short strangle",
    "risk reversal",
    "calendar spread",
    "short gamma hedged",
    "long strangle",
    "random mix",
)
#: Strikes are rounded to these steps (Deribit's usual steps near the money), USD.
STRIKE_STEP = {"BTC": 1000.0, "ETH": 50.0}
#: The expiry the single-expiry books use: the listed one nearest this many days (and a
#: calendar spread's far leg nearest :data:`FAR_DAYS`).
NEAR_DAYS, FAR_DAYS = 30.0, 90.0
#: Options of the random book: count, and the range of their call deltas and quantities.
RANDOM_POSITIONS, RANDOM_DELTAS, RANDOM_QUANTITY = 8, (0.1, 0.9), 3
#: SPAN's vol scan range in the "span" set (decimal vol): a volcal choice, no crypto value
#: is published (MARGIN-METHODS.md section 1).
SPAN_VOL_SCAN_RANGE = 0.10
PERPETUAL_CONTRACT_USD = 10.0


def _instrument(underlying: str, expiry: pd.Timestamp, strike: float, call: bool) -> str:
    day = f"{expiry.day}{expiry:%b%y}".upper()
    return f"{underlying}-{day}-{int(strike)}-{'C' if call else 'P'}"


def _strike(surface, underlying: str, t: float, delta: float, call: bool) -> float:
    step = STRIKE_STEP.get(underlying, 1.0)
    k = float(surface.delta_log_moneyness(t, delta, call))
    strike = float(surface.forward_at(t)) * np.exp(k)
    return max(step, round(strike / step) * step)


def build_books(surface, underlying: str, asof, *, seed: int = 0) -> pd.DataFrame:
    """The books of :data:`BOOKS` on ``surface`` (one contract = one coin per option leg):
    account (the book's name), instrument (Deribit id), quantity. ATM is the strike nearest
    the forward; 25-delta strikes solve the surface's own Black forward delta; strikes are
    rounded to :data:`STRIKE_STEP`. The hedge of "short gamma hedged" is added by
    :func:`hedge_delta`. "random mix" draws :data:`RANDOM_POSITIONS` options (expiry, call
    delta, side, size) from a generator seeded with ``seed`` and the day."""
    asof = pd.Timestamp(asof)
    expiries = pd.to_datetime(list(surface.expiries), utc=True)
    days = np.asarray((expiries - asof) / pd.Timedelta(days=1), dtype=float)
    usable = days > 1.0
    near = expiries[usable][np.argmin(np.abs(days[usable] - NEAR_DAYS))]
    far = expiries[usable][np.argmin(np.abs(days[usable] - FAR_DAYS))]
    t_near = (near - asof) / pd.Timedelta(days=365)
    t_far = (far - asof) / pd.Timedelta(days=365)
    step = STRIKE_STEP.get(underlying, 1.0)
    atm_near = round(float(surface.forward_at(t_near)) / step) * step
    atm_far = round(float(surface.forward_at(t_far)) / step) * step
    call25 = _strike(surface, underlying, t_near, 0.25, True)
    put25 = _strike(surface, underlying, t_near, 0.25, False)
    legs = {
        "short straddle": [(near, atm_near, True, -1), (near, atm_near, False, -1)],
        "short strangle": [(near, call25, True, -1), (near, put25, False, -1)],
        "risk reversal": [(near, call25, True, 1), (near, put25, False, -1)],
        "calendar spread": [(near, atm_near, True, -1), (far, atm_far, True, 1)],
        "short gamma hedged": [(near, atm_near, True, -1), (near, atm_near, False, -1)],
        "long strangle": [(near, call25, True, 1), (near, put25, False, 1)],
    }
    rng = np.random.default_rng([seed, asof.toordinal()])
    random_legs = []
    for _ in range(RANDOM_POSITIONS):
        i = rng.choice(np.flatnonzero(usable))
        t = (expiries[i] - asof) / pd.Timedelta(days=365)
        call = bool(rng.integers(2))
        delta = rng.uniform(*RANDOM_DELTAS)
        strike = _strike(surface, underlying, t, delta if call else 1.0 - delta, call)
        size = int(rng.integers(1, RANDOM_QUANTITY + 1)) * (1 if rng.integers(2) else -1)
        random_legs.append((expiries[i], strike, call, size))
    legs["random mix"] = random_legs
    rows = [
        (name, _instrument(underlying, e, k, c), q)
        for name, book in legs.items()
        for e, k, c, q in book
    ]
    return pd.DataFrame(rows, columns=["account", "instrument", "quantity"])


def hedge_delta(rows: pd.DataFrame, surface, underlying: str, asof, account: str) -> pd.DataFrame:
    """``rows`` with a perpetual added to ``account`` that cancels its net delta in coin (whole
    contracts of :data:`PERPETUAL_CONTRACT_USD`). The account is coin-settled and its margin and
    loss are in coin, so the delta hedged is that of the coin P&L: the options'
    premium-adjusted ``delta_coin`` (``d(value_coin)/dS`` times ``S``), and for the inverse
    perpetual its ``delta``, ``c/S`` per contract (``d(q c (1/S0 - 1/S))/dS`` times ``S``)."""
    probe = pd.concat(
        [
            rows[rows["account"] == account],
            pd.DataFrame([(account, f"{underlying}-PERPETUAL", 1.0)], columns=rows.columns),
        ]
    )
    result = margin(load_book(probe, asof=asof), {underlying: surface}, asof=asof)
    positions = result.positions
    coin = positions["delta_coin"].fillna(positions["delta"]).to_numpy()
    quantity = -round(float(coin[:-1].sum()) / float(coin[-1]))
    if quantity == 0:
        return rows
    hedge = pd.DataFrame(
        [(account, f"{underlying}-PERPETUAL", float(quantity))], columns=rows.columns
    )
    return pd.concat([rows, hedge], ignore_index=True)


def parameter_sets(underlying: str, known: Callable | None = None) -> dict[str, Callable]:
    """``{name: day -> ScenarioSet}``: "deribit", "span" and, given ``known`` (day ->
    RiskParameters), "volcal"."""
    price_range = RISK_MATRIX_DEFAULTS[underlying]["price_range"]
    sets = {
        "deribit": lambda day: risk_matrix(underlying),
        "span": lambda day: span(price_range, SPAN_VOL_SCAN_RANGE),
    }
    if known is not None:
        sets["volcal"] = lambda day: risk_matrix(underlying, **known(day).overrides())
    return sets


def realised_pnl(
    book, now, later, underlying: str, later_time, later_spot: float, now_spot: float | None = None
) -> pd.Series:
    """Realised P&L (coin) per position of ``book`` (valued on ``now``, a MarginResult) at
    ``later_time`` on the surface ``later``: options alive then by the engine's full
    revaluation; options expired in between at intrinsic on ``later_spot``; inverse
    perpetuals ``q c (1/S - 1/S')`` on the snapshot spots ``now_spot`` (default: the index
    the margin used) and ``later_spot``. Dated futures are not handled (no book holds them):
    they raise."""
    positions = now.positions
    later_time = pd.Timestamp(later_time)
    expired = positions["expiry"].notna() & (positions["expiry"] <= later_time)
    pnl = pd.Series(0.0, index=positions.index)
    options = positions["kind"] == "option"
    alive = options & ~expired
    if alive.any():
        frame = book.positions[alive]
        later_result = margin(
            type(book)(positions=frame, source=book.source), {underlying: later}, asof=later_time
        )
        pnl[alive] = later_result.positions["value_coin"] - positions.loc[alive, "value_coin"]
    settled = options & expired
    if settled.any():
        p = positions[settled]
        payoff = np.where(
            p["is_call"],
            np.maximum(later_spot - p["strike"], 0.0),
            np.maximum(p["strike"] - later_spot, 0.0),
        )
        amount = p["quantity"] * p["contract_size"]
        pnl[settled] = amount * payoff / later_spot - p["value_coin"]
    perpetual = positions["kind"] == "perpetual"
    if perpetual.any():
        p = positions[perpetual]
        before = p["forward"].to_numpy() if now_spot is None else now_spot
        pnl[perpetual] = p["quantity"] * p["contract_size"] * (1.0 / before - 1.0 / later_spot)
    other = ~(options | perpetual)
    if other.any():
        raise ValueError(
            f"realised P&L of {sorted(set(positions.loc[other, 'kind']))} "
            "positions is not implemented"
        )
    return pnl


@dataclass(frozen=True)
class BacktestResult:
    """A backtest run.

    Attributes
    ----------
    observations : DataFrame
        One row per (day, underlying, parameter set, book): ``margin`` and ``loss`` (coin;
        loss = minus the realised P&L), ``breach`` (loss > margin), ``spot``,
        ``margin_usd``, ``loss_usd`` (at the later spot), ``later`` (the day the loss is
        measured) and ``hours`` between the two snapshots (observations are the snapshots
        nearest 16:00 UTC, so a 1-day period is not exactly 24 hours).
    parameters : DataFrame
        The calibrated parameters used each day (the "volcal" set), per underlying.
    confidence : float
        The coverage the margins promise (the breach rate expected is ``1 - confidence``).
    horizon_days : int
    """

    observations: pd.DataFrame
    parameters: pd.DataFrame
    confidence: float
    horizon_days: int
    #: (underlying, day) periods left out: a snapshot spot was missing at either end.
    skipped: tuple = ()

    def summary(self) -> pd.DataFrame:
        """Per (underlying, parameter set, book): the coverage report
        (:func:`volcal.margin.coverage.coverage_report`), the average margin in USD (the
        capital cost), and procyclicality: the largest 1-day and 5-day margin increase
        (relative) and the peak-to-trough ratio of the margin."""
        rows = []
        keys = ["underlying", "parameter_set", "book"]
        for key, frame in self.observations.groupby(keys, sort=False):
            frame = frame.sort_values("day")
            report = coverage_report(frame["breach"].to_numpy(), self.confidence)
            margin_series = frame.set_index("day")["margin"]
            rows.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    **report.as_dict(),
                    "average_margin_usd": float(frame["margin_usd"].mean()),
                    **procyclicality(margin_series),
                }
            )
        return pd.DataFrame(rows)


def parameter_procyclicality(parameters: pd.DataFrame) -> pd.DataFrame:
    """Procyclicality of the calibrated parameters themselves (books are rebuilt every day, so
    a book's margin also moves with its strikes and expiries): per underlying and parameter,
    :func:`procyclicality` of its path through the backtest's days."""
    rows = []
    names = ("price_range", "vol_range_up", "vol_range_down")
    for underlying, frame in parameters.groupby("underlying"):
        series = frame.set_index("day")
        for name in names:
            rows.append(
                {
                    "underlying": underlying,
                    "parameter": name,
                    "mean": float(series[name].mean()),
                    **procyclicality(series[name]),
                }
            )
    return pd.DataFrame(rows)


def procyclicality(margin: pd.Series) -> dict:
    """Largest 1-day and 5-day relative increase of a daily margin series (calendar days,
    missing days skipped) and its peak-to-trough ratio (max / min)."""
    series = margin.sort_index()
    daily = series.reindex(pd.date_range(series.index.min(), series.index.max(), freq="D"))
    one = (daily / daily.shift(1) - 1.0).max()
    five = (daily / daily.shift(5) - 1.0).max()
    low = series.min()
    return {
        "largest_1d_increase": float(one) if np.isfinite(one) else np.nan,
        "largest_5d_increase": float(five) if np.isfinite(five) else np.nan,
        "peak_to_trough": float(series.max() / low) if low > 0 else np.inf,
    }


def run_backtest(
    store,
    venue: str = "deribit",
    underlyings=("BTC", "ETH"),
    *,
    horizon_days: int = 1,
    confidence: float = 0.99,
    start=None,
    end=None,
    calibration: dict | None = None,
    seed: int = 0,
    spot_folder=None,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Backtest the parameter sets on the store's history (module docstring).

    ``calibration`` overrides :data:`volcal.margin.history.DEFAULT_CALIBRATION` for the
    "volcal" set (``confidence`` and ``horizon_days`` are the backtest's)."""
    from volcal.margin.history import (
        DEFAULT_CALIBRATION,
        MarginCalibration,
        atm_vol_history,
        daily_observations,
        spot_returns,
    )
    from volcal.margin.procyclicality import MarginBuffer

    settings = {**DEFAULT_CALIBRATION, **(calibration or {})}
    stress_floor = settings.pop("stress_floor")
    if settings.get("buffer"):
        settings["buffer"] = MarginBuffer(rate=settings["buffer"])
    options = {**settings, "confidence": confidence, "horizon_days": horizon_days}
    rows, parameter_rows, plans, skipped = [], [], [], []
    for underlying in underlyings:
        full = daily_observations(store, venue, underlying)
        observations = full
        if start is not None:
            observations = observations[observations.index >= pd.Timestamp(start, tz="UTC")]
        if end is not None:
            observations = observations[observations.index <= pd.Timestamp(end, tz="UTC")]
        if observations.empty:
            continue
        plans.append((underlying, full, observations,
                      _period_days(observations.index, horizon_days)))  # fmt: skip
    total = sum(len(days) for *_, days in plans)
    done = 0
    for underlying, full, observations, days in plans:
        returns = spot_returns(store, venue, underlying, full, spot_folder)
        vols = atm_vol_history(store, full)
        calibrated = MarginCalibration(
            underlying, returns, vols, stress_floor=stress_floor, options=options
        )
        cache: dict = {}

        def known(day, calibrated=calibrated, cache=cache):
            if day not in cache:
                cache[day] = calibrated.on(day)
            return cache[day]

        sets = parameter_sets(underlying, known)
        for day, later_day in days:
            if not np.isfinite([observations.loc[d, "spot"] for d in (day, later_day)]).all():
                skipped.append((underlying, day))  # no spot for the period: no observation
                continue
            now_row, later_row = observations.loc[day], observations.loc[later_day]
            surface = store.get(now_row["surface_id"]).surface
            later = store.get(later_row["surface_id"]).surface
            asof = now_row["snapshot"]
            books = build_books(surface, underlying, asof, seed=seed)
            books = hedge_delta(books, surface, underlying, asof, "short gamma hedged")
            book = load_book(books, asof=asof)
            realised = None
            for name, make in sets.items():
                result = margin(book, {underlying: surface}, {underlying: make(day)}, asof=asof)
                if realised is None:
                    realised = realised_pnl(
                        book,
                        result,
                        later,
                        underlying,
                        later_row["snapshot"],
                        later_row["spot"],
                        now_spot=now_row["spot"],
                    )
                    loss = (-realised).groupby(result.positions["account"]).sum()
                groups = result.groups.set_index("account")
                for account in groups.index:
                    spot = float(now_row["spot"])
                    rows.append(
                        {
                            "day": day,
                            "later": later_day,
                            "underlying": underlying,
                            "parameter_set": name,
                            "book": account,
                            "margin": float(groups.loc[account, "margin"]),
                            "loss": float(loss[account]),
                            "spot": spot,
                            "later_spot": float(later_row["spot"]),
                            "hours": (later_row["snapshot"] - now_row["snapshot"])
                            / pd.Timedelta(hours=1),
                        }
                    )
            parameter_rows.append({"day": day, "underlying": underlying, **known(day).overrides()})
            done += 1
            if progress:
                progress(done, total)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["breach"] = frame["loss"] > frame["margin"]
        frame["margin_usd"] = frame["margin"] * frame["spot"]
        # A coin loss is worth the later spot when it is realised.
        frame["loss_usd"] = frame["loss"] * frame["later_spot"]
    return BacktestResult(
        frame, pd.DataFrame(parameter_rows), confidence, horizon_days, tuple(skipped)
    )


def _period_days(days: pd.DatetimeIndex, horizon_days: int) -> list[tuple]:
    """Non-overlapping (day, day + h) pairs: from the first day, each next period starts where
    the last ended (or, where that day has no observation, at the next day that has one)."""
    present = set(days)
    pairs, day = [], days.min()
    last = days.max()
    step = pd.Timedelta(days=horizon_days)
    while day + step <= last:
        if day in present and day + step in present:
            pairs.append((day, day + step))
            day = day + step
        else:
            day = day + pd.Timedelta(days=1)
    return pairs

"""Risk parameters from the store's history: the daily observations of backfilled surfaces,
the spot and ATM-vol series built from them, and the parameters known on each day.

A day's observation is its accepted surface of the published model nearest 16:00 UTC
(:data:`volcal.history.OBSERVATION_HOUR`). The spot series is Bitstamp's daily closes followed
by the observations' snapshot spots, with the gap between them left open
(:mod:`volcal.history`). ATM vols are read at constant maturities (:data:`TENORS_DAYS`) on each
observation's surface, on a full daily calendar (missing days NaN), so that an h-day change is
h calendar days.

What is known on day ``d``: returns up to ``d`` (Bitstamp candles close at 24:00 UTC, long
before the option era; option-era spots at the observation itself) and ATM vols up to ``d``.
Vol shocks need at least ``1 / (1 - confidence)`` h-day changes per tenor; until then the
published vol parameters are used, and the audit says so.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from volcal.history import OBSERVATION_HOUR, daily_returns, daily_spot
from volcal.margin.risk_parameters import RiskParameters, calibrate_risk_parameters
from volcal.margin.vol_shocks import vol_shocks

#: Constant maturities (days) whose ATM vol changes calibrate the vol shocks.
TENORS_DAYS = (7.0, 30.0, 90.0, 180.0)
#: ``volcal calibrate-margin``'s defaults (and the backtest's "volcal" set): filtered HS over
#: a year, every anti-procyclicality tool on (a 25% buffer, a 25% weight on the worst window,
#: a floor from a 10-year lookback) and the stress floor.
DEFAULT_CALIBRATION = {
    "window": 365,
    "method": "filtered",
    "buffer": 0.25,
    "stressed_weight": 0.25,
    "floor_window": 3650,
    "stress_floor": True,
}


def daily_observations(
    store, venue: str, underlying: str, *, model: str | None = None, hour: int = OBSERVATION_HOUR
) -> pd.DataFrame:
    """One accepted surface per UTC day (nearest ``hour``): index day, columns
    ``snapshot``, ``surface_id``, ``spot`` (the snapshot's spot, see
    :func:`volcal.history.snapshot_spot`)."""
    model = model or store.published_model(venue, underlying)
    table = store.history(venue, underlying, model=model, status="accepted")
    if table.empty:
        return pd.DataFrame(columns=["snapshot", "surface_id", "spot"])
    table = table.drop_duplicates("snapshot").copy()
    table["day"] = table["snapshot"].dt.floor("D")
    table["distance"] = (table["snapshot"] - table["day"] - pd.Timedelta(hours=hour)).abs()
    chosen = table.sort_values(["distance", "snapshot"]).groupby("day").head(1)
    chosen = chosen.sort_values("snapshot").set_index("day")
    spots = store.snapshot_spots(venue, underlying, model=model)
    frame = pd.DataFrame({"snapshot": chosen["snapshot"], "surface_id": chosen["id"]})
    frame["spot"] = spots.reindex(pd.DatetimeIndex(chosen["snapshot"])).to_numpy()
    return frame


def atm_vol_history(store, observations: pd.DataFrame, tenors_days=TENORS_DAYS) -> pd.DataFrame:
    """ATM vols (decimal) at ``tenors_days`` on each observation's surface, on a full daily
    calendar from the first observation to the last (NaN where a day has none)."""
    rows = {}
    t = np.asarray(tenors_days, dtype=float) / 365.0
    for day, row in observations.iterrows():
        surface = store.get(row["surface_id"]).surface
        rows[day] = np.asarray(surface.atm_vol(t))
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(tenors_days))
    if frame.empty:
        return frame
    calendar = pd.date_range(frame.index.min(), frame.index.max(), freq="D")
    return frame.reindex(calendar)


def spot_returns(
    store, venue: str, underlying: str, observations: pd.DataFrame | None = None, spot_folder=None
) -> pd.Series:
    """Daily log returns of the bridged spot series (Bitstamp, then the observations'
    spots), never across the gap between them."""
    if observations is None:
        observations = daily_observations(store, venue, underlying)
    spots = pd.Series(
        observations["spot"].to_numpy(dtype=float), index=pd.DatetimeIndex(observations["snapshot"])
    )
    return daily_returns(daily_spot(underlying, spots.dropna(), spot_folder))


def parameters_known_on(
    day, underlying: str, returns: pd.Series, atm_vols: pd.DataFrame | None, **options
) -> RiskParameters:
    """:func:`volcal.margin.risk_parameters.calibrate_risk_parameters` on the data known on
    ``day`` (module docstring); published vol parameters while the vol history is too short."""
    day = pd.Timestamp(day)
    known = returns[returns.index <= day]
    vols = None
    if atm_vols is not None and len(atm_vols):
        vols = atm_vols[atm_vols.index <= day]
        try:
            vol_shocks(vols, options.get("horizon_days", 1), options.get("confidence", 0.99))
        except ValueError:
            vols = None  # too few changes yet: published vol parameters
    return calibrate_risk_parameters(underlying, known, vols, **options)


def to_record(parameters: RiskParameters) -> dict:
    """A JSON-able dict of ``parameters`` (for :meth:`volcal.Store.save_margin_parameters`)."""
    return {
        "underlying": parameters.underlying,
        "as_of": pd.Timestamp(parameters.as_of).isoformat(),
        "confidence": parameters.confidence,
        "horizon_days": parameters.horizon_days,
        "method": parameters.method,
        **{k: float(v) for k, v in parameters.overrides().items()},
        "audit": dict(parameters.audit),
    }


def from_record(record: dict) -> RiskParameters:
    """Inverse of :func:`to_record`."""
    fields = dict(record)
    fields["as_of"] = pd.Timestamp(fields["as_of"])
    return RiskParameters(**fields)


def calibrate_margin_parameters(
    store,
    venue: str,
    underlying: str,
    *,
    asof=None,
    stress_floor: bool = True,
    spot_folder=None,
    **options,
) -> RiskParameters:
    """The risk parameters of ``underlying`` known on ``asof`` (default: the last
    observation), from the store's backfilled surfaces and the spot history (see
    :class:`MarginCalibration`; ``options`` go to
    :func:`volcal.margin.risk_parameters.calibrate_risk_parameters`)."""
    observations = daily_observations(store, venue, underlying)
    returns = spot_returns(store, venue, underlying, observations, spot_folder)
    vols = atm_vol_history(store, observations) if len(observations) else None
    calibration = MarginCalibration(
        underlying, returns, vols, stress_floor=stress_floor, options=options
    )
    if asof is None:
        return calibration.on(returns.index[-1])
    # Only what was observed by ``asof``: option-era days at their snapshot (about 16:00 UTC),
    # Bitstamp days at their candle's close (24:00 UTC).
    asof = pd.Timestamp(asof)
    asof = asof.tz_localize("UTC") if asof.tzinfo is None else asof.tz_convert("UTC")
    seen = observations[observations["snapshot"] <= asof]
    if len(seen):
        parameters = calibration.on(seen.index[-1])
        return dataclasses.replace(parameters, as_of=seen["snapshot"].iloc[-1])
    return calibration.on(asof.floor("D") - pd.Timedelta(days=1))


class MarginCalibration:
    """Risk parameters known on each day, from daily ``returns`` and ``atm_vols``.

    :func:`parameters_known_on`, then, with ``stress_floor``, the price range raised to the
    worst window of the history so far (:func:`volcal.margin.risk_parameters.stress_floor`:
    the running maximum of the rolling plain historical-simulation scan range over the same
    window, which is also the stressed value of the stressed-period weight). Plain historical
    simulation, because the filtered method's worst "window" is the day of its largest vol
    forecast (just after a crash): a spike, not what a window of history requires.
    """

    def __init__(
        self,
        underlying: str,
        returns: pd.Series,
        atm_vols,
        *,
        stress_floor: bool = True,
        options: dict | None = None,
    ):
        from volcal.margin.risk_parameters import price_range_path, rolling_scan_range

        self.underlying, self.returns, self.atm_vols = underlying, returns, atm_vols
        self.options = dict(options or {})
        self.stress_floor = stress_floor
        self.worst = rolling_scan_range(
            returns,
            self.options.get("confidence", 0.99),
            self.options.get("horizon_days", 1),
            self.options.get("window", 365),
            method="historical",
        ).cummax()
        if self.options.get("stressed_weight"):
            self.options.setdefault("stressed_value", self.worst)
        # The price range of every day at once: causal, so the same as day by day.
        keys = ("confidence", "horizon_days", "window", "method", "lam", "buffer",
                "stressed_weight", "stressed_value", "floor_window")  # fmt: skip
        self.path = price_range_path(
            returns, **{k: self.options[k] for k in keys if k in self.options}
        )

    def on(self, day) -> RiskParameters:

        day = pd.Timestamp(day)
        worst = self.worst[self.worst.index <= day]
        floor = float(worst.iloc[-1]) if len(worst) else np.nan
        options = {**self.options, "path": self.path}
        parameters = parameters_known_on(
            day, self.underlying, self.returns, self.atm_vols, **options
        )
        if not self.stress_floor or not np.isfinite(floor):
            return parameters
        audit = dict(parameters.audit)
        if floor > parameters.price_range:
            audit["price_range"] += f"; raised to the stress floor {floor:.4f} (worst window)"
        else:
            audit["price_range"] += f"; above the stress floor {floor:.4f} (worst window)"
        return dataclasses.replace(
            parameters, price_range=max(parameters.price_range, floor), audit=audit
        )


def stress_scenarios(store, venue: str, underlying: str, *, asof=None, spot_folder=None):
    """``(scenarios, held)`` for :func:`volcal.margin.stress.stress_test`: the historical
    scenarios of the spot history and the hypothetical ones, with the vol model of the stored
    risk parameters as of ``asof`` (else the spot history's scan range and the published vol
    parameters), and ``held`` the risk matrix of those parameters (else the published one)."""
    from volcal.margin.risk_parameters import calibrate_risk_parameters, scan_range_historical
    from volcal.margin.scenarios import risk_matrix
    from volcal.margin.stress import historical_scenarios, hypothetical_scenarios

    observations = daily_observations(store, venue, underlying)
    returns = spot_returns(store, venue, underlying, observations, spot_folder)
    record = store.margin_parameters(underlying, asof=asof or pd.Timestamp.now(tz="UTC"))
    if record is not None:
        parameters = from_record(record["parameters"])
        held = risk_matrix(underlying, **parameters.overrides())
    else:
        parameters = calibrate_risk_parameters(underlying, returns)
        held = risk_matrix(underlying)
    # Severity is measured against the plain scan range of the same confidence and horizon
    # (without the anti-procyclicality margins a stored price range may carry).
    known = returns[returns.index <= parameters.as_of]
    plain = scan_range_historical(known, parameters.confidence, parameters.horizon_days,
                                  window=365)  # fmt: skip
    scenarios = historical_scenarios(returns, parameters, scan_range=plain)
    scenarios += hypothetical_scenarios()
    return scenarios, {underlying: held}

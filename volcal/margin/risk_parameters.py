"""Risk parameters of the margin engine: price scan ranges from price history, and the whole chain.

Price scan range (the risk matrix's ``price_range``): a quantile of the absolute h-day move by
plain or EWMA-filtered historical simulation (:func:`scan_range_historical`,
:func:`scan_range_filtered`), the parameter known on each day (:func:`rolling_scan_range`),
its backtest breaches (:func:`backtest_breaches`, tested by :mod:`volcal.margin.coverage`) and
a stress floor (:func:`stress_floor`). :class:`RiskParameters` holds one calibration with its
audit trail and maps onto :func:`volcal.margin.risk_matrix`; :func:`calibrate_risk_parameters`
runs the whole chain, with the anti-procyclicality tools of
:mod:`volcal.margin.procyclicality` and the vol shocks and vega power law of
:mod:`volcal.margin.vol_shocks`. :func:`simulate_garch_t` generates GARCH(1,1)-t returns to
test the calibration on.

Conventions: ``returns`` are daily log returns ``r_t = ln(S_t / S_{t-1})``, a pandas Series
indexed by date (increasing, unique, no missing values); a horizon of ``h`` days is ``h``
observations (crypto trades every day). A move is the simple return ``exp(R) - 1`` of an h-day
log return ``R``; ranges and shocks are decimals (0.16 = 16%, vol 0.05 = 5 vol points).

The scan range at confidence ``c`` is the ``c``-quantile of ``|exp(R) - 1|``: the symmetric
range ``+-price_range`` is then breached (``|move| > range``) with probability ``1 - c``, and
each direction alone with at most ``1 - c``. (The larger of the two one-sided ``c``-quantiles
would let the two tails together breach up to ``2 (1 - c)``.) Quantiles are numpy's default
``linear`` estimator (Hyndman and Fan's type 7), and need at least ``1 / (1 - c)``
observations (100 at 99%) so the quantile is not the sample maximum.

References
----------
J.P. Morgan/Reuters (1996), "RiskMetrics - Technical Document", 4th ed., Part II, chapter 5
(EWMA volatility, decay factor 0.94 for daily data).
G. Barone-Adesi, K. Giannopoulos, L. Vosper (1999), "VaR without correlations for portfolios
of derivative securities", Journal of Futures Markets 19(5), 583-602 (filtered historical
simulation).
T. Bollerslev (1987), "A conditionally heteroskedastic time series model for speculative
prices and rates of return", Review of Economics and Statistics 69(3), 542-547
(:func:`simulate_garch_t`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import signal

from volcal.margin._checks import (
    _check_confidence,
    _check_horizon,
    _check_series,
    _require_tail,
    _tail_minimum,
)
from volcal.margin.procyclicality import APCResult, MarginBuffer, apply_apc
from volcal.margin.scenarios import RISK_MATRIX_DEFAULTS
from volcal.margin.vol_shocks import fit_vega_power, vol_shocks

#: RiskMetrics' EWMA decay factor for daily data (Technical Document 1996, Part II, chapter 5).
RISKMETRICS_LAMBDA = 0.94
#: The EWMA variance is seeded with the mean squared return of the first EWMA_SEED_DAYS days
#: (a volcal choice; RiskMetrics does not fix a seed). Its weight decays as lambda^t:
#: 0.94^250 = 2e-7. Filtered parameters exist from that day on, so no seed sees the future.
EWMA_SEED_DAYS = 30
#: Deribit's shocked-up vol floor (scenarios.RISK_MATRIX_DEFAULTS, the same for BTC and ETH).
DEFAULT_MIN_VOL_FOR_SHOCK_UP = RISK_MATRIX_DEFAULTS["BTC"]["min_vol_for_shock_up"]
#: The risk-matrix parameter names (the keys :func:`volcal.margin.risk_matrix` accepts), and
#: those calibrated from vol history.
RISK_MATRIX_PARAMETERS = tuple(RISK_MATRIX_DEFAULTS["BTC"])
VOL_PARAMETERS = ("vol_range_up", "vol_range_down", "short_term_vega_power", "long_term_vega_power")

Method = Literal["historical", "filtered"]


# ---------------------------------------------------------------------------------------------
# Returns and scan ranges


def log_returns(close: pd.Series, horizon_days: int = 1, overlapping: bool = True) -> pd.Series:
    """h-day log returns ``ln(S_t / S_{t-h})`` of a daily close series.

    Parameters
    ----------
    close : pd.Series
        Positive prices indexed by date (increasing, unique), no missing values.
    horizon_days : int >= 1
        ``h``, in observations.
    overlapping : bool
        True: one return ending on every day from the ``h``-th on. False: non-overlapping
        returns anchored at the last day (ending on the last day, ``h`` days before, ...).

    Returns
    -------
    pd.Series
        Indexed by the end date of each return.
    """
    h = _check_horizon(horizon_days)
    values = _check_series(close, "close")
    if (values <= 0).any():
        raise ValueError("close must be positive")
    if values.size <= h:
        raise ValueError(f"close has {values.size} days, too few for {h}-day returns")
    log_close = np.log(values)
    if overlapping:
        end = np.arange(h, values.size)
    else:
        end = np.arange(values.size - 1, h - 1, -h)[::-1]
    return pd.Series(log_close[end] - log_close[end - h], index=close.index[end], name="log_return")


def scan_range_historical(
    returns: pd.Series, confidence: float, horizon_days: int, *, window: int | None = None
) -> float:
    """Price scan range by plain historical simulation.

    Parameters
    ----------
    returns : pd.Series
        Daily log returns (module conventions).
    confidence : float in (0, 1)
        ``c``, e.g. 0.99.
    horizon_days : int >= 1
        ``h``: margin period of risk in days.
    window : int, optional
        Use only the last ``window`` daily returns (default: all).

    Returns
    -------
    float
        The ``c``-quantile of ``|exp(R) - 1|`` over the overlapping h-day log returns
        ``R_t = r_{t-h+1} + ... + r_t`` inside the window (``window - h + 1`` of them).
    """
    c = _check_confidence(confidence)
    h = _check_horizon(horizon_days)
    r = _check_series(returns, "returns")
    if window is not None:
        r = r[-_check_window(window) :]
    moves = _h_day_sums(r, h)
    _require_tail(moves.size, c, "h-day returns")
    return _abs_move_quantile(moves, c)


def scan_range_filtered(
    returns: pd.Series,
    confidence: float,
    horizon_days: int,
    lam: float = RISKMETRICS_LAMBDA,
    *,
    window: int | None = None,
) -> float:
    """Price scan range by EWMA-filtered historical simulation.

    Parameters
    ----------
    returns : pd.Series
        Daily log returns (module conventions), at least :data:`EWMA_SEED_DAYS`.
    confidence : float in (0, 1)
        ``c``.
    horizon_days : int >= 1
        ``h``.
    lam : float in (0, 1)
        EWMA decay factor (RiskMetrics' 0.94 for daily data).
    window : int, optional
        Standardised residuals of the last ``window`` days only (default: all); the EWMA
        itself always runs over the whole series.

    Returns
    -------
    float
        The ``c``-quantile of ``|exp(sqrt(h) sigma_{T+1} z_t) - 1|`` over the residuals.

    Notes
    -----
    ``sigma_t^2 = lam sigma_{t-1}^2 + (1 - lam) r_{t-1}^2``, seeded with
    ``sigma_0^2 = mean(r_0^2 .. r_{29}^2)`` (:data:`EWMA_SEED_DAYS`); residuals
    ``z_t = r_t / sigma_t``; the next day's forecast
    ``sigma_{T+1}^2 = lam sigma_T^2 + (1 - lam) r_T^2`` rescales them. The horizon scales the
    one-day log move by ``sqrt(h)`` (square-root-of-time: residuals iid within the horizon, vol
    flat at ``sigma_{T+1}``); for fat-tailed residuals this overstates the h-day quantile,
    since sums of residuals have thinner tails than one residual.
    """
    c = _check_confidence(confidence)
    h = _check_horizon(horizon_days)
    r = _check_series(returns, "returns")
    if r.size < EWMA_SEED_DAYS:
        raise ValueError(f"filtered HS needs at least {EWMA_SEED_DAYS} returns, got {r.size}")
    sigma = np.sqrt(_ewma_variance(r, _check_lambda(lam)))
    residuals = r / sigma[:-1]
    if window is not None:
        residuals = residuals[-_check_window(window) :]
    _require_tail(residuals.size, c, "residuals")
    return _abs_move_quantile(np.sqrt(h) * sigma[-1] * residuals, c)


def rolling_scan_range(
    returns: pd.Series,
    confidence: float,
    horizon_days: int,
    window: int | None,
    *,
    method: Method = "historical",
    lam: float = RISKMETRICS_LAMBDA,
    min_observations: int | None = None,
) -> pd.Series:
    """The scan range known on each day, from data up to and including that day.

    Parameters
    ----------
    returns : pd.Series
        Daily log returns (module conventions).
    confidence, horizon_days
        As :func:`scan_range_historical`.
    window : int or None
        Lookback in daily returns; None: the whole history up to each day (expanding).
    method : {"historical", "filtered"}
        :func:`scan_range_historical` or :func:`scan_range_filtered`.
    lam : float
        EWMA decay factor (filtered only).
    min_observations : int, optional
        First day with a value: the day when this many returns are available (default: the
        full ``window``; for an expanding window, the least the quantile needs). A shorter
        window than ``window`` is used until the history is ``window`` long. Filtered values
        start no earlier than day :data:`EWMA_SEED_DAYS`.

    Returns
    -------
    pd.Series
        Indexed by date ``t``: the value equal to ``scan_range_<method>(returns.loc[:t],
        window=window)``, to be applied to the move from ``t`` to ``t + h``. Days before the
        first value are left out.
    """
    c = _check_confidence(confidence)
    h = _check_horizon(horizon_days)
    r = _check_series(returns, "returns")
    if window is not None:
        _check_window(window)
    tail = _tail_minimum(c)
    needed = (tail if method == "filtered" else tail + h - 1) if window is None else window
    if min_observations is not None:
        needed = _check_window(min_observations)
    if window is not None and needed > window:
        raise ValueError(f"min_observations={needed} exceeds window={window}")
    if method == "filtered":
        sigma = np.sqrt(_ewma_variance(r, _check_lambda(lam)))
        residuals = r / sigma[:-1]
        needed = max(needed, EWMA_SEED_DAYS)
        _require_tail(needed, c, "residuals in the first window")
    elif method == "historical":
        sums = _h_day_sums(r, h)
        _require_tail(needed - h + 1, c, "h-day returns in the first window")
    else:
        raise ValueError(f"unknown method {method!r}; use 'historical' or 'filtered'")
    if r.size < needed:
        raise ValueError(f"returns has {r.size} days; the first value needs {needed}")
    values, days = [], []
    for t in range(needed - 1, r.size):
        count = t + 1 if window is None else min(window, t + 1)
        start = t - count + 1
        if method == "filtered":
            moves = np.sqrt(h) * sigma[t + 1] * residuals[start : t + 1]
        else:
            moves = sums[start : t - h + 2]
        values.append(_abs_move_quantile(moves, c))
        days.append(t)
    return pd.Series(values, index=returns.index[days], name="scan_range", dtype=float)


def backtest_breaches(
    scan_range: pd.Series, returns: pd.Series, horizon_days: int, *, overlapping: bool = False
) -> pd.Series:
    """Whether the move after each day exceeded the scan range known on that day.

    Parameters
    ----------
    scan_range : pd.Series
        Range per date ``t`` (e.g. :func:`rolling_scan_range`); its dates must be in
        ``returns``' index.
    returns : pd.Series
        Daily log returns (module conventions).
    horizon_days : int >= 1
        ``h``.
    overlapping : bool
        False (default): every ``h``-th date from the first, so no two tested horizons share a
        day (the coverage tests assume independent days); True: every date (serially
        dependent breaches when ``h > 1``).

    Returns
    -------
    pd.Series of bool
        Indexed by ``t``: ``|exp(r_{t+1} + ... + r_{t+h}) - 1| > scan_range_t``; dates without
        ``h`` later returns are left out.
    """
    h = _check_horizon(horizon_days)
    r = _check_series(returns, "returns")
    ranges = _check_series(scan_range, "scan_range")
    positions = returns.index.get_indexer(scan_range.index)
    if (positions < 0).any():
        missing = scan_range.index[positions < 0][:3].tolist()
        raise ValueError(f"scan_range dates not in returns' index, e.g. {missing}")
    keep = positions + h < r.size
    if not overlapping:
        keep &= np.arange(positions.size) % h == 0
    # _h_day_sums(r, h)[j] is r_j + ... + r_{j+h-1}: the move after day t starts at j = t + 1.
    moves = np.expm1(_h_day_sums(r, h)[positions[keep] + 1])
    return pd.Series(
        np.abs(moves) > ranges[keep], index=scan_range.index[keep], name="breach", dtype=bool
    )


def stress_floor(
    returns: pd.Series,
    confidence: float,
    horizon_days: int,
    window: int,
    *,
    method: Method = "historical",
    lam: float = RISKMETRICS_LAMBDA,
) -> float:
    """The largest scan range of any ``window``-day window of the history.

    A floor "never below what the worst window requires": the maximum of
    :func:`rolling_scan_range` with this ``window`` (``.idxmax()`` of that series gives the
    window's last day). For the filtered method each window is rescaled by the vol forecast
    at its end, so the worst window is the one ending at the highest vol.
    """
    rolling = rolling_scan_range(
        returns, confidence, horizon_days, _check_window(window), method=method, lam=lam
    )
    return float(rolling.max())


# ---------------------------------------------------------------------------------------------
# Calibrated parameters


@dataclass(frozen=True)
class RiskParameters:
    """One calibration of the risk matrix's parameters (:func:`volcal.margin.risk_matrix`).

    Attributes
    ----------
    underlying : str
    as_of : pd.Timestamp
        Last day of data used.
    confidence : float
    horizon_days : int
    method : str
        How ``price_range`` was computed ("historical" or "filtered").
    price_range : float
        Relative price move (0.16 = +-16%).
    vol_range_up, vol_range_down : float
        Relative vol shocks at 30 days to expiry.
    short_term_vega_power, long_term_vega_power : float
    min_vol_for_shock_up : float
        Floor of shocked-up vols (Deribit's 0.50 unless calibrated).
    audit : dict of str to str
        Where each parameter came from.
    """

    underlying: str
    as_of: pd.Timestamp
    confidence: float
    horizon_days: int
    method: str
    price_range: float
    vol_range_up: float
    vol_range_down: float
    short_term_vega_power: float
    long_term_vega_power: float
    min_vol_for_shock_up: float = DEFAULT_MIN_VOL_FOR_SHOCK_UP
    audit: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not (np.isfinite(self.price_range) and self.price_range > 0):
            raise ValueError(f"price_range must be positive, got {self.price_range!r}")
        for name in ("vol_range_up", "vol_range_down", "min_vol_for_shock_up"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value!r}")

    def overrides(self) -> dict[str, float]:
        """Keyword arguments for ``risk_matrix(underlying, **overrides())``."""
        return {name: float(getattr(self, name)) for name in RISK_MATRIX_PARAMETERS}


def price_range_path(
    returns: pd.Series,
    *,
    confidence: float = 0.99,
    horizon_days: int = 1,
    window: int = 365,
    method: Method = "filtered",
    lam: float = RISKMETRICS_LAMBDA,
    buffer: MarginBuffer | float | None = None,
    stressed_weight: float | None = None,
    stressed_value: pd.Series | float | None = None,
    floor_window: int | None = None,
) -> APCResult:
    """The price range known on each day: :func:`rolling_scan_range` with the lookback floor
    (``floor_window``), then :func:`volcal.margin.procyclicality.apply_apc` (arguments as
    :func:`calibrate_risk_parameters`). Causal: each day's value uses data up to that day."""
    base = rolling_scan_range(returns, confidence, horizon_days, window, method=method, lam=lam)
    floor = None
    if floor_window is not None:
        if floor_window < window:
            raise ValueError(f"floor_window={floor_window} is shorter than window={window}")
        floor = rolling_scan_range(
            returns,
            confidence,
            horizon_days,
            floor_window,
            method=method,
            lam=lam,
            min_observations=int(returns.index.get_loc(base.index[0])) + 1,
        )
    return apply_apc(
        base,
        buffer=buffer,
        stressed_weight=stressed_weight,
        stressed_value=stressed_value,
        lookback_floor=floor,
    )


def calibrate_risk_parameters(
    underlying: str,
    returns: pd.Series,
    atm_vols: pd.DataFrame | None = None,
    *,
    confidence: float = 0.99,
    horizon_days: int = 1,
    window: int = 365,
    method: Method = "filtered",
    lam: float = RISKMETRICS_LAMBDA,
    buffer: MarginBuffer | float | None = None,
    stressed_weight: float | None = None,
    stressed_value: pd.Series | float | None = None,
    floor_window: int | None = None,
    min_vol_for_shock_up: float = DEFAULT_MIN_VOL_FOR_SHOCK_UP,
    path: APCResult | None = None,
) -> RiskParameters:
    """Risk-matrix parameters as of the last day of ``returns``.

    Parameters
    ----------
    underlying : str
    returns : pd.Series
        Daily log returns of the index (module conventions).
    atm_vols : pd.DataFrame, optional
        Constant-maturity ATM vols (as :func:`volcal.margin.vol_shocks.vol_shocks`); rows
        after the last return are ignored. Without them the vol parameters are the published
        defaults of ``underlying`` (an error where there are none).
    confidence, horizon_days, window, method, lam
        As :func:`rolling_scan_range`; the default window is one year of daily data.
    buffer, stressed_weight, stressed_value
        As :func:`volcal.margin.procyclicality.apply_apc` (the stressed value defaults to the
        worst window so far: the running maximum of the rolling scan range).
    floor_window : int, optional
        Lookback floor: the scan range over this many days (e.g.
        :data:`volcal.margin.procyclicality.APC_FLOOR_LOOKBACK_DAYS`; the whole history
        while it is shorter).
    min_vol_for_shock_up : float
        Kept at Deribit's 0.50 by default.
    path : APCResult, optional
        :func:`price_range_path` of these options, computed before on these returns or on a
        longer series (it is causal: the value on the last day of ``returns`` is used), so
        that the parameters of many days cost one rolling computation.

    Returns
    -------
    RiskParameters
        ``price_range``: the APC-adjusted rolling scan range on the last day;
        ``vol_range_up`` / ``vol_range_down``: the fitted 30-day levels of the up and down
        relative shocks; powers from :func:`volcal.margin.vol_shocks.fit_vega_power` on both
        curves together.
    """
    if path is None:
        path = price_range_path(
            returns,
            confidence=confidence,
            horizon_days=horizon_days,
            window=window,
            method=method,
            lam=lam,
            buffer=buffer,
            stressed_weight=stressed_weight,
            stressed_value=stressed_value,
            floor_window=floor_window,
        )
    floor = floor_window
    as_of = pd.Timestamp(returns.index[-1])
    tools = [
        name
        for name, used in (
            ("lookback floor", floor is not None),
            ("stressed weight", stressed_weight is not None),
            ("buffer", buffer is not None),
        )
        if used
    ]
    audit = {
        "price_range": (
            f"{method} HS, {confidence:g} quantile of |{horizon_days}-day move| over {window} "
            f"days to {as_of.date()}"
            + (f" (EWMA lambda {lam:g})" if method == "filtered" else "")
            + (f"; APC: {', '.join(tools)}" if tools else "; no APC")
        ),
        "min_vol_for_shock_up": (
            "given by the caller"
            if min_vol_for_shock_up != DEFAULT_MIN_VOL_FOR_SHOCK_UP
            else "Deribit default"
        ),
    }
    if atm_vols is not None:
        shocks = vol_shocks(atm_vols[atm_vols.index <= as_of], horizon_days, confidence)
        fit = fit_vega_power(shocks.table[["up", "down"]])
        vol = {
            "vol_range_up": float(fit.pivot_shock["up"]),
            "vol_range_down": float(fit.pivot_shock["down"]),
            "short_term_vega_power": fit.short_power,
            "long_term_vega_power": fit.long_power,
        }
        source = (
            f"{confidence:g} quantiles of {horizon_days}-day relative ATM vol changes at tenors "
            f"{', '.join(f'{d:g}' for d in shocks.table.index)} days, power law fitted in logs "
            f"(RMSE {fit.rmse_log:.3g})"
        )
    else:
        defaults = RISK_MATRIX_DEFAULTS.get(underlying.upper())
        if defaults is None:
            raise ValueError(
                f"no vol history given and no published vol parameters for {underlying!r}"
            )
        vol = {name: defaults[name] for name in VOL_PARAMETERS}
        source = "Deribit published parameters (no vol history given)"
    audit.update(dict.fromkeys(VOL_PARAMETERS, source))
    return RiskParameters(
        underlying=underlying,
        as_of=as_of,
        confidence=float(confidence),
        horizon_days=int(horizon_days),
        method=method,
        price_range=float(path.parameter[path.parameter.index <= as_of].iloc[-1]),
        min_vol_for_shock_up=float(min_vol_for_shock_up),
        audit=audit,
        **vol,
    )


# ---------------------------------------------------------------------------------------------
# Simulation


def simulate_garch_t(
    n: int,
    omega: float,
    alpha: float,
    beta: float,
    nu: float,
    seed: int,
    *,
    start: str = "2015-01-01",
    burn_in: int = 500,
) -> pd.Series:
    """Daily log returns of a GARCH(1,1) with unit-variance Student-t innovations.

    Parameters
    ----------
    n : int
        Days returned (after ``burn_in`` discarded days).
    omega, alpha, beta : float
        ``sigma_t^2 = omega + alpha r_{t-1}^2 + beta sigma_{t-1}^2``; ``omega > 0``,
        ``alpha, beta >= 0``, ``alpha + beta < 1``. The recursion starts at the unconditional
        variance ``omega / (1 - alpha - beta)``.
    nu : float > 2
        Degrees of freedom; ``r_t = sigma_t z_t``, ``z_t = t_nu sqrt((nu - 2) / nu)``.
    seed : int
        For ``numpy.random.default_rng``.
    start : str
        First date of the daily index.

    Returns
    -------
    pd.Series
        Named ``log_return``.

    References
    ----------
    T. Bollerslev (1987), "A conditionally heteroskedastic time series model for speculative
    prices and rates of return", Review of Economics and Statistics 69(3), 542-547.
    """
    if not (omega > 0 and alpha >= 0 and beta >= 0 and alpha + beta < 1):
        raise ValueError("need omega > 0, alpha >= 0, beta >= 0 and alpha + beta < 1")
    if not nu > 2:
        raise ValueError(f"nu must exceed 2 for unit-variance innovations, got {nu!r}")
    if n < 1 or burn_in < 0:
        raise ValueError("need n >= 1 and burn_in >= 0")
    rng = np.random.default_rng(seed)
    innovations = rng.standard_t(nu, size=n + burn_in) * np.sqrt((nu - 2.0) / nu)
    returns = np.empty(n + burn_in)
    variance = omega / (1.0 - alpha - beta)
    for t, z in enumerate(innovations):
        returns[t] = np.sqrt(variance) * z
        variance = omega + alpha * returns[t] ** 2 + beta * variance
    index = pd.date_range(start, periods=n, freq="D")
    return pd.Series(returns[burn_in:], index=index, name="log_return")


# ---------------------------------------------------------------------------------------------
# Helpers


def _ewma_variance(r: np.ndarray, lam: float) -> np.ndarray:
    """``sigma^2`` for days 0 .. n (the last is the forecast for the day after the data)."""
    seed = np.mean(r[:EWMA_SEED_DAYS] ** 2)
    if not seed > 0:
        raise ValueError(f"the first {EWMA_SEED_DAYS} returns are all zero: no EWMA seed")
    # y_t = lam y_{t-1} + (1 - lam) r_t^2 with y_{-1} = seed gives sigma^2_{t+1} = y_t.
    following, _ = signal.lfilter([1.0 - lam], [1.0, -lam], r**2, zi=[lam * seed])
    return np.concatenate([[seed], following])


def _h_day_sums(r: np.ndarray, h: int) -> np.ndarray:
    if r.size < h:
        return np.empty(0)
    return np.lib.stride_tricks.sliding_window_view(r, h).sum(axis=1)


def _abs_move_quantile(log_moves: np.ndarray, confidence: float) -> float:
    return float(np.quantile(np.abs(np.expm1(log_moves)), confidence))


def _check_window(window: int) -> int:
    if not (isinstance(window, int | np.integer) and window >= 1):
        raise ValueError(f"window must be a positive integer, got {window!r}")
    return int(window)


def _check_lambda(lam: float) -> float:
    if not 0.0 < lam < 1.0:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")
    return float(lam)

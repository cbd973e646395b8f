"""Risk parameters of the margin engine calibrated from price and implied-vol history.

Price scan range (the risk matrix's ``price_range``): a quantile of the absolute h-day move by
plain or EWMA-filtered historical simulation (:func:`scan_range_historical`,
:func:`scan_range_filtered`), the parameter known on each day (:func:`rolling_scan_range`),
its backtest breaches (:func:`backtest_breaches`, tested by :mod:`volcal.margin.coverage`),
anti-procyclicality tools (:func:`apply_apc`) and a stress floor (:func:`stress_floor`).
Vol shocks: quantiles of h-day changes of constant-maturity ATM vols (:func:`vol_shocks`) and the
risk matrix's vega power law fitted to them (:func:`fit_vega_power`). :class:`RiskParameters`
holds one calibration with its audit trail and maps onto :func:`volcal.margin.risk_matrix`;
:func:`calibrate_risk_parameters` runs the whole chain.

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
Commission Delegated Regulation (EU) No 153/2013 (EMIR RTS on CCP requirements), Article 28
(procyclicality); CPMI-IOSCO (2012), "Principles for financial market infrastructures",
Principle 6 (margin); ESMA (2018), "Guidelines on EMIR Anti-Procyclicality Margin
Measures for Central Counterparties".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import signal

from volcal.margin.scenarios import MIN_DAYS, PIVOT_DAYS, RISK_MATRIX_DEFAULTS

#: RiskMetrics' EWMA decay factor for daily data (Technical Document 1996, Part II, chapter 5).
RISKMETRICS_LAMBDA = 0.94
#: The EWMA variance is seeded with the mean squared return of the first EWMA_SEED_DAYS days
#: (a volcal choice; RiskMetrics does not fix a seed). Its weight decays as lambda^t:
#: 0.94^250 = 2e-7. Filtered parameters exist from that day on, so no seed sees the future.
EWMA_SEED_DAYS = 30
#: EMIR RTS 153/2013 Art. 28(1)(a): a margin buffer of at least 25% of calculated margin,
#: which may be temporarily exhausted while calculated margin rises significantly.
APC_BUFFER_RATE = 0.25
#: Art. 28(1)(b): at least 25% weight on stressed observations.
APC_STRESSED_WEIGHT = 0.25
#: Art. 28(1)(c): margin not below that of a 10-year lookback (3650 daily observations).
APC_FLOOR_LOOKBACK_DAYS = 3650
#: When the buffer counts a day as stressed and how it is rebuilt: EMIR leaves these to the CCP;
#: volcal's choices are a base parameter 10% above its mean of the previous 60 days, and a
#: rebuild spread over 20 days after the stress ends (no margin jump of the full buffer).
BUFFER_STRESS_THRESHOLD = 0.10
BUFFER_REFERENCE_DAYS = 60
BUFFER_REBUILD_DAYS = 20
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
# Anti-procyclicality


@dataclass(frozen=True)
class MarginBuffer:
    """EMIR's margin buffer (RTS 153/2013 Art. 28(1)(a)), released in stress.

    Attributes
    ----------
    rate : float >= 0
        Buffer ``b`` as a fraction of the base (0.25).
    release : float in [0, 1]
        Fraction ``r`` of the buffer that may be used up in stress (1: all of it).
    threshold : float >= 0
        A day is stressed when the base exceeds ``(1 + threshold)`` times its mean over the
        previous ``reference_days`` days (fewer at the start of the series).
    reference_days : int >= 1
    rebuild_days : int >= 1
        After stress the buffer grows back by ``b / rebuild_days`` of the base per day.

    Notes
    -----
    With base ``B_t`` the margin is ``M_t = B_t (1 + u_t)``, buffer in use ``u_0 = b`` and

    * stressed day: ``u_t = clip(M_{t-1} / B_t - 1, b (1 - r), b)``, i.e. the margin stays at
      yesterday's level while the rise of the base is absorbed by the buffer, and rises only
      once the releasable buffer is used up; it never exceeds ``B_t (1 + b)``;
    * other day: ``u_t = min(b, u_{t-1} + b / rebuild_days)``.

    So always ``B_t (1 + b (1 - r)) <= M_t <= B_t (1 + b)``, in normal times (buffer rebuilt)
    ``M_t = B_t (1 + b)``, and on a stressed day
    ``M_t = clip(M_{t-1}, B_t (1 + b (1 - r)), B_t (1 + b))``.
    """

    rate: float = APC_BUFFER_RATE
    release: float = 1.0
    threshold: float = BUFFER_STRESS_THRESHOLD
    reference_days: int = BUFFER_REFERENCE_DAYS
    rebuild_days: int = BUFFER_REBUILD_DAYS

    def __post_init__(self):
        if not (np.isfinite(self.rate) and self.rate >= 0):
            raise ValueError(f"buffer rate must be >= 0, got {self.rate!r}")
        if not 0.0 <= self.release <= 1.0:
            raise ValueError(f"buffer release must be in [0, 1], got {self.release!r}")
        if not (np.isfinite(self.threshold) and self.threshold >= 0):
            raise ValueError(f"buffer threshold must be >= 0, got {self.threshold!r}")
        for name in ("reference_days", "rebuild_days"):
            value = getattr(self, name)
            if not (isinstance(value, int | np.integer) and value >= 1):
                raise ValueError(f"buffer {name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class APCResult:
    """A parameter series after anti-procyclicality tools (:func:`apply_apc`).

    Attributes
    ----------
    parameter : pd.Series
        The adjusted parameter.
    base : pd.Series
        The input.
    effects : pd.DataFrame
        Columns ``lookback_floor``, ``stressed_weight``, ``buffer``: each tool's increment in
        the order applied (floor, stressed weight, buffer), each >= 0, summing to
        ``parameter - base``; zero for a tool not used.
    buffer_stressed : pd.Series of bool or None
        Days the buffer counted as stressed (None without a buffer).
    """

    parameter: pd.Series
    base: pd.Series
    effects: pd.DataFrame
    buffer_stressed: pd.Series | None = None


def apply_apc(
    series: pd.Series,
    *,
    buffer: MarginBuffer | float | None = None,
    stressed_weight: float | None = None,
    stressed_value: pd.Series | float | None = None,
    lookback_floor: pd.Series | float | None = None,
) -> APCResult:
    """Anti-procyclicality tools on a parameter series (EMIR RTS 153/2013 Art. 28).

    Parameters
    ----------
    series : pd.Series
        The base parameter ``B_t`` per day (e.g. :func:`rolling_scan_range`), positive.
    buffer : MarginBuffer or float, optional
        Art. 28(1)(a); a float is ``MarginBuffer(rate=buffer)``.
    stressed_weight : float in (0, 1], optional
        Art. 28(1)(b): weight ``w`` (EMIR: at least 0.25) of the stressed value.
    stressed_value : pd.Series or float, optional
        The parameter of a stressed period ``S_t``: a number (e.g. :func:`stress_floor`, or a
        scan range computed on a chosen stress period) or a series on ``series``' dates.
        Default: the largest value so far of the parameter this tool receives (the base, floored
        if a floor is given): the worst window up to each day, no look-ahead.
    lookback_floor : pd.Series or float, optional
        Art. 28(1)(c): the parameter on a long lookback ``F_t`` (e.g.
        ``rolling_scan_range(..., window=APC_FLOOR_LOOKBACK_DAYS, min_observations=...)``),
        a number or a series covering every date of ``series``.

    Returns
    -------
    APCResult

    Notes
    -----
    Applied in this order: ``P1 = max(B, F)``; ``P2 = max(P1, w S + (1 - w) P1)``;
    ``P3`` = :class:`MarginBuffer` on ``P2``. Each tool is causal when its inputs are.
    CPMI-IOSCO PFMI Principle 6 asks CCPs to limit procyclical changes of margin; the usual
    measures (as in ESMA's 2018 APC guidelines) are the peak-to-trough ratio of margin and
    its largest n-day increase. The buffer lowers the latter, not the former: it delays and
    spreads an increase, and is rebuilt once the stress ends.
    """
    base = _check_series(series, "series")
    if (base <= 0).any():
        raise ValueError("the base parameter must be positive")
    index = series.index
    floored = base
    if lookback_floor is not None:
        floored = np.maximum(base, _aligned(lookback_floor, index, "lookback_floor"))
    weighted = floored
    if stressed_weight is not None:
        if not 0.0 < stressed_weight <= 1.0:
            raise ValueError(f"stressed_weight must be in (0, 1], got {stressed_weight!r}")
        if stressed_value is None:
            stressed = np.maximum.accumulate(floored)
        else:
            stressed = _aligned(stressed_value, index, "stressed_value")
        blend = stressed_weight * stressed + (1.0 - stressed_weight) * floored
        weighted = np.maximum(floored, blend)
    elif stressed_value is not None:
        raise ValueError("stressed_value without stressed_weight has no effect; give both")
    final, stressed_days = weighted, None
    if buffer is not None:
        rule = buffer if isinstance(buffer, MarginBuffer) else MarginBuffer(rate=float(buffer))
        final, flags = _apply_buffer(weighted, rule)
        stressed_days = pd.Series(flags, index=index, name="buffer_stressed")
    effects = pd.DataFrame(
        {
            "lookback_floor": floored - base,
            "stressed_weight": weighted - floored,
            "buffer": final - weighted,
        },
        index=index,
    )
    return APCResult(
        parameter=pd.Series(final, index=index, name=series.name),
        base=series,
        effects=effects,
        buffer_stressed=stressed_days,
    )


def _apply_buffer(base: np.ndarray, rule: MarginBuffer) -> tuple[np.ndarray, np.ndarray]:
    reference = (
        pd.Series(base).rolling(rule.reference_days, min_periods=1).mean().shift(1).to_numpy()
    )
    with np.errstate(invalid="ignore"):
        stressed = base > (1.0 + rule.threshold) * reference
    lowest = rule.rate * (1.0 - rule.release)
    margin = np.empty_like(base)
    in_use = rule.rate
    for t in range(base.size):
        if stressed[t]:
            in_use = min(max(margin[t - 1] / base[t] - 1.0, lowest), rule.rate)
        else:
            in_use = min(rule.rate, in_use + rule.rate / rule.rebuild_days)
        margin[t] = base[t] * (1.0 + in_use)
    return margin, stressed


# ---------------------------------------------------------------------------------------------
# Vol shocks


@dataclass(frozen=True)
class VolShocks:
    """Quantiles of h-day changes of constant-maturity ATM vols (:func:`vol_shocks`).

    Attributes
    ----------
    table : pd.DataFrame
        Index ``tenor_days`` (float); columns ``up`` and ``down`` (relative: the ``c``-quantiles
        of ``v_{t+h} / v_t - 1`` and of its negative), ``up_absolute`` and ``down_absolute``
        (the same for ``v_{t+h} - v_t``, decimal vol) and ``observations``.
    horizon_days : int
    confidence : float
    """

    table: pd.DataFrame
    horizon_days: int
    confidence: float


def vol_shocks(atm_vols: pd.DataFrame, horizon_days: int, confidence: float) -> VolShocks:
    """Per tenor, the ``c``-quantiles of up and down h-day changes of ATM implied vol.

    Parameters
    ----------
    atm_vols : pd.DataFrame
        Decimal ATM vols, index date (increasing, unique), columns constant-maturity days to
        expiry (e.g. 7, 30, 90, 180). Missing values are allowed: a change counts only when
        both ends exist, ``h`` rows apart.
    horizon_days : int >= 1
    confidence : float in (0, 1)

    Returns
    -------
    VolShocks
        Overlapping h-day changes; at least ``1 / (1 - c)`` per tenor.
    """
    c = _check_confidence(confidence)
    h = _check_horizon(horizon_days)
    if not isinstance(atm_vols, pd.DataFrame):
        raise TypeError(f"atm_vols must be a DataFrame, got {type(atm_vols).__name__}")
    _check_index(atm_vols.index, "atm_vols")
    tenors = _tenors(atm_vols.columns)
    vols = atm_vols.to_numpy(dtype=float)
    if (vols[np.isfinite(vols)] <= 0).any():
        raise ValueError("atm_vols must be positive")
    rows = {}
    for j, tenor in enumerate(tenors):
        before, after = vols[:-h, j], vols[h:, j]
        ok = np.isfinite(before) & np.isfinite(after)
        _require_tail(int(ok.sum()), c, f"{h}-day vol changes at tenor {tenor:g}")
        relative = after[ok] / before[ok] - 1.0
        absolute = after[ok] - before[ok]
        rows[tenor] = {
            "up": np.quantile(relative, c),
            "down": np.quantile(-relative, c),
            "up_absolute": np.quantile(absolute, c),
            "down_absolute": np.quantile(-absolute, c),
            "observations": int(ok.sum()),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.Index(tenors, name="tenor_days", dtype=float)
    return VolShocks(table=table, horizon_days=h, confidence=c)


@dataclass(frozen=True)
class VegaPowerFit:
    """The risk matrix's vol-shock term structure fitted to shocks per tenor.

    ``s(d) = s_pivot (pivot / max(1, d))^p``, ``p`` = ``short_power`` below the pivot and
    ``long_power`` from it on (as :meth:`volcal.margin.ScenarioSet.vol_terms`).

    Attributes
    ----------
    pivot_shock : pd.Series
        ``s_pivot`` per shock curve (e.g. ``up``, ``down``).
    short_power, long_power : float
    pivot_days : float
    residuals : pd.DataFrame
        ``ln s - ln s_fitted`` per tenor (rows) and curve (columns).
    rmse_log : float
        Root mean square of the residuals.
    """

    pivot_shock: pd.Series
    short_power: float
    long_power: float
    pivot_days: float
    residuals: pd.DataFrame
    rmse_log: float

    def shock(self, days, curve: str) -> np.ndarray:
        """The fitted shock of ``curve`` at ``days`` to expiry."""
        clipped = np.maximum(np.asarray(days, dtype=float), MIN_DAYS)
        power = np.where(clipped < self.pivot_days, self.short_power, self.long_power)
        return self.pivot_shock[curve] * (self.pivot_days / clipped) ** power


def fit_vega_power(
    shocks_by_tenor: pd.Series | pd.DataFrame, pivot_days: float = PIVOT_DAYS
) -> VegaPowerFit:
    """Fit ``s(d) = s_pivot (pivot / d)^p`` to shocks per tenor, short and long power apart.

    Parameters
    ----------
    shocks_by_tenor : pd.Series or pd.DataFrame
        Positive shocks indexed by days to expiry; a DataFrame's columns (e.g.
        ``VolShocks.table[["up", "down"]]``) are curves with their own ``s_pivot`` and shared
        powers, as in the risk matrix where one power pair scales both vol up and vol down.
    pivot_days : float
        The pivot; :func:`volcal.margin.risk_matrix` uses :data:`PIVOT_DAYS` (30).

    Returns
    -------
    VegaPowerFit

    Notes
    -----
    Linear least squares in logs over every (tenor, curve):
    ``ln s = ln s_pivot[curve] + p_short x_short + p_long x_long`` with
    ``x = ln(pivot / max(1, d))`` in ``x_short`` for ``d < pivot`` and in ``x_long`` for
    ``d > pivot`` (0 otherwise). Identified only with a tenor on each side of the pivot and
    enough tenors for one level per curve.
    """
    frame = (
        shocks_by_tenor.to_frame() if isinstance(shocks_by_tenor, pd.Series) else shocks_by_tenor
    )
    if not isinstance(frame, pd.DataFrame):
        raise TypeError("shocks_by_tenor must be a Series or DataFrame indexed by days")
    tenors = np.asarray(_tenors(frame.index), dtype=float)
    shocks = frame.to_numpy(dtype=float)
    if not (np.isfinite(shocks).all() and (shocks > 0).all()):
        raise ValueError("shocks must be finite and positive (their logs are fitted)")
    if not (np.isfinite(pivot_days) and pivot_days >= MIN_DAYS):
        raise ValueError(f"pivot_days must be >= {MIN_DAYS}, got {pivot_days!r}")
    x = np.log(pivot_days / np.maximum(tenors, MIN_DAYS))
    short, long_ = tenors < pivot_days, tenors > pivot_days
    if not short.any() or not long_.any():
        side = "below" if not short.any() else "above"
        raise ValueError(f"no tenor {side} the pivot ({pivot_days:g} days): power not identified")
    curves = frame.shape[1]
    design = np.zeros((tenors.size * curves, curves + 2))
    for k in range(curves):
        rows = slice(k * tenors.size, (k + 1) * tenors.size)
        design[rows, k] = 1.0
        design[rows, curves] = np.where(short, x, 0.0)
        design[rows, curves + 1] = np.where(long_, x, 0.0)
    target = np.log(shocks.T.ravel())
    solution, _, rank, _ = np.linalg.lstsq(design, target, rcond=None)
    if rank < curves + 2:
        raise ValueError(
            f"{tenors.size} tenors cannot identify {curves} pivot level(s) and two powers"
        )
    residuals = (target - design @ solution).reshape(curves, tenors.size).T
    return VegaPowerFit(
        pivot_shock=pd.Series(np.exp(solution[:curves]), index=frame.columns, name="pivot"),
        short_power=float(solution[curves]),
        long_power=float(solution[curves + 1]),
        pivot_days=float(pivot_days),
        residuals=pd.DataFrame(residuals, index=frame.index, columns=frame.columns),
        rmse_log=float(np.sqrt(np.mean(residuals**2))),
    )


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
    floor_window: int | None = None,
    min_vol_for_shock_up: float = DEFAULT_MIN_VOL_FOR_SHOCK_UP,
) -> RiskParameters:
    """Risk-matrix parameters as of the last day of ``returns``.

    Parameters
    ----------
    underlying : str
    returns : pd.Series
        Daily log returns of the index (module conventions).
    atm_vols : pd.DataFrame, optional
        Constant-maturity ATM vols (as :func:`vol_shocks`); rows after the last return are
        ignored. Without them the vol parameters are the published defaults of
        ``underlying`` (an error where there are none).
    confidence, horizon_days, window, method, lam
        As :func:`rolling_scan_range`; the default window is one year of daily data.
    buffer, stressed_weight
        As :func:`apply_apc` (the stressed value: the worst window so far).
    floor_window : int, optional
        Lookback floor: the scan range over this many days (e.g.
        :data:`APC_FLOOR_LOOKBACK_DAYS`; the whole history while it is shorter).
    min_vol_for_shock_up : float
        Kept at Deribit's 0.50 by default.

    Returns
    -------
    RiskParameters
        ``price_range``: the APC-adjusted rolling scan range on the last day;
        ``vol_range_up`` / ``vol_range_down``: the fitted 30-day levels of the up and down
        relative shocks; powers from :func:`fit_vega_power` on both curves together.
    """
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
    adjusted = apply_apc(base, buffer=buffer, stressed_weight=stressed_weight, lookback_floor=floor)
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
        price_range=float(adjusted.parameter.iloc[-1]),
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


def _tail_minimum(confidence: float) -> int:
    # 1 / (1 - 0.99) is 99.99999999999991 in floating point: allow for it before rounding up.
    return int(np.ceil(1.0 / (1.0 - confidence) - 1e-9))


def _require_tail(count: int, confidence: float, what: str) -> None:
    needed = _tail_minimum(confidence)
    if count < needed:
        raise ValueError(
            f"{count} {what}: the {confidence:g} quantile needs at least {needed} observations"
        )


def _check_series(series: pd.Series, name: str) -> np.ndarray:
    if not isinstance(series, pd.Series):
        raise TypeError(f"{name} must be a pandas Series indexed by date")
    _check_index(series.index, name)
    values = series.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} missing or non-finite value(s), first on "
            f"{series.index[np.argmax(bad)]}"
        )
    return values


def _check_index(index: pd.Index, name: str) -> None:
    if not (index.is_monotonic_increasing and index.is_unique):
        raise ValueError(f"{name} must be indexed by increasing, unique dates")


def _aligned(value: pd.Series | float, index: pd.Index, name: str) -> np.ndarray:
    if isinstance(value, pd.Series):
        values = value.reindex(index).to_numpy(dtype=float)
        missing = ~np.isfinite(values)
        if missing.any():
            raise ValueError(
                f"{name} has no value on {int(missing.sum())} date(s) of the series, first "
                f"{index[np.argmax(missing)]}"
            )
        return values
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return np.full(len(index), float(value))


def _tenors(labels: pd.Index) -> list[float]:
    try:
        tenors = [float(label) for label in labels]
    except (TypeError, ValueError):
        raise ValueError(f"tenors must be days to expiry, got {list(labels)!r}") from None
    if not tenors or min(tenors) <= 0 or len(set(tenors)) != len(tenors):
        raise ValueError(f"tenors must be distinct positive days, got {tenors!r}")
    return tenors


def _check_confidence(confidence: float) -> float:
    if not (np.isscalar(confidence) and 0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(confidence)


def _check_horizon(horizon_days: int) -> int:
    if not (isinstance(horizon_days, int | np.integer) and horizon_days >= 1):
        raise ValueError(f"horizon_days must be a positive integer, got {horizon_days!r}")
    return int(horizon_days)


def _check_window(window: int) -> int:
    if not (isinstance(window, int | np.integer) and window >= 1):
        raise ValueError(f"window must be a positive integer, got {window!r}")
    return int(window)


def _check_lambda(lam: float) -> float:
    if not 0.0 < lam < 1.0:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")
    return float(lam)

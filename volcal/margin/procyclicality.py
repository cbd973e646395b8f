"""Anti-procyclicality (APC) tools on a margin parameter series.

EMIR's three tools (Commission Delegated Regulation (EU) No 153/2013, Article 28(1)) applied to
a base parameter known on each day, such as the rolling price scan range of
:func:`volcal.margin.risk_parameters.rolling_scan_range`: a lookback floor, a weight on
stressed observations, and a margin buffer released in stress (:class:`MarginBuffer`).
:func:`apply_apc` applies them in that order and returns an :class:`APCResult` with each
tool's increment.

Conventions: a parameter series is a pandas Series of positive decimals (0.16 = 16%) indexed
by date (increasing, unique, no missing values); a day is one observation, and every tool is
causal (the value on a day uses data up to that day only) when its inputs are.

References
----------
Commission Delegated Regulation (EU) No 153/2013 (EMIR RTS on CCP requirements), Article 28
(procyclicality).
CPMI-IOSCO (2012), "Principles for financial market infrastructures", Principle 6 (margin).
ESMA (2018), "Guidelines on EMIR Anti-Procyclicality Margin Measures for Central
Counterparties".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcal.margin._checks import _check_series

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
        The base parameter ``B_t`` per day (e.g.
        :func:`volcal.margin.risk_parameters.rolling_scan_range`), positive.
    buffer : MarginBuffer or float, optional
        Art. 28(1)(a); a float is ``MarginBuffer(rate=buffer)``.
    stressed_weight : float in (0, 1], optional
        Art. 28(1)(b): weight ``w`` (EMIR: at least 0.25) of the stressed value.
    stressed_value : pd.Series or float, optional
        The parameter of a stressed period ``S_t``: a number (e.g.
        :func:`volcal.margin.risk_parameters.stress_floor`, or a scan range computed on a
        chosen stress period) or a series on ``series``' dates.
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

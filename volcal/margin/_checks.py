"""Input checks shared by the margin risk-parameter modules.

Private helpers of :mod:`volcal.margin.risk_parameters`, :mod:`volcal.margin.procyclicality`
and :mod:`volcal.margin.vol_shocks`: each validates one kind of argument and raises a
``ValueError`` (``TypeError`` for a wrong type) whose message names the argument and what
is wrong with it, so that bad input fails loudly at the public function that received it.

Conventions: a time series is a pandas Series indexed by date (increasing, unique, no missing
values); a confidence ``c`` is in (0, 1); a horizon is a positive integer number of days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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


def _check_confidence(confidence: float) -> float:
    if not (np.isscalar(confidence) and 0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(confidence)


def _check_horizon(horizon_days: int) -> int:
    if not (isinstance(horizon_days, int | np.integer) and horizon_days >= 1):
        raise ValueError(f"horizon_days must be a positive integer, got {horizon_days!r}")
    return int(horizon_days)

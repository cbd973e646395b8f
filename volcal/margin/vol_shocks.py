"""Vol shocks of the risk matrix calibrated from implied-vol history.

The relative vol shocks per tenor are quantiles of h-day changes of constant-maturity ATM
implied vols (:func:`vol_shocks` -> :class:`VolShocks`); the risk matrix's vega power law
``s(d) = s_pivot (pivot / max(1, d))^p``, with one power below the pivot (30 days) and one
from it on, is fitted to them in logs (:func:`fit_vega_power` -> :class:`VegaPowerFit`).
:func:`volcal.margin.risk_parameters.calibrate_risk_parameters` turns the fit into the risk
matrix's ``vol_range_up``, ``vol_range_down``, ``short_term_vega_power`` and
``long_term_vega_power``.

Conventions: ATM vols are decimals (0.50 = 50 vol points) in a pandas DataFrame indexed by date
(increasing, unique) with constant-maturity days to expiry as columns, missing values allowed;
a horizon of ``h`` days is ``h`` rows (crypto trades every day). Shocks are relative
(``v_{t+h} / v_t - 1``; 0.50 = vol up by half) unless named absolute (decimal vol). Quantiles
are numpy's default ``linear`` estimator (Hyndman and Fan's type 7) and need at least
``1 / (1 - c)`` changes per tenor at confidence ``c`` (100 at 99%), so the quantile is not the
sample maximum. The power law, its pivot and its floor on days to expiry are those of
:meth:`volcal.margin.ScenarioSet.vol_terms` (:data:`volcal.margin.scenarios.PIVOT_DAYS`,
:data:`volcal.margin.scenarios.MIN_DAYS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcal.margin._checks import _check_confidence, _check_horizon, _check_index, _require_tail
from volcal.margin.scenarios import MIN_DAYS, PIVOT_DAYS


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


def _tenors(labels: pd.Index) -> list[float]:
    try:
        tenors = [float(label) for label in labels]
    except (TypeError, ValueError):
        raise ValueError(f"tenors must be days to expiry, got {list(labels)!r}") from None
    if not tenors or min(tenors) <= 0 or len(set(tenors)) != len(tenors):
        raise ValueError(f"tenors must be distinct positive days, got {tenors!r}")
    return tenors

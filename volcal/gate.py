"""The quality gate: is a calibration good enough to become the latest accepted surface?

Every model has its own :class:`GateConfig` (defaults in :data:`DEFAULT_GATES`, each limit
overridable in the refresh configuration). A calibration is accepted when it passes every
check; otherwise it is stored as rejected with every reason it failed (:class:`GateReason`).
The checks:

* ``not_converged``: a slice (or the surface) did not converge (:class:`volcal.calibrate.
  CalibrationStatus`).
* ``too_few_quotes``: fewer than ``min_quotes`` quotes or ``min_expiries`` expiries were fitted.
* ``rmse``: RMSE above ``max_rmse_vol_points`` (vol points, all quotes).
* ``butterfly`` / ``calendar``: more violating grid points in :mod:`volcal.arbitrage`'s report
  than allowed (``None``: not checked for that model).
* ``jump``: the largest implied-vol change, on the fixed grid ``JUMP_TENORS_DAYS`` x
  ``JUMP_LOG_MONEYNESS``, from the previous accepted surface of the same model exceeds
  ``jump_floor + jump_per_sqrt_day x sqrt(days between the snapshots)`` (decimal vol). The
  square root is how a diffusive vol moves with time; the floor absorbs refit noise between
  snapshots minutes apart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd

#: Tenors (days) and log-forward-moneyness of the jump check's grid: the liquid part of a
#: crypto or equity-index surface.
JUMP_TENORS_DAYS = (7.0, 30.0, 90.0, 180.0)
JUMP_LOG_MONEYNESS = (-0.2, -0.1, 0.0, 0.1, 0.2)


class GateReason(enum.StrEnum):
    """Why a calibration was rejected; ``.meaning`` says it in words."""

    NOT_CONVERGED = "not_converged"
    TOO_FEW_QUOTES = "too_few_quotes"
    RMSE = "rmse"
    BUTTERFLY = "butterfly"
    CALENDAR = "calendar"
    JUMP = "jump"

    @property
    def meaning(self) -> str:
        return {
            GateReason.NOT_CONVERGED: "the solver did not converge",
            GateReason.TOO_FEW_QUOTES: "too few quotes or expiries were fitted",
            GateReason.RMSE: "the fit's RMSE is above the limit",
            GateReason.BUTTERFLY: "butterfly arbitrage beyond the allowed points",
            GateReason.CALENDAR: "calendar arbitrage beyond the allowed points",
            GateReason.JUMP: "the surface moved more than the limit since the previous one",
        }[self]


@dataclass(frozen=True)
class GateConfig:
    """Limits of one model's gate (``None`` switches a check off).

    Attributes
    ----------
    max_rmse_vol_points : float or None
        RMSE limit over all fitted quotes, in vol points.
    max_butterfly_points, max_calendar_points : int or None
        Violating grid points allowed in the arbitrage report.
    min_quotes, min_expiries : int
        Fewest quotes and expiries a surface may be fitted to.
    jump_floor, jump_per_sqrt_day : float or None
        Jump limit (decimal vol) ``jump_floor + jump_per_sqrt_day sqrt(days)``.
    """

    max_rmse_vol_points: float | None = 5.0
    max_butterfly_points: int | None = 0
    max_calendar_points: int | None = 0
    min_quotes: int = 20
    min_expiries: int = 2
    jump_floor: float | None = 0.05
    jump_per_sqrt_day: float = 0.10

    def updated(self, **limits) -> GateConfig:
        """A copy with ``limits`` changed; unknown names raise ``ValueError``."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(limits) - known)
        if unknown:
            raise ValueError(f"unknown gate limit(s) {unknown}; known: {sorted(known)}")
        return replace(self, **limits)


#: Default gates. eSSVI/SSVI are arbitrage-free by construction, so any violation is a bug or
#: a numerical failure: none allowed; their RMSE on the Deribit snapshots is 1.2-3.0 vol
#: points (docs/real_data_fits.md), hence 5. Raw SVI is fitted with butterfly exclusion
#: (none allowed) but its slices may cross (calendar conflicts are reported, not gated); its
#: RMSE is 0.4-0.7. SABR's expansions have known wing arbitrage and Heston is arbitrage-free
#: by construction (the checker's wing points there test float64 rounding, not the model):
#: neither is gated on arbitrage, and Heston cannot fit crypto skew closely (10 points).
DEFAULT_GATES: dict[str, GateConfig] = {
    "ESSVI": GateConfig(max_rmse_vol_points=5.0),
    "SSVI": GateConfig(max_rmse_vol_points=6.0),
    "SVI": GateConfig(max_rmse_vol_points=3.0, max_calendar_points=None, min_expiries=1),
    "SABR": GateConfig(
        max_rmse_vol_points=3.0, max_butterfly_points=None, max_calendar_points=None, min_expiries=1
    ),
    "Heston": GateConfig(
        max_rmse_vol_points=10.0, max_butterfly_points=None, max_calendar_points=None
    ),
}


@dataclass(frozen=True)
class GateFailure:
    """One failed check: its reason and a sentence with the measured value and the limit."""

    reason: GateReason
    detail: str


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict: ``accepted`` when ``failures`` is empty; ``measures`` holds every
    measured value (rmse, quotes, expiries, violation counts, jump and its limit)."""

    failures: tuple[GateFailure, ...] = ()
    measures: dict = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return not self.failures

    @property
    def reasons(self) -> tuple[GateReason, ...]:
        return tuple(f.reason for f in self.failures)


def gate_config(model_name: str, overrides: dict | None = None) -> GateConfig:
    """The default gate of ``model_name`` with ``overrides`` applied."""
    base = DEFAULT_GATES.get(model_name, GateConfig())
    return base.updated(**(overrides or {}))


def evaluate(calibration, *, config: GateConfig | None = None, previous=None) -> GateDecision:
    """Run the gate on a :class:`volcal.Calibration`.

    Parameters
    ----------
    calibration : Calibration
    config : GateConfig, optional
        Default: :data:`DEFAULT_GATES` for the model.
    previous : VolSurface, optional
        The previous accepted surface of the same model, for the jump check.
    """
    from volcal.surface import VolSurface

    name = type(calibration.model).__name__
    config = config or gate_config(name)
    grid = calibration.grid
    failures = []
    quotes = int(grid.mask.sum())
    expiries = len(grid.t)
    measures: dict = {
        "quotes": quotes,
        "expiries": expiries,
        "rmse": calibration.rmse,
        "inside": calibration.inside,
    }
    if not calibration.ok:
        bad = int((~calibration.ok_by_expiry).sum())
        failures.append(
            GateFailure(GateReason.NOT_CONVERGED, f"{bad} of {expiries} slice(s) did not converge")
        )
    if quotes < config.min_quotes or expiries < config.min_expiries:
        failures.append(
            GateFailure(
                GateReason.TOO_FEW_QUOTES,
                f"{quotes} quotes on {expiries} expiries (need {config.min_quotes} and "
                f"{config.min_expiries})",
            )
        )
    limit = config.max_rmse_vol_points
    if limit is not None and not calibration.rmse <= limit:
        failures.append(
            GateFailure(GateReason.RMSE, f"RMSE {calibration.rmse:.3f} vol points > {limit}")
        )
    report = calibration.arbitrage
    checks = (
        (GateReason.BUTTERFLY, len(report.butterfly), config.max_butterfly_points),
        (GateReason.CALENDAR, len(report.calendar), config.max_calendar_points),
    )
    for reason, count, allowed in checks:
        measures[f"{reason.value}_points"] = count
        if allowed is not None and count > allowed:
            failures.append(
                GateFailure(
                    reason, f"{count} violating grid points > {allowed}: {report.summary()}"
                )
            )
    if previous is not None and config.jump_floor is not None:
        surface = VolSurface.from_calibration(calibration)
        jump, days = jump_size(previous, surface)
        allowed = config.jump_floor + config.jump_per_sqrt_day * np.sqrt(max(days, 0.0))
        measures.update(
            jump=jump,
            jump_limit=float(allowed),
            days_since_previous=days,
            previous_surface=previous.surface_id,
        )
        if not jump <= allowed:
            failures.append(
                GateFailure(
                    GateReason.JUMP,
                    f"largest vol change {jump * 100:.2f} vol points since "
                    f"{previous.snapshot} ({days:.2f} days) > limit {allowed * 100:.2f}",
                )
            )
    return GateDecision(failures=tuple(failures), measures=measures)


def jump_size(previous, current) -> tuple[float, float]:
    """Largest ``|vol_current - vol_previous|`` (decimal) on the fixed jump grid, and the days
    between the two snapshots."""
    tenors, k = np.meshgrid(np.asarray(JUMP_TENORS_DAYS) / 365.0, np.asarray(JUMP_LOG_MONEYNESS))
    change = np.abs(
        np.asarray(current.implied_vol_at(k, tenors))
        - np.asarray(previous.implied_vol_at(k, tenors))
    )
    days = (pd.Timestamp(current.snapshot) - pd.Timestamp(previous.snapshot)).total_seconds()
    jump = float(np.max(change)) if np.all(np.isfinite(change)) else float("inf")
    return jump, days / 86400.0

"""calibrate(): recovery of known SVI slices, warm starts, robust losses, loud failure, and a
first real-data fit (the full per-model table belongs to the models issue)."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pandas as pd
import pytest

import volcal as vc
from volcal.calibrate import CalibrationError, CalibrationStatus, calibrate
from volcal.clean import CleaningReport, IVGrid
from volcal.models.svi import SVI
from volcal.sources.files import read_deribit_snapshot

# The module itself (``volcal.calibrate`` the attribute is the function).
calibration_module = importlib.import_module("volcal.calibrate")

TRUE = SVI(a=np.array([0.004, 0.02, 0.05]), b=np.array([0.05, 0.1, 0.12]),
           rho=np.array([-0.3, -0.2, -0.1]), m=np.array([0.01, 0.02, 0.0]),
           sigma=np.array([0.1, 0.2, 0.3]))  # fmt: skip
T = np.array([0.05, 0.5, 1.0])
FORWARD = np.array([100.0, 101.0, 102.0])
WIDTH = 24


def synthetic_grid(model=TRUE, noise=None) -> IVGrid:
    """Noiseless quotes of ``model`` on 24 strikes per slice (+-1.2 sqrt(t) in ln(K/F))."""
    k = np.linspace(-1.2, 1.2, WIDTH)[None, :] * np.sqrt(T)[:, None]
    strike = FORWARD[:, None] * np.exp(k)
    vol = np.asarray(model.implied_vol(FORWARD, strike, T))
    if noise is not None:
        vol = vol + noise
    start = pd.Timestamp("2026-01-01", tz="UTC")
    return IVGrid(
        venue="synthetic", underlying="X", snapshot=start,
        expiries=pd.DatetimeIndex(start + pd.to_timedelta(T * 365, unit="D")),
        t=T, forward=FORWARD, discount=np.ones(3), strike=strike, log_moneyness=k, mid_iv=vol,
        bid_iv=vol - 0.005, ask_iv=vol + 0.005, is_call=k >= 0, weight=np.ones_like(k),
        mask=np.ones_like(k, dtype=bool), quotes=pd.DataFrame(),
        report=CleaningReport(pd.DataFrame(), pd.DataFrame()),
    )  # fmt: skip


def assert_recovered(model, tolerance):
    for name in ("a", "b", "rho", "sigma"):
        fitted, true = np.asarray(getattr(model, name)), np.asarray(getattr(TRUE, name))
        error = np.abs(fitted / true - 1)
        assert error.max() <= tolerance, f"{name}: computed {fitted}, expected {true}"
    error = np.abs(np.asarray(model.m) - TRUE.m)
    assert error.max() <= tolerance * 0.1, f"m: computed {model.m}, expected {TRUE.m}"


def test_recovers_known_slices_from_noiseless_quotes():
    result = calibrate(SVI, synthetic_grid())
    assert result.ok and result.arbitrage.butterfly.empty
    assert_recovered(result.model, 1e-6)  # the bar of the models issue
    assert result.rmse < 1e-8 and result.inside == 1.0
    table = result.summary()
    assert list(table["status"]) == ["SUCCESS"] * 3 and "rho" in table


def test_price_residuals_recover_too():
    result = calibrate(SVI, synthetic_grid(), residual="price")
    assert_recovered(result.model, 1e-6)


def test_warm_start_from_a_calibration_converges_at_once():
    first = calibrate(SVI, synthetic_grid())
    again = calibrate(first.model, synthetic_grid())
    assert again.ok and (again.steps <= first.steps).all()
    assert_recovered(again.model, 1e-6)


def test_quasi_explicit_start_lands_near_the_noiseless_slices():
    """The start alone (a grid of 3x3 linear least-squares fits over (m, sigma), no solve)
    is within 2 vol points of every noiseless quote: the solve starts in the right basin.
    Reference: the true slices written out in this file (TRUE)."""
    from volcal.models.svi import initial_guess

    grid = synthetic_grid()
    for i in range(len(T)):
        k, w = grid.log_moneyness[i], grid.mid_iv[i] ** 2 * T[i]
        start = initial_guess(k, w, grid.mask[i], grid.weight[i], T[i])
        vol = np.sqrt(np.asarray(start.total_variance(k)) / T[i])
        assert np.abs(vol - grid.mid_iv[i]).max() < 0.02, i


def test_slices_with_one_or_two_quotes_give_finite_fits():
    """With fewer than three quotes the quasi-explicit solves are singular; the start falls
    back to the heuristic slice, so the record is finite (the gate then rejects it for too
    few quotes) rather than NaN."""
    grid = synthetic_grid()
    mask = np.zeros_like(grid.mask)
    mask[0, 12] = True
    mask[1, 11:13] = True
    mask[2, 10:13] = True
    sparse = dataclasses.replace(grid, mask=mask, weight=mask.astype(float))
    result = calibrate(SVI, sparse, throw=False)
    for name in ("a", "b", "rho", "m", "sigma"):
        assert np.isfinite(np.asarray(getattr(result.model, name))).all(), name
    assert np.isfinite(result.model_iv[mask]).all()


def test_queued_slices_give_the_fit_of_one_vmap(monkeypatch):
    """CPUs step CPU_SLICE_LANES slices side by side, each lane taking the next slice as soon
    as its own has converged; accelerators solve every slice in one vmap (CPU_SLICE_LANES
    None there). Two lanes for three slices (and a padding slice, not solved): the same fit,
    parameter for parameter, the same steps and the same statuses."""
    noise = np.sin(np.arange(3 * WIDTH)).reshape(3, WIDTH) * 0.003  # a fit with residuals
    monkeypatch.setattr(calibration_module, "CPU_SLICE_LANES", 2)
    monkeypatch.setattr(calibration_module, "_SOLVERS", {})
    queued = calibrate(SVI, synthetic_grid(noise=noise))
    monkeypatch.setattr(calibration_module, "CPU_SLICE_LANES", None)
    monkeypatch.setattr(calibration_module, "_SOLVERS", {})
    whole = calibrate(SVI, synthetic_grid(noise=noise))
    for name in ("a", "b", "rho", "m", "sigma"):
        np.testing.assert_allclose(getattr(whole.model, name), getattr(queued.model, name),
                                   rtol=1e-12, atol=1e-15, err_msg=name)  # fmt: skip
    np.testing.assert_array_equal(whole.steps, queued.steps)
    np.testing.assert_array_equal(whole.status, queued.status)
    # The first two slices end at different steps, so the third starts mid-solve in a lane.
    assert queued.steps[0] != queued.steps[1], queued.steps


def test_soft_l1_resists_an_outlier_quote():
    noise = np.zeros((3, WIDTH))
    noise[1, 12] = 0.05  # one 5-vol-point bad quote near the money
    plain = calibrate(SVI, synthetic_grid(noise=noise))
    robust = calibrate(SVI, synthetic_grid(noise=noise), loss="soft_l1", loss_scale=0.002)
    clean_quotes = np.ones((3, WIDTH), dtype=bool)
    clean_quotes[1, 12] = False
    truth = synthetic_grid().mid_iv
    plain_error = np.abs(plain.model_iv - truth)[clean_quotes].max()
    robust_error = np.abs(robust.model_iv - truth)[clean_quotes].max()
    assert robust_error < 0.5 * plain_error, (robust_error, plain_error)


def test_failure_is_loud_by_default_and_recorded_on_request(monkeypatch):
    # Two steps (and STALL_STEPS more for a stalled solve) from a start far from the quotes
    # are too few. (From its own initial guess, raw SVI fits these noiseless quotes in two.)
    monkeypatch.setattr(calibration_module, "MAX_STEPS", 2)
    monkeypatch.setattr(calibration_module, "_SOLVERS", {})
    far = SVI(a=TRUE.a * 3.0, b=TRUE.b * 0.3, rho=-TRUE.rho, m=TRUE.m + 0.1,
              sigma=TRUE.sigma * 4.0)  # fmt: skip
    with pytest.raises(CalibrationError, match="SVI calibration failed") as error:
        calibrate(far, synthetic_grid())
    assert (error.value.calibration.status != CalibrationStatus.SUCCESS).any()
    recorded = calibrate(far, synthetic_grid(), throw=False)
    assert not recorded.ok
    with pytest.raises(ValueError, match="loss"):
        calibrate(SVI, synthetic_grid(), loss="cauchy")


def test_stalled_solves_are_continued_and_classified():
    """Slices stopped at MAX_STEPS are continued: a cost that then falls by less than
    STALL_RTOL is CONSTRAINT_ACTIVE; a continuation that meets the solver's own stopping test
    has converged (SUCCESS); one that neither settles nor converges stays MAX_STEPS_REACHED.
    Slices that were not stalled keep their status and steps."""
    max_steps = int(CalibrationStatus.MAX_STEPS_REACHED)
    status = np.array([max_steps, max_steps, max_steps, 0])
    steps = np.array([400, 400, 400, 12])
    cost = np.array([1.0, 1.0, 1.0, 1.0])
    u = np.zeros((4, 2))
    data = [None] * 5 + [np.ones((4, 3), dtype=bool)]
    rtol = calibration_module.STALL_RTOL

    def solve_more(u0, data):
        """The continuation: (u, status, steps, cost) per slice."""
        return (np.asarray(u0) + 1.0, np.array([max_steps, 0, max_steps, 0]),
                np.array([10, 3, 10, 1]), np.array([1.0 - 0.5 * rtol, 1.0 - 1e-3, 0.9, 0.5]))

    u, status, steps = calibration_module._finish_stalled(solve_more, u, status, steps, cost,
                                                          data)  # fmt: skip
    assert status.tolist() == [int(CalibrationStatus.CONSTRAINT_ACTIVE),
                               int(CalibrationStatus.SUCCESS), max_steps, 0]  # fmt: skip
    assert steps.tolist() == [410, 403, 410, 12]
    np.testing.assert_array_equal(u[:, 0], [1.0, 1.0, 1.0, 0.0])


def test_real_snapshots_raw_svi_without_butterfly_arbitrage(shared_data):
    """All five Deribit snapshots, BTC and ETH: zero butterfly violations from
    volcal.arbitrage, and >= 90% of two-sided quotes inside on expiries with >= 8 of them
    (the models issue's bar for raw SVI)."""
    lines = []
    for path in sorted((shared_data / "raw" / "deribit_svcj_snapshots").glob("*.csv")):
        chain = read_deribit_snapshot(path)
        for currency in ("BTC", "ETH"):
            grid = vc.clean(chain, underlying=currency)
            result = calibrate(SVI, grid, throw=False)
            count = grid.mask.sum(axis=1)
            enough = count >= 8
            inside = (result.inside_by_expiry * count)[enough].sum() / count[enough].sum()
            lines.append(f"{path.stem[-16:]} {currency}: RMSE {result.rmse:.3f} vp, inside "
                         f"{inside:.1%}, converged {int((result.status == 0).sum())}/"
                         f"{len(grid.t)}; {result.arbitrage.summary()}")  # fmt: skip
            assert result.arbitrage.butterfly.empty, lines[-1]
            assert inside >= 0.9, lines[-1]
            assert result.rmse < 1.0, lines[-1]
    print("\n" + "\n".join(lines))


def test_ssvi_surface_recovers_known_parameters_and_is_arbitrage_free():
    from volcal.models.ssvi import SSVI

    true = SSVI(theta=np.array([0.004, 0.045, 0.1]), rho=np.asarray(-0.3),
                eta=np.asarray(1.1), gamma=np.asarray(0.4))  # fmt: skip
    result = calibrate(SSVI, synthetic_grid(true))
    assert result.ok and result.arbitrage.ok
    np.testing.assert_allclose(result.model.theta, true.theta, rtol=1e-6)
    for name in ("rho", "eta", "gamma"):
        computed, expected = float(getattr(result.model, name)), float(getattr(true, name))
        assert abs(computed / expected - 1) <= 1e-6, f"{name}: {computed} vs {expected}"
    assert {"theta", "rho", "eta", "gamma"} <= set(result.summary().columns)


@pytest.mark.parametrize("expansion", ["hagan", "obloj"])
def test_sabr_slices_recover_known_parameters(expansion):
    from volcal.models import SABR

    true = SABR(alpha=np.array([0.6, 0.5, 0.45]), beta=0.5, rho=np.array([-0.2, -0.3, -0.1]),
                nu=np.array([2.0, 1.0, 0.6]), expansion=expansion)  # fmt: skip
    result = calibrate(SABR, synthetic_grid(true), fixed={"beta": 0.5, "expansion": expansion})
    assert result.ok and result.rmse < 1e-8
    for name in ("alpha", "rho", "nu"):
        np.testing.assert_allclose(getattr(result.model, name), getattr(true, name), rtol=1e-6,
                                   err_msg=name)  # fmt: skip
    with pytest.raises(ValueError, match="beta"):
        calibrate(SABR, synthetic_grid(true))
    fixed_rho = calibrate(
        SABR, synthetic_grid(true), fixed={"beta": 0.5, "rho": -0.25, "expansion": expansion}
    )
    np.testing.assert_allclose(fixed_rho.model.rho, -0.25)


def test_parameter_sensitivities_match_finite_differences(monkeypatch):
    import dataclasses

    from volcal.calibrate import parameter_sensitivities

    # The reference refits solve far more tightly than a calibration needs to (no cost stop,
    # parameters to 1e-14), so that a 1e-4 vol bump moves them by much more than their
    # solve's error; the central differences' truncation error is then ~2e-5 relative.
    monkeypatch.setattr(calibration_module, "SLICE_FTOL", 0.0)
    monkeypatch.setattr(calibration_module, "RTOL", 1e-14)
    monkeypatch.setattr(calibration_module, "ATOL", 1e-16)
    monkeypatch.setattr(calibration_module, "_SOLVERS", {})
    grid = synthetic_grid()
    result = calibrate(SVI, grid)
    jacobian = parameter_sensitivities(result)
    assert jacobian.shape == (3, 5, WIDTH)
    bump = 1e-4
    for slice_, quote in [(0, 3), (1, 12), (2, 20)]:
        moved = []
        for sign in (1.0, -1.0):
            mid = grid.mid_iv.copy()
            mid[slice_, quote] += sign * bump
            refit = calibrate(result.model, dataclasses.replace(grid, mid_iv=mid))
            moved.append(np.array([np.asarray(getattr(refit.model, name))[slice_]
                                   for name in ("a", "b", "rho", "m", "sigma")]))  # fmt: skip
        finite_difference = (moved[0] - moved[1]) / (2 * bump)
        np.testing.assert_allclose(jacobian[slice_, :, quote], finite_difference, rtol=5e-5,
                                   atol=1e-7)  # fmt: skip


@pytest.mark.parametrize(
    ("stamp", "underlying", "fit_cost"),
    [("20260822T153351Z", "BTC", 0.1), ("20251230T173115Z", "ETH", 0.3)],
)
def test_calendar_repair_pass_removes_conflicts_on_a_real_snapshot(
    shared_data, stamp, underlying, fit_cost
):
    """Deribit BTC 2026-08-22 and ETH 2025-12-30: the first pass leaves calendar conflicts
    between neighbouring slices (4 and 5 pairs, reported); the sequential repair pass removes
    them all here, keeps the slices free of butterfly arbitrage and costs little fit (RMSE up
    by at most ``fit_cost`` vol points). On other snapshots it reduces them
    (docs/real_data_fits.md)."""
    path = (shared_data / "raw" / "deribit_svcj_snapshots"
            / f"deribit_options_snapshot_{stamp}.csv")  # fmt: skip
    grid = vc.clean(read_deribit_snapshot(path), underlying=underlying)
    first = calibrate(SVI, grid, throw=False)
    repaired = calibrate(SVI, grid, throw=False, calendar="repair")
    assert first.arbitrage.calendar["slice"].nunique() >= 4
    assert repaired.arbitrage.ok, repaired.arbitrage.summary()
    assert repaired.rmse <= first.rmse + fit_cost
    with pytest.raises(ValueError, match="calendar"):
        calibrate(SVI, grid, calendar="fix")


def test_calendar_repair_keeps_each_slice_within_a_vol_point_of_its_first_fit(shared_data):
    """SPX 2011-01-24: a 0.9-year slice's far wing crosses the next slice's by 0.23 in total
    variance. Holding each later slice above it would miss their quotes by up to 31 vol points,
    so the repair keeps a refit only if the slice's RMSE rises by at most
    CALENDAR_MAX_RMSE_INCREASE (1 vol point) and leaves the other conflicts reported."""
    from volcal.sources.files import read_cboe_quotes

    grid = vc.clean(read_cboe_quotes(shared_data / "raw" / "spx_cboe_20110124"
                                     / "SPX-Options-24jan2011.csv"))  # fmt: skip
    first = calibrate(SVI, grid, throw=False)
    repaired = calibrate(SVI, grid, throw=False, calendar="repair")
    assert (repaired.rmse_by_expiry <= first.rmse_by_expiry + 1.0 + 1e-9).all()
    assert not repaired.arbitrage.calendar.empty  # what could not be repaired is reported
    assert repaired.arbitrage.butterfly.empty

"""The interactive skew explorer (notebook 02), driven without a browser by setting widget
values: a slider move redraws the curve, a lock holds a parameter through a refit, a refit
lowers the RMSE, save writes to the store."""

from __future__ import annotations

import numpy as np
import pytest

import volcal as vc
from tests.test_plot import values
from volcal.interactive import SkewExplorer

EXPIRY = 3


@pytest.fixture(scope="module")
def fits(demo_grid):
    return {
        "raw SVI": vc.calibrate(vc.models.SVI, demo_grid),
        "SABR": vc.calibrate(vc.models.SABR, demo_grid, fixed={"beta": 1.0}),
    }


@pytest.fixture
def store(tmp_path, demo_essvi_fit):
    store = vc.Store(tmp_path / "volcal.sqlite")
    store.save(demo_essvi_fit)
    return store


def curve(explorer, name):
    (trace,) = [t for t in explorer.figure.data if t.name == name]
    return np.asarray(trace.x), np.asarray(trace.y)


def raw_svi_vol(p, k, t):
    """Gatheral's raw SVI, written out: w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2))."""
    w = p["a"] + p["b"] * (p["rho"] * (k - p["m"]) + np.sqrt((k - p["m"]) ** 2 + p["sigma"] ** 2))
    return np.sqrt(w / t)


def test_slider_move_redraws_the_curve(fits, demo_grid):
    explorer = SkewExplorer(fits, expiry=EXPIRY)
    x, before = curve(explorer, "raw SVI")
    rho = explorer.sliders["rho"]
    rho.value = rho.value + 0.2
    x_after, after = curve(explorer, "raw SVI")
    np.testing.assert_array_equal(x_after, x)
    expected = raw_svi_vol(explorer.parameters, x, demo_grid.t[EXPIRY]) * 100.0
    np.testing.assert_allclose(after, expected, rtol=1e-12)
    assert np.max(np.abs(after - before)) > 1.0  # vol points
    # The figure's data are what a browser would get.
    (trace,) = [t for t in explorer.figure.to_dict()["data"] if t["name"] == "raw SVI"]
    np.testing.assert_allclose(values(trace["y"]), expected, rtol=1e-12)


def test_lock_holds_a_parameter_through_a_refit_that_lowers_the_rmse(fits):
    explorer = SkewExplorer(fits, expiry=EXPIRY)
    fitted = explorer.slice_rmse()
    explorer.sliders["rho"].value = explorer.sliders["rho"].value + 0.3
    explorer.sliders["b"].value = explorer.sliders["b"].value * 1.5
    moved = explorer.slice_rmse()
    assert moved > fitted + 1.0
    explorer.locks["m"].value = True
    m = explorer.sliders["m"].value
    explorer.refit_button.click()
    assert explorer.sliders["m"].value == m
    assert float(explorer.calibration.model.m[EXPIRY]) == m
    # From the perturbed point, with m at its fitted value, the refit finds the fit again
    # (to 0.01 vol point: the same solve as calibrate's, started elsewhere).
    assert explorer.slice_rmse() < moved
    assert explorer.slice_rmse() == pytest.approx(fitted, abs=0.01)
    assert "refit a, b, rho, sigma" in explorer.status.value
    # Other slices are untouched.
    np.testing.assert_array_equal(
        np.delete(np.asarray(explorer.calibration.model.a), EXPIRY),
        np.delete(np.asarray(fits["raw SVI"].model.a), EXPIRY),
    )


def test_sabr_beta_is_always_locked_and_the_model_switch_rebuilds_sliders(fits):
    explorer = SkewExplorer(fits, expiry=EXPIRY)
    explorer.model.value = "SABR"
    assert set(explorer.sliders) == {"alpha", "beta", "rho", "nu"}
    assert explorer.locks["beta"].value and explorer.locks["beta"].disabled
    assert explorer.sliders["nu"].value == pytest.approx(float(fits["SABR"].model.nu[EXPIRY]))
    explorer.sliders["nu"].value = explorer.sliders["nu"].value * 1.5
    explorer.refit_button.click()
    assert float(explorer.calibration.model.beta[EXPIRY]) == 1.0
    assert explorer.slice_rmse() == pytest.approx(fits["SABR"].rmse_by_expiry[EXPIRY], abs=0.01)
    explorer.expiry.value = EXPIRY + 1
    assert explorer.sliders["alpha"].value == pytest.approx(
        float(fits["SABR"].model.alpha[EXPIRY + 1])
    )


def test_save_writes_the_edited_calibration_and_the_stored_surface_is_drawn(fits, store):
    explorer = SkewExplorer(fits, store=store, expiry=EXPIRY)
    grid = explorer.grid
    label = [t.name for t in explorer.figure.data if t.name.startswith("stored ESSVI")]
    assert len(label) == 1
    x, y = curve(explorer, label[0])
    published = store.latest(grid.venue, grid.underlying, asof=grid.snapshot).surface
    np.testing.assert_allclose(y, np.asarray(published.implied_vol_at(x, grid.t[EXPIRY])) * 100,
                               rtol=1e-12)  # fmt: skip
    explorer.sliders["rho"].value = explorer.sliders["rho"].value + 0.05
    explorer.save_button.click()
    (saved,) = explorer.saved
    assert saved.model == "SVI" and "saved as surface" in explorer.status.value
    stored = store.get(saved.id)
    assert float(stored.surface.model.rho[EXPIRY]) == explorer.parameters["rho"]
    # The saved raw SVI is now drawn for comparison too.
    assert any(t.name.startswith("stored SVI") for t in explorer.figure.data)


def test_surface_models_and_missing_store_are_refused(demo_essvi_fit, fits):
    with pytest.raises(TypeError, match="slice models"):
        SkewExplorer(demo_essvi_fit)
    explorer = SkewExplorer(fits["raw SVI"])
    assert explorer.save_button.disabled
    with pytest.raises(RuntimeError, match="no store"):
        explorer.save()

"""Raw SVI identities and jump-wings round trips; the arbitrage checker on known slices."""

from __future__ import annotations

import numpy as np
import pytest

from volcal import arbitrage
from volcal.models.svi import SVI, from_jump_wings, to_jump_wings

SLICES = SVI(
    a=np.array([0.04, 0.02, 0.1]),
    b=np.array([0.4, 0.2, 0.05]),
    rho=np.array([-0.4, 0.3, -0.9]),
    m=np.array([0.1, -0.05, 0.0]),
    sigma=np.array([0.2, 0.3, 0.05]),
)
T = np.array([0.25, 0.5, 1.0])
# Axel Vogt's slice (Gatheral & Jacquier 2014, Example 3.1): butterfly arbitrage, t = 1.
VOGT = SVI(a=np.array([-0.0410]), b=np.array([0.1331]), rho=np.array([0.3060]),
           m=np.array([0.3586]), sigma=np.array([0.4153]))  # fmt: skip


def test_variance_at_m_is_a_plus_b_sigma():
    w = np.asarray(SLICES.total_variance(np.asarray(SLICES.m)[:, None]))[:, 0]
    np.testing.assert_allclose(w, SLICES.a + SLICES.b * SLICES.sigma, rtol=1e-15)


def test_wings_are_linear_with_slopes_b_rho_plus_minus_one():
    k = np.array([[-1e6, 1e6]] * 3)
    w = np.asarray(SLICES.total_variance(k))
    slope_left = w[:, 0] / 1e6  # w grows like b (1 - rho) |k| on the left
    slope_right = w[:, 1] / 1e6
    np.testing.assert_allclose(slope_left, SLICES.b * (1 - SLICES.rho), rtol=1e-4)
    np.testing.assert_allclose(slope_right, SLICES.b * (1 + SLICES.rho), rtol=1e-4)


def test_jump_wings_round_trip():
    back = from_jump_wings(to_jump_wings(SLICES, T), T)
    for name in ("a", "b", "rho", "m", "sigma"):
        np.testing.assert_allclose(getattr(back, name), getattr(SLICES, name), rtol=1e-12,
                                   atol=1e-14, err_msg=name)  # fmt: skip


def test_jump_wings_atm_variance_and_wings():
    jw = to_jump_wings(SLICES, T)
    w0 = np.asarray(SLICES.total_variance(np.zeros((3, 1))))[:, 0]
    np.testing.assert_allclose(jw.v, w0 / T, rtol=1e-15)
    # p and c are the wing slopes of w divided by sqrt(w_0) (Gatheral & Jacquier 2014, 3.3).
    np.testing.assert_allclose(jw.p, SLICES.b * (1 - SLICES.rho) / np.sqrt(w0), rtol=1e-15)
    np.testing.assert_allclose(jw.c, SLICES.b * (1 + SLICES.rho) / np.sqrt(w0), rtol=1e-15)


def test_closed_form_g_matches_autodiff_g():
    k = np.linspace(-1.5, 1.5, 301)[None, :].repeat(3, axis=0)
    closed = np.asarray(SLICES.durrleman_g(k))
    autodiff = np.asarray(arbitrage.durrleman_g(SLICES, np.ones(3), T, k))
    np.testing.assert_allclose(autodiff, closed, rtol=1e-12, atol=1e-14)


def test_vogt_slice_is_flagged_where_its_density_is_negative():
    report = arbitrage.check(VOGT, [1.0], [1.0])
    assert not report.ok and report.calendar.empty
    flagged = report.butterfly["log_moneyness"]
    # The negative-density region of this slice: g < 0 for k in about (0.64, 1.26), deepest
    # near k = 0.88 (dense evaluation of the closed form, and Gatheral & Jacquier's Fig. 3.1).
    k = np.linspace(0.0, 2.0, 20001)[None, :]
    g = np.asarray(VOGT.durrleman_g(k))[0]
    negative = k[0][g < 0]
    assert negative.min() == pytest.approx(0.644, abs=0.01)
    assert negative.max() == pytest.approx(1.256, abs=0.01)
    assert flagged.min() >= negative.min() - 0.01 and flagged.max() <= negative.max() + 0.01
    worst = report.butterfly.loc[report.butterfly["g"].idxmin()]
    assert worst["log_moneyness"] == pytest.approx(k[0][g.argmin()], abs=0.01)
    assert worst["g"] == pytest.approx(g.min(), rel=1e-3)
    assert "butterfly" in report.summary()


def test_arbitrage_free_slices_pass_and_a_calendar_crossing_is_flagged():
    clean_slices = SVI(a=np.array([0.01, 0.02]), b=np.array([0.1, 0.1]), rho=np.array([-0.3,
                       -0.3]), m=np.zeros(2), sigma=np.array([0.2, 0.2]))  # fmt: skip
    assert arbitrage.check(clean_slices, [1.0, 1.0], [0.5, 1.0]).ok
    crossing = SVI(a=np.array([0.02, 0.01]), b=np.array([0.1, 0.1]), rho=np.array([-0.3, -0.3]),
                   m=np.zeros(2), sigma=np.array([0.2, 0.2]))  # fmt: skip
    report = arbitrage.check(crossing, [1.0, 1.0], [0.5, 1.0])
    assert report.butterfly.empty and not report.calendar.empty
    assert report.calendar["decrease"].max() == pytest.approx(0.01, rel=1e-9)
    assert set(report.calendar["slice"]) == {0}

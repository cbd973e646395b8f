"""eSSVI: the arbitrage-free domain (the lemma behind it, the bijection onto it), recovery,
the SSVI special case, and zero violations on every real snapshot."""

from __future__ import annotations

import numpy as np
import pytest

import volcal as vc
from volcal import arbitrage
from volcal.models import ESSVI, PUBLISHED_MODEL, SSVI
from volcal.models.essvi import (
    WING_LIMIT,
    from_unconstrained,
    initial_guess,
    to_unconstrained,
)

from .test_calibrate import FORWARD, T, synthetic_grid

#: Surfaces drawn in the random tests: fixed shape (SLICES expiries), so one compile.
SLICES = 6
DRAWS = 40


def _h(rho, x):
    """The SSVI slice shape ``(1 + rho x + sqrt(x^2 + 2 rho x + 1))/2`` in numpy."""
    return 0.5 * (1.0 + rho * x + np.sqrt(x * x + 2.0 * rho * x + 1.0))


def test_slice_ratio_lemma():
    # The calendar proof (essvi.py docstring) needs sup_x h_i(x)/h_j(x) to be the larger of
    # the two limits x -> +-inf. Checked on 2e5 points over 20 decades for 2000 pairs.
    rng = np.random.default_rng(7)
    x = np.concatenate([-np.logspace(-10, 10, 100_000)[::-1], [0.0],
                        np.logspace(-10, 10, 100_000)])  # fmt: skip
    for rho_i, rho_j in rng.uniform(-0.999, 0.999, size=(2000, 2)):
        ratio = np.max(_h(rho_i, x) / _h(rho_j, x))
        limit = max((1 + rho_i) / (1 + rho_j), (1 - rho_i) / (1 - rho_j))
        assert ratio <= limit * (1 + 1e-12), (rho_i, rho_j, ratio, limit)


def _random_surfaces():
    rng = np.random.default_rng(11)
    t = np.sort(rng.uniform(1 / 365, 3.0, size=(DRAWS, SLICES)), axis=1)
    u = rng.normal(scale=2.5, size=(DRAWS, 3 * SLICES))
    return t, u


def test_every_unconstrained_vector_is_an_arbitrage_free_surface():
    t, u = _random_surfaces()
    k = np.linspace(-6.0, 6.0, 2401)
    for ti, ui in zip(t, u, strict=True):
        model = from_unconstrained(ui, ti)
        theta, rho, psi = (np.asarray(getattr(model, n)) for n in ("theta", "rho", "psi"))
        left, right = psi * (1 - rho), psi * (1 + rho)
        # The domain's inequalities (module docstring).
        assert np.all(np.diff(theta) > 0) and np.all(np.abs(rho) < 1)
        assert np.all(np.diff(left) > 0) and np.all(np.diff(right) > 0)
        assert np.all(np.maximum(left, right) < WING_LIMIT)
        assert np.all(psi * np.maximum(left, right) <= 4 * theta * (1 + 1e-12))
        assert np.all(np.diff(psi / theta) <= 1e-12 * psi[1:] / theta[1:])
        # And what they are for: the independent checker finds nothing, and total variance
        # (in numpy, from the formula) never falls from one slice to the next on a wide grid.
        forward = np.full(SLICES, 100.0)
        report = arbitrage.check(model, forward, ti)
        assert report.ok, report.summary()
        w = theta[:, None] * _h(rho[:, None], psi[:, None] * k[None, :] / theta[:, None])
        assert np.all(np.diff(w, axis=0) >= -1e-15 * w[1:]), "calendar"


def test_bijection_round_trips():
    t, u = _random_surfaces()
    for ti, ui in zip(t[:10], u[:10], strict=True):
        back = np.asarray(to_unconstrained(from_unconstrained(ui, ti)))
        # logistic/softplus saturate: compare where the map is well conditioned.
        np.testing.assert_allclose(back, ui, rtol=1e-7, atol=1e-7)


def test_total_variance_identities():
    model = ESSVI(theta=np.array([0.01, 0.04]), rho=np.array([-0.4, -0.2]),
                  psi=np.array([0.1, 0.15]))  # fmt: skip
    k = np.array([[0.0, 0.3], [0.0, -0.5]])
    w = np.asarray(model.total_variance(k))
    np.testing.assert_allclose(w[:, 0], model.theta, rtol=1e-15)  # w(0) = theta
    expected = 0.5 * (
        0.01 - 0.4 * 0.1 * 0.3 + np.sqrt((0.1 * 0.3 - 0.01 * 0.4) ** 2 + 0.01**2 * (1 - 0.16))
    )
    np.testing.assert_allclose(w[0, 1], expected, rtol=1e-15)
    # Asymptotic wing slopes psi (1 +- rho) / 2.
    far = np.array([[1e6, -1e6], [1e6, -1e6]])
    slopes = np.asarray(model.total_variance(far)) - np.asarray(model.total_variance(far / 2))
    slopes = slopes / (far / 2) * np.sign(far)
    left, right = model.wing_slopes()
    np.testing.assert_allclose(slopes[:, 0], np.asarray(right) / 2, rtol=1e-9)
    np.testing.assert_allclose(slopes[:, 1], np.asarray(left) / 2, rtol=1e-9)


def test_power_law_ssvi_is_a_special_case():
    ssvi = SSVI(theta=np.array([0.004, 0.045, 0.1]), rho=np.asarray(-0.3), eta=np.asarray(1.1),
                gamma=np.asarray(0.4))  # fmt: skip
    theta = np.asarray(ssvi.theta)
    essvi = ESSVI(theta=theta, rho=np.full(3, -0.3), psi=theta * np.asarray(ssvi.phi()))
    strike = FORWARD[:, None] * np.exp(np.linspace(-1, 1, 9))[None, :]
    np.testing.assert_allclose(essvi.implied_vol(FORWARD, strike, T),
                               ssvi.implied_vol(FORWARD, strike, T), rtol=1e-14)  # fmt: skip


TRUE = ESSVI(theta=np.array([0.004, 0.045, 0.1]), rho=np.array([-0.5, -0.3, -0.25]),
             psi=np.array([0.06, 0.15, 0.2]))  # fmt: skip


def test_recovers_known_surface_from_noiseless_quotes():
    assert np.all(np.isfinite(np.asarray(to_unconstrained(TRUE)))), "TRUE must be interior"
    result = vc.calibrate(ESSVI, synthetic_grid(TRUE))
    assert result.ok and result.arbitrage.ok and result.rmse < 1e-8
    for name in ("theta", "rho", "psi"):
        np.testing.assert_allclose(getattr(result.model, name), getattr(TRUE, name), rtol=1e-6,
                                   err_msg=name)  # fmt: skip
    assert list(result.summary().columns[-3:]) == ["theta", "rho", "psi"]


def test_initial_guess_is_strictly_inside_the_domain():
    grid = synthetic_grid(TRUE)
    guess = initial_guess(grid.t, grid.log_moneyness, grid.total_variance, grid.mask)
    assert np.all(np.isfinite(np.asarray(to_unconstrained(guess))))
    # theta is the nearest quote's total variance: half a strike step (0.05 sqrt(t)) off.
    np.testing.assert_allclose(guess.theta, TRUE.theta, rtol=0.15)


def test_published_model_is_essvi():
    assert PUBLISHED_MODEL is ESSVI


@pytest.mark.parametrize("currency", ["BTC", "ETH"])
def test_real_snapshots_have_no_arbitrage(snapshot_essvi_fits, currency):
    """All five Deribit snapshots: eSSVI converges (possibly at a constraint) with zero
    butterfly and calendar violations from volcal.arbitrage. Fit quality is in
    docs/real_data_fits.md; the bar here is a fit, not a perfect one: RMSE below 4 vol points
    (eSSVI has three parameters per slice; raw SVI's five reach about 0.5)."""
    lines = []
    for (stem, name), result in snapshot_essvi_fits.items():
        if name != currency:
            continue
        lines.append(f"{stem[-16:]} {currency}: RMSE {result.rmse:.3f} vp, inside "
                     f"{result.inside:.1%}; {result.arbitrage.summary()}")  # fmt: skip
        assert result.ok, lines[-1]
        assert result.arbitrage.ok, lines[-1]
        assert result.rmse < 4.0, lines[-1]
    assert len(lines) == 5
    print("\n" + "\n".join(lines))


def test_surface_sensitivities_match_finite_differences():
    import dataclasses

    from volcal.calibrate import parameter_sensitivities

    grid = synthetic_grid(TRUE)
    result = vc.calibrate(ESSVI, grid)
    jacobian = parameter_sensitivities(result)  # (9 = theta x3, rho x3, psi x3, expiry, quote)
    assert jacobian.shape == (9, 3, grid.mask.shape[1])
    bump = 1e-6
    for slice_, quote in [(0, 5), (1, 12), (2, 20)]:
        moved = []
        for sign in (1.0, -1.0):
            mid = grid.mid_iv.copy()
            mid[slice_, quote] += sign * bump
            refit = vc.calibrate(result.model, dataclasses.replace(grid, mid_iv=mid))
            moved.append(np.concatenate([np.asarray(getattr(refit.model, n))
                                         for n in ("theta", "rho", "psi")]))  # fmt: skip
        finite_difference = (moved[0] - moved[1]) / (2 * bump)
        # Central differences of a 1e-10-tolerance solve: ~1e-6 relative agreement, and
        # ~2e-7 of solver noise where the exact derivative is 0 (another slice's parameters).
        np.testing.assert_allclose(jacobian[:, slice_, quote], finite_difference, rtol=1e-5,
                                   atol=5e-7)  # fmt: skip

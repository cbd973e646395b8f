"""Implied vol against the independent mpmath reference set (tests/data/implied_vol_reference.csv).

Bound, per point (issue: foundation): ``|sigma - sigma*| <= max(1e-13 sigma*, u)`` where
``sigma*`` is the exact inverse of the float64 price and ``u`` the vol change from 4-ulp
rounding of price and log-moneyness. Points with ``u > 1e-3 sigma*`` (under three digits of vol
information) are excluded from the bound but must get a finite vol or a non-OK status.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import volcal as vc
from volcal import IVStatus

from .conftest import DATA

RELATIVE_BOUND = 1e-13
INFORMATIVE = 1e-3  # u / sigma* above this: excluded from the bound


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "implied_vol_reference.csv", comment="#")
    frame["note"] = frame["note"].fillna("")
    return frame


@pytest.fixture(scope="module")
def inverted(reference):
    return vc.implied_vol(
        reference["price"].to_numpy(),
        reference["forward"].to_numpy(),
        reference["strike"].to_numpy(),
        reference["t"].to_numpy(),
        reference["is_call"].to_numpy().astype(bool),
    )


def test_reference_set_covers_the_domain(reference):
    assert len(reference) >= 3000
    assert reference["sigma"].min() <= 0.0101 and reference["sigma"].max() >= 4.9
    assert reference["t"].min() <= 1.0 / 8760 + 1e-12 and reference["t"].max() >= 4.9
    z = np.log(reference["strike"] / reference["forward"]) / (
        reference["sigma"] * np.sqrt(reference["t"])
    )
    assert z.min() <= -7.9 and z.max() >= 7.9
    assert set(reference["is_call"]) == {0, 1}


def test_every_informative_point_within_bound(reference, inverted):
    sigma_star = reference["sigma_star"].to_numpy()
    u = reference["u"].to_numpy()
    has_root = np.isfinite(sigma_star)
    informative = has_root & (u <= INFORMATIVE * sigma_star)
    vol = np.asarray(inverted.vol)
    status = np.asarray(inverted.status)

    assert (status[informative] == IVStatus.OK).all(), reference[informative & (status != 0)]
    bound = np.maximum(RELATIVE_BOUND * sigma_star, u)
    error = np.abs(vol - sigma_star)
    failing = informative & ~(error <= bound)
    if failing.any():
        worst = reference[failing].assign(
            vol=vol[failing], error=error[failing], bound=bound[failing]
        )
        pytest.fail(f"{failing.sum()} points exceed max(1e-13 sigma*, u):\n{worst.head(10)}")
    # Most of the set must be informative, or the test would prove little.
    assert informative.mean() > 0.85
    relative = error[informative] / sigma_star[informative]
    print(
        f"\ninformative points: {informative.sum()} of {len(reference)}; "
        f"max relative error {relative.max():.2e}, median {np.median(relative):.2e}"
    )


def test_uninformative_points_get_a_vol_or_a_status(reference, inverted):
    sigma_star = reference["sigma_star"].to_numpy()
    u = reference["u"].to_numpy()
    excluded = ~(np.isfinite(sigma_star) & (u <= INFORMATIVE * sigma_star))
    vol = np.asarray(inverted.vol)
    status = np.asarray(inverted.status)
    ok = status == IVStatus.OK
    assert np.isfinite(vol[excluded & ok]).all()
    assert np.isnan(vol[~ok]).all()
    print(
        f"\nexcluded (u > 1e-3 sigma* or no float64 inverse): {excluded.mean():.1%}; "
        f"of those, {ok[excluded].mean():.1%} still returned a vol"
    )


def test_prices_without_inverse_get_the_right_status(reference, inverted):
    status = np.asarray(inverted.status)
    notes = reference["note"].to_numpy()
    onto_intrinsic = notes == "price rounded onto or below intrinsic"
    assert onto_intrinsic.any()
    assert np.isin(
        status[onto_intrinsic], [IVStatus.NO_VOL_INFORMATION, IVStatus.BELOW_INTRINSIC]
    ).all()
    onto_upper = notes == "price rounded onto the upper bound"
    assert (status[onto_upper] == IVStatus.ABOVE_UPPER_BOUND).all()

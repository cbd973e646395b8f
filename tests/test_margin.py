"""The margin engine: hand-checkable cases, an independent numpy oracle built from the
published scenario table, greeks, Deribit's delta column, and malformed books."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from volcal.margin import (
    BookError,
    from_file,
    historical,
    load_book,
    margin,
    risk_matrix,
    span,
)
from volcal.models import ESSVI
from volcal.surface import VolSurface

SNAPSHOT = pd.Timestamp("2026-01-15T09:30:00Z")
SPOT = 60_000.0
NODES_DAYS = np.array([1.0, 7.0, 30.0, 90.0, 365.0])
#: Oracle agreement (the issue's bar): 1e-10 relative, or 1e-10 absolute per unit notional.
ORACLE = 1e-10


def surface(rho: float, psi_scale: float, vol: float = 0.6) -> VolSurface:
    """eSSVI surface with ATM vol ``vol`` at every node: flat in strike when ``psi_scale`` is
    0, skewed otherwise; forwards at a 5% basis, no discounting."""
    t = NODES_DAYS / 365.0
    theta = vol**2 * t
    model = ESSVI(
        theta=jnp.asarray(theta),
        rho=jnp.full(len(t), rho),
        psi=jnp.asarray(psi_scale * np.sqrt(theta)),
    )
    return VolSurface(
        model=model,
        t=jnp.asarray(t),
        forward=jnp.asarray(SPOT * np.exp(0.05 * t)),
        discount=jnp.ones(len(t)),
        spot=jnp.asarray(SPOT),
        venue="test",
        underlying="BTC",
        snapshot=SNAPSHOT.isoformat(),
        surface_id="test-surface",
    )


FLAT = surface(0.0, 0.0)
SKEWED = surface(-0.5, 0.8)


def book(rows):
    return load_book(rows, asof=SNAPSHOT)


def black(forward, strike, t, vol, is_call):
    """Plain numpy/scipy Black-76, undiscounted (the oracle's own)."""
    s = vol * np.sqrt(t)
    d1 = np.log(forward / strike) / s + 0.5 * s
    call = forward * norm.cdf(d1) - strike * norm.cdf(d1 - s)
    return np.where(is_call, call, call - forward + strike)


def published_risk_matrix(price_range, up, down, short_power, long_power, min_up):
    """The risk matrix written from MARGIN-METHODS.md directly: (move, vol rule, weight)."""
    scenarios = []
    for move in np.linspace(-price_range, price_range, 9):
        for direction in (1, 0, -1):
            scenarios.append((move, direction, 1.0))
    for move in (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0):
        scenarios.append((move, 1, price_range / abs(move)))

    def shocked(vol, days, direction):
        power = short_power if days < 30 else long_power
        factor = (30.0 / max(1.0, days)) ** power
        if direction > 0:
            return max(vol * (1 + up * factor), min_up)
        if direction < 0:
            return max(vol * (1 - down * factor), 0.0)
        return vol

    return scenarios, shocked


OPTIONS = [
    {"instrument": "BTC-16JAN26-58000-P", "quantity": -3},
    {"instrument": "BTC-23JAN26-60000-C", "quantity": 2},
    {"instrument": "BTC-30JAN26-70000-C", "quantity": -5},
    {"instrument": "BTC-27MAR26-50000-P", "quantity": 4},
    {"instrument": "BTC-25DEC26-90000-C", "quantity": -1},
    {"instrument": "BTC_USDC-27MAR26-65000-C", "quantity": 7, "contract_size": 0.01},
]


@pytest.mark.parametrize("dynamics", ["sticky_strike", "sticky_moneyness"])
def test_independent_oracle_on_the_published_risk_matrix(dynamics):
    """Per position and scenario, volcal's P&L equals plain Black-76 at the shocked forward and
    at the vol the published rule assigns, read on the surface at the strike (sticky strike)
    or at the shifted log-moneyness (sticky moneyness)."""
    result = margin(book(OPTIONS), {"BTC": SKEWED}, "riskmatrix", dynamics=dynamics)
    positions = result.positions
    scenarios, shocked = published_risk_matrix(0.16, 0.50, 0.25, 0.30, 0.13, 0.50)
    assert len(scenarios) == len(result.scenarios["BTC"]) == 35
    for row, p in positions.iterrows():
        t = (p["expiry"] - SNAPSHOT).total_seconds() / (365 * 86400)
        forward = float(SKEWED.forward_at(t))
        amount = p["quantity"] * p["contract_size"]
        base_vol = float(SKEWED.implied_vol(p["strike"], t))
        base = black(forward, p["strike"], t, base_vol, p["is_call"])
        for column, (move, direction, _) in enumerate(scenarios):
            f = forward * (1 + move)
            if dynamics == "sticky_strike":
                vol = base_vol
            else:
                vol = float(SKEWED.implied_vol_at(np.log(p["strike"] / f), t))
            price = black(f, p["strike"], t, shocked(vol, t * 365, direction), p["is_call"])
            if p["inverse"]:
                expected = amount * (price / f - base / forward)  # coin
                unit = 1.0
            else:
                expected = amount * (price - base)  # USD
                unit = forward
            got = result.pnl["BTC"].at[row, result.scenarios["BTC"].labels[column]]
            assert abs(got - expected) <= ORACLE * max(abs(expected), abs(amount) * unit), (
                row,
                column,
                got,
                expected,
            )


def test_long_option_never_loses_more_than_its_premium():
    rows = [
        {"instrument": "BTC-23JAN26-50000-P", "quantity": 1},
        {"instrument": "BTC-23JAN26-75000-C", "quantity": 1},
        {"instrument": "BTC_USDC-27MAR26-60000-C", "quantity": 10, "contract_size": 0.1},
    ]
    result = margin(book(rows), {"BTC": SKEWED}, "riskmatrix")
    for row, p in result.positions.iterrows():
        premium = p["value_coin"] if p["inverse"] else p["value_usd"]
        assert premium > 0
        assert result.pnl["BTC"].loc[row].min() >= -premium * (1 + 1e-12), row


def test_short_straddle_binds_at_the_largest_move():
    """Short ATM straddle on a flat surface, moves of -20% ... +20% with vols unchanged: the
    binding scenario is a 20% move, and its loss is the straddle's repricing there
    (scipy Black-76)."""
    grid_file = pd.DataFrame(
        {"price_move": [-0.2, -0.1, 0.0, 0.1, 0.2], "label": ["-20%", "-10%", "0", "+10%", "+20%"]}
    )
    t = (pd.Timestamp("2026-02-27T08:00Z") - SNAPSHOT).total_seconds() / (365 * 86400)
    forward = float(FLAT.forward_at(t))
    strike = 60_000.0
    rows = [
        {
            "underlying": "BTC",
            "expiry": "2026-02-27",
            "strike": strike,
            "right": r,
            "quantity": -1,
            "settlement": "usdc",
            "contract_size": 1,
        }
        for r in ("C", "P")
    ]
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as handle:
        grid_file.to_csv(handle, index=False)
    result = margin(book(rows), {"BTC": FLAT}, from_file(handle.name))
    group = result.groups.iloc[0]
    assert group["binding_scenario"] in ("-20%", "+20%")
    vol = 0.6
    now = black(forward, strike, t, vol, True) + black(forward, strike, t, vol, False)
    losses = {
        m: black(forward * (1 + m), strike, t, vol, True)
        + black(forward * (1 + m), strike, t, vol, False)
        - now
        for m in (-0.2, 0.2)
    }
    assert group["margin"] == pytest.approx(max(losses.values()), rel=1e-10)
    assert result.positions["contribution"].sum() == pytest.approx(group["scan_risk"], rel=1e-12)


def test_offsetting_positions_give_zero_and_splitting_or_reordering_changes_nothing():
    offset = OPTIONS + [{**row, "quantity": -row["quantity"]} for row in OPTIONS]
    result = margin(book(offset), {"BTC": SKEWED}, "riskmatrix")
    for matrix in (result.pnl["BTC"], result.pnl_usd["BTC"]):
        assert np.abs(matrix.sum(axis=0)).max() <= 1e-9
    whole = margin(book(OPTIONS), {"BTC": SKEWED}, "riskmatrix")
    split = [dict(row, quantity=row["quantity"] / 2) for row in OPTIONS] * 2
    reordered = list(reversed(OPTIONS))
    for other in (split, reordered):
        again = margin(book(other), {"BTC": SKEWED}, "riskmatrix")
        pd.testing.assert_frame_equal(again.groups.drop(columns=[]), whole.groups, rtol=1e-12)


def test_dynamics_agree_on_a_flat_surface_and_differ_on_a_skewed_one():
    flat = [
        margin(book(OPTIONS), {"BTC": FLAT}, dynamics=d).pnl["BTC"]
        for d in ("sticky_strike", "sticky_moneyness")
    ]
    pd.testing.assert_frame_equal(flat[0], flat[1], rtol=1e-12, atol=1e-12)
    skewed = [
        margin(book(OPTIONS), {"BTC": SKEWED}, dynamics=d).pnl["BTC"]
        for d in ("sticky_strike", "sticky_moneyness")
    ]
    assert np.abs(skewed[0].to_numpy() - skewed[1].to_numpy()).max() > 1e-3


def test_options_hours_from_expiry_stay_finite():
    rows = [
        {
            "underlying": "BTC",
            "expiry": "2026-01-15T11:30:00Z",
            "strike": k,
            "right": r,
            "quantity": q,
        }
        for k, r, q in ((60_000, "C", -2), (59_000, "P", 1), (70_000, "C", 3))
    ]
    result = margin(book(rows), {"BTC": SKEWED}, "riskmatrix")
    assert np.isfinite(result.pnl["BTC"].to_numpy()).all()
    assert np.isfinite(result.positions[["delta", "gamma", "vega", "theta"]].to_numpy()).all()
    assert np.isfinite(result.groups["margin"]).all()


def test_futures_hand_values_and_minimum_delta():
    """An inverse perpetual short of 10,000 USD loses 10,000 (1/S - 1/(1.16 S)) coin at +16%;
    its delta is -10,000/S coin, and the minimum delta requirement 2% of it."""
    rows = [{"instrument": "BTC-PERPETUAL", "quantity": -1000}]
    result = margin(book(rows), {"BTC": FLAT}, "riskmatrix")
    group = result.groups.iloc[0]
    assert group["binding_scenario"] == "+16% vol up"
    assert group["scan_risk"] == pytest.approx(10_000 * (1 / SPOT - 1 / (1.16 * SPOT)), rel=1e-12)
    assert result.positions["delta"].iloc[0] == pytest.approx(-10_000 / SPOT, rel=1e-12)
    assert group["add_on"] == pytest.approx(0.02 * 10_000 / SPOT, rel=1e-12)
    linear = margin(
        book(
            [
                {
                    "underlying": "BTC",
                    "kind": "future",
                    "expiry": "2026-03-27",
                    "quantity": 2,
                    "settlement": "usdc",
                    "contract_size": 1,
                }
            ]
        ),
        {"BTC": FLAT},
        "riskmatrix",
    )
    t = (pd.Timestamp("2026-03-27T08:00Z") - SNAPSHOT).total_seconds() / (365 * 86400)
    forward = float(FLAT.forward_at(t))
    assert linear.groups["scan_risk"].iloc[0] == pytest.approx(
        2 * 0.66 * forward * 0.16 / 0.66, rel=1e-12
    )


def test_greeks_against_finite_differences_of_the_engine():
    """Position delta and gamma (USD value, inverse and linear) against central differences of
    the engine's own USD repricing under a user grid of +-h moves (sticky moneyness); vega
    against +-h vol shifts."""
    h = 1e-4
    result = margin(book(OPTIONS), {"BTC": SKEWED}, "riskmatrix")
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as handle:
        pd.DataFrame(
            {"price_move": [-h, 0.0, h, 0.0, 0.0], "vol_shift": [0.0, 0.0, 0.0, -h, h]}
        ).to_csv(handle, index=False)
    bumped = margin(book(OPTIONS), {"BTC": SKEWED}, from_file(handle.name))
    usd = bumped.pnl_usd["BTC"].to_numpy()
    delta = (usd[:, 2] - usd[:, 0]) / (2 * h * SPOT)
    gamma = (usd[:, 2] + usd[:, 0]) / (h * SPOT) ** 2
    vega = (usd[:, 4] - usd[:, 3]) / (2 * h) * 0.01
    # Central differences err by O(h^2) relative: 2e-6 on the one-day put's delta.
    np.testing.assert_allclose(result.positions["delta"], delta, rtol=1e-5)
    np.testing.assert_allclose(result.positions["gamma"], gamma, rtol=1e-4)
    np.testing.assert_allclose(result.positions["vega"], vega, rtol=1e-6)


def test_historical_scenario_between_two_surfaces():
    before, after = FLAT, surface(0.0, 0.0, vol=0.7)
    scenario = historical(before, after)
    assert scenario.price_move[0] == 0.0
    rows = [{"instrument": "BTC-27MAR26-60000-C", "quantity": 1, "settlement": "coin"}]
    result = margin(book(rows), {"BTC": FLAT}, scenario)
    t = (pd.Timestamp("2026-03-27T08:00Z") - SNAPSHOT).total_seconds() / (365 * 86400)
    forward = float(FLAT.forward_at(t))
    expected = (
        black(forward, 60_000.0, t, 0.7, True) - black(forward, 60_000.0, t, 0.6, True)
    ) / forward
    assert result.pnl["BTC"].iloc[0, 0] == pytest.approx(expected, rel=1e-10)


def test_span_short_option_minimum():
    rows = [{"instrument": "BTC-30JAN26-120000-C", "quantity": -50}]
    result = margin(book(rows), {"BTC": FLAT}, span(0.05, 0.02))
    group = result.groups.iloc[0]
    assert group["add_on_name"] == "short option minimum"
    assert group["add_on"] == pytest.approx(0.01 * 50, rel=1e-15)
    assert group["margin"] == max(group["scan_risk"], group["add_on"])
    assert len(result.scenarios["BTC"]) == 16


def test_result_records_surfaces_and_scenarios():
    result = margin(book(OPTIONS), {"BTC": SKEWED}, "riskmatrix")
    assert result.surface_ids == {"BTC": "test-surface"}
    assert result.parameters["BTC"]["price_range"] == 0.16
    assert "Deribit" in result.parameters["BTC"]["source"]
    assert "binding scenario" in result.summary()
    portfolio = result.portfolio_pnl["BTC"].loc[("default", "BTC")]
    np.testing.assert_allclose(portfolio, result.pnl["BTC"][result.positions["inverse"]].sum(),
                               rtol=1e-12)  # fmt: skip
    coin = result.groups[result.groups["settlement"] == "BTC"].iloc[0]
    inverse = result.positions[result.positions["inverse"]]
    for greek in ("gamma", "vega", "theta"):
        assert coin[greek] == pytest.approx(inverse[greek].sum(), rel=1e-12)
    assert coin["net_delta"] == pytest.approx(inverse["delta"].sum(), rel=1e-12)
    with pytest.raises(ValueError, match="no published risk-matrix parameters for 'SOL'"):
        risk_matrix("SOL")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"instrument": "BTC-32JAN26-60000-C", "quantity": 1}, "bad expiry date"),
        ({"instrument": "BTC-X-60000-C", "quantity": 1}, "unknown instrument"),
        (
            {"instrument": "BTC-23JAN26-60000-C", "quantity": "ten"},
            "quantity 'ten' is not a number",
        ),
        ({"instrument": "BTC-23JAN26-60000-C"}, "missing quantity"),
        (
            {
                "underlying": "BTC",
                "expiry": "2026-01-23",
                "strike": -5,
                "right": "C",
                "quantity": 1,
            },
            "non-positive strike",
        ),
        (
            {"underlying": "BTC", "expiry": "2026-01-23", "strike": 5, "right": "X", "quantity": 1},
            "right 'X' is not C or P",
        ),
        ({"instrument": "BTC-14JAN26-60000-C", "quantity": 1}, "expired option"),
        ({"instrument": "SOL_USDC-23JAN26-100-C", "quantity": 1}, "no contract_size given"),
        (
            {"instrument": "BTC-23JAN26-60000-C", "quantity": 1, "contract_size": 0},
            "non-positive contract size",
        ),
    ],
)
def test_malformed_rows_are_named(row, message):
    good = {"instrument": "BTC-23JAN26-60000-C", "quantity": 1}
    with pytest.raises(BookError, match="row 2: .*" + message.replace("(", r"\(")) as caught:
        book([good, row])
    assert [r for r, _ in caught.value.problems] == [2]


def test_every_bad_row_is_reported_and_unknown_underlyings_named(tmp_path):
    path = tmp_path / "book.csv"
    path.write_text(
        "instrument,quantity\nBTC-23JAN26-60000-C,1\nBTC-23JAN26-60000-C,x\n"
        "NOPE,1\nETH-23JAN26-3000-C,2\n"
    )
    with pytest.raises(BookError) as caught:
        load_book(path, asof=SNAPSHOT)
    assert [r for r, _ in caught.value.problems] == [2, 3]
    path.write_text("instrument,quantity\nBTC-23JAN26-60000-C,1\nETH-23JAN26-3000-C,2\n")
    with pytest.raises(
        BookError, match="row 2: underlying ETH of ETH-23JAN26-3000-C has no surface"
    ):
        margin(load_book(path), {"BTC": FLAT})
    json_path = tmp_path / "book.json"
    json_path.write_text(
        json.dumps(
            {"positions": [{"instrument": "BTC-23JAN26-60000-C", "quantity": 1, "account": "a"}]}
        )
    )
    assert load_book(json_path).accounts == ["a"]


def test_black_forward_delta_reproduces_deribits_delta_column(snapshot_files):
    """Deribit's ``delta`` column is the Black-76 forward delta at its mark IV and the
    expiry's underlying (forward) price, not the premium-adjusted coin delta: on the latest
    snapshot (BTC and ETH) volcal's delta has median |error| 2.3e-4 and 90% within 2.4e-3 (the
    column's 5-decimal rounding is not reached: the columns are not captured at one instant,
    and the largest errors sit on short, near-the-money options, gamma times a forward move),
    while the premium-adjusted delta misses by about 0.05. Bars: median 5e-4, 90% 5e-3."""
    from volcal.black import black_delta

    frame = pd.read_csv(snapshot_files[-1]).dropna(subset=["delta", "implied_volatility"])
    snapshot = pd.to_datetime(frame["timestamp"], utc=True)
    t = (pd.to_datetime(frame["expiry_datetime"], utc=True) - snapshot).dt.total_seconds()
    t = (t / (365 * 86400)).to_numpy()
    forward, strike = frame["underlying"].to_numpy(), frame["strike"].to_numpy()
    is_call = frame["option_type"].str.lower().str.startswith("c").to_numpy()
    vol = frame["implied_volatility"].to_numpy()
    delta = np.asarray(black_delta(forward, strike, t, vol, is_call))
    error = np.abs(delta - frame["delta"].to_numpy())
    assert np.median(error) <= 5e-4 and np.quantile(error, 0.9) <= 5e-3
    premium = np.asarray(black(forward, strike, t, vol, is_call)) / forward
    assert np.median(np.abs(delta - premium - frame["delta"].to_numpy())) > 1e-2


def test_margin_command_on_a_stored_real_surface(tmp_path, snapshot_essvi_fits):
    """``volcal margin`` on examples/book.csv against the eSSVI surfaces stored from the
    latest Deribit snapshot: summary, JSON report, and clear refusals (stale surface, a row
    whose underlying has no surface)."""
    from pathlib import Path

    from typer.testing import CliRunner

    from volcal.cli import app
    from volcal.store import Store

    stem = max(stem for stem, _ in snapshot_essvi_fits)
    store = tmp_path / "store.sqlite"
    with Store(store) as opened:
        for currency in ("BTC", "ETH"):
            assert opened.save(snapshot_essvi_fits[stem, currency]).accepted
    example = Path(__file__).resolve().parents[1] / "examples" / "book.csv"
    runner = CliRunner()
    asof = "2026-08-22T16:00:00Z"
    report = tmp_path / "report.json"
    result = runner.invoke(
        app,
        [
            "margin",
            "--book",
            str(example),
            "--asof",
            asof,
            "--store",
            str(store),
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "account desk-a: margin" in text and "binding scenario" in text
    payload = json.loads(report.read_text())
    assert set(payload["accounts_usd"]) == {"desk-a", "desk-b"}
    assert all(v > 0 for v in payload["accounts_usd"].values())
    assert set(payload["surface_ids"]) == {"BTC", "ETH"}
    stale = runner.invoke(
        app,
        ["margin", "--book", str(example), "--asof", "2026-08-24T16:00:00Z", "--store", str(store)],
    )
    assert stale.exit_code == 2 and "older than the allowed" in " ".join(stale.output.split())
    odd = tmp_path / "odd.csv"
    odd.write_text("instrument,quantity\nBTC-25SEP26-80000-C,1\nSOL_USDC-25SEP26-200-C,1\n")
    missing = runner.invoke(
        app, ["margin", "--book", str(odd), "--asof", asof, "--store", str(store)]
    )
    assert missing.exit_code == 2 and "row 2" in missing.output


FIELDS = {
    "instrument": [
        "BTC-23JAN26-60000-C",
        "BTC-16JAN26-1d5-P",
        "BTC-PERPETUAL",
        "BTC-27MAR26",
        "BTC-32JAN26-1-C",
        "XYZ",
        "",
        "BTC-14JAN26-60000-C",
        "ETH_USDC-23JAN26-3000-C",
    ],
    "quantity": ["1", "-2.5", "0", "x", "", "nan", "1e3"],
    "contract_size": ["", "1", "0", "-1", "0.01", "ten"],
}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries({k: st.sampled_from(v) for k, v in FIELDS.items()}),
        min_size=1,
        max_size=8,
    )
)
def test_book_loading_accounts_for_every_row(rows):
    """Any mix of good and bad rows: either every row becomes a position, in order, or a
    BookError names exactly the rows that are bad (each row judged on its own); never another
    exception."""
    bad = set()
    for number, row in enumerate(rows, start=1):
        try:
            load_book([row], asof=SNAPSHOT)
        except BookError:
            bad.add(number)
    try:
        loaded = load_book(rows, asof=SNAPSHOT)
    except BookError as error:
        assert {r for r, _ in error.problems} == bad and bad
    else:
        assert not bad and len(loaded) == len(rows)
        assert list(loaded.positions["instrument"].str.startswith(("BTC", "ETH"))) == [True] * len(
            rows
        )


def test_calibrations_in_memory_are_a_market(demo_essvi_fit):
    """A Calibration passed as the market is priced on its VolSurface."""
    from_fit = margin(book(OPTIONS), {"BTC": demo_essvi_fit}, "riskmatrix")
    from_surface = margin(book(OPTIONS), {"BTC": VolSurface.from_calibration(demo_essvi_fit)},
                          "riskmatrix")  # fmt: skip
    pd.testing.assert_frame_equal(from_fit.groups, from_surface.groups)

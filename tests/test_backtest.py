"""Margin calibration, backtests and stress tests on a small real history: four daily BTC
surfaces backfilled from the shared Deribit history. Stress losses are checked against an
independent repricing written here (scipy's normal CDF, the published vol-shock formula);
settlement at expiry against intrinsic value; the backtest's bookkeeping against identities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from volcal.backfill import run_backfill
from volcal.cli import app
from volcal.margin import Market, load_book
from volcal.margin.backtest import build_books, realised_pnl, run_backtest
from volcal.margin.engine import margin
from volcal.margin.history import daily_observations
from volcal.margin.risk_parameters import RiskParameters
from volcal.margin.stress import (
    StressScenario,
    historical_scenarios,
    hypothetical_scenarios,
    stress_test,
)
from volcal.store import Store

START, END = "2026-04-06", "2026-04-09T23:59Z"
#: Repricing by hand and by the engine agree to this, relative to the book's notional.
REPRICE = 1e-9


@pytest.fixture(scope="module")
def store_path(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("history") / "volcal.sqlite"
    summary = run_backfill(shared_data / "deribit_history", store=path, underlyings=["BTC"],
                           daily=True, start=START, end=END, workers=0)  # fmt: skip
    assert summary.counts.loc[("BTC", "ESSVI"), "accepted"] == 4
    return path


@pytest.fixture(scope="module")
def observations(store_path):
    with Store(store_path) as store:
        frame = daily_observations(store, "deribit", "BTC")
        surfaces = {day: store.get(row["surface_id"]).surface for day, row in frame.iterrows()}
    return frame, surfaces


def black(forward, strike, t, vol, call, discount):
    """Black-76, written out: D (F N(d1) - K N(d2)) for calls, by parity for puts."""
    s = vol * np.sqrt(t)
    d1 = np.log(forward / strike) / s + s / 2
    value = forward * norm.cdf(d1) - strike * norm.cdf(d1 - s)
    return discount * np.where(call, value, value - forward + strike)


def shocked_vols(scenario, vol, days):
    if scenario.vol_multiplier is not None:
        return vol * scenario.vol_multiplier
    power = np.where(np.maximum(days, 1.0) < 30.0, scenario.short_power, scenario.long_power)
    return vol * (1.0 + scenario.vol_up * (30.0 / np.maximum(days, 1.0)) ** power)


def test_stress_losses_equal_an_independent_repricing(observations):
    frame, surfaces = observations
    day = frame.index[0]
    surface, asof = surfaces[day], frame.loc[day, "snapshot"]
    rows = build_books(surface, "BTC", asof).query("account == 'random mix'")
    rows = pd.concat([rows, pd.DataFrame([("random mix", "BTC-PERPETUAL", -2000.0)],
                                         columns=rows.columns)])  # fmt: skip
    book = load_book(rows, asof=asof)
    # Every named hypothetical scenario, and a historical-style one (relative vol-up shock).
    scenarios = [
        *hypothetical_scenarios(),
        StressScenario("fall", -0.3, vol_up=0.5, short_power=0.4, long_power=0.2),
    ]
    table = stress_test(book, Market({"BTC": surface}), scenarios)
    p = book.positions
    options = p["kind"] == "option"
    t = ((p["expiry"] - asof) / pd.Timedelta(days=365)).to_numpy()
    strike, call = p["strike"].to_numpy(dtype=float), p["is_call"].to_numpy(dtype=bool)
    amount = (p["quantity"] * p["contract_size"]).to_numpy()
    spot = float(surface.spot)
    for scenario in scenarios:
        loss = 0.0
        for i in np.flatnonzero(options):
            forward = float(surface.forward_at(t[i]))
            moved = forward * (1 + scenario.price_move)
            discount = float(surface.discount_at(t[i]))
            before = black(forward, strike[i], t[i],
                           float(surface.implied_vol_at(np.log(strike[i] / forward), t[i])),
                           call[i], discount)  # fmt: skip
            # Sticky moneyness: the smile moves with the forward.
            vol = float(surface.implied_vol_at(np.log(strike[i] / moved), t[i]))
            after = black(moved, strike[i], t[i], shocked_vols(scenario, vol, t[i] * 365),
                          call[i], discount)  # fmt: skip
            loss -= amount[i] * (after / moved - before / forward)  # coin premiums
        perpetual = np.flatnonzero(~options)[0]
        loss -= amount[perpetual] * (1 / spot - 1 / (spot * (1 + scenario.price_move)))
        (row,) = table[table["scenario"] == scenario.name].itertuples()
        assert row.loss == pytest.approx(loss, rel=REPRICE, abs=REPRICE * np.abs(amount).sum())
        held = margin(book, {"BTC": surface}, asof=asof).groups["margin"].iloc[0]
        assert row.margin == pytest.approx(held, rel=1e-12)
        assert row.covered == (row.loss <= row.margin)


def test_historical_scenarios_pick_the_largest_moves_within_segments():
    days = pd.to_datetime(["2020-03-10", "2020-03-11", "2020-03-12", "2020-03-13",
                           "2021-01-05", "2021-01-06"], utc=True)  # fmt: skip
    returns = pd.Series([0.01, -0.05, -0.40, 0.10, 0.30, 0.02], index=days)
    parameters = RiskParameters("BTC", days[-1], 0.99, 1, "historical", price_range=0.10,
                                vol_range_up=0.20, vol_range_down=0.1, short_term_vega_power=0.3,
                                long_term_vega_power=0.1)  # fmt: skip
    found = historical_scenarios(returns, parameters, horizons=(1, 2))
    scenarios = {s.name.split(" (")[0]: s for s in found}
    fall = scenarios["largest 1-day fall"]
    assert fall.price_move == pytest.approx(np.expm1(-0.40), rel=1e-15)
    assert "2020-03-12" in fall.name
    # Vol shock scaled by severity |move| / price range.
    assert fall.vol_up == pytest.approx(0.20 * abs(np.expm1(-0.40)) / 0.10, rel=1e-15)
    # Two-day moves never span the gap from 2020-03-13 to 2021-01-05.
    rise = scenarios["largest 2-day rise"]
    assert rise.price_move == pytest.approx(np.expm1(0.32), rel=1e-15)
    assert "2021-01-05 to 2021-01-06" in rise.name


def test_an_option_expiring_inside_the_period_settles_at_intrinsic(observations):
    frame, surfaces = observations
    day, later_day = frame.index[0], frame.index[1]
    now_surface, later_surface = surfaces[day], surfaces[later_day]
    asof, later_time = frame.loc[day, "snapshot"], frame.loc[later_day, "snapshot"]
    later_spot = frame.loc[later_day, "spot"]
    # The first listed expiry (08:00 UTC the next day) expires between the two observations.
    expiry = pd.Timestamp(now_surface.expiries[0])
    assert asof < expiry <= later_time
    label = f"{expiry.day}{expiry:%b%y}".upper()
    strike = round(later_spot / 1000) * 1000 - 1000
    rows = pd.DataFrame([("x", f"BTC-{label}-{int(strike)}-C", 2.0),
                         ("x", f"BTC-{label}-{int(strike)}-P", -3.0)],
                        columns=["account", "instrument", "quantity"])  # fmt: skip
    book = load_book(rows, asof=asof)
    now = margin(book, {"BTC": now_surface}, asof=asof)
    pnl = realised_pnl(book, now, later_surface, "BTC", later_time, later_spot)
    values = now.positions["value_coin"].to_numpy()
    expected = [2.0 * max(later_spot - strike, 0) / later_spot - values[0],
                -3.0 * max(strike - later_spot, 0) / later_spot - values[1]]  # fmt: skip
    np.testing.assert_allclose(pnl.to_numpy(), expected, rtol=1e-13)


def test_backtest_bookkeeping_and_report(store_path, tmp_path):
    with Store(store_path) as store:
        result = run_backtest(store, underlyings=["BTC"])
    frame = result.observations
    assert set(frame["parameter_set"]) == {"deribit", "span", "volcal"}
    assert frame.groupby(["day", "parameter_set"]).size().eq(7).all()
    assert len(frame["day"].unique()) == 3  # four days, three one-day periods
    assert (frame["breach"] == (frame["loss"] > frame["margin"])).all()
    np.testing.assert_allclose(frame["margin_usd"], frame["margin"] * frame["spot"])
    # The same instruments with opposite signs: long and short strangle losses cancel.
    one = frame[frame["parameter_set"] == "deribit"].set_index(["day", "book"])["loss"]
    days = one.index.get_level_values(0).unique()
    for day in days:
        assert one[(day, "long strangle")] == pytest.approx(-one[(day, "short strangle")],
                                                            rel=1e-12)  # fmt: skip
    # Margins of the same book do not depend on the parameter set's name but on its numbers;
    # the realised loss is the same whatever the set.
    losses = frame.pivot_table(index=["day", "book"], columns="parameter_set", values="loss")
    np.testing.assert_allclose(losses["deribit"], losses["volcal"], rtol=1e-14)
    summary = result.summary()
    assert len(summary) == 3 * 7 and summary["n"].eq(3).all()
    from volcal.margin.backtest import parameter_procyclicality

    path = parameter_procyclicality(result.parameters)
    assert set(path["parameter"]) == {"price_range", "vol_range_up", "vol_range_down"}
    assert (path["peak_to_trough"] >= 1).all()
    assert {"kupiec_p_value", "christoffersen_p_value", "zone", "average_margin_usd",
            "largest_1d_increase", "peak_to_trough"} <= set(summary.columns)  # fmt: skip
    from volcal.margin.backtest_report import html_report

    page = html_report(result)
    assert "<script src=" not in page.replace("<script src=\"data:", "") and "Plotly" in page
    assert "margin against the realised" in page and "Breach rate per book" in page


def test_cli_calibrate_margin_stores_and_margin_then_uses_it(store_path, tmp_path, observations):
    runner = CliRunner()
    calibrated = runner.invoke(app, ["calibrate-margin", "--underlying", "BTC", "--store",
                                     str(store_path)])  # fmt: skip
    assert calibrated.exit_code == 0, calibrated.output
    with Store(store_path) as store:
        record = store.margin_parameters("BTC")
    assert record is not None and 0 < record["parameters"]["price_range"] < 1
    # Too little vol history in four days: the published vol parameters, said so.
    assert "published" in record["parameters"]["audit"]["vol_range_up"].lower()
    frame, _ = observations
    asof = frame["snapshot"].iloc[-1].isoformat()
    book = tmp_path / "book.csv"
    book.write_text("account,instrument,quantity\nx,BTC-PERPETUAL,-1000\n")
    used = runner.invoke(app, ["margin", "--book", str(book), "--asof", asof, "--store",
                               str(store_path)])  # fmt: skip
    assert used.exit_code == 0, used.output
    assert "calibrated risk-matrix parameters" in used.output
    published = runner.invoke(app, ["margin", "--book", str(book), "--asof", asof, "--store",
                                    str(store_path), "--parameters", "published"])  # fmt: skip
    assert "published risk-matrix parameters" in published.output
    stressed = runner.invoke(app, ["stress", "--book", str(book), "--asof", asof, "--store",
                                   str(store_path)])  # fmt: skip
    assert stressed.exit_code == 0, stressed.output
    assert "largest 1-day fall (2020-03-12" in stressed.output
    assert "spot -50%, vols x2" in stressed.output


def test_parameters_known_on_a_day_ignore_everything_after_it():
    """No look-ahead: the parameters of day d are the same whether the history stops at d or
    goes on (with different data) after it."""
    from volcal.margin.history import DEFAULT_CALIBRATION, MarginCalibration
    from volcal.margin.procyclicality import MarginBuffer
    from volcal.margin.risk_parameters import simulate_garch_t

    returns = simulate_garch_t(900, omega=2e-6, alpha=0.08, beta=0.9, nu=4.0, seed=3)
    days = returns.index
    rng = np.random.default_rng(5)
    vols = pd.DataFrame(0.5 * np.exp(np.cumsum(rng.normal(0, 0.02, (len(days), 4)), axis=0)),
                        index=days, columns=[7.0, 30.0, 90.0, 180.0])  # fmt: skip
    settings = {k: v for k, v in DEFAULT_CALIBRATION.items() if k != "stress_floor"}
    settings["buffer"] = MarginBuffer(rate=settings["buffer"])
    settings["floor_window"] = 500
    day = days[700]
    altered = returns.copy()
    altered[days > day] *= 3.0
    altered_vols = vols.copy()
    altered_vols[vols.index > day] *= 1.5
    full = MarginCalibration("BTC", returns, vols, options=settings).on(day)
    other = MarginCalibration("BTC", altered, altered_vols, options=settings).on(day)
    cut = MarginCalibration("BTC", returns[days <= day], vols[vols.index <= day],
                            options=settings).on(day)  # fmt: skip
    for name, value in full.overrides().items():
        assert getattr(other, name) == pytest.approx(value, rel=1e-12), name
        assert getattr(cut, name) == pytest.approx(value, rel=1e-12), name


def test_margin_periods_do_not_overlap_and_skip_missing_days():
    from volcal.margin.backtest import _period_days

    days = pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-05",
                           "2026-01-06", "2026-01-07", "2026-01-08"], utc=True)  # fmt: skip
    one = _period_days(pd.DatetimeIndex(days), 1)
    assert [(a.day, b.day) for a, b in one] == [(1, 2), (2, 3), (5, 6), (6, 7), (7, 8)]
    two = _period_days(pd.DatetimeIndex(days), 2)
    # Each period starts where the last ended; the day-4 gap lies inside 3 -> 5.
    assert [(a.day, b.day) for a, b in two] == [(1, 3), (3, 5), (5, 7)]

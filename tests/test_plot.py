"""volcal.plot, tested through the figures' data (``to_dict()``): model curves equal the
VolSurface at their x points, excluded quotes name their reason, axis titles carry units."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from scipy.stats import norm

from volcal import plot
from volcal.surface import VolSurface


def traces(figure, name):
    return [t for t in figure.to_dict()["data"] if t.get("name") == name]


def values(data):
    """A trace's array as numpy: plotly 7's ``to_dict`` writes numeric arrays as base64
    (``{"dtype", "bdata", "shape"}``)."""
    if isinstance(data, dict) and "bdata" in data:
        array = np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
        if "shape" in data:
            array = array.reshape([int(n) for n in str(data["shape"]).split(",")])
        return array
    return np.asarray(data)


def test_smile_curve_quotes_excluded_and_axes(demo_essvi_fit):
    grid = demo_essvi_fit.grid
    index = 4
    figure = plot.smile(demo_essvi_fit, index)
    surface = VolSurface.from_calibration(demo_essvi_fit)
    (curve,) = traces(figure, "ESSVI")
    x = values(curve["x"])
    np.testing.assert_allclose(
        values(curve["y"]), np.asarray(surface.implied_vol_at(x, grid.t[index])) * 100.0, rtol=1e-14
    )
    (mid,) = traces(figure, "mid (bid/ask bars)")
    mask = grid.mask[index]
    np.testing.assert_allclose(values(mid["y"]), grid.mid_iv[index][mask] * 100.0, rtol=1e-14)
    np.testing.assert_allclose(
        values(mid["y"]) + values(mid["error_y"]["array"]),
        grid.ask_iv[index][mask] * 100.0,
        rtol=1e-12,
    )
    layout = figure.to_dict()["layout"]
    assert layout["xaxis"]["title"]["text"] == "log-moneyness ln(K/F)"
    assert "vol points" in layout["yaxis"]["title"]["text"]
    assert any("F = " in a["text"] for a in layout["annotations"])


def test_excluded_quotes_hover_names_their_reason(demo_essvi_fit):
    grid = demo_essvi_fit.grid
    excluded = grid.excluded
    assert len(excluded) and (excluded["reason"] != "kept").all()
    expiry = excluded["expiry"].iloc[0]
    figure = plot.smile(grid, expiry)
    (grey,) = traces(figure, "excluded")
    reasons = set(excluded[excluded["expiry"] == expiry]["reason"])
    assert grey["hovertext"] and all(any(r in text for r in reasons) for text in grey["hovertext"])
    assert grey["marker"]["color"] == plot.EXCLUDED_COLOUR


def test_grid_term_structure_skew_surface_and_residuals(demo_essvi_fit):
    grid = demo_essvi_fit.grid
    figure = plot.smile_grid(demo_essvi_fit)
    assert len(traces(figure, "ESSVI")) == len(grid.t)
    surface = VolSurface.from_calibration(demo_essvi_fit)
    days = np.array([7.0, 30.0, 90.0])
    (atm,) = plot.term_structure([surface], days).to_dict()["data"]
    np.testing.assert_allclose(
        values(atm["y"]), np.asarray(surface.atm_vol(days / 365)) * 100, rtol=1e-14
    )
    rr, _ = plot.skew({"eSSVI": surface}, days).to_dict()["data"]
    np.testing.assert_allclose(
        values(rr["y"]), np.asarray(surface.risk_reversal(days / 365)) * 100, rtol=1e-12
    )
    assert plot.surface_3d(surface).to_dict()["layout"]["scene"]["zaxis"]["title"]["text"]
    # Delta axis: at each point, the Black forward call delta of the plotted vol at the
    # point's strike (hover data) is the x value (scipy's normal CDF, independent of the
    # surface's bisection).
    (delta,) = plot.surface_3d(surface, axis="delta", points=9).to_dict()["data"]
    x, y = values(delta["x"]), values(delta["y"])
    k, vol = values(delta["customdata"]), values(delta["z"]) / 100
    s = vol * np.sqrt(y[:, None] / 365)
    np.testing.assert_allclose(norm.cdf(-k / s + s / 2), np.broadcast_to(x, k.shape), atol=1e-9)
    assert np.all(np.diff(k, axis=1) < 0)  # higher call delta, lower strike
    with pytest.raises(ValueError, match="axis"):
        plot.surface_3d(surface, axis="strike")
    heat = plot.residuals(demo_essvi_fit).to_dict()["data"][0]
    assert np.nanmax(np.abs(values(heat["z"]).astype(float))) <= 100 * np.nanmax(
        np.abs(demo_essvi_fit.residuals)
    )
    with pytest.raises(ValueError, match="no expiry"):
        plot.smile(grid, "2030-01-01")


def test_margin_figures():
    import pandas as pd

    from volcal.margin import load_book, margin

    from .test_margin import OPTIONS, SKEWED, SNAPSHOT

    result = margin(load_book(OPTIONS, asof=SNAPSHOT), {"BTC": SKEWED})
    figure = plot.margin_pnl(result, "BTC")
    bars = figure.to_dict()["data"]
    binding = result.groups.set_index("settlement")["binding_scenario"]
    for bar in bars:
        settlement = bar["name"].split("(")[1].rstrip(")")
        red = [
            x for x, c in zip(list(bar["x"]), bar["marker"]["color"], strict=True) if c == "crimson"
        ]
        assert red == [binding[settlement]]
    contributions = plot.margin_contributions(result).to_dict()["data"][0]
    assert values(contributions["x"]).max() == pytest.approx(result.positions["contribution"].max())
    assert isinstance(result.portfolio_pnl["BTC"], pd.DataFrame)


def test_arbitrage_and_parameter_history(tmp_path, demo_essvi_fit):
    import dataclasses

    import pandas as pd

    from volcal.store import Store

    figure = plot.arbitrage(demo_essvi_fit)
    data = figure.to_dict()["data"]
    assert len(data) == len(demo_essvi_fit.grid.t) + 1
    assert min(values(d["y"]).min() for d in data[:-1]) >= 0.0  # eSSVI: no butterfly
    assert "dimensionless" in figure.to_dict()["layout"]["yaxis"]["title"]["text"]
    with Store(tmp_path / "s.sqlite") as store:
        snapshot = demo_essvi_fit.grid.snapshot
        for days, limits in ((0, None), (1, {"max_rmse_vol_points": 0.01})):
            grid = dataclasses.replace(
                demo_essvi_fit.grid, snapshot=snapshot + pd.Timedelta(days=days)
            )
            store.save(dataclasses.replace(demo_essvi_fit, grid=grid), gate=limits)
        history = plot.parameter_history(store, "demo", "BTC", "ESSVI").to_dict()["data"]
    names = {d["name"] for d in history}
    assert {"theta (accepted)", "theta (rejected)", "psi (accepted)"} <= names
    rejected = next(d for d in history if d["name"] == "theta (rejected)")
    assert rejected["marker"]["symbol"] == "x" and len(rejected["hovertext"]) == 1


def test_html_report_is_self_contained(tmp_path, demo_essvi_fit):
    """``volcal report``: one HTML file with plotly's JavaScript embedded (no external
    scripts), the summary, per-expiry table, cleaning counts and, with a book, the margin."""
    import re

    from typer.testing import CliRunner

    from volcal.cli import app
    from volcal.store import Store

    store = tmp_path / "s.sqlite"
    with Store(store) as opened:
        stored = opened.save(demo_essvi_fit)
    book = tmp_path / "book.csv"
    book.write_text("instrument,quantity\nBTC-23JAN26-60000-C,-3\nBTC-27MAR26-50000-P,2\n")
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--id",
            stored.id,
            "--store",
            str(store),
            "--book",
            str(book),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and stored.id in page
    assert not re.search(r"<script[^>]+src=", page)  # nothing fetched from the network
    assert page.count("plotly.js v") >= 1  # the library itself is inline
    for text in (
        "Summary",
        "Per expiry",
        "Cleaning report",
        "kept",
        "Margin",
        "binding scenario",
        "ATM term structure",
    ):
        assert text in page, text
    missing = CliRunner().invoke(
        app, ["report", "--id", "nope", "--store", str(store), "--out", str(out)]
    )
    assert missing.exit_code == 2 and "no stored surface" in missing.output


def test_png_export_when_a_browser_is_present(demo_essvi_fit, tmp_path):
    """PNG export runs only where kaleido and a Chromium are installed (skipped otherwise)."""
    import os
    import shutil

    pytest.importorskip("kaleido")
    if not (os.environ.get("BROWSER_PATH") or any(shutil.which(b) for b in plot.BROWSERS)):
        pytest.skip("no Chromium for kaleido (install chromium-headless-shell)")
    path = tmp_path / "smiles.png"
    plot.write_png(plot.smile_grid(demo_essvi_fit), path, width=900)
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert width == 900 and height == demo_essvi_fit.grid.t.size // 3 * 300 + (
        300 if demo_essvi_fit.grid.t.size % 3 else 0
    )

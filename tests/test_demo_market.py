"""The demo market: Deribit-like conventions, reproducible, and true to its own surface."""

from __future__ import annotations

import numpy as np
import pandas as pd

import volcal as vc
from volcal.clean import clean
from volcal.sources.demo import DemoSurface, demo_chain, deribit_expiries

SNAPSHOT = pd.Timestamp("2026-01-15T09:30:00Z")


def test_expiries_follow_deribit_listing():
    expiries = deribit_expiries(SNAPSHOT)
    assert (expiries.hour == 8).all() and expiries.tz is not None
    assert list(expiries[:3].day) == [16, 17, 18]  # three dailies
    fridays = expiries[expiries.day_of_week == 4]
    assert {"2026-01-23", "2026-01-30", "2026-03-27", "2026-06-26", "2026-09-25",
            "2026-12-25"} <= {f"{e:%Y-%m-%d}" for e in fridays}  # fmt: skip
    assert expiries.max() - SNAPSHOT <= pd.Timedelta(days=365)


def test_reproducible_and_seeded():
    a, b = demo_chain(seed=3).frame, demo_chain(seed=3).frame
    pd.testing.assert_frame_equal(a, b)
    assert not demo_chain(seed=4).frame["bid_size"].equals(a["bid_size"])


def test_inverse_quotes_on_the_tick_grid_with_missing_far_bids():
    frame = demo_chain().frame
    coin_bid = (frame["bid"] / frame["premium_conversion"]).dropna()
    coin_ask = frame["ask"] / frame["premium_conversion"]
    for coin in (coin_bid, coin_ask):
        tick = np.where(coin < 0.005, 1e-4, 5e-4)
        assert np.allclose(np.round(coin / tick) * tick, coin, rtol=0, atol=1e-12)
    assert frame["bid"].isna().sum() >= 4
    t = (frame["expiry"] - frame["snapshot"]).dt.total_seconds() / (365 * 86400)
    far = np.abs(np.log(frame["strike"] / frame["forward"])) / np.sqrt(DemoSurface().theta(t))
    assert far[frame["bid"].isna()].min() > far.median()
    assert (frame["premium_currency"] == "BTC").all()


def test_spreads_widen_in_the_wings():
    grid = clean(demo_chain())
    quotes = grid.quotes
    spread = quotes["ask_iv"] - quotes["bid_iv"]
    z = np.abs(quotes["log_moneyness"]) / np.sqrt(quotes["t"])
    assert spread[z > z.quantile(0.8)].median() > 2 * spread[z < z.quantile(0.2)].median()


def test_marks_are_the_true_surface():
    chain = demo_chain()
    frame = chain.frame
    t = (frame["expiry"] - frame["snapshot"]).dt.total_seconds().to_numpy() / (365 * 86400)
    vols = vc.implied_vol(frame["mark"].to_numpy(), frame["forward"].to_numpy(),
                          frame["strike"].to_numpy(), t, chain.is_call)  # fmt: skip
    ok = np.asarray(vols.ok)
    assert ok.mean() > 0.95
    error = np.abs(np.asarray(vols.vol) - frame["venue_mark_iv"].to_numpy())[ok]
    assert error.max() < 1e-9
    surface = DemoSurface()
    k = np.log(frame["strike"] / frame["forward"]).to_numpy()
    np.testing.assert_allclose(surface.implied_vol(k, t), frame["venue_mark_iv"], rtol=1e-14)


def test_surface_has_no_butterfly_arbitrage():
    # Gatheral-Jacquier power-law SSVI: gamma = 1/2 and eta (1 + |rho|) <= 2 suffice.
    surface = DemoSurface()
    assert surface.gamma == 0.5 and surface.eta * (1 + abs(surface.rho)) <= 2
    # Durrleman's g(k) >= 0 on a dense grid, by finite differences of w(k).
    k = np.linspace(-2.0, 2.0, 4001)
    h = k[1] - k[0]
    for t in (0.003, 0.05, 0.5, 1.0):
        w = surface.total_variance(k, t)
        w1 = np.gradient(w, h)
        w2 = np.gradient(w1, h)
        g = (1 - k * w1 / (2 * w)) ** 2 - w1**2 / 4 * (1 / w + 0.25) + w2 / 2
        assert g[5:-5].min() > 0

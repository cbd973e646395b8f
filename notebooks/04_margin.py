# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 Margin: a book -> scenarios -> margin breakdown and plots
#
# Portfolio margin of a two-account book of Deribit BTC and ETH options and futures, on the
# eSSVI surfaces calibrated from the real snapshot of 2026-08-22 15:33 UTC and stored, under
# the Deribit-style risk matrix and under SPAN-style scenarios. Each cell asserts what it shows.

# %%
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import volcal as vc
from volcal import plot
from volcal.margin import Market, load_book, risk_matrix, span
from volcal.sources import shared_data
from volcal.sources.files import read_deribit_snapshot

pd.set_option("display.width", 140)
path = shared_data("raw", "deribit_svcj_snapshots", "deribit_options_snapshot_20260822T153351Z.csv")
chain = read_deribit_snapshot(path)
store = vc.Store(Path(tempfile.mkdtemp()) / "volcal.sqlite")
for underlying in ("BTC", "ETH"):
    stored = store.save(vc.calibrate(vc.models.ESSVI, vc.clean(chain, underlying=underlying)))
    print(underlying, stored.id, stored.status)
    assert stored.status == "accepted"

# %% [markdown]
# The book: Deribit instrument names, quantities in contracts (1 coin for inverse options;
# `contract_size` for the linear USDC option). A bad row would be named in the error.

# %%
book = load_book(
    pd.DataFrame(
        [
            ("desk-a", "BTC-28AUG26-77000-C", -25, None),
            ("desk-a", "BTC-28AUG26-77000-P", -25, None),
            ("desk-a", "BTC-25SEP26-70000-P", 40, None),
            ("desk-a", "BTC-25SEP26-90000-C", -30, None),
            ("desk-a", "BTC-25DEC26-100000-C", 15, None),
            ("desk-a", "BTC-PERPETUAL", -50000, None),
            ("desk-a", "ETH-25SEP26-2400-C", -200, None),
            ("desk-a", "ETH-25SEP26-2000-P", 150, None),
            ("desk-a", "ETH-25DEC26", 100000, None),
            ("desk-b", "BTC_USDC-25SEP26-80000-C", 50, 0.01),
            ("desk-b", "BTC-26MAR27-60000-P", -10, None),
            ("desk-b", "ETH-30OCT26-3000-C", 80, None),
        ],
        columns=["account", "instrument", "quantity", "contract_size"],
    ),
    asof="2026-08-22T16:00:00Z",
)
market = Market.from_store(store, "deribit", book.underlyings, asof="2026-08-22T16:00:00Z",
                           max_age="1D")  # fmt: skip
print(book.positions[["account", "instrument", "quantity", "contract_size"]])

# %% [markdown]
# Margin under the risk matrix: 9 price moves x vol up/same/down and 8 extended moves, per
# account and underlying, with the binding scenario and each position's contribution.

# %%
result = vc.margin(book, market, "riskmatrix")
print(result.summary(top=3))
groups = result.groups
assert (groups["margin"] > 0).all()
# The margin is the larger of the scan risk and the minimum delta requirement.
np.testing.assert_allclose(groups["margin"], np.maximum(groups["scan_risk"], groups["add_on"]))
# Per account, the USD margins of its groups add up (no offsets across groups).
np.testing.assert_allclose(result.accounts, groups.groupby("account")["margin_usd"].sum())

# %% [markdown]
# An independent check of one number: desk-b's linear BTC_USDC call under the binding
# scenario of its group, repriced here with Black-76 and the risk matrix's published vol
# shock, written out. Under sticky-moneyness dynamics (the default) the smile moves with the
# forward: after the move, the strike's vol is read at its new log-moneyness.

# %%
row = book.positions.index[book.positions["instrument"] == "BTC_USDC-25SEP26-80000-C"][0]
group = groups[(groups["account"] == "desk-b") & (groups["settlement"] == "USDC")].iloc[0]
scenarios = risk_matrix("BTC")
move = scenarios.table().loc[group["binding_scenario"]]
surface = market.surfaces["BTC"]
p = result.positions.loc[row]
forward, t, strike = p["forward"], p["t"], 80000.0
moved = forward * (1 + move["price_move"])
vol = float(surface.implied_vol_at(np.log(strike / forward), t))
vol_moved = float(surface.implied_vol_at(np.log(strike / moved), t))
days = t * 365.0
size = (30.0 / max(days, 1.0)) ** (0.30 if days < 30 else 0.13)  # (30 / DTE)^power
parameters = scenarios.parameters
if move["vol_direction"] > 0:
    shocked = max(
        vol_moved * (1 + parameters["vol_range_up"] * size), parameters["min_vol_for_shock_up"]
    )
elif move["vol_direction"] < 0:
    shocked = vol_moved * (1 - parameters["vol_range_down"] * size)
else:
    shocked = vol_moved
discount = float(surface.discount_at(t))
before = float(vc.black_price(forward, strike, t, vol, True, discount))
after = float(vc.black_price(moved, strike, t, shocked, True, discount))
expected = 50 * 0.01 * (after - before)
engine = result.pnl["BTC"].loc[row, group["binding_scenario"]]
print(f"P&L in '{group['binding_scenario']}': engine {engine:,.6f}, by hand {expected:,.6f} USDC")
assert abs(engine - expected) <= 1e-8 * abs(expected)

# %% [markdown]
# The P&L of desk-a's BTC positions over the scenario grid (price move x vol move), with the
# binding scenario marked, and the positions' contributions to each group's margin.

# %%
pnl_figure = plot.margin_pnl(result, "BTC", account="desk-a")
pnl_figure

# %%
plot.margin_contributions(result)

# %% [markdown]
# The same book under SPAN's 16 scenarios (price scan range 16%, vol scan range 10 vol
# points, given: no crypto value is published) next to the risk matrix.

# %%
span_result = vc.margin(book, market, {u: span(0.16, 0.10) for u in book.underlyings})
comparison = pd.DataFrame({"risk matrix": result.accounts, "SPAN 16%/10vp": span_result.accounts})
print(comparison.round(2))
assert (comparison > 0).all().all()

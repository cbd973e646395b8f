"""Malformed chains (hypothesis, fixed shapes): no crash; a clear error or a reason per row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from volcal.chain import (
    REQUIRED,
    Chain,
    ChainValidationError,
    MissingColumnsError,
)
from volcal.clean import KEPT, clean

N = 24  # rows per generated chain: one compiled implied-vol program for every example
SNAPSHOT = pd.Timestamp("2026-03-01T12:00:00Z")

prices = st.one_of(
    st.floats(0.0, 5_000.0),
    st.sampled_from([np.nan, 0.0, -1.0, np.inf, 1e-9, 1e12]),
    st.sampled_from(["", "abc", None]),
)
strikes = st.one_of(st.floats(1_000.0, 200_000.0), st.sampled_from([0.0, -5.0, np.nan, "x"]))
expiries = st.sampled_from([
    "2026-03-02T08:00:00Z", "2026-03-27T08:00:00Z", "2026-06-26T08:00:00Z",
    "2026-02-27T08:00:00Z",  # already expired
    "2026-03-01T12:30:00Z",  # half an hour out
    "not a date", None,
])  # fmt: skip
rights = st.sampled_from(["call", "put", "CALL", "P", "", None])
forwards = st.sampled_from([60_000.0, 60_000.0, 61_000.0, np.nan, 0.0, -1.0, np.inf])
instruments = st.sampled_from([f"I{i}" for i in range(30)])


@st.composite
def chains(draw):
    column = lambda strategy: draw(st.lists(strategy, min_size=N, max_size=N))  # noqa: E731
    bid = column(prices)
    ask = column(prices)
    return pd.DataFrame({
        "venue": "test",
        "underlying": column(st.sampled_from(["BTC", "BTC", "BTC", None])),
        "instrument": column(instruments),  # duplicates happen
        "snapshot": SNAPSHOT,
        "expiry": column(expiries),
        "strike": column(strikes),
        "right": column(rights),
        "bid": bid,
        "ask": ask,  # crossed and locked quotes happen
        "mark": column(prices),
        "forward": column(forwards),
        "quote_currency": "USD",
        "premium_currency": "BTC",
        "index_price": 60_000.0,
    })  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=chains())
def test_every_row_is_accounted_for(frame):
    chain = Chain.from_frame(frame, on_invalid="drop")
    assert len(chain) + len(chain.rejected) == N
    assert chain.rejected["reason"].notna().all()
    if len(chain) == 0:
        with pytest.raises(ValueError, match="no rows"):
            clean(chain, underlying="BTC")
        return
    grid = clean(chain, underlying="BTC")
    rows = grid.report.rows
    assert len(rows) == N and rows.index.is_unique
    assert rows["reason"].notna().all()
    kept = rows["reason"] == KEPT
    assert kept.sum() == grid.mask.sum()
    assert np.isfinite(grid.mid_iv).all() and np.isfinite(grid.log_moneyness).all()
    quotes = grid.quotes
    assert (quotes["bid"] < quotes["ask"]).all()
    assert (quotes["t"] > 0).all()


@settings(max_examples=20, deadline=None)
@given(frame=chains())
def test_strict_validation_names_the_rows(frame):
    lax = Chain.from_frame(frame, on_invalid="drop")
    if lax.rejected.empty:
        Chain.from_frame(frame)  # nothing to complain about
        return
    with pytest.raises(ChainValidationError) as error:
        Chain.from_frame(frame)
    assert list(error.value.problems.index) == list(lax.rejected.index)
    first = lax.rejected.index[0]
    assert f"row {first}" in str(error.value)


@pytest.mark.parametrize("column", REQUIRED)
def test_a_missing_required_column_is_named(column):
    frame = pd.DataFrame({name: ["x"] for name in REQUIRED}).drop(columns=column)
    with pytest.raises(MissingColumnsError, match=column):
        Chain.from_frame(frame)


def test_each_kind_of_bad_row_gets_its_reason():
    good = dict(venue="v", underlying="BTC", snapshot=SNAPSHOT, expiry="2026-06-26T08:00Z",
                strike=60_000.0, right="call", bid=1.0, ask=2.0, quote_currency="USD",
                premium_currency="BTC")  # fmt: skip
    cases = {
        "strike is not positive": dict(strike=0.0),
        "right is not 'call' or 'put'": dict(right="straddle"),
        "bid is negative": dict(bid=-1.0),
        "ask is not a number": dict(ask="n/a"),
        "expiry is missing": dict(expiry="someday"),
        "forward is not positive": dict(forward=-3.0),
    }
    bad_rows = [{**good, "instrument": reason, **change} for reason, change in cases.items()]
    duplicates = [{**good, "instrument": "dup"}, {**good, "instrument": "dup"}]
    frame = pd.DataFrame(bad_rows + duplicates)
    chain = Chain.from_frame(frame, on_invalid="drop")
    reasons = dict(zip(chain.rejected["instrument"], chain.rejected["reason"], strict=True))
    for expected in cases:
        assert reasons[expected] == expected
    assert reasons["dup"].startswith("duplicate")
    assert list(chain.frame["instrument"]) == ["dup"]

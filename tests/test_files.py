"""File importers: units, placeholders, times, and the generic column map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import volcal as vc
from volcal.sources.files import read_csv, read_deribit_snapshot, read_tardis_options_chain

FIXTURES = Path(__file__).parent / "fixtures" / "files"


def test_tardis_latest_quote_per_symbol_and_units():
    chain = read_tardis_options_chain(FIXTURES / "tardis_options_chain_sample.csv")
    frame = chain.frame.set_index("instrument")
    assert len(frame) == 3 and chain.rejected.empty
    put = frame.loc["BTC-9JUN20-9875-P"]
    assert put["snapshot"] == pd.Timestamp("2020-06-07T23:59:59.413Z")  # the later update
    assert put["expiry"] == pd.Timestamp("2020-06-09T08:00:00Z")
    assert put["bid"] == pytest.approx(0.0205 * 9756.36)  # coin premium x forward
    assert put["premium_currency"] == "BTC" and put["forward_source"] == "synthetic_future"
    assert put["venue_bid_iv"] == pytest.approx(0.5591) and put["venue_mark_iv"] == 0.6289
    call = frame.loc["BTC-9JUN20-9625-C"]
    assert np.isnan(call["bid"]) and np.isnan(call["venue_bid_iv"]) and np.isnan(call["bid_size"])
    linear = frame.loc["AVAX_USDC-29MAY26-8D6-P"]
    assert linear["premium_currency"] == "USD" and linear["premium_conversion"] == 1.0
    assert linear["bid"] == pytest.approx(0.312) and linear["underlying"] == "AVAX"
    # Deribit's mark IV back from the converted mark (undiscounted Black-76 on the forward).
    t = (put["expiry"] - put["snapshot"]).total_seconds() / (365 * 86400)
    vol = float(vc.implied_vol(put["mark"], put["forward"], put["strike"], t, False).vol)
    assert vol == pytest.approx(0.6289, abs=5e-4)
    earlier = read_tardis_options_chain(FIXTURES / "tardis_options_chain_sample.csv",
                                        as_of="2020-06-07T23:58:30Z")  # fmt: skip
    assert earlier.frame.set_index("instrument").loc["BTC-9JUN20-9875-P", "bid"] == (
        pytest.approx(0.0200 * 9755.0)
    )


def test_generic_csv_with_a_column_map(tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_text(
        "Sym,Exp,K,CP,BidPx,AskPx,Fwd,IV\n"
        "A,2026-06-26T08:00Z,100,C,0.05,0.06,101,55\n"
        "B,2026-06-26T08:00Z,90,P,0,0.02,101,60\n"
        "C,2026-06-26T08:00Z,-5,P,0.01,0.02,101,60\n"
    )
    chain = read_csv(
        path,
        {"instrument": "Sym", "expiry": "Exp", "strike": "K", "right": "CP", "bid": "BidPx",
         "ask": "AskPx", "forward": "Fwd", "venue_mark_iv": "IV"},
        constants={"venue": "mine", "underlying": "X", "snapshot": "2026-03-01T00:00Z",
                   "quote_currency": "USD", "premium_currency": "X"},
        premium_scale="forward",
        iv_in_percent=True,
    )  # fmt: skip
    # "C"/"P" are not the schema's rights: those rows are rejected with the reason, not lost.
    assert len(chain) == 0 and len(chain.rejected) == 3
    assert list(chain.rejected["reason"]) == [
        "right is not 'call' or 'put'",
        "right is not 'call' or 'put'",
        "strike is not positive",
    ]
    mapped = read_csv(
        path,
        {"instrument": "Sym", "expiry": "Exp", "strike": "K", "right": "CP", "bid": "BidPx",
         "ask": "AskPx", "forward": "Fwd", "venue_mark_iv": "IV"},
        constants={"venue": "mine", "underlying": "X", "snapshot": "2026-03-01T00:00Z",
                   "quote_currency": "USD", "premium_currency": "X"},
        premium_scale="forward",
        iv_in_percent=True,
        rights={"C": "call", "P": "put"},
    )  # fmt: skip
    frame = mapped.frame.set_index("instrument")
    assert list(frame.index) == ["A", "B"]
    assert list(mapped.rejected["reason"]) == ["strike is not positive"]
    assert frame.loc["A", "bid"] == pytest.approx(0.05 * 101) and frame.loc["A", "right"] == "call"
    assert np.isnan(frame.loc["B", "bid"])  # 0 is the "no bid" placeholder
    assert frame.loc["A", "venue_mark_iv"] == pytest.approx(0.55)
    assert frame.loc["A", "premium_conversion"] == 101
    with pytest.raises(ValueError, match="not in the file"):
        read_csv(path, {"strike": "Strike"})


def test_deribit_history_parquet_one_snapshot(shared_data):
    path = shared_data / "deribit_history" / "deribit_options_2025-12.parquet"
    raw = pd.read_parquet(path)
    first = raw["timestamp"].min()
    chain = read_deribit_snapshot(path, snapshot=first, currency="BTC")
    expected = ((raw["timestamp"] == first) & (raw["currency"] == "BTC")).sum()
    assert len(chain) + len(chain.rejected) == expected > 500
    assert (chain.frame["snapshot"] == first).all()
    assert set(chain.frame["forward_source"].dropna()) <= {"future", "synthetic_future", "index"}

"""volcal.history on the shared data: the daily observation of the option history, the spot of
a snapshot at one consistent moment, and the Bitstamp spot series with its gap left open."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import volcal as vc
from volcal.history import (
    SnapshotHistory,
    daily_returns,
    daily_spot,
    load_spot_history,
    snapshot_spot,
)


@pytest.fixture(scope="module")
def history(shared_data):
    return SnapshotHistory.open(shared_data / "deribit_history")


def test_daily_observation_is_the_snapshot_nearest_16_utc(history):
    index = pd.read_csv(history.source / "snapshots.csv")
    stamps = pd.to_datetime(index["timestamp"], utc=True)
    daily = history.daily()
    # SOURCE.md: every UTC day from 2025-12-30 to 2026-08-22 has a snapshot.
    assert len(daily) == 236 and daily.floor("D").is_unique
    for chosen in daily[::17]:
        same_day = stamps[stamps.dt.floor("D") == chosen.floor("D")]
        target = chosen.floor("D") + pd.Timedelta(hours=16)
        assert abs(chosen - target) == (same_day - target).abs().min()


def test_snapshot_spot_reads_the_index_rows_else_the_nearest_forward(history):
    raw_index = pd.read_csv(history.source / "snapshots.csv")
    stamp = pd.Timestamp(raw_index["timestamp"].iloc[0])
    filters = [("timestamp", "==", stamp), ("currency", "==", "BTC")]
    rows = pd.read_parquet(history.source / raw_index["parquet_file"].iloc[0], filters=filters)
    grid = vc.clean(history.chain(stamp, "BTC"), underlying="BTC")
    spot, source = snapshot_spot(grid)
    on_index = rows[rows["underlying_name"] == "index_price"]
    if len(on_index):
        assert source == "index" and spot == on_index["underlying"].iloc[0]
        assert on_index["underlying"].nunique() == 1
    else:
        nearest = rows.loc[rows["time_to_maturity"].idxmin(), "underlying"]
        assert source == "nearest forward" and spot == pytest.approx(nearest, rel=1e-12)


def test_spot_history_drops_partial_and_filler_candles(shared_data):
    btc = load_spot_history("BTC", shared_data / "spot_history")
    raw = pd.read_csv(shared_data / "spot_history" / "btc_usd_bitstamp_daily.csv")
    assert len(btc) == len(raw) - 1 - 8  # the partial last candle and 8 filler candles
    assert btc.index.max() == pd.Timestamp("2025-07-04", tz="UTC")
    assert pd.Timestamp("2015-01-08", tz="UTC") not in btc.index
    returns = daily_returns(btc)
    # No return spans a dropped candle: e.g. none dated 2015-01-06..12 (halt) nor 2015-08-07.
    halted = returns.loc["2015-01-06":"2015-01-12"]
    assert halted.empty and pd.Timestamp("2015-08-07", tz="UTC") not in returns.index
    # SOURCE.md's real events are kept: BTC -49% (log) on 2020-03-12, closes from the file.
    day = pd.Timestamp("2020-03-12", tz="UTC")
    assert returns[day] == pytest.approx(np.log(4841.67 / 7934.57), rel=1e-12)


def test_no_return_spans_the_gap_between_the_segments(shared_data):
    spots = pd.Series([90000.0, 91000.0, 89000.0],
                      index=pd.to_datetime(["2025-12-30T16:02Z", "2025-12-31T15:58Z",
                                            "2026-01-01T16:10Z"]))  # fmt: skip
    spot = daily_spot("BTC", spots, shared_data / "spot_history")
    returns = daily_returns(spot)
    assert spot["segment"].iloc[-3:].tolist() == ["deribit"] * 3
    # The last Bitstamp day is 2025-07-04; the first option day 2025-12-30: no return between.
    assert pd.Timestamp("2025-12-30", tz="UTC") not in returns.index
    np.testing.assert_allclose(returns.iloc[-2:], np.diff(np.log(spots.to_numpy())), rtol=1e-15)


def test_a_tardis_stream_gives_one_snapshot_per_day_at_its_last_update():
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "files" / "tardis_options_chain_sample.csv"
    history = SnapshotHistory.open(path, format="tardis")
    stamps = history.timestamps()
    assert list(stamps) == [pd.Timestamp("2020-06-07T23:59:59.5Z"),
                            pd.Timestamp("2026-05-01T00:00:00.657Z")]  # fmt: skip
    chain = history.chain(stamps[0], "BTC")
    frame = chain.frame.set_index("instrument")
    assert sorted(frame.index) == ["BTC-9JUN20-9625-C", "BTC-9JUN20-9875-P"]
    # The latest update of the put at or before the snapshot (not the earlier one), timed at
    # the snapshot; the 2020 options are expired by the 2026 snapshot, and gone from it.
    assert frame.loc["BTC-9JUN20-9875-P", "bid"] == pytest.approx(0.0205 * 9756.36)
    assert (frame["snapshot"] == stamps[0]).all()
    assert history.chain(stamps[1], "BTC").frame.empty

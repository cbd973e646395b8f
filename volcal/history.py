"""Histories: option-chain snapshots to backfill, and the daily spot series margin
parameters are calibrated on.

Snapshots (:class:`SnapshotHistory`) come from a folder in the layout of the shared
``deribit_history/`` (an index ``snapshots.csv`` with one line per snapshot, and monthly
Parquet files of every row), or from one file holding several snapshots (a Deribit-layout CSV
or Parquet, or a Tardis ``options_chain`` CSV).

Spot, per underlying, is one series of daily observations in segments that are never joined:

* ``bitstamp``: Bitstamp daily closes (00:00-24:00 UTC candles, the shared ``spot_history/``),
  with the partial last candle and the zero-volume filler candles dropped
  (:data:`FILLER_CANDLES`; ``spot_history/SOURCE.md``);
* ``deribit``: the spot of one option snapshot per day (the one nearest 16:00 UTC), read as
  :func:`snapshot_spot` says.

Between the two lies a gap (2025-07-05 to 2025-12-29 for the shared data) with no price at all.
It is bridged by not bridging it: no price is filled in, and :func:`daily_returns` computes
returns only between consecutive days of the same segment, so no return spans the gap (nor the
change of source and time of day). A rolling window simply runs across it, as if the
segments were consecutive.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from volcal.chain import Chain

#: The daily observation time of the option history (UTC hour): the snapshot nearest to it is
#: the day's (as the issue of record and ``deribit_history/SOURCE.md`` suggest).
OBSERVATION_HOUR = 16
SPOT_FILES = {"BTC": "btc_usd_bitstamp_daily.csv", "ETH": "eth_usd_bitstamp_daily.csv"}
#: A Tardis snapshot keeps each symbol's latest update no older than this (a volcal choice: an
#: older quote is no longer a quote of that moment).
TARDIS_MAX_QUOTE_AGE = pd.Timedelta(hours=1)
#: Bitstamp candles that are not trades (``spot_history/SOURCE.md``, anomaly 3: flat, zero
#: volume; the January 2015 trading halt). Dropped, so no return is computed across them.
FILLER_CANDLES = {
    "BTC": (
        "2014-12-15", "2015-01-06", "2015-01-07", "2015-01-08", "2015-01-09", "2015-01-10",
        "2015-01-11", "2015-08-06",
    ),
    "ETH": (),
}


@dataclass(frozen=True)
class SnapshotHistory:
    """Option-chain snapshots of a history source.

    Attributes
    ----------
    index : DataFrame
        One row per snapshot, in time order: ``timestamp`` (UTC) and ``file`` (where its rows
        are), plus ``rows_<underlying>`` where the source says.
    source : Path
    format : str
        "deribit-history" (the folder layout), "deribit" or "tardis" (one file). A Deribit
        file's snapshots are its distinct ``timestamp`` values; a Tardis ``options_chain`` file
        is a stream of updates, so its snapshots are the last update of each UTC day, and a
        snapshot's chain is the latest quote of each symbol at or before it (at most
        :data:`TARDIS_MAX_QUOTE_AGE` old), timed at the snapshot, without expired options.
    """

    index: pd.DataFrame
    source: Path
    format: str

    @classmethod
    def open(cls, source: str | Path, *, format: str | None = None) -> SnapshotHistory:
        """A folder with ``snapshots.csv`` (Deribit history layout) or one file (``format``
        "deribit", the default, or "tardis")."""
        source = Path(source)
        if source.is_dir():
            listing = source / "snapshots.csv"
            if not listing.exists():
                raise FileNotFoundError(
                    f"{source} is a folder without snapshots.csv: not a snapshot history"
                )
            raw = pd.read_csv(listing)
            missing = {"timestamp", "parquet_file"} - set(raw.columns)
            if missing:
                raise ValueError(f"{listing} lacks the column(s) {sorted(missing)}")
            index = pd.DataFrame(
                {
                    "timestamp": pd.to_datetime(raw["timestamp"], utc=True),
                    "file": raw["parquet_file"].astype(str),
                }
            )
            for column in raw.columns:
                if column.startswith("rows_"):
                    index[column.upper().replace("ROWS_", "rows_")] = raw[column]
            return cls(index.sort_values("timestamp", ignore_index=True), source,
                       "deribit-history")  # fmt: skip
        if not source.exists():
            raise FileNotFoundError(f"no snapshot history at {source}")
        format = format or "deribit"
        stamps = _file_snapshots(source, format)
        index = pd.DataFrame({"timestamp": stamps, "file": source.name})
        return cls(index, source, format)

    def timestamps(self, start=None, end=None) -> pd.DatetimeIndex:
        """Snapshot times (UTC) between ``start`` and ``end`` (inclusive, optional)."""
        stamps = pd.DatetimeIndex(self.index["timestamp"])
        if start is not None:
            stamps = stamps[stamps >= _utc(start)]
        if end is not None:
            stamps = stamps[stamps <= _utc(end)]
        return stamps

    def daily(self, start=None, end=None, hour: int = OBSERVATION_HOUR) -> pd.DatetimeIndex:
        """One snapshot per UTC day: the one nearest ``hour`` o'clock (ties: the earlier)."""
        stamps = self.timestamps(start, end)
        if not len(stamps):
            return stamps
        frame = pd.DataFrame({"timestamp": stamps})
        frame["day"] = frame["timestamp"].dt.floor("D")
        target = frame["day"] + pd.Timedelta(hours=hour)
        frame["distance"] = (frame["timestamp"] - target).abs()
        chosen = frame.sort_values(["distance", "timestamp"]).groupby("day").head(1)
        return pd.DatetimeIndex(chosen["timestamp"].sort_values())

    def chain(self, timestamp, underlying: str | None = None) -> Chain:
        """The chain of one snapshot (one underlying, or all)."""
        from volcal.sources.files import read_deribit_snapshot, read_tardis_options_chain

        timestamp = _utc(timestamp)
        if self.format == "deribit-history":
            rows = self.index[self.index["timestamp"] == timestamp]
            if rows.empty:
                raise KeyError(f"no snapshot at {timestamp.isoformat()} in {self.source}")
            filters = [("timestamp", "==", timestamp)]
            if underlying is not None:
                filters.append(("currency", "==", underlying))
            raw = pd.read_parquet(self.source / rows["file"].iloc[0], filters=filters)
            return read_deribit_snapshot(raw)
        if self.format == "deribit":
            return read_deribit_snapshot(self.source, snapshot=timestamp, currency=underlying)
        if self.format == "tardis":
            raw = _tardis_updates(self.source)
            fresh = raw["timestamp"] >= (timestamp - TARDIS_MAX_QUOTE_AGE).value // 1000
            chain = read_tardis_options_chain(raw[fresh], as_of=timestamp)
            frame = chain.frame
            if underlying is not None:
                frame = frame[frame["underlying"] == underlying]
            # The chain as of the snapshot: quotes carry its time, expired options are gone.
            frame = frame[pd.to_datetime(frame["expiry"], utc=True) > timestamp].copy()
            frame["snapshot"] = timestamp
            return Chain.from_frame(frame, source=str(self.source))
        raise ValueError(f"unknown history format {self.format!r}")


@functools.lru_cache(maxsize=2)
def _tardis_updates(path: Path) -> pd.DataFrame:
    """A Tardis file's rows, read once per process (a backfill takes many snapshots of it)."""
    return pd.read_csv(path)


def _file_snapshots(path: Path, format: str) -> pd.DatetimeIndex:
    if format == "deribit":
        reader = pd.read_parquet if path.suffix == ".parquet" else pd.read_csv
        column = (reader(path, columns=["timestamp"]) if path.suffix == ".parquet"
                  else reader(path, usecols=["timestamp"]))["timestamp"]  # fmt: skip
    elif format == "tardis":
        # An update stream: one snapshot per UTC day that has updates, at its last update (the
        # chain then is the latest quote of each symbol at or before it).
        times = pd.to_datetime(pd.read_csv(path, usecols=["timestamp"])["timestamp"], unit="us",
                               utc=True)  # fmt: skip
        column = times.groupby(times.dt.floor("D")).max()
    else:
        raise ValueError(f"history format must be 'deribit' or 'tardis', not {format!r}")
    return pd.DatetimeIndex(sorted(pd.to_datetime(column, utc=True).unique()))


def snapshot_spot(grid) -> tuple[float, str]:
    """The spot of a cleaned snapshot, at one consistent moment: the forward of an expiry
    whose forward is the spot index itself (Deribit's ``underlying_name`` = ``index_price``,
    read with the prices), else the nearest expiry's forward. Returns ``(spot, source)``,
    ``source`` "index" or "nearest forward". (The per-row ``index_price`` column comes from
    later ticker calls, minutes apart, and is not used.)"""
    forwards = grid.report.forwards
    if "forward_source" in forwards:
        index = forwards[forwards["forward_source"] == "index"]
        if len(index):
            return float(index["forward"].iloc[0]), "index"
    nearest = forwards.sort_values("t").iloc[0]
    return float(nearest["forward"]), "nearest forward"


def load_spot_history(underlying: str, folder: str | Path | None = None) -> pd.DataFrame:
    """Bitstamp daily closes of ``underlying`` (``spot_history/``): a DataFrame indexed by
    UTC day with ``close`` (USD) and ``segment`` "bitstamp"; the last (partial) candle and
    the filler candles of :data:`FILLER_CANDLES` dropped."""
    from volcal.sources import shared_data

    underlying = underlying.upper()
    if underlying not in SPOT_FILES:
        raise ValueError(f"no spot history for {underlying!r}; known: {sorted(SPOT_FILES)}")
    folder = Path(folder) if folder is not None else shared_data("spot_history")
    raw = pd.read_csv(folder / SPOT_FILES[underlying])
    day = pd.to_datetime(raw["date_utc"], utc=True)
    close = pd.Series(pd.to_numeric(raw["close"], errors="coerce").to_numpy(), index=day)
    close = close.iloc[:-1]  # the export's last candle is minutes old (SOURCE.md anomaly 1)
    close = close.drop(pd.to_datetime(list(FILLER_CANDLES[underlying]), utc=True),
                       errors="ignore")  # fmt: skip
    if close.isna().any() or (close <= 0).any():
        bad = close[close.isna() | (close <= 0)].index[0]
        raise ValueError(f"{SPOT_FILES[underlying]}: no positive close on {bad:%Y-%m-%d}")
    return pd.DataFrame({"close": close, "segment": "bitstamp"}).rename_axis("day")


def daily_spot(underlying: str, snapshot_spots: pd.Series | None = None,
               folder: str | Path | None = None) -> pd.DataFrame:  # fmt: skip
    """The daily spot series of ``underlying``: Bitstamp closes, then ``snapshot_spots``
    (spot per daily option snapshot, indexed by snapshot time; see
    :func:`volcal.store.Store.snapshot_spots`) as segment "deribit", indexed by UTC day.
    Days of the option segment that the Bitstamp segment also covers are dropped from it (the
    sources never mix within a day)."""
    frame = load_spot_history(underlying, folder)
    if snapshot_spots is not None and len(snapshot_spots):
        spots = pd.Series(snapshot_spots, dtype=float).sort_index()
        days = pd.DatetimeIndex(spots.index).tz_convert("UTC").floor("D")
        options = pd.DataFrame({"close": spots.to_numpy(), "segment": "deribit",
                                "observed_at": spots.index}, index=days)  # fmt: skip
        options = options[~options.index.duplicated(keep="last")]
        options = options[options.index > frame.index.max()]
        frame = pd.concat([frame, options]).rename_axis("day")
    return frame


def daily_returns(spot: pd.DataFrame) -> pd.Series:
    """Daily log returns between consecutive days of the same segment (no return across a
    gap of more than one day, or between segments): indexed by the later day."""
    close = spot["close"].to_numpy(dtype=float)
    days = pd.DatetimeIndex(spot.index)
    same_segment = spot["segment"].to_numpy()[1:] == spot["segment"].to_numpy()[:-1]
    consecutive = np.asarray((days[1:] - days[:-1]) == pd.Timedelta(days=1))
    keep = same_segment & consecutive
    values = np.diff(np.log(close))[keep]
    return pd.Series(values, index=days[1:][keep], name="log_return")


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

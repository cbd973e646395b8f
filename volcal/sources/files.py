"""Chains from files: a generic CSV importer with a column map, and presets for known formats.

Presets (each documents its source format and which Chain field comes from which column):

* :func:`read_deribit_snapshot`: the Deribit snapshot CSV / Parquet layout of the shared
  history (``deribit_options_snapshot_*.csv`` and ``deribit_history/*.parquet``);
* :func:`read_deribit_orderbook_2020`: Deribit ``public/get_order_book`` results written by
  pandas (2020), with Deribit's own bid/ask IV;
* :func:`read_cboe_quotes`: the Cboe delayed-quotes download (e.g. SPX, January 2011);
* :func:`read_tardis_options_chain`: Tardis.dev's ``options_chain`` CSV;
* :func:`read_csv`: any CSV, given a map from Chain columns to the file's columns.

Every preset normalises at the edge: premiums to the quote currency, IV to decimals, venue
placeholders (0 for "no quote") to NaN, times to UTC. Rows the chain cannot accept are kept in
``Chain.rejected`` with a reason, never silently dropped.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from volcal.chain import Chain

# A venue's "no quote" placeholder: a price of 0 (or below one tick of 1e-8) means no order.
_PLACEHOLDER_PRICE = 1e-8


def _missing_if_placeholder(values) -> pd.Series:
    values = pd.to_numeric(pd.Series(values), errors="coerce")
    return values.where(values > _PLACEHOLDER_PRICE)


def _forward_source(underlying_name: pd.Series) -> pd.Series:
    """Deribit's ``underlying_index``: a future, a synthetic future (``SYN.``) or the index."""
    name = underlying_name.astype("string")
    return pd.Series(
        np.select(
            [
                name.eq("index_price").fillna(False),
                name.str.startswith("SYN.").fillna(False),
                name.notna(),
            ],
            ["index", "synthetic_future", "future"],
            default=None,
        ),
        index=underlying_name.index,
        dtype="object",
    )


def read_deribit_snapshot(
    source: str | Path | pd.DataFrame,
    *,
    snapshot: str | pd.Timestamp | None = None,
    currency: str | None = None,
) -> Chain:
    """Deribit chain in the shared snapshot layout (CSV or Parquet, or its DataFrame).

    Field sources: ``bid/ask/mark`` = ``bid_price/ask_price/mark_price`` (coin per coin) x
    ``underlying`` (USD, the expiry's forward: Deribit's ``underlying_price``), so that
    undiscounted Black-76 on that forward reproduces Deribit's mark IV; ``forward`` =
    ``underlying``, ``forward_source`` from ``underlying_name``; ``venue_mark_iv`` =
    ``implied_volatility`` (already decimal); ``venue_delta`` = ``delta``. Zero prices are
    missing quotes. ``snapshot`` selects one snapshot of a multi-snapshot file (default: all);
    ``currency`` selects BTC or ETH (default: both).
    """
    raw = _read_table(source)
    if snapshot is not None:
        raw = raw[pd.to_datetime(raw["timestamp"], utc=True) == pd.Timestamp(snapshot)]
    if currency is not None:
        raw = raw[raw["currency"].astype(str) == currency]
    conversion = pd.to_numeric(raw["underlying"], errors="coerce")
    frame = pd.DataFrame(
        {
            "venue": "deribit",
            "underlying": raw["currency"].astype(str),
            "instrument": raw["instrument_name"].astype(str),
            "snapshot": raw["timestamp"],
            "expiry": raw["expiry_datetime"].astype(str),
            "strike": raw["strike"],
            "right": raw["option_type"].astype(str),
            "bid": _missing_if_placeholder(raw["bid_price"]).to_numpy() * conversion,
            "ask": _missing_if_placeholder(raw["ask_price"]).to_numpy() * conversion,
            "mark": _missing_if_placeholder(raw["mark_price"]).to_numpy() * conversion,
            "quote_currency": "USD",
            "premium_currency": raw["currency"].astype(str),
            "premium_conversion": conversion,
            "forward": conversion,
            "forward_source": _forward_source(raw["underlying_name"]),
            "index_price": raw.get("index_price"),
            "open_interest": raw.get("open_interest"),
            "volume": raw.get("volume"),
            "venue_mark_iv": raw.get("implied_volatility"),
            "venue_delta": raw.get("delta"),
        },
        index=raw.index,
    )
    return Chain.from_frame(frame, source=_describe(source), on_invalid="drop")


def read_deribit_orderbook_2020(source: str | Path | pd.DataFrame) -> Chain:
    """Deribit ``public/get_order_book`` rows as written by pandas (the 2020 BTC files).

    Field sources: ``snapshot`` = per-row exchange ``timestamp`` (ms; rows span ~2.5 min);
    ``expiry`` = ``expiration_timestamp`` (ms); ``bid/ask`` = ``best_bid_price/best_ask_price``
    (BTC, 0 = no quote) x ``underlying_price``; ``mark`` = ``mark_price`` x ``underlying_price``;
    ``bid_size/ask_size`` = ``best_bid_amount/best_ask_amount``; ``venue_bid_iv/ask_iv/mark_iv``
    = ``bid_iv/ask_iv/mark_iv`` / 100, where a bid IV of 0 (Deribit's "no IV") is missing; an
    ask IV of exactly 500% is Deribit's cap, kept as 5.0 and to be excluded by comparisons;
    ``venue_delta`` and ``volume`` from the Python-repr ``greeks`` and ``stats`` dicts.
    """
    raw = _read_table(source)
    conversion = pd.to_numeric(raw["underlying_price"], errors="coerce")
    greeks = raw["greeks"].map(_literal)
    stats = raw["stats"].map(_literal)
    bid_iv = pd.to_numeric(raw["bid_iv"], errors="coerce") / 100.0
    frame = pd.DataFrame(
        {
            "venue": "deribit",
            "underlying": raw["instrument_name"].astype(str).str.split("-").str[0],
            "instrument": raw["instrument_name"].astype(str),
            "snapshot": pd.to_datetime(raw["timestamp"], unit="ms", utc=True),
            "expiry": pd.to_datetime(raw["expiration_timestamp"], unit="ms", utc=True),
            "strike": raw["strike"],
            "right": raw["option_type"].astype(str),
            "bid": _missing_if_placeholder(raw["best_bid_price"]).to_numpy() * conversion,
            "ask": _missing_if_placeholder(raw["best_ask_price"]).to_numpy() * conversion,
            "mark": _missing_if_placeholder(raw["mark_price"]).to_numpy() * conversion,
            "quote_currency": "USD",
            "premium_currency": "BTC",
            "premium_conversion": conversion,
            "bid_size": _missing_if_placeholder(raw["best_bid_amount"]),
            "ask_size": _missing_if_placeholder(raw["best_ask_amount"]),
            "forward": conversion,
            "forward_source": _forward_source(raw["underlying_index"]),
            "index_price": raw["index_price"],
            "open_interest": raw["open_interest"],
            "volume": stats.map(lambda d: d.get("volume", np.nan)),
            "venue_mark_iv": pd.to_numeric(raw["mark_iv"], errors="coerce") / 100.0,
            "venue_bid_iv": bid_iv.where(bid_iv > 0.0),
            "venue_ask_iv": pd.to_numeric(raw["ask_iv"], errors="coerce") / 100.0,
            "venue_delta": greeks.map(lambda d: d.get("delta", np.nan)),
        },
        index=raw.index,
    )
    return Chain.from_frame(frame, source=_describe(source), on_invalid="drop")


#: Cboe month codes: A-L are January-December calls, M-X January-December puts.
_CBOE_SYMBOL = re.compile(
    r"\((?P<root>[A-Z]+?)(?P<yy>\d{2})(?P<dd>\d{2})(?P<month>[A-X])"
    r"(?P<strike>[\d.]+)-E\)"
)
#: Roots settled on the opening print (AM): the coded date is the Saturday after the third
#: Friday; the settlement value is fixed at Friday's open.
_AM_SETTLED_ROOTS = {"SPX"}
_EASTERN = "America/New_York"


def read_cboe_quotes(source: str | Path) -> Chain:
    """A Cboe delayed-quotes download (line 1: underlying and last; line 2: time; then
    one call and one put per row).

    Field sources: ``instrument`` = the symbol in parentheses; ``expiry`` from it: AM-settled
    roots (``SPX``) are coded on the Saturday and expire at Friday's open (09:30 New York),
    PM-settled ones (``SPXW``, ``SPXPM``) at 16:00 New York on the coded date;
    ``snapshot`` = the download time on line 2 (New York time); ``bid/ask`` in USD (0.00 = no
    bid); ``index_price`` = the underlying's last value on line 1. No forward is given:
    cleaning implies it from put-call parity.
    """
    path = Path(source)
    with path.open() as handle:
        head = [handle.readline(), handle.readline()]
    underlying_field, last = head[0].split(",")[:2]
    underlying = underlying_field.split()[0]
    stamp = head[1].split(",")[0].replace("@", "").replace(" ET", "")
    snapshot = pd.Timestamp(stamp).tz_localize(_EASTERN).tz_convert("UTC")
    raw = pd.read_csv(path, skiprows=2)
    sides = []
    for description, suffix in (("Calls", ""), ("Puts", ".1")):
        parsed = raw[description].astype(str).str.extract(_CBOE_SYMBOL)
        month = parsed["month"].map(
            lambda m: (ord(m) - ord("A")) % 12 + 1 if isinstance(m, str) else np.nan
        )
        coded = pd.to_datetime(
            {"year": 2000 + pd.to_numeric(parsed["yy"]), "month": month,
             "day": pd.to_numeric(parsed["dd"])}, errors="coerce")  # fmt: skip
        am = parsed["root"].isin(_AM_SETTLED_ROOTS)
        local = (
            coded
            - pd.to_timedelta(np.where(am, 1, 0), unit="D")
            + pd.to_timedelta(np.where(am, 9.5, 16.0), unit="h")
        )
        sides.append(pd.DataFrame({
            "instrument": raw[description].astype(str).str.extract(r"\((.*)\)")[0],
            "expiry": local.dt.tz_localize(_EASTERN).dt.tz_convert("UTC"),
            "strike": pd.to_numeric(parsed["strike"], errors="coerce"),
            "right": "call" if description == "Calls" else "put",
            "bid": _missing_if_placeholder(raw["Bid" + suffix]),
            "ask": _missing_if_placeholder(raw["Ask" + suffix]),
            "volume": raw["Vol" + suffix],
            "open_interest": raw["Open Int" + suffix],
            "root": parsed["root"],
        }))  # fmt: skip
    frame = pd.concat(sides, ignore_index=True).assign(
        venue="cboe",
        underlying=underlying,
        snapshot=snapshot,
        quote_currency="USD",
        premium_currency="USD",
        premium_conversion=1.0,
        index_price=float(last),
    )
    return Chain.from_frame(frame, source=str(path), on_invalid="drop")


def read_tardis_options_chain(
    source: str | Path | pd.DataFrame, *, as_of: str | pd.Timestamp | None = None
) -> Chain:
    """Tardis.dev ``options_chain`` CSV: the latest quote per symbol at or before ``as_of``.

    Columns (Tardis' published list): exchange, symbol, timestamp, local_timestamp, type,
    strike_price, expiration, open_interest, last_price, bid_price, bid_amount, bid_iv,
    ask_price, ask_amount, ask_iv, mark_price, mark_iv, underlying_index, underlying_price,
    delta, gamma, vega, theta, rho. Times are microseconds since the epoch; IVs are percent;
    prices are in the venue's premium currency: coin for inverse options (Deribit ``BTC-...``,
    OKX ``BTC-USD-...``), the quote currency for linear ones (``..._USDC-...``, ``-USDT-``).
    Coin premiums are converted with ``underlying_price`` (the expiry's forward).
    """
    raw = _read_table(source)
    raw = raw.assign(_time=pd.to_datetime(raw["timestamp"], unit="us", utc=True))
    if as_of is not None:
        raw = raw[raw["_time"] <= pd.Timestamp(as_of)]
    raw = raw.sort_values("_time").drop_duplicates(["exchange", "symbol"], keep="last")
    symbol = raw["symbol"].astype(str)
    linear = symbol.str.contains("_USDC|-USDC-|_USDT|-USDT-", regex=True)
    underlying = symbol.str.split(r"[-_]", regex=True).str[0]
    forward = pd.to_numeric(raw["underlying_price"], errors="coerce")
    conversion = forward.where(~linear, 1.0)
    frame = pd.DataFrame(
        {
            "venue": raw["exchange"].astype(str),
            "underlying": underlying,
            "instrument": symbol,
            "snapshot": raw["_time"],
            "expiry": pd.to_datetime(raw["expiration"], unit="us", utc=True),
            "strike": raw["strike_price"],
            "right": raw["type"].astype(str),
            "bid": _missing_if_placeholder(raw["bid_price"]).to_numpy() * conversion,
            "ask": _missing_if_placeholder(raw["ask_price"]).to_numpy() * conversion,
            "mark": _missing_if_placeholder(raw["mark_price"]).to_numpy() * conversion,
            "quote_currency": "USD",
            "premium_currency": np.where(linear, "USD", underlying),
            "premium_conversion": conversion,
            "bid_size": _missing_if_placeholder(raw["bid_amount"]),
            "ask_size": _missing_if_placeholder(raw["ask_amount"]),
            "forward": forward,
            "forward_source": _forward_source(raw["underlying_index"]),
            "open_interest": raw["open_interest"],
            "venue_mark_iv": _missing_if_placeholder(raw["mark_iv"]) / 100.0,
            "venue_bid_iv": _missing_if_placeholder(raw["bid_iv"]) / 100.0,
            "venue_ask_iv": _missing_if_placeholder(raw["ask_iv"]) / 100.0,
            "venue_delta": raw["delta"],
        },
        index=raw.index,
    )
    return Chain.from_frame(frame, source=_describe(source), on_invalid="drop")


def read_csv(
    source: str | Path,
    column_map: Mapping[str, str],
    *,
    constants: Mapping[str, object] | None = None,
    premium_scale: str | float | None = None,
    iv_in_percent: bool = False,
    rights: Mapping[str, str] | None = None,
    **read_options,
) -> Chain:
    """Any CSV: ``column_map`` maps Chain columns to the file's column names.

    Parameters
    ----------
    source : path
        The CSV file (``read_options`` go to :func:`pandas.read_csv`).
    column_map : mapping
        ``{"strike": "Strike", "bid": "BidPx", ...}``; unmapped Chain columns are missing.
    constants : mapping, optional
        Values for whole columns, e.g. ``{"venue": "myvenue", "quote_currency": "USD"}``.
    premium_scale : str or float, optional
        Multiplier of bid/ask/mark into the quote currency: a Chain column name (e.g.
        ``"forward"`` for coin-quoted premiums) or a number. Kept as ``premium_conversion``.
    iv_in_percent : bool
        Divide the ``venue_*_iv`` columns by 100.
    rights : mapping, optional
        The file's words for calls and puts, e.g. ``{"C": "call", "P": "put"}``.
    """
    raw = pd.read_csv(source, **read_options)
    missing = [f for f in column_map.values() if f not in raw.columns]
    if missing:
        raise ValueError(
            f"{source}: column(s) {missing} named in column_map are not in the file "
            f"(it has {list(raw.columns)})"
        )
    frame = pd.DataFrame({chain: raw[file] for chain, file in column_map.items()}, index=raw.index)
    for column, value in (constants or {}).items():
        frame[column] = value
    if rights is not None and "right" in frame:
        frame["right"] = frame["right"].map(lambda r: rights.get(r, r))
    for column in ("bid", "ask", "mark"):
        if column in frame:
            frame[column] = _missing_if_placeholder(frame[column]).to_numpy()
    if premium_scale is not None:
        scale = (
            pd.to_numeric(frame[premium_scale], errors="coerce")
            if isinstance(premium_scale, str)
            else float(premium_scale)
        )
        for column in ("bid", "ask", "mark"):
            if column in frame:
                frame[column] = frame[column] * scale
        frame["premium_conversion"] = scale
    if iv_in_percent:
        for column in ("venue_mark_iv", "venue_bid_iv", "venue_ask_iv"):
            if column in frame:
                frame[column] = pd.to_numeric(frame[column], errors="coerce") / 100.0
    return Chain.from_frame(frame, source=str(source), on_invalid="drop")


def _read_table(source) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def _describe(source) -> str:
    return "DataFrame" if isinstance(source, pd.DataFrame) else str(source)


def _literal(text) -> dict:
    """Python-repr dicts as pandas wrote them ('{'delta': 0.5}'); not JSON."""
    if not isinstance(text, str):
        return {}
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return {}
    return value if isinstance(value, dict) else {}

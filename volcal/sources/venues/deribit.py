"""Deribit option chains (coin-settled, inverse options on BTC, ETH) through ccxt.

Requests (Deribit API v2, JSON-RPC over HTTP GET):

- markets: ``public/get_currencies`` and ``public/get_instruments`` (ccxt ``load_markets``);
- chain: ``public/get_book_summary_by_currency?currency=<coin>&kind=option`` (ccxt
  ``fetch_option_chain``): one row per listed option.

Where each Chain field comes from (``info`` is the raw book-summary row ccxt keeps):

==================  ===================================================================
Chain field         source
==================  ===================================================================
instrument          market ``id`` (= ``instrument_name``)
expiry              market ``expiry`` (``expiration_timestamp``, ms, 08:00 UTC)
strike, right       market ``strike``, ``optionType`` (``option_type``)
snapshot            ``info.creation_timestamp`` (ms); the fetch time where it is absent
forward             ``info.underlying_price``: the future (or synthetic future) Deribit
                    prices the option on, in USD; Deribit's IVs use it with zero rates
forward_source      ``info.underlying_index``: ``SYN.<coin>-<expiry>`` -> synthetic_future,
                    ``index_price`` -> index, another name -> future
bid, ask, mark      ccxt ``bidPrice``, ``askPrice``, ``markPrice`` (coin per coin of
                    notional) x ``underlying_price``: USD
premium_currency    ``info.quote_currency`` (the coin); quote_currency is the market's
                    quote (``counter_currency``, USD)
premium_conversion  ``underlying_price``
index_price         ``info.estimated_delivery_price`` (the index; its 30-min average in the
                    half hour before an expiry). The book summary carries no index field.
open_interest       ccxt ``openInterest`` (contracts of 1 coin)
volume              ccxt ``baseVolume`` (24 h, contracts)
venue_mark_iv       ``info.mark_iv`` / 100 where present (percent on the wire; the 2022
                    recordings in ../shared/data lack it)
venue_bid_iv/ask_iv ``info.bid_iv`` / ``info.ask_iv`` / 100 where present (not in the book
                    summary today)
bid_size, ask_size  not in the book summary: missing (one ``public/ticker`` call per option
                    would give them; too costly for a whole chain)
venue_delta         not in the book summary: missing
==================  ===================================================================

Deribit's coin premium times ``underlying_price`` is the USD premium that undiscounted
Black-76 with ``F = underlying_price`` prices at Deribit's ``mark_iv`` (checked in the tests on a
real recording). Deep in-the-money puts cost more than one coin; nothing is capped.

Only coin-settled (inverse) options are read. Deribit's USDC-settled (linear) options come
through the USDC book summary and are left out: an underlying that has only those is refused
with that reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import ccxt
import pandas as pd

from volcal.sources.venues._base import (
    Retry,
    VenueAdapter,
    count_value,
    frame_from_rows,
    market_fields,
    option_markets,
    premium_fields,
    quote_value,
    utc_from_ms,
)

# Deribit quotes implied vols in percent.
_PERCENT = 100.0
_SYNTHETIC_PREFIX = "SYN."
_INDEX_UNDERLYING = "index_price"


def forward_source(underlying_index: str | None) -> str | None:
    """Chain ``forward_source`` for Deribit's ``underlying_index`` field.

    ``"SYN.BTC-24JUN22"`` -> ``"synthetic_future"``; ``"index_price"`` -> ``"index"``;
    ``"BTC-24JUN22"`` -> ``"future"``; missing -> ``None``.
    """
    if not underlying_index:
        return None
    if underlying_index.startswith(_SYNTHETIC_PREFIX):
        return "synthetic_future"
    if underlying_index == _INDEX_UNDERLYING:
        return "index"
    return "future"


def _percent(value: Any) -> float:
    return quote_value(value) / _PERCENT


def parse_book_summary(
    option: dict, market: dict | None, *, underlying: str, fetched_at: pd.Timestamp
) -> dict[str, Any]:
    """One Chain row from a ccxt ``Option`` of Deribit's ``public/get_book_summary_by_currency``.

    Parameters
    ----------
    option : dict
        ccxt's parsed option (``exchange.fetch_option_chain(...)[symbol]``); its ``info`` is
        the raw row, e.g. (real, 2022-06-04)::

            {"volume": 175.6, "underlying_price": 29755.49, "underlying_index": "BTC-24JUN22",
             "quote_currency": "BTC", "price_change": -13.2231, "open_interest": 1124.7,
             "mid_price": 0.053, "mark_price": 0.05317014, "low": 0.0515, "last": 0.0525,
             "interest_rate": 0.0, "instrument_name": "BTC-24JUN22-30000-C", "high": 0.0605,
             "estimated_delivery_price": 29716.47, "creation_timestamp": 1654338604906,
             "bid_price": 0.0525, "base_currency": "BTC", "ask_price": 0.0535}

        A row without quotes has ``"bid_price": null`` (and ``mid_price``, ``high``, ``low``).
    market : dict or None
        The ccxt market of the instrument (None if the loaded markets lack it).
    underlying : str
        The requested underlying (``"BTC"``).
    fetched_at : Timestamp
        Fetch time (UTC), the snapshot where ``creation_timestamp`` is absent.

    Returns
    -------
    dict
        Chain columns; premiums in USD (coin premium x ``underlying_price``).
    """
    info = option["info"]
    forward = quote_value(info.get("underlying_price"))
    premium_currency = info.get("quote_currency") or (market or {}).get("settle") or underlying
    quote_currency = (market or {}).get("quote") or "USD"
    # An inverse option's premium is in coin; a USD-quoted one needs no conversion.
    conversion = 1.0 if premium_currency == quote_currency else forward
    snapshot = utc_from_ms(info.get("creation_timestamp"))
    return {
        "venue": DeribitAdapter.venue,
        "underlying": underlying,
        **market_fields(market, info.get("instrument_name")),
        "snapshot": fetched_at if snapshot is pd.NaT else snapshot,
        **premium_fields(
            quote_value(option.get("bidPrice")),
            quote_value(option.get("askPrice")),
            quote_value(option.get("markPrice")),
            conversion=conversion,
            premium_currency=premium_currency,
        ),
        "quote_currency": quote_currency,
        "bid_size": math.nan,
        "ask_size": math.nan,
        "forward": forward,
        "forward_source": forward_source(info.get("underlying_index")),
        "index_price": quote_value(info.get("estimated_delivery_price")),
        "open_interest": count_value(option.get("openInterest")),
        "volume": count_value(option.get("baseVolume")),
        "venue_mark_iv": _percent(info.get("mark_iv")),
        "venue_bid_iv": _percent(info.get("bid_iv")),
        "venue_ask_iv": _percent(info.get("ask_iv")),
        "venue_delta": math.nan,
    }


@dataclass(frozen=True)
class _Payloads:
    option_chain: dict[str, dict]


class DeribitAdapter(VenueAdapter):
    """Deribit through ccxt: see the module docstring for endpoints and fields."""

    venue = "deribit"
    ccxt_id = "deribit"
    markets_endpoint = "load_markets (public/get_currencies, public/get_instruments)"

    def _inverse_option_markets(self, exchange: ccxt.Exchange) -> list[dict]:
        return [m for m in option_markets(exchange) if m.get("settle") == m.get("base")]

    def option_underlyings(self, exchange: ccxt.Exchange) -> tuple[str, ...]:
        return tuple(sorted({market["base"] for market in self._inverse_option_markets(exchange)}))

    def underlying_note(self, exchange: ccxt.Exchange, underlying: str) -> str:
        linear = {m["base"] for m in option_markets(exchange) if m.get("settle") != m.get("base")}
        if underlying in linear:
            return f"{underlying} has only USDC-settled (linear) options, which are not read"
        return ""

    def fetch(self, exchange: ccxt.Exchange, underlying: str, retry: Retry) -> _Payloads:
        chain = retry(
            "public/get_book_summary_by_currency", exchange.fetch_option_chain, underlying
        )
        return _Payloads(option_chain=chain)

    def parse(
        self,
        exchange: ccxt.Exchange,
        underlying: str,
        payloads: _Payloads,
        fetched_at: pd.Timestamp,
    ) -> pd.DataFrame:
        markets = exchange.markets or {}
        rows = [
            parse_book_summary(
                option, markets.get(symbol), underlying=underlying, fetched_at=fetched_at
            )
            for symbol, option in payloads.option_chain.items()
        ]
        return frame_from_rows(rows)

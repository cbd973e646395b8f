"""Bybit option chains (USDC- or USDT-settled options quoted in USD) through ccxt.

Requests (Bybit API v5, https://bybit-exchange.github.io/docs/v5/intro):

- markets: ``GET /v5/market/instruments-info?category=option&baseCoin=<coin>`` for each base
  coin in ccxt's ``options['fetchMarkets']['options']`` (ccxt ``load_markets``, option
  markets only);
- chain: ``GET /v5/market/tickers?category=option&baseCoin=<coin>`` (implicit
  ``publicGetV5MarketTickers``, parsed by ccxt's ``parse_option_chain``, exactly what
  ``fetch_option_chain`` does; called directly to keep the response's ``time``, which
  ``fetch_option_chain`` drops).

Where each Chain field comes from (``info`` is the raw tickers row ccxt keeps):

==================  ===================================================================
Chain field         source
==================  ===================================================================
instrument          market ``id`` (``symbol``, e.g. ``BTC-27DEC24-55000-P``; USDT-settled
                    ones end in ``-USDT``)
expiry              market ``expiry`` (``deliveryTime``, ms)
strike, right       market ``strike`` (from the symbol), ``optionType`` (``optionsType``)
snapshot            the response's ``time`` (ms, server time of the snapshot); else the
                    fetch time
forward             ``info.underlyingPrice``: the expiry's underlying (forward) price that
                    Bybit's IVs use (it differs from ``indexPrice`` by the basis). Bybit
                    does not say how it builds it, so ``forward_source`` is ``venue``
bid, ask, mark      ccxt ``bidPrice`` (``bid1Price``), ``askPrice`` (``ask1Price``),
                    ``markPrice``: USD per coin of underlying; ``"0"`` = no quote
premium_currency    market ``settle`` (USDC or USDT); quote_currency is the market quote
premium_conversion  1: Bybit quotes the premium in USD and settles it one to one in the
                    stablecoin
bid_size, ask_size  ``info.bid1Size``, ``info.ask1Size`` (contracts of 1 coin; ``"0"`` =
                    no quote)
index_price         ``info.indexPrice``
open_interest       ccxt ``openInterest`` (contracts)
volume              ``info.volume24h`` (contracts; ccxt's ``baseVolume`` is
                    ``totalVolume``, the all-time total)
venue_mark_iv, ...  ``info.markIv``, ``info.bid1Iv``, ``info.ask1Iv`` (decimals; ``"0"`` = no
                    quote)
venue_delta         ``info.delta``
==================  ===================================================================
"""

from __future__ import annotations

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
    signed_value,
    utc_from_ms,
)

# Bybit's option premiums are USD amounts settled one to one in USDC or USDT.
_STABLECOIN_AT_PAR = 1.0


@dataclass(frozen=True)
class _Payloads:
    option_chain: dict[str, dict]
    time: Any


def parse_ticker(
    option: dict,
    market: dict | None,
    *,
    snapshot: pd.Timestamp,
    underlying: str,
) -> dict[str, Any]:
    """One Chain row from a ccxt ``Option`` of Bybit's ``/v5/market/tickers?category=option``.

    Parameters
    ----------
    option : dict
        ccxt's parsed option; ``info`` is the raw row, e.g. (ccxt's sample of the Bybit
        response; no quotes on either side)::

            {"symbol": "BTC-27DEC24-55000-P", "bid1Price": "0", "bid1Size": "0",
             "bid1Iv": "0", "ask1Price": "0", "ask1Size": "0", "ask1Iv": "0",
             "lastPrice": "10980", "highPrice24h": "0", "lowPrice24h": "0",
             "markPrice": "11814.66756236", "indexPrice": "63838.92", "markIv": "0.8866",
             "underlyingPrice": "71690.55303594", "openInterest": "0.01",
             "turnover24h": "0", "volume24h": "0", "totalVolume": "2",
             "totalTurnover": "78719", "delta": "-0.23284954", "gamma": "0.0000055",
             "vega": "191.70757975", "theta": "-30.43617927",
             "predictedDeliveryPrice": "0", "change24h": "0"}

    market : dict or None
        The instrument's ccxt market.
    snapshot : Timestamp
        The response's ``time`` (or the fetch time), UTC.
    underlying : str
        The requested underlying.
    """
    info = option["info"]
    market = market or {}
    return {
        "venue": BybitAdapter.venue,
        "underlying": underlying,
        **market_fields(market or None, info.get("symbol")),
        "snapshot": snapshot,
        **premium_fields(
            quote_value(option.get("bidPrice")),
            quote_value(option.get("askPrice")),
            quote_value(option.get("markPrice")),
            conversion=_STABLECOIN_AT_PAR,
            premium_currency=market.get("settle") or "USDC",
        ),
        "quote_currency": market.get("quote") or "USD",
        "bid_size": quote_value(info.get("bid1Size")),
        "ask_size": quote_value(info.get("ask1Size")),
        "forward": quote_value(info.get("underlyingPrice")),
        "forward_source": "venue",
        "index_price": quote_value(info.get("indexPrice")),
        "open_interest": count_value(option.get("openInterest")),
        "volume": count_value(info.get("volume24h")),
        "venue_mark_iv": quote_value(info.get("markIv")),
        "venue_bid_iv": quote_value(info.get("bid1Iv")),
        "venue_ask_iv": quote_value(info.get("ask1Iv")),
        "venue_delta": signed_value(info.get("delta")),
    }


class BybitAdapter(VenueAdapter):
    """Bybit through ccxt: see the module docstring for endpoints and fields."""

    venue = "bybit"
    ccxt_id = "bybit"
    markets_endpoint = "load_markets (v5/market/instruments-info?category=option)"
    option_markets_only = True

    def fetch(self, exchange: ccxt.Exchange, underlying: str, retry: Retry) -> _Payloads:
        base_id = next(
            (m["baseId"] for m in option_markets(exchange) if m["base"] == underlying),
            underlying,
        )
        response = retry(
            "v5/market/tickers",
            exchange.publicGetV5MarketTickers,
            {"category": "option", "baseCoin": base_id},
        )
        rows = (response.get("result") or {}).get("list") or []
        chain = exchange.parse_option_chain(rows, None, "symbol")
        return _Payloads(option_chain=chain, time=response.get("time"))

    def parse(
        self,
        exchange: ccxt.Exchange,
        underlying: str,
        payloads: _Payloads,
        fetched_at: pd.Timestamp,
    ) -> pd.DataFrame:
        markets = exchange.markets or {}
        snapshot = utc_from_ms(payloads.time)
        snapshot = fetched_at if snapshot is pd.NaT else snapshot
        rows = [
            parse_ticker(option, markets.get(symbol), snapshot=snapshot, underlying=underlying)
            for symbol, option in payloads.option_chain.items()
        ]
        return frame_from_rows(rows)

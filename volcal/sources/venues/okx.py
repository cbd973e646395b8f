"""OKX option chains (coin-settled, inverse options on BTC-USD, ETH-USD...) through ccxt.

Requests (OKX API v5, https://www.okx.com/docs-v5/en/):

- before markets: ``GET /api/v5/public/underlying?instType=OPTION`` (implicit
  ``publicGetPublicUnderlying``), so that ccxt loads the option markets of every underlying OKX
  lists (ccxt's default ``options['defaultUnderlying']`` is only BTC-USD and ETH-USD);
- markets: ``GET /api/v5/public/instruments?instType=OPTION&uly=<uly>`` per underlying
  (ccxt ``load_markets``, option markets only);
- chain, for the underlying ``<uly>`` (e.g. ``BTC-USD``):

  1. ``market/tickers?instType=OPTION&uly=`` (ccxt ``fetch_option_chain``): best bid/ask,
     sizes, 24 h volume, quote time;
  2. ``public/opt-summary?uly=`` (ccxt ``fetch_all_greeks``): forward ``fwdPx``, mark/bid/ask
     IVs, Black-Scholes delta. ccxt's unified ``Option`` has no forward at all on OKX;
  3. ``public/mark-price?instType=OPTION&uly=`` (ccxt ``fetch_mark_prices``): mark prices;
  4. ``public/open-interest?instType=OPTION&uly=`` (implicit ``publicGetPublicOpenInterest``:
     ccxt's ``fetch_open_interests`` only builds SWAP and FUTURES requests in 4.5.90);
  5. ``market/index-tickers?instId=<uly>`` (implicit ``publicGetMarketIndexTickers``): index.

Where each Chain field comes from:

==================  ===================================================================
Chain field         source
==================  ===================================================================
instrument          market ``id`` (``instId``, e.g. ``BTC-USD-220624-50000-C``)
expiry              market ``expiry`` (``expTime``, ms)
strike, right       market ``strike`` (``stk``), ``optionType`` (``optType``)
snapshot            tickers ``ts`` (ms); else opt-summary ``ts``; else the fetch time
forward             opt-summary ``fwdPx`` (USD): OKX's forward for the expiry, the one its
                    IVs use. OKX does not say how it builds it (a future or a synthetic),
                    so ``forward_source`` is ``venue``
bid, ask            tickers ``bidPx``, ``askPx`` (coin per coin of underlying; ``""`` when
                    there is no quote) x ``fwdPx``: USD
mark                mark-price ``markPx`` (coin) x ``fwdPx``
premium_currency    market ``settle`` (the coin); quote_currency is the market quote (USD)
premium_conversion  ``fwdPx``; NaN where the option summary lacks the instrument, and then
                    the premiums are missing rather than left in coin
bid_size, ask_size  tickers ``bidSz``, ``askSz`` (contracts of ``ctVal`` x ``ctMult`` coin:
                    0.01 BTC, 0.1 ETH)
index_price         index-tickers ``idxPx``
open_interest       open-interest ``oi`` (contracts)
volume              tickers ``vol24h`` (contracts; ccxt's ``baseVolume`` is ``volCcy24h``,
                    in coin)
venue_mark_iv, ...  opt-summary ``markVol``, ``bidVol``, ``askVol`` (decimals; ``"0"`` = no
                    quote)
venue_delta         opt-summary ``deltaBS`` (Black-Scholes delta; OKX's ``delta`` is the
                    premium-adjusted coin delta)
==================  ===================================================================

Every OKX number is a JSON string; ``""`` and ``"0"`` mark missing quotes.
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
    signed_value,
    utc_from_ms,
)


@dataclass(frozen=True)
class _Payloads:
    option_chain: dict[str, dict]
    greeks: dict[str, dict]
    mark_prices: dict[str, dict]
    open_interest: dict[str, dict]
    index: dict


def parse_option_summary(greeks: dict | None) -> dict[str, Any]:
    """Forward, IVs and delta from a ccxt ``Greeks`` of OKX's ``public/opt-summary``.

    ``greeks["info"]`` is the raw row, e.g.::

        {"instType": "OPTION", "instId": "BTC-USD-240329-32000-C", "uly": "BTC-USD",
         "askVol": "0", "bidVol": "0", "markVol": "0.5916253554539876",
         "fwdPx": "37675.80158694987186", "delta": "0.5105464486882039",
         "deltaBS": "0.7325502184143025", "gamma": "-0.13183515090501083",
         "vega": "0.0020207455080045846", "theta": "-0.0004202992014012855",
         "lever": "4.504428015946619", "realVol": "0", "volLv": "0.5948549730405797",
         "ts": "1699586421976"}

    Returns
    -------
    dict
        ``forward`` (USD), ``venue_mark_iv``, ``venue_bid_iv``, ``venue_ask_iv`` (decimals,
        ``"0"`` -> NaN), ``venue_delta`` (``deltaBS``) and ``timestamp`` (UTC or NaT).
    """
    greeks = greeks or {}
    info = greeks.get("info") or {}
    return {
        "forward": quote_value(info.get("fwdPx")),
        "venue_mark_iv": quote_value(greeks.get("markImpliedVolatility")),
        "venue_bid_iv": quote_value(greeks.get("bidImpliedVolatility")),
        "venue_ask_iv": quote_value(greeks.get("askImpliedVolatility")),
        "venue_delta": signed_value(info.get("deltaBS")),
        "timestamp": utc_from_ms(greeks.get("timestamp")),
    }


def parse_ticker(
    option: dict,
    market: dict | None,
    summary: dict[str, Any],
    *,
    mark_price: Any,
    open_interest: Any,
    index_price: float,
    underlying: str,
    fetched_at: pd.Timestamp,
) -> dict[str, Any]:
    """One Chain row from a ccxt ``Option`` of OKX's ``market/tickers`` plus the other payloads.

    Parameters
    ----------
    option : dict
        ccxt's parsed option (``fetch_option_chain(...)[symbol]``); ``info`` is the raw row,
        e.g. (real, 2022-06-02; no bid)::

            {"instType": "OPTION", "instId": "BTC-USD-220624-50000-C", "last": "0.0005",
             "lastSz": "6", "askPx": "0.0015", "askSz": "330", "bidPx": "", "bidSz": "",
             "open24h": "0.0005", "high24h": "0.0005", "low24h": "0.0005",
             "sodUtc0": "0.0005", "sodUtc8": "0.0005", "volCcy24h": "0", "vol24h": "0",
             "ts": "1654166283149"}

    market : dict or None
        The instrument's ccxt market.
    summary : dict
        :func:`parse_option_summary` of the instrument's opt-summary row.
    mark_price : str or float
        ``markPx`` (coin) from ``public/mark-price``; raw row e.g.
        ``{"instType": "OPTION", "instId": "BTC-USD-220624-50000-C", "markPx": "0.0009",
        "ts": "1654166283000"}``.
    open_interest : str or float
        ``oi`` (contracts) from ``public/open-interest``; raw row e.g.
        ``{"instId": "BTC-USD-220520-18000-C", "instType": "OPTION", "oi": "0",
        "oiCcy": "0", "ts": "1654348880968"}`` (real, 2022-06-04).
    index_price : float
        ``idxPx`` from ``market/index-tickers`` (USD).
    underlying : str
        The requested underlying.
    fetched_at : Timestamp
        Fetch time (UTC), the snapshot where no payload has a time.
    """
    info = option["info"]
    market = market or {}
    forward = summary["forward"]
    quote_time = utc_from_ms(option.get("timestamp"))
    if quote_time is pd.NaT:
        quote_time = summary["timestamp"] if summary["timestamp"] is not pd.NaT else fetched_at
    return {
        "venue": OkxAdapter.venue,
        "underlying": underlying,
        **market_fields(market or None, info.get("instId")),
        "snapshot": quote_time,
        # Inverse: coin premium per coin of underlying x the expiry's forward = USD.
        **premium_fields(
            quote_value(option.get("bidPrice")),
            quote_value(option.get("askPrice")),
            quote_value(mark_price),
            conversion=forward,
            premium_currency=market.get("settle") or underlying,
        ),
        "quote_currency": market.get("quote") or "USD",
        "bid_size": quote_value(info.get("bidSz")),
        "ask_size": quote_value(info.get("askSz")),
        "forward": forward,
        "forward_source": "venue",
        "index_price": index_price,
        "open_interest": count_value(open_interest),
        "volume": count_value(info.get("vol24h")),
        "venue_mark_iv": summary["venue_mark_iv"],
        "venue_bid_iv": summary["venue_bid_iv"],
        "venue_ask_iv": summary["venue_ask_iv"],
        "venue_delta": summary["venue_delta"],
    }


class OkxAdapter(VenueAdapter):
    """OKX through ccxt: see the module docstring for endpoints and fields."""

    venue = "okx"
    ccxt_id = "okx"
    markets_endpoint = "load_markets (public/instruments?instType=OPTION)"
    option_markets_only = True

    def prepare(self, exchange: ccxt.Exchange, retry: Retry) -> None:
        response = retry(
            "public/underlying", exchange.publicGetPublicUnderlying, {"instType": "OPTION"}
        )
        # {"code": "0", "data": [["BTC-USD", "ETH-USD"]], "msg": ""}
        data = response.get("data") or [[]]
        underlyings = [uly for uly in (data[0] if data else []) if isinstance(uly, str)]
        if underlyings:
            exchange.options["defaultUnderlying"] = underlyings

    def _uly(self, exchange: ccxt.Exchange, underlying: str) -> str:
        for market in option_markets(exchange):
            if market["base"] == underlying and market["info"].get("uly"):
                return market["info"]["uly"]
        return f"{underlying}-USD"

    def fetch(self, exchange: ccxt.Exchange, underlying: str, retry: Retry) -> _Payloads:
        uly = self._uly(exchange, underlying)
        chain = retry("market/tickers", exchange.fetch_option_chain, underlying, {"uly": uly})
        greeks = retry("public/opt-summary", exchange.fetch_all_greeks, None, {"uly": uly})
        marks = retry(
            "public/mark-price", exchange.fetch_mark_prices, None, {"type": "option", "uly": uly}
        )
        open_interest = retry(
            "public/open-interest",
            exchange.publicGetPublicOpenInterest,
            {"instType": "OPTION", "uly": uly},
        )
        index = retry("market/index-tickers", exchange.publicGetMarketIndexTickers, {"instId": uly})
        return _Payloads(
            option_chain=chain,
            greeks=greeks,
            mark_prices=marks,
            open_interest={row.get("instId"): row for row in open_interest.get("data") or []},
            index=(index.get("data") or [{}])[0],
        )

    def parse(
        self,
        exchange: ccxt.Exchange,
        underlying: str,
        payloads: _Payloads,
        fetched_at: pd.Timestamp,
    ) -> pd.DataFrame:
        markets = exchange.markets or {}
        index_price = quote_value(payloads.index.get("idxPx"))
        rows = []
        for symbol, option in payloads.option_chain.items():
            market = markets.get(symbol)
            instrument = option["info"].get("instId")
            rows.append(
                parse_ticker(
                    option,
                    market,
                    parse_option_summary(payloads.greeks.get(symbol)),
                    mark_price=(payloads.mark_prices.get(symbol) or {}).get("markPrice"),
                    open_interest=(payloads.open_interest.get(instrument) or {}).get(
                        "oi", math.nan
                    ),
                    index_price=index_price,
                    underlying=underlying,
                    fetched_at=fetched_at,
                )
            )
        return frame_from_rows(rows)

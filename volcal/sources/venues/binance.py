"""Binance option chains (European options on a USDT index, USDT-settled) through ccxt.

Requests (Binance options API, ``https://eapi.binance.com``):

- markets: ``GET /eapi/v1/exchangeInfo`` (ccxt ``load_markets`` with option markets only);
- chain:

  1. ``GET /eapi/v1/ticker`` (implicit ``eapiPublicGetTicker``, every option in one
     response, each row parsed by ccxt's ``parse_option``; the unified ``fetch_option`` asks
     for one symbol per request): best bid/ask, 24 h volume, ``exercisePrice``;
  2. ``GET /eapi/v1/mark`` (ccxt ``fetch_all_greeks``): mark price, mark/bid/ask IVs, delta
     (ccxt's ``Greeks`` leaves bid/ask prices and the underlying empty on Binance);
  3. ``GET /eapi/v1/index?underlying=<BTCUSDT>`` (implicit ``eapiPublicGetIndex``): the spot
     index.

Where each Chain field comes from:

==================  ===================================================================
Chain field         source
==================  ===================================================================
instrument          market ``id`` (``symbol``, e.g. ``BTC-241227-80000-C``)
expiry              market ``expiry`` (``expiryDate``, ms)
strike, right       market ``strike`` (``strikePrice``), ``optionType`` (``side``)
snapshot            the fetch time: neither the ticker nor the mark payload carries a
                    quote time (the ticker's ``closeTime`` is its last trade's)
forward             ticker ``exercisePrice`` (ccxt ``underlyingPrice``): Binance returns the
                    spot index price there, and the estimated settlement price in the hour
                    before expiry. Binance publishes no forward per expiry, so
                    ``forward_source`` is ``index``: cleaning should prefer a parity
                    forward
bid, ask            ticker ``bidPrice``, ``askPrice`` (ccxt ``bidPrice``/``askPrice``; USDT
                    per coin; ``"0"`` = no quote)
mark                mark ``markPrice`` (USDT)
premium_currency    market ``settle`` (USDT); quote_currency is the market quote (USDT);
                    premium_conversion 1
bid_size, ask_size  not in these payloads: missing (``/eapi/v1/depth`` per symbol)
index_price         index ``indexPrice``
open_interest       missing: ``/eapi/v1/openInterest`` needs one request per expiry
volume              ticker ``volume`` (contracts)
venue_mark_iv, ...  mark ``markIV``, ``bidIV``, ``askIV`` (decimals; ``"0"`` or ``"-1.0"``
                    = no quote)
venue_delta         mark ``delta``
==================  ===================================================================
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
)

# Binance options are quoted and settled in USDT: no conversion.
_LINEAR = 1.0


@dataclass(frozen=True)
class _Payloads:
    options: list[tuple[dict | None, dict]]
    greeks: dict[str, dict]
    index: dict


def parse_ticker(
    option: dict,
    market: dict | None,
    greeks: dict | None,
    *,
    index_price: float,
    underlying: str,
    fetched_at: pd.Timestamp,
) -> dict[str, Any]:
    """One Chain row from Binance's ``/eapi/v1/ticker`` and ``/eapi/v1/mark`` rows.

    Parameters
    ----------
    option : dict
        ccxt's ``parse_option`` of a ticker row; ``info`` is the raw row, e.g. (ccxt's sample
        of the Binance response; no ask)::

            {"symbol": "BTC-241227-80000-C", "priceChange": "0",
             "priceChangePercent": "0", "lastPrice": "2750", "lastQty": "0",
             "open": "2750", "high": "2750", "low": "2750", "volume": "0", "amount": "0",
             "bidPrice": "4880", "askPrice": "0", "openTime": 0, "closeTime": 0,
             "firstTradeId": 0, "tradeCount": 0, "strikePrice": "80000",
             "exercisePrice": "63944.09893617"}

    market : dict or None
        The instrument's ccxt market.
    greeks : dict or None
        ccxt's ``Greeks`` of the instrument's ``/eapi/v1/mark`` row, raw e.g.::

            {"symbol": "BTC-231229-40000-C", "markPrice": "2012", "bidIV": "0.60236275",
             "askIV": "0.62267244", "markIV": "0.6125176", "delta": "0.39111646",
             "theta": "-32.13948531", "gamma": "0.00004656", "vega": "51.70062218",
             "highPriceLimit": "6474", "lowPriceLimit": "5", "riskFreeInterest": "0.1"}

    index_price : float
        ``indexPrice`` of ``/eapi/v1/index``.
    underlying : str
        The requested underlying.
    fetched_at : Timestamp
        Fetch time (UTC): the snapshot.
    """
    info = option["info"]
    market = market or {}
    greeks = greeks or {}
    return {
        "venue": BinanceAdapter.venue,
        "underlying": underlying,
        **market_fields(market or None, info.get("symbol")),
        "snapshot": fetched_at,
        **premium_fields(
            quote_value(option.get("bidPrice")),
            quote_value(option.get("askPrice")),
            quote_value(greeks.get("markPrice")),
            conversion=_LINEAR,
            premium_currency=market.get("settle") or "USDT",
        ),
        "quote_currency": market.get("quote") or "USDT",
        "bid_size": math.nan,
        "ask_size": math.nan,
        "forward": quote_value(option.get("underlyingPrice")),
        "forward_source": "index",
        "index_price": index_price,
        "open_interest": math.nan,
        "volume": count_value(info.get("volume")),
        "venue_mark_iv": quote_value(greeks.get("markImpliedVolatility")),
        "venue_bid_iv": quote_value(greeks.get("bidImpliedVolatility")),
        "venue_ask_iv": quote_value(greeks.get("askImpliedVolatility")),
        "venue_delta": signed_value(greeks.get("delta")),
    }


class BinanceAdapter(VenueAdapter):
    """Binance through ccxt: see the module docstring for endpoints and fields."""

    venue = "binance"
    ccxt_id = "binance"
    markets_endpoint = "load_markets (eapi/v1/exchangeInfo)"
    option_markets_only = True

    def fetch(self, exchange: ccxt.Exchange, underlying: str, retry: Retry) -> _Payloads:
        by_id = {m["id"]: m for m in option_markets(exchange) if m["base"] == underlying}
        index_id = next(
            (m["info"]["underlying"] for m in by_id.values() if m["info"].get("underlying")),
            f"{underlying}USDT",
        )
        tickers = retry("eapi/v1/ticker", exchange.eapiPublicGetTicker)
        options = []
        for row in tickers if isinstance(tickers, list) else []:
            instrument = row.get("symbol") or ""
            market = by_id.get(instrument)
            # Rows of other underlyings are skipped; unknown ones of this underlying are kept
            # (without contract terms) so that validation accounts for them.
            if market is not None or instrument.startswith(f"{underlying}-"):
                options.append((market, exchange.parse_option(row, None, market)))
        greeks = retry("eapi/v1/mark", exchange.fetch_all_greeks)
        index = retry("eapi/v1/index", exchange.eapiPublicGetIndex, {"underlying": index_id})
        return _Payloads(options=options, greeks=greeks, index=index or {})

    def parse(
        self,
        exchange: ccxt.Exchange,
        underlying: str,
        payloads: _Payloads,
        fetched_at: pd.Timestamp,
    ) -> pd.DataFrame:
        index_price = quote_value(payloads.index.get("indexPrice"))
        rows = [
            parse_ticker(
                option,
                market,
                payloads.greeks.get(option["symbol"]),
                index_price=index_price,
                underlying=underlying,
                fetched_at=fetched_at,
            )
            for market, option in payloads.options
        ]
        return frame_from_rows(rows)

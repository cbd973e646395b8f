"""Venue adapters on ccxt: recorded payloads replayed through ccxt's own parsers, unit by unit.

Fixtures are cassettes in tests/fixtures/venues/ (each says under ``_source`` which parts are
real recordings and which follow the venue's documentation). Expected values are computed here
from the raw fixture fields, independently of the adapters: e.g. a Deribit USD premium is the
raw coin premium times the raw ``underlying_price``.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import ccxt
import numpy as np
import pandas as pd
import pytest

import volcal as vc
from volcal.sources.replay import (
    STRIPPED,
    ReplayMissError,
    cassette_from_history,
    load_cassette,
    replay_exchange,
    start_recording,
)
from volcal.sources.venues import (
    SUPPORTED_VENUES,
    RetriesExhaustedError,
    UnknownUnderlyingError,
    UnknownVenueError,
    build_exchange,
    fetch_chain,
)
from volcal.sources.venues._base import (
    RETRY_BASE_DELAY_S,
    count_value,
    quote_value,
)
from volcal.sources.venues.deribit import forward_source as deribit_forward_source

FIXTURES = Path(__file__).parent / "fixtures" / "venues"
SECONDS_PER_YEAR = 365.0 * 86400.0
# Floating-point products of fixture numbers: a few ulps.
REL_TOL = 1e-12
# Endpoint path fragments of each venue's chain requests (everything after load_markets).
CHAIN_ENDPOINTS = {
    "deribit": ("/public/get_book_summary_by_currency",),
    "okx": (
        "/market/tickers",
        "/public/opt-summary",
        "/public/mark-price",
        "/public/open-interest",
        "/market/index-tickers",
    ),
    "bybit": ("/v5/market/tickers",),
    "binance": ("/eapi/v1/ticker", "/eapi/v1/mark", "/eapi/v1/index"),
}
# (cassette, endpoint fragment that fails, ccxt class the venue's error maps to)
RETRIED = {
    "deribit": ("deribit_btc_rate_limited.json", "get_book_summary", ccxt.DDoSProtection),
    "okx": ("okx_btc_rate_limited.json", "/market/tickers", ccxt.RateLimitExceeded),
    "bybit": ("bybit_btc_rate_limited.json", "/v5/market/tickers", ccxt.RateLimitExceeded),
    # ccxt's binance.handle_errors raises DDoSProtection for HTTP 418 and 429.
    "binance": ("binance_btc_rate_limited.json", "/eapi/v1/ticker", ccxt.DDoSProtection),
}
FATAL = {
    "deribit": ("deribit_btc_bad_request.json", "get_book_summary", ccxt.BadRequest),
    "okx": ("okx_btc_bad_request.json", "/public/opt-summary", ccxt.BadRequest),
    "bybit": ("bybit_btc_bad_request.json", "/v5/market/tickers", ccxt.BadRequest),
    "binance": ("binance_btc_bad_symbol.json", "/eapi/v1/index", ccxt.BadSymbol),
}


class SleepRecorder:
    """Stands in for time.sleep: records the delays, never waits."""

    def __init__(self):
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def cassette(name: str) -> dict:
    return load_cassette(FIXTURES / name)


def body(document: dict, fragment: str):
    """The recorded response body of the (first) request whose URL contains ``fragment``."""
    for interaction in document["interactions"]:
        if fragment in interaction["request"]["url"]:
            return interaction["response"]["body"]
    raise KeyError(fragment)


def by_instrument(chain) -> dict[str, pd.Series]:
    return {row["instrument"]: row for _, row in chain.frame.iterrows()}


def number(value) -> float:
    """A raw fixture field as the venue means it: NaN for null, "" and the placeholders."""
    if value in (None, "") or float(value) <= 0.0:
        return math.nan
    return float(value)


def utc_ms(value) -> pd.Timestamp:
    return pd.Timestamp(int(value), unit="ms", tz="UTC")


def check_row(row: pd.Series, expected: dict) -> None:
    """Every expected field equal (floats to REL_TOL, NaN equal to NaN)."""
    for field, want in expected.items():
        got = row[field]
        if isinstance(want, float):
            assert (math.isnan(want) and pd.isna(got)) or got == pytest.approx(want, rel=REL_TOL), (
                f"{row['instrument']} {field}: computed {got}, expected {want}, rel tol {REL_TOL}"
            )
        elif want is None:
            assert pd.isna(got), f"{row['instrument']} {field}: computed {got}, expected missing"
        else:
            assert got == want, f"{row['instrument']} {field}: computed {got!r}, expected {want!r}"


def replay_fetch(venue: str, name: str, underlying: str = "BTC", **options):
    return fetch_chain(venue, underlying, replay=FIXTURES / name, sleep=SleepRecorder(), **options)


# --- success replays, field by field -------------------------------------------------------


def test_deribit_chain_in_usd_from_coin_premiums():
    document = cassette("deribit_btc_success.json")
    summary = body(document, "get_book_summary_by_currency")["result"]
    instruments = {i["instrument_name"]: i for i in body(document, "get_instruments")["result"]}
    chain = replay_fetch("deribit", "deribit_btc_success.json")
    rows = by_instrument(chain)
    assert set(rows) == {raw["instrument_name"] for raw in summary}
    assert chain.rejected.empty
    for raw in summary:
        forward = raw["underlying_price"]
        instrument = instruments[raw["instrument_name"]]
        check_row(
            rows[raw["instrument_name"]],
            {
                "venue": "deribit",
                "underlying": "BTC",
                "snapshot": utc_ms(raw["creation_timestamp"]),
                "expiry": utc_ms(instrument["expiration_timestamp"]),
                "strike": instrument["strike"],
                "right": instrument["option_type"],
                # inverse: USD premium = coin premium x the expiry's underlying price
                "bid": number(raw["bid_price"]) * forward,
                "ask": number(raw["ask_price"]) * forward,
                "mark": raw["mark_price"] * forward,
                "quote_currency": "USD",
                "premium_currency": "BTC",
                "premium_conversion": forward,
                "forward": forward,
                "index_price": raw["estimated_delivery_price"],
                "open_interest": raw["open_interest"],
                "volume": raw["volume"],
                # percent on the wire, decimal in the chain; absent in the 2022 recording
                "venue_mark_iv": raw["mark_iv"] / 100 if "mark_iv" in raw else math.nan,
                "bid_size": math.nan,
                "ask_size": math.nan,
            },
        )
    # The real row without quotes (nulls) and with a mark above one coin, not capped.
    deep_put = rows["BTC-30DEC22-90000-P"]
    assert pd.isna(deep_put["bid"]) and pd.isna(deep_put["ask"])
    assert deep_put["mark"] == pytest.approx(1.98432769 * 30236.72, rel=REL_TOL)
    assert rows["BTC-10JUN22-32000-C"]["forward_source"] == "synthetic_future"
    assert rows["BTC-24JUN22-30000-C"]["forward_source"] == "future"


@pytest.mark.parametrize(
    ("underlying_index", "expected"),
    [
        ("SYN.BTC-10JUN22", "synthetic_future"),
        ("index_price", "index"),
        ("BTC-24JUN22", "future"),
        (None, None),
        ("", None),
    ],
)
def test_deribit_forward_source(underlying_index, expected):
    assert deribit_forward_source(underlying_index) == expected


def test_deribit_usd_mark_reprices_deribits_mark_iv_with_black76():
    # Real Deribit values (deribit_eth_mark_iv.json from a 2022 get_order_book result): the
    # USD mark (coin mark x underlying_price) inverted by undiscounted Black-76 with
    # F = underlying_price and ACT/365 time to the 08:00 UTC expiry gives Deribit's mark_iv.
    # Tolerance: Deribit rounds mark_iv to 0.01 vol point (5e-5) and this mark_price to
    # 1e-4 ETH; half that tick moves the IV by 6.6e-4 here. So 1e-3.
    tolerance = 1e-3
    raw = body(cassette("deribit_eth_mark_iv.json"), "get_book_summary")["result"][0]
    chain = replay_fetch("deribit", "deribit_eth_mark_iv.json", underlying="ETH")
    row = chain.frame.iloc[0]
    assert row["venue_mark_iv"] == pytest.approx(raw["mark_iv"] / 100, rel=REL_TOL)
    t = (row["expiry"] - row["snapshot"]).total_seconds() / SECONDS_PER_YEAR
    result = vc.implied_vol(
        np.array([row["mark"]]),
        np.array([row["forward"]]),
        np.array([row["strike"]]),
        np.array([t]),
        np.array([row["right"] == "call"]),
    )
    computed = float(np.asarray(result.vol)[0])
    expected = raw["mark_iv"] / 100
    assert abs(computed - expected) <= tolerance, (
        f"Black-76 IV of the USD mark: computed {computed}, Deribit {expected}, tol {tolerance}"
    )
    # Using the index instead of the forward would not reproduce it (DESIGN.md, Units).
    wrong = vc.implied_vol(
        np.array([raw["mark_price"] * row["index_price"]]),
        np.array([row["index_price"]]),
        np.array([row["strike"]]),
        np.array([t]),
        np.array([False]),
    )
    assert abs(float(np.asarray(wrong.vol)[0]) - expected) > tolerance


def test_okx_chain_converted_with_the_option_summary_forward():
    document = cassette("okx_btc_success.json")
    tickers = body(document, "/market/tickers")["data"]
    summary = {r["instId"]: r for r in body(document, "/public/opt-summary")["data"]}
    marks = {r["instId"]: r for r in body(document, "/public/mark-price")["data"]}
    open_interest = {r["instId"]: r for r in body(document, "/public/open-interest")["data"]}
    index = body(document, "/market/index-tickers")["data"][0]
    instruments = {r["instId"]: r for r in body(document, "uly=BTC-USD")["data"]}
    chain = replay_fetch("okx", "okx_btc_success.json")
    rows = by_instrument(chain)
    assert set(rows) == {raw["instId"] for raw in tickers}
    for raw in tickers:
        instrument = raw["instId"]
        greeks, market = summary[instrument], instruments[instrument]
        forward = float(greeks["fwdPx"])
        check_row(
            rows[instrument],
            {
                "snapshot": utc_ms(raw["ts"]),
                "expiry": utc_ms(market["expTime"]),
                "strike": float(market["stk"]),
                "right": "call" if market["optType"] == "C" else "put",
                # inverse: coin premium x the forward of the option summary
                "bid": number(raw["bidPx"]) * forward,
                "ask": number(raw["askPx"]) * forward,
                "mark": float(marks[instrument]["markPx"]) * forward,
                "quote_currency": "USD",
                "premium_currency": "BTC",
                "premium_conversion": forward,
                "forward": forward,
                "forward_source": "venue",
                "bid_size": number(raw["bidSz"]),
                "ask_size": number(raw["askSz"]),
                "index_price": float(index["idxPx"]),
                "open_interest": float(open_interest[instrument]["oi"]),
                "volume": float(raw["vol24h"]),
                "venue_mark_iv": number(greeks["markVol"]),
                "venue_bid_iv": number(greeks["bidVol"]),
                "venue_ask_iv": number(greeks["askVol"]),
                "venue_delta": float(greeks["deltaBS"]),
            },
        )
    # The real OKX ticker: no bid ("" on the wire, "0" bid vol) -> missing, not zero.
    real = rows["BTC-USD-220624-50000-C"]
    assert pd.isna(real["bid"]) and pd.isna(real["bid_size"]) and pd.isna(real["venue_bid_iv"])
    assert real["ask"] == pytest.approx(0.0015 * 29987.64, rel=REL_TOL)


def test_bybit_chain_placeholders_are_missing():
    document = cassette("bybit_btc_success.json")
    response = body(document, "/v5/market/tickers")
    instruments = {r["symbol"]: r for r in body(document, "baseCoin=BTC")["result"]["list"]}
    chain = replay_fetch("bybit", "bybit_btc_success.json")
    rows = by_instrument(chain)
    listed = [raw for raw in response["result"]["list"] if raw["symbol"] in instruments]
    assert set(rows) == {raw["symbol"] for raw in listed}
    for raw in listed:
        market = instruments[raw["symbol"]]
        check_row(
            rows[raw["symbol"]],
            {
                "snapshot": utc_ms(response["time"]),
                "expiry": utc_ms(market["deliveryTime"]),
                "strike": float(raw["symbol"].split("-")[2]),
                "right": market["optionsType"].lower(),
                "bid": number(raw["bid1Price"]),
                "ask": number(raw["ask1Price"]),
                "mark": float(raw["markPrice"]),
                "quote_currency": "USD",
                "premium_currency": "USDC",
                "premium_conversion": 1.0,
                "forward": float(raw["underlyingPrice"]),
                "forward_source": "venue",
                "bid_size": number(raw["bid1Size"]),
                "ask_size": number(raw["ask1Size"]),
                "index_price": float(raw["indexPrice"]),
                "open_interest": float(raw["openInterest"]),
                "volume": float(raw["volume24h"]),
                "venue_mark_iv": float(raw["markIv"]),
                "venue_bid_iv": number(raw["bid1Iv"]),
                "venue_ask_iv": number(raw["ask1Iv"]),
                "venue_delta": float(raw["delta"]),
            },
        )
    # "0" quotes, sizes and IVs of the quoteless put are missing, its zero volume is a count.
    put = rows["BTC-27DEC24-55000-P"]
    for field in ("bid", "ask", "bid_size", "ask_size", "venue_bid_iv", "venue_ask_iv"):
        assert pd.isna(put[field]), field
    assert put["volume"] == 0.0
    # A ticker for an instrument the markets no longer list is accounted for, not dropped.
    assert list(chain.rejected["instrument"]) == ["BTC-22MAR24-64000-C"]
    assert chain.rejected["reason"].iloc[0] == "expiry is missing"


def test_binance_chain_from_tickers_marks_and_index():
    document = cassette("binance_btc_success.json")
    tickers = body(document, "/eapi/v1/ticker")
    marks = {r["symbol"]: r for r in body(document, "/eapi/v1/mark")}
    index = body(document, "/eapi/v1/index")
    symbols = {r["symbol"]: r for r in body(document, "exchangeInfo")["optionSymbols"]}
    chain = replay_fetch("binance", "binance_btc_success.json")
    rows = by_instrument(chain)
    btc = [raw for raw in tickers if raw["symbol"].startswith("BTC-")]
    assert set(rows) == {raw["symbol"] for raw in btc}  # the ETH ticker is not in a BTC chain
    for raw in btc:
        mark, market = marks[raw["symbol"]], symbols[raw["symbol"]]
        check_row(
            rows[raw["symbol"]],
            {
                "snapshot": pd.Timestamp(document["recorded_at"]),  # no quote time: fetch time
                "expiry": utc_ms(market["expiryDate"]),
                "strike": float(market["strikePrice"]),
                "right": market["side"].lower(),
                "bid": number(raw["bidPrice"]),
                "ask": number(raw["askPrice"]),
                "mark": float(mark["markPrice"]),
                "quote_currency": "USDT",
                "premium_currency": "USDT",
                "premium_conversion": 1.0,
                "forward": float(raw["exercisePrice"]),
                "forward_source": "index",
                "bid_size": math.nan,
                "ask_size": math.nan,
                "index_price": float(index["indexPrice"]),
                "open_interest": math.nan,
                "volume": float(raw["volume"]),
                "venue_mark_iv": float(mark["markIV"]),
                "venue_bid_iv": number(mark["bidIV"]),
                "venue_ask_iv": number(mark["askIV"]),
                "venue_delta": float(mark["delta"]),
            },
        )
    # askPrice "0" and askIV "-1.0" are Binance's "no ask".
    call = rows["BTC-241227-80000-C"]
    assert pd.isna(call["ask"]) and pd.isna(call["venue_ask_iv"])


# --- errors: retried, fatal, refused ---------------------------------------------------------


@pytest.mark.parametrize("venue", SUPPORTED_VENUES)
def test_transient_errors_are_retried_with_backoff_then_named(venue):
    name, fragment, error_class = RETRIED[venue]
    exchange = build_exchange(venue, replay=FIXTURES / name)
    sleep = SleepRecorder()
    max_retries = 3
    with pytest.raises(RetriesExhaustedError) as caught:
        fetch_chain(venue, "BTC", exchange=exchange, max_retries=max_retries, sleep=sleep)
    error = caught.value
    assert isinstance(error.last_error, error_class)
    assert error.__cause__ is error.last_error
    assert error.venue == venue and error.attempts == max_retries + 1
    failing = [call for call in exchange.calls if fragment in call.url]
    assert len(failing) == max_retries + 1
    assert sleep.delays == [RETRY_BASE_DELAY_S * 2**n for n in range(max_retries)]
    message = str(error)
    assert venue in message and error.endpoint in message and error_class.__name__ in message


@pytest.mark.parametrize("venue", SUPPORTED_VENUES)
def test_exchange_errors_are_fatal_at_once(venue):
    name, fragment, error_class = FATAL[venue]
    exchange = build_exchange(venue, replay=FIXTURES / name)
    sleep = SleepRecorder()
    with pytest.raises(error_class) as caught:
        fetch_chain(venue, "BTC", exchange=exchange, sleep=sleep)
    assert sleep.delays == []
    assert len([call for call in exchange.calls if fragment in call.url]) == 1
    assert any(venue in note and "not retried" in note for note in caught.value.__notes__)


def body_url(document: dict, fragment: str) -> str:
    return next(
        i["request"]["url"] for i in document["interactions"] if fragment in i["request"]["url"]
    )


def with_book_summary(responses: list[dict]) -> dict:
    """The Deribit success cassette with the book summary answered by ``responses`` in turn."""
    document = copy.deepcopy(cassette("deribit_btc_success.json"))
    kept = [i for i in document["interactions"] if "get_book_summary" not in i["request"]["url"]]
    url = body_url(document, "get_book_summary")
    document["interactions"] = kept + [{"request": {"url": url}, **r} for r in responses]
    return document


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, ccxt.RateLimitExceeded), (502, ccxt.ExchangeNotAvailable), (504, ccxt.RequestTimeout)],
)
def test_http_status_maps_through_ccxts_http_exceptions(status, error_class):
    document = with_book_summary([{"response": {"status": status, "body": "<html>busy</html>"}}])
    exchange = build_exchange("deribit", replay=document)
    with pytest.raises(RetriesExhaustedError) as caught:
        fetch_chain("deribit", "BTC", exchange=exchange, max_retries=1, sleep=SleepRecorder())
    assert type(caught.value.last_error) is error_class


def test_recorded_exceptions_replay_and_a_recovered_request_gives_the_chain():
    success = body(cassette("deribit_btc_success.json"), "get_book_summary")
    document = with_book_summary(
        [
            {"error": {"type": "RequestTimeout", "message": "deribit GET timed out"}},
            {"response": {"status": 200, "body": {"error": {"code": 10041, "message": "x"}}}},
            {"response": {"status": 200, "body": success}},
        ]
    )
    sleep = SleepRecorder()
    chain = fetch_chain(
        "deribit", "BTC", exchange=build_exchange("deribit", replay=document), sleep=sleep
    )
    expected = replay_fetch("deribit", "deribit_btc_success.json")
    pd.testing.assert_frame_equal(chain.frame, expected.frame)
    assert sleep.delays == [RETRY_BASE_DELAY_S, 2 * RETRY_BASE_DELAY_S]


@pytest.mark.parametrize("venue", SUPPORTED_VENUES)
def test_unknown_underlying_is_refused_before_any_chain_request(venue):
    exchange = build_exchange(venue, replay=FIXTURES / f"{venue}_btc_success.json")
    sleep = SleepRecorder()
    with pytest.raises(UnknownUnderlyingError) as caught:
        fetch_chain(venue, "DOGE", exchange=exchange, sleep=sleep)
    assert caught.value.available == ("BTC", "ETH")
    assert "BTC, ETH" in str(caught.value)
    assert exchange.calls, "markets are loaded first"
    paths = [call.path for call in exchange.calls]
    assert not [p for p in paths if any(f in p for f in CHAIN_ENDPOINTS[venue])]
    assert sleep.delays == []


def test_deribit_linear_only_underlying_says_why():
    with pytest.raises(UnknownUnderlyingError, match="only USDC-settled"):
        replay_fetch("deribit", "deribit_btc_success.json", underlying="SOL")


def test_unknown_venue_is_refused_before_anything():
    exchange = build_exchange("deribit", replay=FIXTURES / "deribit_btc_success.json")
    with pytest.raises(UnknownVenueError, match="deribit, okx, bybit, binance") as caught:
        fetch_chain("kraken", "BTC", exchange=exchange)
    assert isinstance(caught.value, ValueError)
    assert exchange.calls == []


def test_arguments_are_checked():
    exchange = build_exchange("okx", replay=FIXTURES / "okx_btc_success.json")
    with pytest.raises(ValueError, match="needs 'deribit'"):
        fetch_chain("deribit", "BTC", exchange=exchange)
    with pytest.raises(ValueError, match="not both"):
        fetch_chain("okx", "BTC", exchange=exchange, replay=FIXTURES / "okx_btc_success.json")
    with pytest.raises(ValueError, match="max_retries"):
        fetch_chain("okx", "BTC", exchange=exchange, max_retries=-1)
    assert exchange.calls == []


def test_timeout_reaches_ccxt_in_milliseconds():
    exchange = build_exchange("bybit", replay=FIXTURES / "bybit_btc_success.json")
    assert exchange.timeout == 10_000  # the venue default
    fetch_chain("bybit", "BTC", exchange=exchange, timeout_s=2.5)
    assert exchange.timeout == 2_500


def test_an_empty_book_gives_an_empty_chain():
    document = with_book_summary(
        [{"response": {"status": 200, "body": {"jsonrpc": "2.0", "result": []}}}]
    )
    chain = fetch_chain("deribit", "BTC", exchange=build_exchange("deribit", replay=document))
    assert len(chain) == 0 and chain.rejected.empty


def test_replay_refuses_requests_it_does_not_hold():
    document = copy.deepcopy(cassette("deribit_btc_success.json"))
    document["interactions"] = [
        i for i in document["interactions"] if "get_book_summary" not in i["request"]["url"]
    ]
    sleep = SleepRecorder()
    with pytest.raises(ReplayMissError, match="get_book_summary_by_currency"):
        fetch_chain(
            "deribit", "BTC", exchange=build_exchange("deribit", replay=document), sleep=sleep
        )
    assert sleep.delays == []  # not a ccxt error: never retried


# --- record and replay ------------------------------------------------------------------------


@pytest.mark.parametrize("venue", SUPPORTED_VENUES)
def test_record_then_replay_gives_the_same_chain(venue, tmp_path):
    original = FIXTURES / f"{venue}_btc_success.json"
    stand_in = build_exchange(venue, replay=original)  # the "network" while recording
    recorded_path = tmp_path / f"{venue}.json"
    recorded = fetch_chain(venue, "BTC", exchange=stand_in, record=recorded_path)
    replayed = fetch_chain(venue, "BTC", replay=recorded_path)
    pd.testing.assert_frame_equal(replayed.frame, recorded.frame)
    pd.testing.assert_frame_equal(replayed.rejected, recorded.rejected)
    written = load_cassette(recorded_path)
    assert written["venue"] == venue and written["ccxt_version"] == ccxt.__version__
    requests = [i["request"]["url"] for i in written["interactions"]]
    assert requests == [i["request"]["url"] for i in load_cassette(original)["interactions"]]
    # The recorded fetch time is the stand-in's clock, so snapshots survive the round trip.
    assert pd.Timestamp(written["recorded_at"]) == pd.Timestamp(
        load_cassette(original)["recorded_at"]
    )


def test_recording_strips_secrets():
    exchange = replay_exchange(
        "binance",
        cassette("binance_btc_success.json"),
        config={"apiKey": "my-api-key-123", "secret": "my-secret-456"},
    )
    start_recording(exchange)
    exchange.add_fetch_cache(
        {
            "request": {
                "url": "https://eapi.binance.com/eapi/v1/account?timestamp=1&signature=abcdef",
                "method": "GET",
                "headers": {"X-MBX-APIKEY": "my-api-key-123"},
                "body": None,
            },
            "response": {"body": {"echo": "key my-api-key-123, secret my-secret-456"}},
            "error": None,
        }
    )
    document = cassette_from_history(
        exchange, venue="binance", recorded_at=pd.Timestamp("2024-03-23T06:40:35Z")
    )
    text = json.dumps(document)
    assert "my-api-key-123" not in text and "my-secret-456" not in text
    assert "abcdef" not in text and "X-MBX-APIKEY" not in text
    (interaction,) = document["interactions"]
    assert (
        "signature=" + STRIPPED.replace("<", "%3C").replace(">", "%3E")
        in interaction["request"]["url"]
    )


def test_cassette_files_are_well_formed_with_provenance():
    names = sorted(path.name for path in FIXTURES.glob("*.json"))
    for venue in SUPPORTED_VENUES:
        assert f"{venue}_btc_success.json" in names
        assert RETRIED[venue][0] in names and FATAL[venue][0] in names
    for name in names:
        document = cassette(name)
        assert document["_source"], name


# --- unit helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize("placeholder", [None, "", "0", 0, 0.0, "1e-8", 1e-8, "-1.0", "abc"])
def test_quote_placeholders_are_missing(placeholder):
    assert math.isnan(quote_value(placeholder))


def test_real_quotes_and_zero_counts_are_kept():
    assert quote_value("0.0001") == 1e-4
    assert quote_value(1.98432769) == 1.98432769
    assert count_value("0") == 0.0
    assert math.isnan(count_value(""))

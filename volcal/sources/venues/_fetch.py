"""``fetch_chain``: one venue's option chain as a :class:`volcal.chain.Chain`, live or replayed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ccxt
import pandas as pd

from volcal.chain import Chain
from volcal.sources import replay as replay_module
from volcal.sources.venues._base import (
    Retry,
    UnknownUnderlyingError,
    UnknownVenueError,
    VenueAdapter,
)
from volcal.sources.venues.binance import BinanceAdapter
from volcal.sources.venues.bybit import BybitAdapter
from volcal.sources.venues.deribit import DeribitAdapter
from volcal.sources.venues.okx import OkxAdapter

ADAPTERS: dict[str, VenueAdapter] = {
    adapter.venue: adapter
    for adapter in (DeribitAdapter(), OkxAdapter(), BybitAdapter(), BinanceAdapter())
}
#: The venues :func:`fetch_chain` reads.
SUPPORTED_VENUES: tuple[str, ...] = tuple(ADAPTERS)


def adapter_for(venue: str) -> VenueAdapter:
    """The adapter of ``venue``; :class:`UnknownVenueError` (a ValueError) listing the
    supported venues otherwise."""
    adapter = ADAPTERS.get(venue.strip().lower()) if isinstance(venue, str) else None
    if adapter is None:
        raise UnknownVenueError(
            f"unknown venue {venue!r}; supported venues: {', '.join(SUPPORTED_VENUES)}"
        )
    return adapter


def build_exchange(
    venue: str, *, replay: Path | str | dict | None = None, config: dict | None = None
) -> ccxt.Exchange:
    """The ccxt exchange :func:`fetch_chain` uses for ``venue`` when it is given none.

    Parameters
    ----------
    venue : str
        One of :data:`SUPPORTED_VENUES`.
    replay : Path, str or dict, optional
        A cassette: the exchange then answers from it (see :mod:`volcal.sources.replay`).
    config : dict, optional
        Extra ccxt constructor options.
    """
    adapter = adapter_for(venue)
    if replay is not None:
        exchange = replay_module.replay_exchange(adapter.ccxt_id, replay, config=config)
    else:
        exchange = getattr(ccxt, adapter.ccxt_id)(config or {})
    adapter.configure(exchange)
    exchange.timeout = int(adapter.default_timeout_s * 1000)
    return exchange


def fetch_chain(
    venue: str,
    underlying: str,
    *,
    exchange: ccxt.Exchange | None = None,
    record: Path | None = None,
    replay: Path | None = None,
    timeout_s: float | None = None,
    max_retries: int = 4,
    sleep: Callable[[float], Any] = time.sleep,
) -> Chain:
    """One venue's option chain on one underlying, normalised, as a :class:`~volcal.chain.Chain`.

    Parameters
    ----------
    venue : str
        ``"deribit"``, ``"okx"``, ``"bybit"`` or ``"binance"`` (:data:`SUPPORTED_VENUES`).
    underlying : str
        The unified base code (``"BTC"``, ``"ETH"``; case-insensitive).
    exchange : ccxt.Exchange, optional
        A ccxt exchange to fetch through (your credentials, proxies, a replaying exchange...).
        Default: a new public ``ccxt.<venue>`` loading only option markets.
    record : Path, optional
        Write every raw request and response of this fetch to this cassette file (secrets
        stripped; written only when the fetch succeeds). Markets are requested again so the
        cassette is complete.
    replay : Path, optional
        Answer every request from this cassette instead of the network (cannot be combined
        with ``exchange``).
    timeout_s : float, optional
        Per-request timeout in seconds (ccxt's ``timeout``). Default: the venue's
        (10 s), or the given exchange's own setting.
    max_retries : int
        Retries of a request after a transient ccxt error (``ccxt.OperationFailed``: rate
        limits, timeouts, maintenance...), with exponential backoff from 0.5 s doubling up to
        30 s. Exchange errors (bad request, bad symbol...) are never retried.
    sleep : callable
        Waits between retries (seconds); tests pass a recorder instead of ``time.sleep``.

    Returns
    -------
    Chain
        Built with ``on_invalid="drop"``: rows failing validation (e.g. an instrument missing
        from the loaded markets) are in ``chain.rejected`` with the reason.

    Raises
    ------
    UnknownVenueError
        (a ValueError) for a venue without an adapter, before anything else.
    UnknownUnderlyingError
        (a ValueError) when the loaded markets have no options on ``underlying``: raised
        after ``load_markets`` and before any chain request, never retried.
    RetriesExhaustedError
        When a request still fails with a transient error after ``max_retries`` retries;
        names the venue, the endpoint and the last ccxt error.
    ccxt.ExchangeError
        Any non-transient ccxt error, at once (with a note naming venue and endpoint).
    volcal.sources.replay.ReplayMissError
        When replaying and a request is not in the cassette.

    Notes
    -----
    Units are normalised here, once: implied vols as decimals, premiums in the quote currency
    (coin premiums x the expiry's forward, the raw currency and multiplier kept in
    ``premium_currency`` and ``premium_conversion``), venue placeholders (0, "", tiny or negative
    quotes) as NaN, times as UTC timestamps.

    ``snapshot`` is the venue's own timestamp where the payload has one, else the fetch time
    (UTC, read from the exchange's clock right after the chain requests; a replay's clock is
    the recording's):

    =======  ==========================================================================
    deribit  each book-summary row's ``creation_timestamp``
    okx      each ticker's ``ts`` (else the option summary's ``ts``)
    bybit    the tickers response's ``time``
    binance  the fetch time: ``/eapi/v1/ticker`` and ``/eapi/v1/mark`` carry no quote time
    =======  ==========================================================================

    Which Chain field comes from which endpoint and payload field is tabulated in the module
    docstrings of :mod:`volcal.sources.venues.deribit`, ``okx``, ``bybit`` and ``binance``.

    Examples
    --------
    >>> chain = fetch_chain("deribit", "BTC", record=Path("btc.json"))  # doctest: +SKIP
    >>> again = fetch_chain("deribit", "BTC", replay=Path("btc.json"))  # doctest: +SKIP
    """
    adapter = adapter_for(venue)
    retry = Retry(venue=adapter.venue, max_retries=max_retries, sleep=sleep)
    if exchange is not None and replay is not None:
        raise ValueError("give either exchange or replay, not both")
    if exchange is None:
        exchange = build_exchange(adapter.venue, replay=replay)
    elif exchange.id != adapter.ccxt_id:
        raise ValueError(
            f"exchange is ccxt {exchange.id!r}, venue {venue!r} needs {adapter.ccxt_id!r}"
        )
    if timeout_s is not None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        exchange.timeout = round(timeout_s * 1000)
    if record is not None:
        replay_module.start_recording(exchange)

    if not exchange.markets:
        adapter.prepare(exchange, retry)
    retry(adapter.markets_endpoint, exchange.load_markets)
    code = underlying.strip().upper()
    available = adapter.option_underlyings(exchange)
    if code not in available:
        raise UnknownUnderlyingError(
            adapter.venue, code, available, adapter.underlying_note(exchange, code)
        )

    payloads = adapter.fetch(exchange, code, retry)
    fetched_at = pd.Timestamp(exchange.milliseconds(), unit="ms", tz="UTC")
    frame = adapter.parse(exchange, code, payloads, fetched_at)

    source = f"{adapter.venue} {code} options via ccxt {ccxt.__version__}"
    if replay is not None:
        source += f", replayed from {replay}"
    if record is not None:
        replay_module.write_cassette(
            exchange, record, venue=adapter.venue, recorded_at=fetched_at, source=source
        )
        source += f", recorded to {record}"
    return Chain.from_frame(frame, source=source, on_invalid="drop")

"""What every venue adapter shares: the adapter contract, retries, errors and unit helpers."""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import ccxt
import pandas as pd

from volcal.chain import COLUMNS

#: Quotes, sizes, prices and implied vols at or below this are venue placeholders for "no
#: quote", never real values: venues send 0, "", negative IVs (Binance ``-1.0``) or tiny
#: numbers (Delta's IV 5e-6, ccxt PR #21879) where a quote is missing. The smallest real
#: premium tick on these venues is 1e-4 coin (Deribit, OKX), so nothing real is this small.
PLACEHOLDER_CEILING = 1e-6
#: First wait before a retry, seconds; doubled after each failure (exponential backoff).
RETRY_BASE_DELAY_S = 0.5
#: Longest wait between two retries, seconds.
RETRY_MAX_DELAY_S = 30.0


class VenueError(Exception):
    """A venue fetch failed in a way volcal explains (base class)."""


class UnknownVenueError(VenueError, ValueError):
    """The venue is not one volcal has an adapter for."""


class UnknownUnderlyingError(VenueError, ValueError):
    """The venue lists no options on the requested underlying (raised before any chain request).

    Attributes
    ----------
    venue, underlying : str
        What was asked for.
    available : tuple of str
        The underlyings with options in the venue's loaded markets.
    """

    def __init__(self, venue: str, underlying: str, available: tuple[str, ...], note: str = ""):
        self.venue, self.underlying, self.available = venue, underlying, available
        listed = ", ".join(available) if available else "none"
        message = f"{venue} lists no options on {underlying!r}; underlyings with options: {listed}"
        super().__init__(message + (f" ({note})" if note else ""))


class RetriesExhaustedError(VenueError):
    """A request kept failing with a transient ccxt error until the retries ran out.

    Attributes
    ----------
    venue, endpoint : str
        Where it failed.
    attempts : int
        How many times the request was sent.
    last_error : ccxt.BaseError
        The error of the last attempt (also the ``__cause__``).
    """

    def __init__(self, venue: str, endpoint: str, attempts: int, last_error: BaseException):
        self.venue, self.endpoint = venue, endpoint
        self.attempts, self.last_error = attempts, last_error
        super().__init__(
            f"{venue} {endpoint} failed {attempts} time(s) in a row; last ccxt error: "
            f"{type(last_error).__name__}: {last_error}"
        )


@dataclass(frozen=True)
class Retry:
    """Sends one venue request, retrying transient ccxt errors with exponential backoff.

    Transient means ``ccxt.OperationFailed``: the ``NetworkError`` family (RateLimitExceeded,
    DDoSProtection, RequestTimeout, ExchangeNotAvailable, OnMaintenance, InvalidNonce) and
    ``BadResponse``, the classes ccxt's own ``fetch2`` retry loop also retries. Everything else
    (``ExchangeError`` and its subclasses: bad symbol, bad request, authentication) is raised
    at once, annotated with the venue and endpoint.

    Attributes
    ----------
    venue : str
        For messages.
    max_retries : int
        Retries after the first attempt (so at most ``max_retries + 1`` requests), >= 0.
    sleep : callable
        Called with the delay in seconds between attempts (``time.sleep``; tests pass a
        recorder). Delay before retry ``n`` (from 1): ``min(RETRY_BASE_DELAY_S * 2**(n-1),
        RETRY_MAX_DELAY_S)``.
    """

    venue: str
    max_retries: int
    sleep: Callable[[float], Any]

    def __post_init__(self):
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")

    def __call__(self, endpoint: str, request: Callable[..., Any], *args: Any, **kwargs: Any):
        """Call ``request(*args, **kwargs)``; ``endpoint`` names it in errors."""
        for attempt in range(self.max_retries + 1):
            try:
                return request(*args, **kwargs)
            except ccxt.OperationFailed as error:
                last_error = error
                if attempt == self.max_retries:
                    break
                self.sleep(min(RETRY_BASE_DELAY_S * 2.0**attempt, RETRY_MAX_DELAY_S))
            except ccxt.BaseError as error:
                error.add_note(
                    f"volcal: {self.venue} {endpoint} failed with {type(error).__name__}, "
                    "which ccxt classifies as an exchange error: not retried"
                )
                raise
        raise RetriesExhaustedError(
            self.venue, endpoint, self.max_retries + 1, last_error
        ) from last_error


def _number(value: Any) -> float:
    """A float from a venue field (number or numeric string); NaN for None, "" or garbage."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def quote_value(value: Any) -> float:
    """A price, size, forward or implied vol: NaN for a placeholder (see
    :data:`PLACEHOLDER_CEILING`), for ``None``, ``""`` or a value that is not a number."""
    number = _number(value)
    return number if number > PLACEHOLDER_CEILING else math.nan


def count_value(value: Any) -> float:
    """An open interest or volume: zero is a real count here, so only None, "" and garbage
    become NaN; a negative count is kept for validation to reject."""
    return _number(value)


def signed_value(value: Any) -> float:
    """A greek (delta): any sign and zero are real; None, "" and garbage become NaN."""
    return _number(value)


def utc_from_ms(value: Any) -> pd.Timestamp:
    """A UTC timestamp from epoch milliseconds (int or numeric string); NaT if missing."""
    number = _number(value)
    if math.isnan(number) or number <= 0:
        return pd.NaT
    return pd.Timestamp(int(number), unit="ms", tz="UTC")


def market_fields(market: dict | None, instrument: str) -> dict[str, Any]:
    """The contract terms of one option from its ccxt market: id, expiry, strike, right.

    ``market`` is ``None`` for an instrument the loaded markets do not know; its terms are then
    missing and :class:`volcal.chain.Chain` validation rejects the row with that reason.
    """
    if market is None:
        return {"instrument": instrument, "expiry": pd.NaT, "strike": math.nan, "right": None}
    return {
        "instrument": market["id"],
        "expiry": utc_from_ms(market.get("expiry")),
        "strike": _number(market.get("strike")),
        "right": market.get("optionType"),
    }


def premium_fields(
    bid: float, ask: float, mark: float, *, conversion: float, premium_currency: str
) -> dict[str, Any]:
    """Premiums converted to the quote currency: raw premium x ``conversion``.

    ``conversion`` is NaN where it is unknown (an inverse option without a forward): the
    premiums are then missing rather than left in the wrong unit.
    """
    return {
        "bid": bid * conversion,
        "ask": ask * conversion,
        "mark": mark * conversion,
        "premium_currency": premium_currency,
        "premium_conversion": conversion,
    }


def frame_from_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows (dicts keyed by :data:`volcal.chain.COLUMNS`) as a frame in that column order."""
    frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    for column in ("snapshot", "expiry"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def option_markets(exchange: ccxt.Exchange) -> list[dict]:
    """The option markets of a loaded exchange (active or not: Binance marks none active)."""
    return [market for market in (exchange.markets or {}).values() if market.get("option")]


class VenueAdapter(abc.ABC):
    """How one venue's option chain is fetched through ccxt and turned into Chain rows.

    A subclass is stateless; :func:`volcal.sources.venues.fetch_chain` drives it:
    ``configure`` (exchanges volcal builds) -> ``prepare`` -> ``load_markets`` ->
    ``option_underlyings`` (validation) -> ``fetch`` -> ``parse``.
    """

    #: The name volcal uses (``Chain.venue``).
    venue: ClassVar[str]
    #: The ccxt exchange id.
    ccxt_id: ClassVar[str]
    #: The requests ``load_markets`` makes, for error messages.
    markets_endpoint: ClassVar[str]
    #: Per-request timeout (ccxt's ``timeout`` option) when the caller gives none, seconds.
    default_timeout_s: ClassVar[float] = 10.0

    #: Load option markets only (ccxt's ``fetchMarkets.types``), keeping ccxt's own list of
    #: option base coins: spot and futures markets are not needed for a chain.
    option_markets_only: bool = False

    def configure(self, exchange: ccxt.Exchange) -> None:
        """Adjust the options of an exchange volcal builds (e.g. load option markets only)."""
        if self.option_markets_only:
            fetch_markets = dict(exchange.options.get("fetchMarkets") or {})
            exchange.options["fetchMarkets"] = {**fetch_markets, "types": ["option"]}

    def prepare(self, exchange: ccxt.Exchange, retry: Retry) -> None:  # noqa: B027
        """Requests needed before ``load_markets`` (only called while markets are not loaded)."""

    def option_underlyings(self, exchange: ccxt.Exchange) -> tuple[str, ...]:
        """Underlyings (unified base codes) with options in the loaded markets, sorted."""
        return tuple(sorted({market["base"] for market in option_markets(exchange)}))

    def underlying_note(self, exchange: ccxt.Exchange, underlying: str) -> str:
        """Extra words for :class:`UnknownUnderlyingError` (why an underlying is excluded)."""
        return ""

    @abc.abstractmethod
    def fetch(self, exchange: ccxt.Exchange, underlying: str, retry: Retry) -> Any:
        """The chain's raw payloads, through ccxt (each request sent through ``retry``)."""

    @abc.abstractmethod
    def parse(
        self, exchange: ccxt.Exchange, underlying: str, payloads: Any, fetched_at: pd.Timestamp
    ) -> pd.DataFrame:
        """Chain rows (:data:`volcal.chain.COLUMNS`) from the payloads ``fetch`` returned."""

"""Record ccxt's raw traffic to a JSON cassette and replay it through ccxt with no network.

A *cassette* is a JSON file holding every request a fetch made and what came back:

.. code-block:: json

    {
      "format": "volcal-cassette/1",
      "_source": "provenance: who recorded it, or which documents a hand-made one follows",
      "venue": "deribit",
      "ccxt_id": "deribit",
      "ccxt_version": "4.5.90",
      "recorded_at": "2022-06-04T10:30:04.920Z",
      "interactions": [
        {"request": {"method": "GET", "url": "https://www.deribit.com/api/v2/public/get_currencies"},
         "response": {"status": 200, "body": {"jsonrpc": "2.0", "result": []}}},
        {"request": {"method": "GET", "url": "https://..."},
         "response": {"status": 429, "body": "Too Many Requests"}},
        {"request": {"method": "GET", "url": "https://..."},
         "error": {"type": "RequestTimeout", "message": "deribit GET https://... timed out"}}
      ]
    }

``response.body`` is the decoded JSON document, or a string for a body that is not JSON.
``error`` records an exception raised before any response arrived (a timeout, a reset
connection); replay raises the same ccxt error class. Any key starting with ``_`` is a comment.

Recording (:func:`start_recording`, :func:`write_cassette`) uses ccxt's own fetch history
(``fetchHistoryCacheSize`` and ``get_fetch_cache()``): ccxt's ``fetch2`` appends every request it
signs, with the decoded response or the exception, so the cassette is a by-product of a real
fetch. Secrets are stripped on the way out: request headers are not stored at all, query
parameters whose name looks like a credential are replaced by ``"<stripped>"``, and the
exchange's own credential values are removed wherever they appear.

Replaying (:func:`replay_exchange`) builds the ccxt exchange class with its ``fetch`` method
overridden, the seam ccxt's own static tests use (``ccxt/test/tests_helpers.py``,
``set_fetch_response``). Everything above ``fetch`` is ccxt's real code: ``sign()`` builds the
URL, ``load_markets`` and the ``parse_*`` methods read the recorded bodies, and the replaying
``fetch`` calls the venue's ``handle_errors`` and then ccxt's ``handle_http_status_code``
(the ``httpExceptions`` table) the way ``Exchange.fetch`` does, so a recorded error body or
HTTP status raises the same ccxt exception as it would live: Deribit's
``{"error": {"code": 10028}}`` raises ``DDoSProtection``, an HTTP 429 ``RateLimitExceeded``.

Requests are matched on method, URL without its query, the query parameters in any order,
and the body. Several interactions for the same request are served in recorded order and the
last one is served again when the request repeats (so one error entry answers every retry). A
request the cassette does not hold raises :class:`ReplayMissError` (not a ccxt error, so no
retry loop swallows it): replay never reaches the network.

The replaying exchange's clock (``milliseconds()``) reads the cassette's ``recorded_at``, so
anything ccxt or volcal stamps with "now" (the fetch time used as a snapshot time where a
venue's payload carries none) is the recording's time, and a replay is deterministic.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import ccxt
import pandas as pd

CASSETTE_FORMAT = "volcal-cassette/1"
#: Size of ccxt's fetch-history ring buffer while recording. A chain fetch makes tens of
#: requests (markets per base coin, then the chain endpoints); a full buffer would mean the
#: oldest requests were dropped, so recording refuses to write an incomplete cassette then.
RECORD_CACHE_SIZE = 10_000
STRIPPED = "<stripped>"
# Query parameter names that carry credentials or request signatures.
_SECRET_PARAMETER = re.compile(
    r"(key|secret|sign|signature|token|passphrase|password|auth|nonce)", re.IGNORECASE
)
# Exchange attributes that hold credentials (ccxt's ``requiredCredentials`` names).
_CREDENTIAL_ATTRIBUTES = (
    "apiKey", "secret", "uid", "login", "password", "twofa", "privateKey", "walletAddress",
    "token", "accountId",
)  # fmt: skip


class ReplayMissError(LookupError):
    """A replayed exchange was asked for a request its cassette does not hold."""


@dataclass(frozen=True)
class ReplayCall:
    """One request a replaying exchange received (whether or not the cassette held it)."""

    method: str
    url: str
    body: str | None = None

    @property
    def path(self) -> str:
        """The URL's path, e.g. ``/api/v2/public/get_book_summary_by_currency``."""
        return urlsplit(self.url).path


def _request_key(method: str, url: str, body: Any) -> tuple:
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query = tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return (method.upper(), base, query, body or None)


def load_cassette(path: Path | str) -> dict:
    """Read a cassette file and check its shape.

    Parameters
    ----------
    path : Path or str
        A JSON file in the format described in this module's docstring.

    Returns
    -------
    dict
        The cassette document.

    Raises
    ------
    ValueError
        If the file is not a cassette (wrong format tag, no interactions, an interaction
        with neither a response nor an error).
    """
    path = Path(path)
    cassette = json.loads(path.read_text(encoding="utf-8"))
    if cassette.get("format") != CASSETTE_FORMAT:
        raise ValueError(
            f"{path} is not a volcal cassette: format is {cassette.get('format')!r}, "
            f"expected {CASSETTE_FORMAT!r}"
        )
    interactions = cassette.get("interactions")
    if not isinstance(interactions, list):
        raise ValueError(f"{path}: 'interactions' must be a list")
    for number, interaction in enumerate(interactions):
        request = interaction.get("request", {})
        if "url" not in request:
            raise ValueError(f"{path}: interaction {number} has no request url")
        if ("response" in interaction) == ("error" in interaction):
            raise ValueError(
                f"{path}: interaction {number} ({request['url']}) needs exactly one of "
                "'response' and 'error'"
            )
    return cassette


class _Cassette:
    """The interactions of a cassette, queued per request."""

    def __init__(self, cassette: dict, name: str):
        self.name = name
        recorded_at = pd.Timestamp(cassette["recorded_at"])
        if recorded_at.tzinfo is None:
            raise ValueError(f"cassette {name}: recorded_at {recorded_at} has no time zone")
        self.recorded_at_ms = int(recorded_at.tz_convert("UTC").value // 1_000_000)
        self._queues: dict[tuple, deque] = defaultdict(deque)
        for interaction in cassette["interactions"]:
            request = interaction["request"]
            key = _request_key(request.get("method", "GET"), request["url"], request.get("body"))
            self._queues[key].append(interaction)

    def take(self, method: str, url: str, body: Any) -> dict:
        queue = self._queues.get(_request_key(method, url, body))
        if not queue:
            held = sorted({f"{key[0]} {key[1]}?{urlencode(key[2])}" for key in self._queues})
            raise ReplayMissError(
                f"cassette {self.name} holds no response for {method} {url}; it holds:\n  "
                + "\n  ".join(held)
            )
        # The last interaction for a request answers every later repeat of it.
        return queue.popleft() if len(queue) > 1 else queue[0]


def _ccxt_error_class(name: str) -> type[ccxt.BaseError]:
    error_class = getattr(ccxt, name, None)
    if isinstance(error_class, type) and issubclass(error_class, ccxt.BaseError):
        return error_class
    return ccxt.ExchangeError


class _ReplayMixin:
    """Answers ``fetch`` from a cassette; mixed in before a ccxt exchange class."""

    _cassette: _Cassette
    calls: list[ReplayCall]

    def fetch(self, url, method="GET", headers=None, body=None):
        """Serve a recorded response the way ``ccxt.Exchange.fetch`` serves a live one."""
        self.calls.append(ReplayCall(method, url, body))
        interaction = self._cassette.take(method, url, body)
        if "error" in interaction:
            error = interaction["error"]
            raise _ccxt_error_class(error.get("type", "ExchangeError"))(error.get("message", ""))
        response = interaction["response"]
        status = int(response.get("status", 200))
        recorded_body = response.get("body")
        text = recorded_body if isinstance(recorded_body, str) else json.dumps(recorded_body)
        response_headers = dict(response.get("headers", {}))
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:  # a status code outside the standard table
            reason = ""
        text = self.on_rest_response(
            status, reason, url, method, response_headers, text, headers, body
        )
        json_response = self.parse_json(text)
        self.last_http_response = text
        self.last_json_response = json_response
        self.last_response_headers = response_headers
        if status >= 400:
            # As Exchange.fetch does on an HTTPError: venue mapping first, then ccxt's
            # httpExceptions table, then a generic ExchangeError.
            skip = self.handle_errors(
                status, reason, url, method, response_headers, text, json_response, headers, body
            )
            if not skip:
                self.handle_http_status_code(status, reason, url, method, text)
            raise ccxt.ExchangeError(" ".join([self.id, method, url]))
        self.handle_errors(
            status, reason, url, method, response_headers, text, json_response, headers, body
        )
        return json_response if json_response is not None else text

    def milliseconds(self):
        """The recording's time: a replay sees the clock as it was when it was recorded."""
        return self._cassette.recorded_at_ms


def replay_exchange(
    ccxt_id: str, cassette: Path | str | dict, *, config: dict | None = None
) -> ccxt.Exchange:
    """A ccxt exchange that answers every request from a cassette, never from the network.

    Parameters
    ----------
    ccxt_id : str
        The ccxt exchange id (``"deribit"``, ``"okx"``, ``"bybit"``, ``"binance"``...).
    cassette : Path, str or dict
        A cassette file, or a cassette document already loaded.
    config : dict, optional
        ccxt constructor options (e.g. ``{"options": {...}}``); rate limiting is always off.

    Returns
    -------
    ccxt.Exchange
        An instance of a subclass of ``ccxt.<ccxt_id>`` whose ``fetch`` reads the cassette. Its
        ``calls`` attribute lists every request received, in order (:class:`ReplayCall`).

    Raises
    ------
    ReplayMissError
        (from any ccxt method) when a request is not in the cassette.
    """
    if isinstance(cassette, dict):
        document, name = cassette, "<in memory>"
    else:
        document, name = load_cassette(cassette), str(cassette)
    recorded_id = document.get("ccxt_id")
    if recorded_id is not None and recorded_id != ccxt_id:
        raise ValueError(f"cassette {name} was recorded from {recorded_id!r}, not {ccxt_id!r}")
    base = getattr(ccxt, ccxt_id, None)
    if not (isinstance(base, type) and issubclass(base, ccxt.Exchange)):
        raise ValueError(f"ccxt has no exchange {ccxt_id!r}")
    replay_class = type(f"Replay{base.__name__}", (_ReplayMixin, base), {})
    exchange = replay_class({**(config or {}), "enableRateLimit": False})
    exchange._cassette = _Cassette(document, name)
    exchange.calls = []
    return exchange


def start_recording(exchange: ccxt.Exchange) -> None:
    """Switch on ccxt's fetch history on ``exchange``, emptied, so every request is kept.

    Markets already loaded are dropped so that the next fetch requests them again and the
    cassette holds everything a replay needs.
    """
    exchange.fetchHistoryCacheSize = RECORD_CACHE_SIZE
    exchange.fetchHistoryCache = deque(maxlen=RECORD_CACHE_SIZE)
    exchange.markets = None
    exchange.markets_by_id = None


def _strip_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (name, STRIPPED if _SECRET_PARAMETER.search(name) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _credential_values(exchange: ccxt.Exchange) -> list[str]:
    values = (getattr(exchange, name, None) for name in _CREDENTIAL_ATTRIBUTES)
    return sorted({v for v in values if isinstance(v, str) and len(v) >= 4}, key=len, reverse=True)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, STRIPPED)
        return value
    if isinstance(value, dict):
        return {key: _scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    return value


def cassette_from_history(
    exchange: ccxt.Exchange, *, venue: str, recorded_at: pd.Timestamp, source: str = ""
) -> dict:
    """Build a cassette document from the exchange's ccxt fetch history.

    Parameters
    ----------
    exchange : ccxt.Exchange
        An exchange on which :func:`start_recording` was called before the fetch.
    venue : str
        The volcal venue name, stored for the reader.
    recorded_at : Timestamp
        The fetch time (UTC); replay's clock returns it.
    source : str
        Provenance text stored under ``_source``.

    Raises
    ------
    RuntimeError
        If the history is full (requests were dropped) or recording was never started.
    """
    history = list(exchange.get_fetch_cache())
    if exchange.fetchHistoryCacheSize <= 0:
        raise RuntimeError(f"{exchange.id}: recording was not started (see start_recording)")
    if len(history) >= exchange.fetchHistoryCacheSize:
        raise RuntimeError(
            f"{exchange.id}: ccxt's fetch history is full ({len(history)} requests); "
            "the oldest were dropped, so the cassette would be incomplete"
        )
    interactions = []
    for entry in history:
        request = entry.get("request")
        if request is None:  # ccxt failed before signing: nothing went out
            continue
        recorded_request = {
            "method": request.get("method", "GET"),
            "url": _strip_url(request["url"]),
        }
        if request.get("body"):
            recorded_request["body"] = request["body"]
        interaction: dict[str, Any] = {"request": recorded_request}
        error = entry.get("error")
        if error is not None:
            interaction["error"] = {"type": type(error).__name__, "message": str(error)}
        else:
            interaction["response"] = {"status": 200, "body": entry["response"]["body"]}
        interactions.append(interaction)
    document = {
        "format": CASSETTE_FORMAT,
        "_source": source or f"recorded by volcal from {exchange.id} through ccxt",
        "venue": venue,
        "ccxt_id": exchange.id,
        "ccxt_version": ccxt.__version__,
        "recorded_at": recorded_at.tz_convert("UTC").isoformat(timespec="milliseconds"),
        "interactions": interactions,
    }
    return _scrub(document, _credential_values(exchange))


def write_cassette(
    exchange: ccxt.Exchange,
    path: Path | str,
    *,
    venue: str,
    recorded_at: pd.Timestamp,
    source: str = "",
) -> Path:
    """Write the exchange's recorded traffic to ``path`` as a cassette (see
    :func:`cassette_from_history` for the parameters). Returns the path written."""
    document = cassette_from_history(exchange, venue=venue, recorded_at=recorded_at, source=source)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return path

"""An options book: positions from CSV, JSON or a DataFrame, validated row by row.

Each row is one position. Columns (names are case-insensitive):

* ``instrument``: a venue instrument id in Deribit's layout, ``BTC-27JUN26-60000-C`` (option;
  strike ``0d625`` means 0.625), ``BTC-27JUN26`` (future), ``BTC-PERPETUAL``; a ``_USDC`` or
  ``_USDT`` suffix on the coin (``BTC_USDC-27JUN26-60000-C``) marks a linear, stablecoin-settled
  contract, no suffix an inverse, coin-settled one. Or, instead of ``instrument``:
  ``underlying``, ``kind`` (``option``, ``future``, ``perpetual``; default ``option``),
  ``expiry`` (UTC date or time; a bare date means 08:00 UTC, Deribit's expiry time),
  ``strike`` and ``right`` (``C``/``P``, ``call``/``put``) for options, and ``settlement``.
* ``quantity``: signed number of contracts (negative: short).
* ``account`` (optional): positions are margined per account.
* ``contract_size`` (optional): coin per contract for options and linear futures, USD per
  contract for inverse futures and perpetuals. Defaults (:data:`CONTRACT_SIZES`): Deribit's
  inverse BTC and ETH contracts; any other instrument without a size is an error.
* ``settlement`` (optional): ``coin``/``inverse`` or ``usd``/``usdc``/``usdt``/``linear``.

:func:`load_book` reports every bad row at once in a :class:`BookError` naming the row (1-based
data row; line ``row + 1`` of a CSV with its header) and the problem. Nothing is dropped.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Deribit's expiry time of day (UTC) for a bare expiry date.
EXPIRY_TIME = pd.Timedelta(hours=8)
#: Default contract sizes of Deribit's inverse (coin-settled) contracts, from Deribit's contract
#: specifications: options are on 1 coin; futures and perpetuals are 10 USD (BTC) and 1 USD
#: (ETH) per contract.
CONTRACT_SIZES = {
    ("BTC", "option", True): 1.0,
    ("ETH", "option", True): 1.0,
    ("BTC", "future", True): 10.0,
    ("ETH", "future", True): 1.0,
    ("BTC", "perpetual", True): 10.0,
    ("ETH", "perpetual", True): 1.0,
}
KINDS = ("option", "future", "perpetual")
_INSTRUMENT = re.compile(
    r"^(?P<coin>[A-Z0-9]+)(?:_(?P<quote>USDC|USDT))?-"
    r"(?:(?P<perpetual>PERPETUAL)|(?P<expiry>\d{1,2}[A-Z]{3}\d{2})"
    r"(?:-(?P<strike>[0-9]+(?:d[0-9]+)?)-(?P<right>[CP]))?)$"
)
_SETTLEMENT = {
    "coin": True,
    "inverse": True,
    "usd": False,
    "usdc": False,
    "usdt": False,
    "linear": False,
}


class BookError(ValueError):
    """Bad rows in a book; ``problems`` lists ``(row, message)`` for every one."""

    def __init__(self, problems: list[tuple[int, str]], source: str):
        self.problems = problems
        lines = [f"row {row}: {message}" for row, message in problems[:50]]
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(
            f"{len(problems)} bad row(s) in book {source}:\n" + "\n".join(lines) + more
        )


@dataclass(frozen=True)
class Book:
    """Validated positions.

    ``positions`` has one row per input row (index: the 1-based row number) with columns
    ``account``, ``instrument``, ``kind``, ``underlying``, ``expiry`` (UTC; NaT for
    perpetuals), ``strike`` (NaN unless an option), ``is_call``, ``quantity``,
    ``contract_size``, ``inverse`` (coin-settled), ``settlement`` (the settlement currency:
    the coin, or USDC/USDT/USD).
    """

    positions: pd.DataFrame
    source: str = "DataFrame"

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def underlyings(self) -> list[str]:
        return sorted(self.positions["underlying"].unique())

    @property
    def accounts(self) -> list[str]:
        return sorted(self.positions["account"].unique())


def load_book(source: str | Path | pd.DataFrame | list, *, asof=None) -> Book:
    """A validated :class:`Book` from a CSV or JSON file (a list of position objects, or
    ``{"positions": [...]}``), JSON text, a list of dicts or a DataFrame.

    Parameters
    ----------
    asof : time, optional
        Valuation time (UTC): options and futures expiring at or before it are errors.
    """
    frame, name = _read(source)
    frame = frame.rename(columns=lambda c: str(c).strip().lower())
    asof = None if asof is None else _utc(asof)
    problems: list[tuple[int, str]] = []
    rows = []
    for number, (_, raw) in enumerate(frame.iterrows(), start=1):
        try:
            rows.append(_position(raw, asof))
        except ValueError as error:
            problems.append((number, str(error)))
    if frame.empty:
        problems.append((0, "the book has no positions"))
    if problems:
        raise BookError(problems, name)
    positions = pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="row"))
    positions["expiry"] = pd.to_datetime(positions["expiry"], utc=True)
    return Book(positions=positions, source=name)


def _read(source) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True), "DataFrame"
    if isinstance(source, list):
        return pd.DataFrame(source), "list"
    text = str(source)
    if text.lstrip().startswith(("[", "{")):
        return _from_json(text), "JSON text"
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"book file {path} does not exist")
    if path.suffix.lower() == ".json":
        return _from_json(path.read_text()), str(path)
    return pd.read_csv(io.StringIO(path.read_text()), dtype=str, keep_default_na=False), str(path)


def _from_json(text: str) -> pd.DataFrame:
    data = json.loads(text)
    if isinstance(data, dict):
        data = data.get("positions")
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise ValueError("a JSON book is a list of position objects or {'positions': [...]}")
    return pd.DataFrame(data)


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _text(raw, key: str) -> str:
    value = raw.get(key, "")
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def _number(raw, key: str, what: str) -> float | None:
    text = _text(raw, key)
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not np.isfinite(value):
        raise ValueError(f"{what} {text!r} is not a finite number")
    return value


def _position(raw, asof) -> dict:
    instrument = _text(raw, "instrument")
    if instrument:
        parsed = _INSTRUMENT.match(instrument.upper())
        if parsed is None:
            raise ValueError(
                f"unknown instrument {instrument!r} (expected e.g. "
                "BTC-27JUN26-60000-C, BTC-27JUN26, BTC-PERPETUAL)"
            )
        underlying = parsed["coin"]
        inverse = parsed["quote"] is None
        settlement = underlying if inverse else parsed["quote"]
        if parsed["perpetual"]:
            kind, expiry = "perpetual", pd.NaT
        else:
            try:
                day = pd.to_datetime(parsed["expiry"], format="%d%b%y", utc=True)
            except ValueError:
                raise ValueError(
                    f"unknown instrument {instrument!r}: bad expiry date {parsed['expiry']!r}"
                ) from None
            expiry = day + EXPIRY_TIME
            kind = "option" if parsed["strike"] else "future"
        strike = float(parsed["strike"].replace("d", ".")) if parsed["strike"] else np.nan
        right = parsed["right"] or ""
    else:
        underlying = _text(raw, "underlying").upper()
        if not underlying:
            raise ValueError("unknown instrument: no 'instrument' id and no 'underlying'")
        kind = _text(raw, "kind").lower() or "option"
        if kind not in KINDS:
            raise ValueError(f"unknown instrument kind {kind!r} (one of {KINDS})")
        expiry = pd.NaT
        if kind != "perpetual":
            text = _text(raw, "expiry")
            if not text:
                raise ValueError(f"unknown instrument: a {kind} needs an expiry")
            try:
                expiry = _utc(text)
            except ValueError:
                raise ValueError(f"unknown instrument: expiry {text!r} is not a date") from None
            if len(text) <= 10:  # a bare date: the venue's expiry time
                expiry = expiry + EXPIRY_TIME
        strike = np.nan
        right = ""
        if kind == "option":
            strike = _number(raw, "strike", "strike")
            if strike is None:
                raise ValueError("unknown instrument: an option needs a strike")
            right = _text(raw, "right").upper()[:1]
            if right not in ("C", "P"):
                raise ValueError(f"unknown instrument: right {_text(raw, 'right')!r} is not C or P")
        settlement_text = _text(raw, "settlement").lower() or "coin"
        if settlement_text not in _SETTLEMENT:
            raise ValueError(
                f"unknown settlement {settlement_text!r} (one of {sorted(_SETTLEMENT)})"
            )
        inverse = _SETTLEMENT[settlement_text]
        settlement = underlying if inverse else settlement_text.upper()
        instrument = _instrument_id(underlying, kind, expiry, strike, right, inverse, settlement)
    if kind == "option" and not strike > 0:
        raise ValueError(f"non-positive strike {strike:g} in {instrument}")
    settlement_override = _text(raw, "settlement").lower()
    if _text(raw, "instrument") and settlement_override:
        if settlement_override not in _SETTLEMENT or _SETTLEMENT[settlement_override] != inverse:
            raise ValueError(f"settlement {settlement_override!r} contradicts {instrument}")
    quantity = _number(raw, "quantity", "quantity")
    if quantity is None:
        raise ValueError(f"missing quantity for {instrument}")
    size = _number(raw, "contract_size", "contract size")
    if size is None:
        size = CONTRACT_SIZES.get((underlying, kind, inverse))
        if size is None:
            raise ValueError(
                f"no contract_size given for {instrument} and no default for "
                f"{underlying} {'inverse' if inverse else 'linear'} {kind}s"
            )
    if not size > 0:
        raise ValueError(f"non-positive contract size {size:g} for {instrument}")
    if asof is not None and kind != "perpetual" and not expiry > asof:
        raise ValueError(
            f"expired {kind} {instrument}: expiry {expiry:%Y-%m-%d %H:%M} UTC is "
            f"not after the valuation time {asof:%Y-%m-%d %H:%M} UTC"
        )
    return {
        "account": _text(raw, "account") or "default",
        "instrument": instrument,
        "kind": kind,
        "underlying": underlying,
        "expiry": expiry,
        "strike": strike,
        "is_call": right == "C",
        "quantity": quantity,
        "contract_size": size,
        "inverse": inverse,
        "settlement": settlement,
    }


def _instrument_id(underlying, kind, expiry, strike, right, inverse, settlement) -> str:
    coin = underlying if inverse else f"{underlying}_{settlement}"
    if kind == "perpetual":
        return f"{coin}-PERPETUAL"
    day = f"{expiry.day}{expiry:%b%y}".upper()
    if kind == "future":
        return f"{coin}-{day}"
    return f"{coin}-{day}-{f'{strike:g}'.replace('.', 'd')}-{right}"

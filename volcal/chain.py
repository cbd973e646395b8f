"""The canonical option chain: one row per option quote, units normalised, validated.

Every source (venue adapters on ccxt, replayed recordings, CSV importers, the demo market) emits
a :class:`Chain`; everything downstream (cleaning, calibration) trusts its schema.

Schema (:data:`COLUMNS`; a column marked * is required, the others may be missing or NaN):

========================  ==============  ===============================================
column                    dtype           meaning and units
========================  ==============  ===============================================
venue*                    str             ``"deribit"``, ``"okx"``, ``"cboe"``, ``"demo"``...
underlying*               str             ``"BTC"``, ``"ETH"``, ``"SPX"``
instrument*               str             the venue's instrument id
snapshot*                 datetime (UTC)  when the quote was observed
expiry*                   datetime (UTC)  exercise time
strike*                   float           > 0, quote currency
right*                    str             ``"call"`` or ``"put"``
bid, ask, mark            float           premium in the quote currency (NaN: no quote)
quote_currency*           str             currency of bid/ask/mark (``"USD"``)
premium_currency*         str             currency the venue quoted the premium in
premium_conversion        float           raw premium x this = quote-currency premium
                                          (Deribit: the expiry's underlying price; 1 for USD)
bid_size, ask_size        float           contracts at the best bid / ask
forward                   float           the expiry's forward (quote currency), > 0
forward_source            str             ``future``, ``synthetic_future``, ``index``,
                                          ``parity``, ``venue`` (the venue's published
                                          forward, construction unstated)
index_price               float           spot index (values coin amounts, not used for IV)
open_interest, volume     float           contracts
venue_mark_iv, ...bid_iv  float           the venue's implied vols as decimals (0.55)
venue_ask_iv, venue_delta float           ... and its delta
========================  ==============  ===============================================

Missing quotes are NaN, never 0: adapters turn venue placeholders (0, "", 1e-8) into NaN.

Validation (on construction): required columns present; times parse as UTC; strike finite and
positive; right is call/put; prices and sizes not negative; forward positive where given; no
instrument twice in one snapshot. ``on_invalid="raise"`` (default) raises
:class:`ChainValidationError` naming the offending rows; ``on_invalid="drop"`` removes them and
keeps them, with the reason, in :attr:`Chain.rejected`, so that every input row stays accounted
for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

REQUIRED = (
    "venue", "underlying", "instrument", "snapshot", "expiry", "strike", "right",
    "quote_currency", "premium_currency",
)  # fmt: skip
PRICE_COLUMNS = ("bid", "ask", "mark")
NUMERIC = (
    "strike", "bid", "ask", "mark", "premium_conversion", "bid_size", "ask_size", "forward",
    "index_price", "open_interest", "volume", "venue_mark_iv", "venue_bid_iv", "venue_ask_iv",
    "venue_delta",
)  # fmt: skip
COLUMNS = (
    *REQUIRED[:7], *PRICE_COLUMNS, "quote_currency", "premium_currency", "premium_conversion",
    "bid_size", "ask_size", "forward", "forward_source", "index_price", "open_interest",
    "volume", "venue_mark_iv", "venue_bid_iv", "venue_ask_iv", "venue_delta",
)  # fmt: skip
RIGHTS = ("call", "put")
FORWARD_SOURCES = ("future", "synthetic_future", "index", "parity", "venue")
# How many offending rows an error message lists before summarising.
_SHOWN = 10


class ChainValidationError(ValueError):
    """A chain failed validation. ``problems`` has one row per offending input row."""

    def __init__(self, problems: pd.DataFrame, what: str = "chain"):
        self.problems = problems
        lines = [f"{len(problems)} invalid row(s) in {what}:"]
        for index, row in problems.head(_SHOWN).iterrows():
            label = f" ({row['instrument']})" if isinstance(row.get("instrument"), str) else ""
            lines.append(f"  row {index}{label}: {row['reason']}")
        if len(problems) > _SHOWN:
            lines.append(f"  ... and {len(problems) - _SHOWN} more")
        super().__init__("\n".join(lines))


class MissingColumnsError(ValueError):
    """Required columns are absent: no row can be trusted."""


@dataclass(frozen=True)
class Chain:
    """A validated option chain; ``frame`` follows the schema in this module's docstring.

    Attributes
    ----------
    frame : DataFrame
        Valid rows, columns in :data:`COLUMNS` order (absent optional columns are NaN). The
        index is kept from the input so rows can be traced back.
    rejected : DataFrame
        Input rows removed by validation (``on_invalid="drop"``) with a ``reason`` column.
    source : str
        Where the chain came from (file, venue call, generator), for reports.
    """

    frame: pd.DataFrame
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)
    source: str = ""

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        source: str = "",
        on_invalid: Literal["raise", "drop"] = "raise",
    ) -> Chain:
        """Validate ``frame`` against the schema and build a chain from it."""
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise MissingColumnsError(
                f"chain from {source or 'input'} lacks required column(s) {missing}; "
                f"required: {list(REQUIRED)}"
            )
        normalised, garbled = _normalise(frame)
        reasons = _row_problems(normalised, garbled)
        bad = reasons.notna()
        if bad.any() and on_invalid == "raise":
            problems = normalised.loc[bad, ["instrument"]].assign(reason=reasons[bad])
            raise ChainValidationError(problems, source or "chain")
        rejected = frame.loc[bad].assign(reason=reasons[bad])
        return cls(frame=normalised.loc[~bad], rejected=rejected, source=source)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def expiries(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(sorted(self.frame["expiry"].unique()))

    @property
    def is_call(self) -> np.ndarray:
        return (self.frame["right"] == "call").to_numpy()

    def summary(self) -> pd.DataFrame:
        """Quotes per expiry: count, two-sided count, strike range, forward."""
        frame = self.frame
        two_sided = frame["bid"].notna() & frame["ask"].notna()
        return (
            frame.assign(two_sided=two_sided)
            .groupby(["underlying", "expiry"])
            .agg(
                quotes=("instrument", "size"),
                two_sided=("two_sided", "sum"),
                min_strike=("strike", "min"),
                max_strike=("strike", "max"),
                forward=("forward", "median"),
            )
        )


def _to_utc(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        out = pd.to_datetime(values)
        return out.dt.tz_localize("UTC") if out.dt.tz is None else out.dt.tz_convert("UTC")
    return pd.to_datetime(values, utc=True, errors="coerce", format="mixed")


def _normalise(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Schema columns with their dtypes, and per numeric column the entries that were present
    but not numbers (e.g. "abc")."""
    out = pd.DataFrame(index=frame.index)
    garbled: dict[str, pd.Series] = {}
    for column in COLUMNS:
        if column in ("snapshot", "expiry"):
            out[column] = _to_utc(frame[column])
        elif column in NUMERIC:
            if column not in frame.columns:
                out[column] = np.nan
                continue
            out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
            raw = frame[column]
            garbled[column] = raw.notna() & out[column].isna() & (raw.astype(str).str.strip() != "")
        else:
            values = frame[column] if column in frame.columns else None
            out[column] = pd.Series(values, index=frame.index, dtype="object")
    out["right"] = out["right"].astype("string").str.lower().str.strip()
    return out, garbled


def _row_problems(frame: pd.DataFrame, garbled: dict[str, pd.Series]) -> pd.Series:
    """The first problem of each row, or NA where the row is valid."""
    checks: list[tuple[pd.Series, str]] = []
    for column in REQUIRED:
        checks.append((frame[column].isna(), f"{column} is missing"))
    for column, mask in garbled.items():
        checks.append((mask, f"{column} is not a number"))
    checks += [
        (~np.isfinite(frame["strike"]) | (frame["strike"] <= 0), "strike is not positive"),
        (~frame["right"].isin(RIGHTS).fillna(False), "right is not 'call' or 'put'"),
        (frame["forward"].notna() & ~(frame["forward"] > 0), "forward is not positive"),
        (frame["forward"].isin([np.inf]), "forward is infinite"),
        (frame["forward_source"].notna() & ~frame["forward_source"].isin(FORWARD_SOURCES),
         f"forward_source not in {FORWARD_SOURCES}"),
    ]  # fmt: skip
    for column in (*PRICE_COLUMNS, "bid_size", "ask_size", "open_interest", "volume"):
        checks.append((frame[column] < 0, f"{column} is negative"))
        checks.append((np.isinf(frame[column]), f"{column} is infinite"))
    duplicated = frame.duplicated(["venue", "instrument", "snapshot"], keep="first")
    checks.append((duplicated, "duplicate of an earlier row (same instrument and snapshot)"))

    reasons = pd.Series(pd.NA, index=frame.index, dtype="object")
    for mask, reason in checks:
        mask = mask.fillna(False).to_numpy(dtype=bool)
        reasons[mask & reasons.isna().to_numpy()] = reason
    return reasons

"""Cleaning a chain into an implied-volatility grid, with a reason for every dropped quote.

``clean(chain) -> IVGrid``: per expiry the forward (the venue's when the chain carries one,
otherwise a put-call-parity regression that also gives the discount factor), time to expiry
(ACT/365 from exact UTC timestamps), out-of-the-money selection (puts below the forward, calls at
or above), bid/ask/mid implied vols, filters with a reason per dropped quote, and weights. The
grid holds all slices padded to one width with a mask, ready for a vmapped calibration; its
:class:`CleaningReport` accounts for every input row.

Definitions used downstream: a *two-sided quote* is a kept quote (so out of the money) whose bid
and ask both invert to a vol; *mid IV* is the vol of (bid + ask) / 2; *inside* means inside
[bid IV, ask IV] of a two-sided quote. Every kept quote is two-sided.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from volcal.chain import Chain
from volcal.implied import IVStatus, implied_vol

SECONDS_PER_YEAR = 365.0 * 86400.0
KEPT = "kept"


class Reason:
    """Why a quote left the grid (one per input row; the first that applies)."""

    REJECTED = "invalid row: {}"  # filled with the chain validation reason
    EXPIRED = "expired or too close to expiry"
    NO_FORWARD = "no forward for the expiry (venue gives none, too few parity pairs)"
    IN_THE_MONEY = "in the money (the out-of-the-money side is used)"
    NO_BID = "no bid"
    NO_ASK = "no ask"
    CROSSED = "crossed or locked (bid >= ask)"
    OUTSIDE_BOUNDS = "outside no-arbitrage bounds (bid or ask has no implied vol)"
    WIDE_SPREAD = "spread too wide"
    SMALL_VEGA = "vega too small (moneyness too extreme)"


@dataclass(frozen=True)
class CleanOptions:
    """Filter thresholds of :func:`clean` (all configurable; defaults documented here).

    Attributes
    ----------
    min_days_to_expiry : float
        Quotes closer to expiry than this (days) are dropped: 0.1 day (2.4 hours), where
        settlement effects and the tick size dominate the price.
    max_iv_spread : float
        Largest ask IV - bid IV (decimal): 0.15 (15 vol points).
    max_relative_spread : float
        Largest (ask - bid) / mid: 1.5 (a bid under a fifth of the ask is no market).
    min_normalised_vega : float
        Smallest vega / (F sqrt t) = phi(d1): 1e-4, i.e. beyond about 4 standard deviations.
    min_parity_pairs : int
        Fewest call/put pairs (both two-sided, same strike) for a parity forward: 3.
    max_rate_error : float
        Largest standard error of the parity rate ``-ln(D)/t`` (decimal) before the discount
        factor is taken from the other expiries' rates instead: 0.005 (50 bp). Near expiry
        the slope of ``C - P`` in ``K`` cannot resolve the discount factor.
    index_price_error : float
        Relative error assumed for the index print against the option quotes: 5e-4 (delayed
        quotes lag the print by minutes).
    max_dividend_error : float
        Largest standard error of the dividend yield ``rate - ln(F/S)/t`` before it is
        interpolated from the other expiries: 0.005.
    weight_spread_floor : float
        IV spread floor in the weights 1 / max(spread, floor): 0.005 (half a vol point).
    """

    min_days_to_expiry: float = 0.1
    max_iv_spread: float = 0.15
    max_relative_spread: float = 1.5
    min_normalised_vega: float = 1e-4
    min_parity_pairs: int = 3
    max_rate_error: float = 0.005
    index_price_error: float = 5e-4
    max_dividend_error: float = 0.005
    weight_spread_floor: float = 0.005


@dataclass(frozen=True)
class CleaningReport:
    """Where every input row went.

    Attributes
    ----------
    rows : DataFrame
        One row per input row (chain rows and rows the chain rejected): ``instrument``,
        ``expiry``, ``right``, ``strike``, ``reason`` (``"kept"`` or why it was dropped).
    forwards : DataFrame
        Per expiry: ``t``, ``forward``, ``forward_source``, ``discount``, ``parity_pairs``,
        ``rate`` (continuously compounded, ``-ln(D)/t``), its standard error ``rate_error``
        and ``rate_source`` (``parity``, or ``interpolated from other expiries`` where the
        expiry's own pairs cannot resolve it), ``index_price`` S, ``dividend_yield``
        (``rate - ln(F/S)/t``), its ``dividend_error`` and ``dividend_source`` (``parity`` or
        ``interpolated from other expiries`` where the index print's asynchrony dominates).
    """

    rows: pd.DataFrame
    forwards: pd.DataFrame

    @property
    def counts(self) -> pd.DataFrame:
        """Rows kept and dropped per reason (columns) per expiry (rows)."""
        expiry = (
            self.rows["expiry"].astype("object").where(self.rows["expiry"].notna(), "(no expiry)")
        )
        table = pd.crosstab(expiry, self.rows["reason"])
        return table[[KEPT, *[c for c in table.columns if c != KEPT]]] if KEPT in table else table

    def summary(self) -> str:
        counts = self.rows["reason"].value_counts()
        lines = [f"{len(self.rows)} input rows: {counts.get(KEPT, 0)} kept"]
        lines += [f"  {n:6d} {reason}" for reason, n in counts.items() if reason != KEPT]
        return "\n".join(lines)


@dataclass(frozen=True)
class IVGrid:
    """Implied-vol slices of one underlying at one snapshot, padded to a common width.

    Arrays of shape ``(expiry, width)`` (``expiry`` slices in time order, ``width`` a multiple
    of 8): ``strike``, ``log_moneyness`` (ln(K/F)), ``mid_iv``, ``bid_iv``, ``ask_iv``,
    ``is_call``, ``weight`` (0 where padded) and ``mask`` (True for real quotes). Padding holds
    finite values (log-moneyness 0, the slice's median vol) so masked arithmetic stays finite.
    Per expiry ``(expiry,)``: ``expiries`` (UTC), ``t`` (years, ACT/365), ``forward``,
    ``discount``. ``quotes`` is the kept rows with their vols; ``report`` accounts for every
    input row.
    """

    venue: str
    underlying: str
    snapshot: pd.Timestamp
    expiries: pd.DatetimeIndex
    t: np.ndarray
    forward: np.ndarray
    discount: np.ndarray
    strike: np.ndarray
    log_moneyness: np.ndarray
    mid_iv: np.ndarray
    bid_iv: np.ndarray
    ask_iv: np.ndarray
    is_call: np.ndarray
    weight: np.ndarray
    mask: np.ndarray
    quotes: pd.DataFrame
    report: CleaningReport = field(repr=False)
    #: Out-of-the-money quotes dropped by a filter, with their vols where they have them and
    #: their ``reason`` (for plots: excluded quotes shown with why).
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def total_variance(self) -> np.ndarray:
        """Mid total variance ``mid_iv^2 t`` per quote."""
        return self.mid_iv**2 * self.t[:, None]

    def summary(self) -> pd.DataFrame:
        """Per expiry: t, forward, kept quotes, ATM mid IV."""
        atm = np.abs(np.where(self.mask, self.log_moneyness, np.inf)).argmin(axis=1)
        return pd.DataFrame({
            "t": self.t,
            "forward": self.forward,
            "discount": self.discount,
            "quotes": self.mask.sum(axis=1),
            "atm_mid_iv": self.mid_iv[np.arange(len(self.t)), atm],
        }, index=self.expiries)  # fmt: skip


def clean(
    chain: Chain, *, underlying: str | None = None, options: CleanOptions | None = None
) -> IVGrid:
    """Clean a chain into an :class:`IVGrid` (see the module docstring).

    Parameters
    ----------
    chain : Chain
        One snapshot of one or more underlyings.
    underlying : str, optional
        Which underlying to clean; required when the chain holds several.
    options : CleanOptions, optional
        Filter thresholds; defaults documented on :class:`CleanOptions`.

    Raises
    ------
    ValueError
        The chain is empty, holds several underlyings without ``underlying=``, or several
        snapshots of a venue that quotes each expiry at one time.
    """
    options = options or CleanOptions()
    frame = chain.frame
    if frame.empty:
        reasons = chain.rejected.get("reason", pd.Series(dtype=object)).value_counts()
        detail = "; ".join(f"{n} x {reason}" for reason, n in reasons.head(3).items())
        raise ValueError(
            f"chain has no rows to clean ({len(chain.rejected)} input rows were "
            f"rejected{': ' + detail if detail else ''})"
        )
    underlyings = sorted(frame["underlying"].unique())
    if underlying is None:
        if len(underlyings) != 1:
            raise ValueError(f"chain holds underlyings {underlyings}: pass underlying=")
        underlying = underlyings[0]
    elif underlying not in underlyings:
        raise ValueError(f"underlying {underlying!r} not in chain (it has {underlyings})")
    rows = frame[frame["underlying"] == underlying].copy()
    rejected = chain.rejected
    if "underlying" in rejected.columns:
        # Rows rejected for want of an underlying belong to whichever one is cleaned.
        named = rejected["underlying"]
        rejected = rejected[(named.astype(str) == underlying) | named.isna()]

    # Valuation time per row: its own snapshot (rows of one venue call may differ by minutes).
    t = (rows["expiry"] - rows["snapshot"]).dt.total_seconds().to_numpy() / SECONDS_PER_YEAR
    rows["t"] = t
    rows["mid"] = 0.5 * (rows["bid"] + rows["ask"])
    forwards = _forwards(rows, options)
    expiry_forward = rows["expiry"].map(forwards["forward"])
    rows["discount"] = rows["expiry"].map(forwards["discount"]).to_numpy()
    # The venue's own per-row forward where it gives one (Deribit's mark IV uses it).
    rows["forward_used"] = rows["forward"].where(rows["forward"].notna(), expiry_forward)

    is_call = (rows["right"] == "call").to_numpy()
    args = (rows["forward_used"].to_numpy(), rows["strike"].to_numpy(), rows["t"].to_numpy(),
            is_call, rows["discount"].fillna(1.0).to_numpy())  # fmt: skip
    for side in ("bid", "ask", "mid"):
        result = implied_vol(rows[side].to_numpy(), *args)
        rows[f"{side}_iv"] = np.asarray(result.vol)
        rows[f"{side}_status"] = np.asarray(result.status)
    forward_used = rows["forward_used"].to_numpy()
    # Expired rows (t <= 0) and rows without a vol give NaN here; their reasons say why.
    with np.errstate(invalid="ignore", divide="ignore"):
        rows["log_moneyness"] = np.log(rows["strike"].to_numpy() / forward_used)
        total_vol = rows["mid_iv"].to_numpy() * np.sqrt(rows["t"].to_numpy())
        d1 = -rows["log_moneyness"].to_numpy() / total_vol + 0.5 * total_vol
    normalised_vega = np.exp(-0.5 * d1**2) / np.sqrt(2 * np.pi)

    reason = pd.Series(KEPT, index=rows.index, dtype="object")
    checks = [
        (rows["t"] * 365.0 < options.min_days_to_expiry, Reason.EXPIRED),
        (~np.isfinite(forward_used), Reason.NO_FORWARD),
        (np.where(is_call, rows["strike"] < forward_used, rows["strike"] >= forward_used),
         Reason.IN_THE_MONEY),
        (rows["bid"].isna(), Reason.NO_BID),
        (rows["ask"].isna(), Reason.NO_ASK),
        (rows["bid"] >= rows["ask"], Reason.CROSSED),
        ((rows["bid_status"] != IVStatus.OK) | (rows["ask_status"] != IVStatus.OK)
         | (rows["mid_status"] != IVStatus.OK), Reason.OUTSIDE_BOUNDS),
        ((rows["ask_iv"] - rows["bid_iv"] > options.max_iv_spread)
         | ((rows["ask"] - rows["bid"]) / rows["mid"] > options.max_relative_spread),
         Reason.WIDE_SPREAD),
        (normalised_vega < options.min_normalised_vega, Reason.SMALL_VEGA),
    ]  # fmt: skip
    for mask, why in checks:
        mask = np.asarray(pd.Series(mask, index=rows.index).fillna(False), dtype=bool)
        reason[mask & (reason == KEPT).to_numpy()] = why
    rows["reason"] = reason

    report = CleaningReport(rows=_report_rows(rows, rejected), forwards=forwards)
    kept = rows[rows["reason"] == KEPT].sort_values(["expiry", "strike"])
    spread = np.maximum(kept["ask_iv"] - kept["bid_iv"], options.weight_spread_floor)
    kept = kept.assign(weight=1.0 / spread)
    kept["weight"] = kept["weight"] / kept.groupby("expiry")["weight"].transform("mean")
    excluded = rows[(rows["reason"] != KEPT) & (rows["reason"] != Reason.IN_THE_MONEY)]
    grid = _grid(
        kept,
        forwards,
        venue=str(rows["venue"].iloc[0]),
        underlying=underlying,
        snapshot=rows["snapshot"].min(),
        report=report,
    )
    return replace(grid, excluded=excluded.sort_values(["expiry", "strike"]))


def _forwards(rows: pd.DataFrame, options: CleanOptions) -> pd.DataFrame:
    """Per expiry: the venue's forward (median over its rows) or a put-call-parity fit."""
    out = []
    for expiry, group in rows.groupby("expiry"):
        t = float(group["t"].median())
        index_price = float(group["index_price"].median())
        venue_forward = group["forward"].dropna()
        fit = _ParityFit()
        if len(venue_forward):
            forward, discount = float(venue_forward.median()), 1.0
            sources = group["forward_source"].dropna()
            source = str(sources.mode().iloc[0]) if len(sources) else "venue"
            rate_error = 0.0
        else:
            fit = _parity_fit(group, options)
            forward, discount = fit.forward, fit.discount
            source = "parity" if np.isfinite(forward) else None
            rate_error = fit.slope_error / discount / t if t > 0 else np.inf
        out.append({"expiry": expiry, "t": t, "forward": forward, "forward_source": source,
                    "discount": discount, "parity_pairs": fit.pairs, "rate_error": rate_error,
                    "index_price": index_price, "fit": fit})  # fmt: skip
    table = pd.DataFrame(out).set_index("expiry")
    table["rate"] = -np.log(table["discount"]) / table["t"]
    table["rate_source"] = np.where(table["forward_source"] == "parity", "parity", None)
    # Expiries whose own slope cannot resolve the rate borrow it from those that can
    # (linear in t between them, flat beyond), and refit the forward with that discount.
    parity = table["forward_source"] == "parity"
    reliable = parity & (table["rate_error"] <= options.max_rate_error)
    weak = parity & ~reliable
    if weak.any() and reliable.any():
        known = table[reliable].sort_values("t")
        for expiry in table.index[weak]:
            t = table.at[expiry, "t"]
            rate = float(np.interp(t, known["t"], known["rate"]))
            discount = float(np.exp(-rate * t))
            table.at[expiry, "discount"] = discount
            table.at[expiry, "rate"] = rate
            table.at[expiry, "forward"] = table.at[expiry, "fit"].forward_given(discount)
            table.at[expiry, "rate_source"] = "interpolated from other expiries"
    table["dividend_yield"] = (
        table["rate"] - np.log(table["forward"] / table["index_price"]) / table["t"]
    )
    # The carry ln(F/S)/t is uncertain by the forward's error and by the index print's
    # asynchrony with the quotes, both divided by t: near expiry it is not resolved, and the
    # yield is interpolated from the expiries that resolve it (the forward itself stays).
    forward_error = table["fit"].map(lambda fit: fit.forward_error) / table["forward"]
    dividend_error = np.hypot(forward_error.fillna(0.0), options.index_price_error) / table["t"]
    table["dividend_error"] = dividend_error.where(parity)
    table["dividend_source"] = np.where(parity & table["index_price"].notna(), "parity", None)
    resolved = parity & (dividend_error <= options.max_dividend_error)
    unresolved = parity & ~resolved & table["index_price"].notna()
    if unresolved.any() and resolved.any():
        known = table[resolved].sort_values("t")
        for expiry in table.index[unresolved]:
            table.at[expiry, "dividend_yield"] = float(
                np.interp(table.at[expiry, "t"], known["t"], known["dividend_yield"])
            )
            table.at[expiry, "dividend_source"] = "interpolated from other expiries"
    return table.drop(columns=["fit"])


@dataclass(frozen=True)
class _ParityFit:
    """Weighted least squares of ``C - P = D F - D K`` over call/put pairs."""

    forward: float = np.nan
    discount: float = np.nan
    pairs: int = 0
    slope_error: float = np.inf
    forward_error: float = np.nan
    strike: np.ndarray = field(default_factory=lambda: np.zeros(0))
    difference: np.ndarray = field(default_factory=lambda: np.zeros(0))
    weight: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def forward_given(self, discount: float) -> float:
        """The forward that best fits the pairs with the discount factor held fixed."""
        if self.pairs == 0:
            return np.nan
        return float(
            np.sum(self.weight * (self.difference / discount + self.strike)) / np.sum(self.weight)
        )


def _parity_fit(group: pd.DataFrame, options: CleanOptions) -> _ParityFit:
    """Fit ``C - P = D (F - K)`` on every strike with a two-sided call and put.

    Weights ``1 / (sum of the two bid/ask spreads)^2``: the wide-spread deep in-the-money pairs
    count little but still anchor the slope over the whole strike range (a narrow strike range
    would leave the slope to the asynchrony of delayed quotes). Returns NaNs with too few pairs
    or a discount factor outside (0, 1.5].
    """
    quotes = group.dropna(subset=["bid", "ask"])
    quotes = quotes[quotes["bid"] < quotes["ask"]]
    calls = quotes[quotes["right"] == "call"].drop_duplicates("strike").set_index("strike")
    puts = quotes[quotes["right"] == "put"].drop_duplicates("strike").set_index("strike")
    common = calls.index.intersection(puts.index)
    if len(common) < options.min_parity_pairs:
        return _ParityFit(pairs=len(common))
    strike = np.asarray(common, dtype=float)
    difference = (calls.loc[common, "mid"] - puts.loc[common, "mid"]).to_numpy()
    spread = ((calls.loc[common, "ask"] - calls.loc[common, "bid"])
              + (puts.loc[common, "ask"] - puts.loc[common, "bid"])).to_numpy()  # fmt: skip
    weight = 1.0 / np.maximum(spread, 1e-12) ** 2
    sqrt_w = np.sqrt(weight)
    design = np.column_stack([np.ones_like(strike), strike]) * sqrt_w[:, None]
    coefficients, _, _, _ = np.linalg.lstsq(design, difference * sqrt_w, rcond=None)
    intercept, slope = coefficients
    residual = difference - (intercept + slope * strike)
    dof = max(len(strike) - 2, 1)
    sigma2 = float(np.sum(weight * residual**2) / dof)
    covariance = sigma2 * np.linalg.pinv(design.T @ design)
    discount = -slope
    if not 0.0 < discount <= 1.5:
        return _ParityFit(pairs=len(strike))
    # F = -intercept / slope: first-order error propagation through the fit's covariance.
    gradient = np.array([-1.0 / slope, intercept / slope**2])
    return _ParityFit(
        forward=float(intercept / discount),
        discount=float(discount),
        pairs=len(strike),
        slope_error=float(np.sqrt(max(covariance[1, 1], 0.0))),
        forward_error=float(np.sqrt(max(gradient @ covariance @ gradient, 0.0))),
        strike=strike,
        difference=difference,
        weight=weight,
    )


def _report_rows(rows: pd.DataFrame, rejected: pd.DataFrame) -> pd.DataFrame:
    columns = ["instrument", "expiry", "right", "strike", "reason"]
    kept = rows[columns]
    if rejected.empty:
        return kept
    bad = pd.DataFrame({
        "instrument": rejected.get("instrument"),
        "expiry": pd.to_datetime(rejected.get("expiry"), utc=True, errors="coerce",
                                 format="mixed"),
        "right": rejected.get("right"),
        "strike": pd.to_numeric(rejected.get("strike"), errors="coerce"),
        "reason": [Reason.REJECTED.format(r) for r in rejected["reason"]],
    }, index=rejected.index)  # fmt: skip
    return pd.concat([kept, bad])


_WIDTH_BUCKET = 8


def _grid(kept, forwards, *, venue, underlying, snapshot, report) -> IVGrid:
    expiries = pd.DatetimeIndex(sorted(kept["expiry"].unique()))
    n = len(expiries)
    counts = kept.groupby("expiry").size().reindex(expiries).to_numpy() if n else np.zeros(0)
    width = int(max(_WIDTH_BUCKET, -(-int(counts.max() if n else 0) // _WIDTH_BUCKET)
                    * _WIDTH_BUCKET))  # fmt: skip
    shape = (n, width)
    arrays = {name: np.zeros(shape) for name in
              ("strike", "log_moneyness", "mid_iv", "bid_iv", "ask_iv", "weight")}  # fmt: skip
    is_call = np.zeros(shape, dtype=bool)
    mask = np.zeros(shape, dtype=bool)
    position = kept.groupby("expiry").cumcount().to_numpy()
    slot = expiries.get_indexer(kept["expiry"])
    kept = kept.assign(slice=slot, position=position)
    for name in arrays:
        source = "strike" if name == "strike" else name
        fill = kept.groupby("slice")["mid_iv"].median().reindex(range(n)).to_numpy()
        if name in ("mid_iv", "bid_iv", "ask_iv"):
            arrays[name][:] = fill[:, None]
        arrays[name][slot, position] = kept[source].to_numpy()
    forward = forwards["forward"].reindex(expiries).to_numpy()
    arrays["strike"] = np.where(mask | (arrays["strike"] != 0), arrays["strike"], forward[:, None])
    is_call[slot, position] = (kept["right"] == "call").to_numpy()
    mask[slot, position] = True
    return IVGrid(
        venue=venue,
        underlying=underlying,
        snapshot=snapshot,
        expiries=expiries,
        t=forwards["t"].reindex(expiries).to_numpy(),
        forward=forward,
        discount=forwards["discount"].reindex(expiries).to_numpy(),
        is_call=is_call,
        mask=mask,
        quotes=kept,
        report=report,
        **arrays,
    )

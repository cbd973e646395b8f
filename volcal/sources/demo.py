"""The demo market: a reproducible, offline, Deribit-like option chain from a known surface.

It lets every command, notebook and test run with no network and no data files, and it is the
known-truth fixture for calibration: the quotes come from an SSVI surface (Gatheral & Jacquier
2014) whose parameters are on the chain, so a fit can be checked against the truth.

What makes it Deribit-like: expiries at 08:00 UTC (three dailies, weeklies on Fridays, the
last Friday of the next months, quarterlies out to a year); coin-quoted (inverse) premiums on a
tick grid (0.0001 coin below 0.005, 0.0005 above) converted to USD with the expiry's forward;
a forward curve with a basis (real futures for monthlies and quarterlies, synthetic ones for
the rest); spreads that widen in the wings; no bid where the bid would round below one tick.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from volcal.black import black_price
from volcal.chain import Chain

SECONDS_PER_YEAR = 365.0 * 86400.0
EXPIRY_HOUR = 8  # Deribit expires at 08:00 UTC


@dataclass(frozen=True)
class DemoSurface:
    """SSVI total variance ``w(k, t) = theta/2 (1 + rho phi k + sqrt((phi k + rho)^2 + 1 - rho^2))``
    (k = ln(K/F)).

    ``theta(t) = v_l t + (v_s - v_l) t_decay (1 - e^{-t/t_decay})`` with ``v_s, v_l`` the short
    and long ATM variances (a decaying ATM term structure), and the power law
    ``phi(theta) = eta / (theta^gamma (1 + theta)^(1 - gamma))``. With ``gamma = 1/2`` and
    ``eta (1 + |rho|) <= 2`` the surface is free of static arbitrage (Gatheral & Jacquier
    2014, Remark 4.4 and Theorem 4.1).
    """

    atm_vol_short: float = 0.60
    atm_vol_long: float = 0.52
    t_decay: float = 0.15
    rho: float = -0.25
    eta: float = 1.2
    gamma: float = 0.5

    def theta(self, t):
        t = np.asarray(t, dtype=float)
        short, long = self.atm_vol_short**2, self.atm_vol_long**2
        return long * t + (short - long) * self.t_decay * (1.0 - np.exp(-t / self.t_decay))

    def total_variance(self, log_moneyness, t):
        theta = self.theta(t)
        phi = self.eta / (theta**self.gamma * (1.0 + theta) ** (1.0 - self.gamma))
        k = np.asarray(log_moneyness, dtype=float)
        return 0.5 * theta * (1.0 + self.rho * phi * k
                              + np.sqrt((phi * k + self.rho) ** 2 + 1.0 - self.rho**2))  # fmt: skip

    def implied_vol(self, log_moneyness, t):
        return np.sqrt(self.total_variance(log_moneyness, t) / np.asarray(t, dtype=float))


def deribit_expiries(snapshot: pd.Timestamp, horizon_days: float = 365.0) -> pd.DatetimeIndex:
    """Deribit's listing pattern: 3 dailies, 3 weekly Fridays, month-end Fridays for 3 months,
    quarter-end Fridays (Mar, Jun, Sep, Dec) within the horizon; all at 08:00 UTC."""
    base = snapshot.normalize() + pd.Timedelta(hours=EXPIRY_HOUR)
    first = base if base > snapshot else base + pd.Timedelta(days=1)
    dailies = [first + pd.Timedelta(days=i) for i in range(3)]
    friday = first + pd.Timedelta(days=(4 - first.day_of_week) % 7)
    weeklies = [friday + pd.Timedelta(weeks=i) for i in range(3)]
    month_ends = []
    for months in range(0, 13):
        end = (snapshot + pd.offsets.MonthEnd(months)).normalize()
        last_friday = end - pd.Timedelta(days=(end.day_of_week - 4) % 7)
        expiry = last_friday + pd.Timedelta(hours=EXPIRY_HOUR)
        if expiry > snapshot and (months <= 3 or expiry.month in (3, 6, 9, 12)):
            month_ends.append(expiry)
    every = pd.DatetimeIndex(sorted(set(dailies + weeklies + month_ends)))
    return every[(every - snapshot) <= pd.Timedelta(days=horizon_days)]


def demo_chain(
    snapshot: str | pd.Timestamp = "2026-01-15T09:30:00Z",
    *,
    underlying: str = "BTC",
    spot: float = 60_000.0,
    basis: float = 0.06,
    surface: DemoSurface | None = None,
    seed: int = 0,
) -> Chain:
    """A Deribit-like chain of calls and puts priced on :class:`DemoSurface`.

    Parameters
    ----------
    snapshot : str or Timestamp
        Valuation time (UTC).
    underlying : str
        Coin name; premiums are quoted in it.
    spot : float
        Index level (USD); forwards are ``spot * exp(basis * t)``.
    basis : float
        Annualised futures basis.
    surface : DemoSurface, optional
        The true surface (default :class:`DemoSurface`); ``venue_mark_iv`` holds its vols.
    seed : int
        Seed of the spread noise, sizes and open interest (the prices themselves are exact).

    Returns
    -------
    Chain
        Venue ``"demo"``, USD premiums with ``premium_currency = underlying`` and
        ``premium_conversion`` = the forward, as an adapter would deliver Deribit.
    """
    surface = surface or DemoSurface()
    rng = np.random.default_rng(seed)
    now = pd.Timestamp(snapshot)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    rows, pricing = [], []
    for expiry in deribit_expiries(now):
        t = (expiry - now).total_seconds() / SECONDS_PER_YEAR
        forward = spot * np.exp(basis * t)
        monthly = (expiry + pd.Timedelta(days=7)).month != expiry.month and expiry.day_of_week == 4
        atm_sd = surface.atm_vol_long * np.sqrt(t)
        step = _strike_step(spot, atm_sd)
        width = max(5.0 * atm_sd, 0.1)
        strikes = np.arange(np.floor(forward * np.exp(-width) / step) * step,
                            forward * np.exp(width) + step, step)  # fmt: skip
        strikes = strikes[strikes > 0]
        k = np.log(strikes / forward)
        vol = surface.implied_vol(k, t)
        z = np.abs(k) / np.sqrt(surface.theta(t))
        for right in ("call", "put"):
            # Half-spread in vol points: 0.4 at the money, widening with |k| in ATM deviations.
            half_spread = (0.004 + 0.004 * z**1.5) * (1.0 + 0.3 * rng.random(len(k)))
            name = [f"{underlying}-{expiry:%-d%b%y}".upper() + f"-{s:.0f}-{right[0].upper()}"
                    for s in strikes]  # fmt: skip
            pricing.append((np.full(len(k), forward), strikes, np.full(len(k), t), vol,
                            half_spread, np.full(len(k), right == "call")))  # fmt: skip
            rows.append(pd.DataFrame({
                "instrument": name,
                "expiry": expiry,
                "strike": strikes,
                "right": right,
                "premium_conversion": forward,
                "forward": forward,
                "forward_source": "future" if monthly else "synthetic_future",
                "venue_mark_iv": vol,
                "bid_size": np.round(rng.uniform(0.1, 50.0, len(k)), 1),
                "ask_size": np.round(rng.uniform(0.1, 50.0, len(k)), 1),
                "open_interest": np.round(rng.exponential(300.0, len(k)) * np.exp(-z), 1),
            }))  # fmt: skip
    # Every quote priced in one compiled call (shapes padded to a bucket, shared by snapshots).
    columns = [np.concatenate(c) for c in zip(*pricing, strict=True)]
    forward_all = columns[0]
    mark_usd, bid_usd, ask_usd = _quotes(*columns)
    bid_coin = _to_tick(bid_usd / forward_all, np.floor)
    ask_coin = _to_tick(ask_usd / forward_all, np.ceil)
    sizes = np.cumsum([0] + [len(r) for r in rows])
    for i, part in enumerate(rows):
        cut = slice(sizes[i], sizes[i + 1])
        part["bid"] = np.where(bid_coin[cut] > 0, bid_coin[cut], np.nan) * forward_all[cut]
        part["ask"] = ask_coin[cut] * forward_all[cut]
        part["mark"] = mark_usd[cut]
    frame = pd.concat(rows, ignore_index=True).assign(
        venue="demo",
        underlying=underlying,
        snapshot=now,
        quote_currency="USD",
        premium_currency=underlying,
        index_price=spot,
    )
    return Chain.from_frame(frame, source=f"demo market (seed {seed})")


#: Quote arrays are padded to a multiple of this before pricing, so demo chains of different
#: snapshots share one compiled pricing program.
PRICING_BUCKET = 1024


def _quotes(forward, strike, t, vol, half_spread, is_call):
    """Mark, bid and ask premiums (USD): Black-76 at the vol and at the vol -+ half-spread."""
    n = len(forward)
    size = -(-n // PRICING_BUCKET) * PRICING_BUCKET
    padded = [np.concatenate([a, np.repeat(a[:1], size - n)]) for a in
              (forward, strike, t, vol, half_spread, is_call)]  # fmt: skip
    return tuple(np.asarray(x)[:n] for x in _quotes_compiled(*padded))


@jax.jit
def _quotes_compiled(forward, strike, t, vol, half_spread, is_call):
    return (black_price(forward, strike, t, vol, is_call),
            black_price(forward, strike, t, jnp.maximum(vol - half_spread, 0.0), is_call),
            black_price(forward, strike, t, vol + half_spread, is_call))  # fmt: skip


def _strike_step(spot: float, atm_sd: float) -> float:
    """Strike spacing like Deribit's: finer for short expiries, a round fraction of spot."""
    raw = spot * max(atm_sd, 0.02) / 8.0
    magnitude = 10 ** np.floor(np.log10(raw))
    return float(min(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw))


def _to_tick(coin_price: np.ndarray, rounding) -> np.ndarray:
    """Round coin premiums to Deribit's tick: 0.0001 below 0.005, 0.0005 above."""
    tick = np.where(coin_price < 0.005, 0.0001, 0.0005)
    return rounding(coin_price / tick) * tick

"""Generate tests/data/implied_vol_reference.csv: Black-76 prices and their exact implied vols.

Independent of volcal: every number comes from mpmath at 50 significant digits.

For each case (forward F, strike K, expiry t, vol sigma, call or put) the undiscounted Black-76
price is computed in mpmath and rounded to float64 (``price``). The reference vol ``sigma_star``
is the exact inverse of that float64 price (Newton's method in mpmath, to 1e-40 relative), not
the generating vol: rounding the price moves the vol, and an inverter can only be asked to
recover what the float64 price says. ``u`` is what rounding the price and the log-moneyness to
float64 leaves of the vol, ``u = 4 eps (price + |dprice/dlnK|) / vega(sigma_star)`` with
eps = 2.2e-16. Cases whose float64 price has no inverse (it rounded onto or below the intrinsic
value, or onto the upper bound) get ``sigma_star = nan`` and say so in ``note``.

Run from the repository root: ``python tests/data/make_implied_vol_reference.py``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import mpmath as mp
import numpy as np

mp.mp.dps = 50
EPS = 2.2e-16
SEED = 20261125
RANDOM_CASES = 3000
HOUR = 1.0 / 8760.0
OUT = Path(__file__).with_name("implied_vol_reference.csv")


def black(forward, strike, t, sigma, is_call):
    s = sigma * mp.sqrt(t)
    d1 = mp.log(forward / strike) / s + s / 2
    d2 = d1 - s
    if is_call:
        return forward * mp.ncdf(d1) - strike * mp.ncdf(d2)
    return strike * mp.ncdf(-d2) - forward * mp.ncdf(-d1)


def vega(forward, strike, t, sigma):
    s = sigma * mp.sqrt(t)
    d1 = mp.log(forward / strike) / s + s / 2
    return forward * mp.npdf(d1) * mp.sqrt(t)


def dprice_dlogstrike(forward, strike, t, sigma, is_call):
    s = sigma * mp.sqrt(t)
    d2 = mp.log(forward / strike) / s - s / 2
    return -strike * (mp.ncdf(d2) if is_call else -mp.ncdf(-d2))


def exact_inverse(price, forward, strike, t, is_call, start):
    """Safeguarded Newton: Newton steps inside a bracket that always holds the root."""

    def excess(sigma):
        return black(forward, strike, t, sigma, is_call) - price

    lo, hi = mp.mpf(start) / 2, mp.mpf(start) * 2
    while excess(lo) > 0:
        lo /= 2
    while excess(hi) < 0:
        hi *= 2
    sigma = mp.mpf(start)
    for _ in range(2000):
        value = excess(sigma)
        if value > 0:
            hi = sigma
        else:
            lo = sigma
        step = value / vega(forward, strike, t, sigma)
        if abs(step) < mp.mpf(10) ** -40 * sigma:
            return sigma - step
        candidate = sigma - step
        sigma = candidate if lo < candidate < hi else (lo + hi) / 2
        if hi - lo < mp.mpf(10) ** -40 * sigma:
            return sigma
    raise RuntimeError(f"no convergence for {price} {forward} {strike} {t} {is_call}")


def cases():
    rng = np.random.default_rng(SEED)
    # A structured grid over the corners of the domain (F = 100) ...
    for sigma in (0.01, 0.05, 0.2, 1.0, 5.0):
        for t in (HOUR, 1 / 365, 30 / 365, 1.0, 5.0):
            for z in (-8, -4, -1, -0.1, 0, 0.1, 1, 4, 8):
                for is_call in (True, False):
                    yield "grid", 100.0, z, t, sigma, is_call
    # ... and random cases: vol 1%-500%, expiry 1 hour - 5 years, log-moneyness within +-8
    # total-vol units, forwards over seven orders of magnitude.
    for _ in range(RANDOM_CASES):
        sigma = float(10 ** rng.uniform(math.log10(0.01), math.log10(5.0)))
        t = float(10 ** rng.uniform(math.log10(HOUR), math.log10(5.0)))
        z = float(rng.uniform(-8.0, 8.0))
        forward = float(10 ** rng.uniform(-2.0, 5.0))
        yield "random", forward, z, t, sigma, bool(rng.random() < 0.5)


def main() -> None:
    rows = []
    for kind, forward, z, t, sigma, is_call in cases():
        strike = float(forward * math.exp(z * sigma * math.sqrt(t)))  # a float64 strike
        f, k, tt = mp.mpf(forward), mp.mpf(strike), mp.mpf(t)
        price = float(black(f, k, tt, mp.mpf(sigma), is_call))
        p = mp.mpf(price)
        intrinsic = max(f - k, 0) if is_call else max(k - f, 0)
        upper = f if is_call else k
        note = ""
        sigma_star = u = math.nan
        if p <= intrinsic:
            note = "price rounded onto or below intrinsic"
        elif p >= upper:
            note = "price rounded onto the upper bound"
        else:
            root = exact_inverse(p, f, k, tt, is_call, sigma)
            slope = abs(dprice_dlogstrike(f, k, tt, root, is_call))
            sigma_star = float(root)
            u = float(4 * EPS * (p + slope) / vega(f, k, tt, root))
        rows.append(
            [
                kind,
                repr(forward),
                repr(strike),
                repr(t),
                int(is_call),
                repr(price),
                repr(sigma),
                repr(sigma_star),
                repr(u),
                note,
            ]
        )
    with OUT.open("w", newline="") as handle:
        handle.write(
            "# Black-76 implied-vol reference set, generated by make_implied_vol_reference.py\n"
            "# with mpmath at 50 digits (seed 20261125). price: float64-rounded undiscounted\n"
            "# price; sigma_star: exact implied vol of that float64 price; u: vol change from\n"
            "# 4-ulp rounding of price and log-moneyness. All floats are exact float64 reprs.\n"
        )
        writer = csv.writer(handle)
        writer.writerow(
            [
                "kind",
                "forward",
                "strike",
                "t",
                "is_call",
                "price",
                "sigma",
                "sigma_star",
                "u",
                "note",
            ]
        )
        writer.writerows(rows)
    print(f"wrote {len(rows)} cases to {OUT}")


if __name__ == "__main__":
    main()

"""Implied-volatility throughput and accuracy: volcal against QuantLib and py_lets_be_rational.

Same inputs for every library, in one run:

* ``accuracy set``: tests/data/implied_vol_reference.csv (mpmath, 50 digits) tiled to N; the error
  is measured against the exact inverse ``sigma*`` of each float64 price on the informative
  points (u <= 1e-3 sigma*), with the bound max(1e-13 sigma*, u) of the test suite;
* ``Deribit marks``: real Deribit BTC and ETH mark prices (USD = coin mark x underlying price)
  from the shared history (VOLCAL_SHARED_DATA); error against mpmath inverses of a fixed sample.

volcal is timed warm (best of 3) through the public ``volcal.implied_vol`` on numpy inputs,
including the host-device transfer. QuantLib and py_lets_be_rational are called once per option
from Python (their Python APIs are scalar). First-call times are measured in fresh processes
with an empty and with a warm persistent compilation cache.

Run: ``python benchmarks/bench_implied_vol.py`` (add ``--quick`` for N up to 1e5); it rewrites
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data"))

import mpmath as mp  # noqa: E402
import py_lets_be_rational as lbr  # noqa: E402
import QuantLib as ql  # noqa: E402
from make_implied_vol_reference import EPS, dprice_dlogstrike, exact_inverse, vega  # noqa: E402
from markdown_sections import replace_section  # noqa: E402

import volcal as vc  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000)
MPMATH_SAMPLE = 1_000


def accuracy_set() -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_csv(ROOT / "tests" / "data" / "implied_vol_reference.csv", comment="#")
    frame = frame[np.isfinite(frame["sigma_star"])].reset_index(drop=True)
    return frame, frame["sigma_star"].to_numpy()


def deribit_marks(n: int) -> pd.DataFrame:
    shared = Path(os.environ.get("VOLCAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
    frames, rows = [], 0
    for path in sorted((shared / "deribit_history").glob("deribit_options_*.parquet")):
        frame = pd.read_parquet(
            path,
            columns=[
                "timestamp",
                "expiry_datetime",
                "underlying",
                "strike",
                "option_type",
                "mark_price",
            ],
        )
        frames.append(frame)
        rows += len(frame)
        if rows >= n:
            break
    raw = pd.concat(frames, ignore_index=True).iloc[:n]
    expiry = pd.to_datetime(raw["expiry_datetime"].astype(str), utc=True)
    t = (expiry - raw["timestamp"]).dt.total_seconds().to_numpy() / (365.0 * 86400.0)
    return pd.DataFrame(
        {
            "forward": raw["underlying"].to_numpy(),
            "strike": raw["strike"].to_numpy(),
            "t": t,
            "is_call": (raw["option_type"].astype(str) == "call").to_numpy(),
            "price": raw["mark_price"].to_numpy() * raw["underlying"].to_numpy(),
        }
    )


def tile(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    reps = -(-n // len(frame))
    return pd.concat([frame] * reps, ignore_index=True).iloc[:n]


def time_best(function, repeats: int = 3) -> tuple[float, object]:
    best, result = np.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def run_volcal(frame: pd.DataFrame):
    args = [frame[c].to_numpy() for c in ("price", "forward", "strike", "t", "is_call")]

    def call():
        result = vc.implied_vol(*args)
        result.vol.block_until_ready()
        return np.asarray(result.vol)

    call()  # compile
    return time_best(call)


def run_quantlib(frame: pd.DataFrame, accuracy: float | None):
    columns = [frame[c].to_numpy() for c in ("price", "forward", "strike", "t", "is_call")]
    kinds = {True: ql.Option.Call, False: ql.Option.Put}

    def call():
        out = np.full(len(frame), np.nan)
        for i, (p, f, k, t, c) in enumerate(zip(*columns, strict=True)):
            try:
                if accuracy is None:
                    std = ql.blackFormulaImpliedStdDev(kinds[bool(c)], k, f, p, 1.0)
                else:
                    std = ql.blackFormulaImpliedStdDev(
                        kinds[bool(c)], k, f, p, 1.0, 0.0, ql.nullDouble(), accuracy, 200
                    )
                out[i] = std / np.sqrt(t)
            except RuntimeError:
                pass
        return out

    return time_best(call, repeats=1)


def run_lets_be_rational(frame: pd.DataFrame):
    columns = [frame[c].to_numpy() for c in ("price", "forward", "strike", "t", "is_call")]

    def call():
        out = np.full(len(frame), np.nan)
        for i, (p, f, k, t, c) in enumerate(zip(*columns, strict=True)):
            try:
                out[i] = lbr.implied_volatility_from_a_transformed_rational_guess(
                    p, f, k, t, 1.0 if c else -1.0
                )
            except Exception:  # the library signals bounds with exceptions
                pass
        return out

    return time_best(call, repeats=1)


def first_call_seconds(cache: Path) -> float:
    code = (
        "import time, numpy as np, volcal as vc\n"
        "p = np.linspace(1.0, 10.0, 10_000)\n"
        "t0 = time.perf_counter()\n"
        "vc.implied_vol(p, 100.0, 100.0, 1.0, True).vol.block_until_ready()\n"
        "print(time.perf_counter() - t0)\n"
    )
    env = dict(os.environ, VOLCAL_CACHE_DIR=str(cache))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, text=True, capture_output=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def errors(vol: np.ndarray, reference: np.ndarray, u: np.ndarray):
    """Max relative error, and the count of points outside max(1e-13 sigma*, u) (or NaN)."""
    error = np.abs(vol - reference)
    bound = np.maximum(1e-13 * reference, u)
    outside = ~(error <= bound)
    return float(np.nanmax(error / reference)), int(outside.sum())


def mpmath_reference(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact inverses (mpmath, 50 digits) and their u of a fixed sample of the Deribit marks."""
    mp.mp.dps = 50
    rng = np.random.default_rng(0)
    index = np.sort(rng.choice(len(frame), size=min(MPMATH_SAMPLE, len(frame)), replace=False))
    sample = frame.iloc[index]
    guess = np.asarray(
        vc.implied_vol(
            *[sample[c].to_numpy() for c in ("price", "forward", "strike", "t", "is_call")]
        ).vol
    )
    keep, sigma, u = [], [], []
    for i, (row, start) in enumerate(zip(sample.itertuples(), guess, strict=True)):
        if not np.isfinite(start):
            continue
        price, forward, strike, t = (mp.mpf(v) for v in (row.price, row.forward, row.strike, row.t))
        root = exact_inverse(price, forward, strike, t, bool(row.is_call), start)
        slope = abs(dprice_dlogstrike(forward, strike, t, root, bool(row.is_call)))
        keep.append(index[i])
        sigma.append(float(root))
        u.append(float(4 * EPS * (price + slope) / vega(forward, strike, t, root)))
    return np.array(keep), np.array(sigma), np.array(u)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N up to 1e5 only")
    options = parser.parse_args()
    sizes = SIZES[:2] if options.quick else SIZES

    accuracy_frame, _ = accuracy_set()
    informative = (accuracy_frame["u"] <= 1e-3 * accuracy_frame["sigma_star"]).to_numpy()
    market = deribit_marks(max(sizes))
    market_index, market_sigma, market_u = mpmath_reference(market)

    rows = []
    for name, base in (("accuracy set", accuracy_frame), ("Deribit marks", market)):
        for n in sizes:
            frame = tile(base, n) if name == "accuracy set" else base.iloc[:n]
            if name == "accuracy set":
                reps = -(-n // len(base))
                reference = np.tile(base["sigma_star"].to_numpy(), reps)[:n]
                u = np.tile(base["u"].to_numpy(), reps)[:n]
                mask = np.tile(informative, reps)[:n]
            else:
                index = market_index[market_index < n]
                reference = np.full(n, np.nan)
                reference[index] = market_sigma[: len(index)]
                u = np.full(n, np.nan)
                u[index] = market_u[: len(index)]
                mask = np.isfinite(reference) & (u <= 1e-3 * reference)
            peers = {
                "volcal.implied_vol": run_volcal(frame),
                "QuantLib (default accuracy)": run_quantlib(frame, None),
                "QuantLib (accuracy 1e-14)": run_quantlib(frame, 1e-14),
                "py_lets_be_rational": run_lets_be_rational(frame),
            }
            volcal_seconds = peers["volcal.implied_vol"][0]
            for library, (seconds, vol) in peers.items():
                max_rel, outside = errors(vol[mask], reference[mask], u[mask])
                rows.append(
                    {
                        "set": name,
                        "N": n,
                        "library": library,
                        "M options/s": n / seconds / 1e6,
                        "volcal speed-up": seconds / volcal_seconds,
                        "max rel. error": max_rel,
                        "outside bound": f"{outside} / {int(mask.sum())}",
                    }
                )
                print(rows[-1], flush=True)

    with tempfile.TemporaryDirectory() as cache:
        cold = first_call_seconds(Path(cache))
        warm = first_call_seconds(Path(cache))
    write_report(pd.DataFrame(rows), cold, warm, options.quick)


def write_report(table: pd.DataFrame, cold: float, warm: float, quick: bool) -> None:
    from importlib.metadata import version

    import jax

    lines = [
        "## Implied volatility",
        "",
        "Produced by `python benchmarks/bench_implied_vol.py`"
        + (" --quick" if quick else "")
        + f" on {time.strftime('%Y-%m-%d')}.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, jax {jax.__version__} ({jax.default_backend()}), "
        f"QuantLib {ql.__version__}, py_lets_be_rational {version('py_lets_be_rational')}.",
        "",
        "Throughput in million options per second (volcal warm, best of 3, through the public",
        "`volcal.implied_vol` on numpy arrays; peers called per option from Python, as their",
        "Python APIs are scalar). *max rel. error* is against mpmath's exact inverse of each",
        "float64 price (on the Deribit marks, a fixed sample of 1,000), over the informative",
        "points (u <= 1e-3 sigma*, u the vol change from 4-ulp rounding of price and",
        "log-moneyness). *outside bound* counts points with error above max(1e-13 sigma*, u),",
        "failures (no vol) included: the bound of tests/test_implied_accuracy.py.",
        "",
        "| set | N | library | M options/s | volcal speed-up | max rel. error | outside bound |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.set} | {row.N:,} | {row.library} | {row._4:.3f} | {row._5:.1f}x | "
            f"{row._6:.1e} | {row._7} |"
        )
    lines += [
        "",
        f"First call of `volcal.implied_vol` on 10,000 options in a new process: {cold:.2f} s "
        f"with an empty compilation cache, {warm:.2f} s with a warm one "
        "(tracing remains; compilation is read from `VOLCAL_CACHE_DIR`).",
        "",
    ]
    replace_section(ROOT / "benchmarks" / "README.md", "## Implied volatility", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

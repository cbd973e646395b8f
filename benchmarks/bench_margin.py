"""Margin repricing speed: volcal against numpy doing the same work and a QuantLib loop.

Same inputs for all: the eSSVI surface calibrated to the latest Deribit BTC snapshot, a book of
10,000 inverse BTC options (random strikes within +-40% of the forward on every listed
expiry, random signed quantities), and 63 scenarios (9 index moves from -16% to +16% x 7
absolute vol shifts from -15 to +15 vol points), sticky-moneyness: every position's shocked vol
is read on the surface at its shifted log-moneyness. The timed work, for each: the shocked
forwards, the vol lookup on the surface (two-node interpolation in total variance), the shifted
vol, Black-76 and the coin P&L matrix. QuantLib prices with ``blackFormula`` in a Python loop
over the vols numpy looked up (the lookup is timed with it). volcal is timed twice: its kernel
(lookup + repricing) and ``volcal.margin`` as called (book grouping, greeks, margins and
contributions on top). Also: 1,000 accounts x 50 positions, and a 1,000,000-position book with
the 35-scenario risk matrix (time and peak resident memory, in a new process).

Run: ``python benchmarks/bench_margin.py`` (writes benchmarks/margin.md).
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.special import ndtr

import volcal as vc
from volcal.margin import ScenarioSet, VolRule, load_book
from volcal.margin import engine as margin_engine
from volcal.sources.files import read_deribit_snapshot
from volcal.surface import VolSurface

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VOLCAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
SNAPSHOT = sorted((DATA / "raw" / "deribit_svcj_snapshots").glob("*.csv"))[-1]
POSITIONS = 10_000
REPEATS = 5


def real_surface() -> VolSurface:
    grid = vc.clean(read_deribit_snapshot(SNAPSHOT), underlying="BTC")
    return VolSurface.from_calibration(vc.calibrate(vc.models.ESSVI, grid), surface_id="bench")


def random_book(surface: VolSurface, n: int, seed: int = 0, accounts: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    expiries = pd.to_datetime(list(surface.expiries), utc=True)
    expiry = expiries[rng.integers(0, len(expiries), n)]
    t = np.asarray((expiry - pd.Timestamp(surface.snapshot)).total_seconds() / (365 * 86400))
    forward = np.asarray(surface.forward_at(t))
    strike = np.round(forward * np.exp(rng.uniform(-0.4, 0.4, n)), -2)
    return pd.DataFrame({
        "account": [f"acct{i % accounts}" for i in range(n)],
        "underlying": "BTC", "kind": "option", "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "strike": strike, "right": np.where(rng.random(n) < 0.5, "C", "P"),
        "quantity": rng.integers(-20, 21, n).astype(float), "settlement": "coin",
    })  # fmt: skip


def grid_63() -> ScenarioSet:
    moves, shifts = np.linspace(-0.16, 0.16, 9), np.linspace(-0.15, 0.15, 7)
    move, shift = (a.ravel() for a in np.meshgrid(moves, shifts, indexing="ij"))
    return ScenarioSet(name="grid 9x7", labels=tuple(f"{m:+.0%} {s:+.2f}" for m, s in
                                                     zip(move, shift, strict=True)),
                       price_move=move, vol_direction=np.sign(shift), weight=np.ones(63),
                       rule=VolRule("table"), vol_scale=np.zeros(63), vol_shift=shift)  # fmt: skip


def numpy_essvi(surface: VolSurface):
    """The eSSVI surface written in numpy: ``w(k, t)`` by two-node interpolation."""
    theta, rho, psi = (np.asarray(getattr(surface.model, n)) for n in ("theta", "rho", "psi"))
    nodes = np.concatenate([[0.0], np.asarray(surface.t)])

    def w_node(i, k):
        th, r, p = theta[i], rho[i], psi[i]
        return 0.5 * (th + r * p * k + np.sqrt((p * k + th * r) ** 2 + th * th * (1 - r * r)))

    def total_variance(k, t):
        i = np.clip(np.searchsorted(nodes, t, side="right") - 1, 0, len(theta) - 1)
        low = np.where(i > 0, w_node(np.maximum(i - 1, 0), k), 0.0)
        high = w_node(i, k)
        share = (t - nodes[i]) / (nodes[i + 1] - nodes[i])
        beyond = w_node(len(theta) - 1, k) * t / nodes[-1]
        return np.where(t > nodes[-1], beyond, low + share * (high - low))

    return total_variance


def numpy_pnl(total_variance, strike, t, is_call, forward, amount, moves, shifts):
    """The same work as volcal's kernel, in numpy: coin P&L ``(position, scenario)``."""
    f, k_, tt = forward[:, None], strike[:, None], t[:, None]
    shocked = f * (1.0 + moves[None, :])
    base = np.sqrt(total_variance(np.log(k_ / f), tt) / tt)
    vol = np.sqrt(total_variance(np.log(k_ / shocked), tt) / tt)
    vol = np.maximum(vol + shifts[None, :], 1e-4)

    def black(fwd, vol):
        s = vol * np.sqrt(tt)
        d1 = np.log(fwd / k_) / s + 0.5 * s
        call = fwd * ndtr(d1) - k_ * ndtr(d1 - s)
        return np.where(is_call[:, None], call, call - fwd + k_)

    return amount[:, None] * (black(shocked, vol) / shocked - black(f, base) / f)


def best(fn, repeats=REPEATS):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), out


def million(n: int) -> None:
    """Child process: margin of an n-position book on the risk matrix; prints time and RSS."""
    surface = real_surface()
    book = load_book(random_book(surface, n, seed=1, accounts=100))
    vc.margin(book, {"BTC": surface}, "riskmatrix")  # compile
    started = time.perf_counter()
    result = vc.margin(book, {"BTC": surface}, "riskmatrix")
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT {elapsed:.2f} {peak:.0f} {len(result.accounts)}")


def main() -> None:
    import QuantLib as ql

    surface = real_surface()
    frame = random_book(surface, POSITIONS)
    book = load_book(frame)
    scenarios = grid_63()
    result = vc.margin(book, {"BTC": surface}, scenarios)  # compile
    whole, result = best(lambda: vc.margin(book, {"BTC": surface}, scenarios))
    positions = result.positions
    strike = positions["strike"].to_numpy()
    t = positions["t"].to_numpy()
    forward = positions["forward"].to_numpy()
    is_call = positions["is_call"].to_numpy()
    amount = (positions["quantity"] * positions["contract_size"]).to_numpy()
    moves, shifts = scenarios.price_move, scenarios.vol_shift

    # volcal's kernel alone (lookup + repricing), as margin() calls it.
    arrays = {"strike": strike, "t": t, "is_call": is_call, "forward": forward,
              "discount": np.ones(POSITIONS), "is_option": np.ones(POSITIONS, bool),
              "inverse": np.ones(POSITIONS, bool), "amount": amount}  # fmt: skip
    chunk = {k: margin_engine._pad(v) for k, v in arrays.items()}
    scale, shift, floor = (margin_engine._pad(x) for x in scenarios.vol_terms(t * 365.0))

    def kernel():
        out = margin_engine._scenario_pnl(surface, chunk, jnp.asarray(moves), scale, shift,
                                          floor, True)  # fmt: skip
        return jax.block_until_ready(out)[2]

    kernel()
    kernel_time, pnl_kernel = best(kernel)
    total_variance = numpy_essvi(surface)
    numpy_time, pnl_numpy = best(lambda: numpy_pnl(total_variance, strike, t, is_call, forward,
                                                   amount, moves, shifts))  # fmt: skip

    def quantlib():
        f, k_, tt = forward[:, None], strike[:, None], t[:, None]
        shocked = f * (1.0 + moves[None, :])
        base = np.sqrt(total_variance(np.log(k_ / f), tt) / tt)[:, 0]
        vol = np.sqrt(total_variance(np.log(k_ / shocked), tt) / tt)
        vol = np.maximum(vol + shifts[None, :], 1e-4)
        out = np.empty((POSITIONS, len(moves)))
        for p in range(POSITIONS):
            kind = ql.Option.Call if is_call[p] else ql.Option.Put
            root_t = np.sqrt(t[p])
            now = ql.blackFormula(kind, strike[p], forward[p], base[p] * root_t) / forward[p]
            for s in range(len(moves)):
                fs = shocked[p, s]
                out[p, s] = amount[p] * (ql.blackFormula(kind, strike[p], fs, vol[p, s] * root_t)
                                         / fs - now)  # fmt: skip
        return out

    quantlib_time, pnl_quantlib = best(quantlib, repeats=1)
    pnl_margin = result.pnl["BTC"].to_numpy()
    notional = np.maximum(np.abs(amount), 1.0)[:, None]  # per contract (some quantities are 0)
    cells = POSITIONS * len(moves)

    def agreement(other):
        return float(np.max(np.abs(other - pnl_margin[: len(other)]) / notional))

    accounts_book = load_book(random_book(surface, 50_000, seed=2, accounts=1000))
    vc.margin(accounts_book, {"BTC": surface}, "riskmatrix")
    accounts_time, accounts_result = best(lambda: vc.margin(accounts_book, {"BTC": surface},
                                                            "riskmatrix"), repeats=3)  # fmt: skip
    child = subprocess.run([sys.executable, __file__, "--million"], capture_output=True,
                           text=True)  # fmt: skip
    line = [x for x in child.stdout.splitlines() if x.startswith("RESULT")]
    million_time, million_rss = (
        (float(x) for x in line[0].split()[1:3]) if line else (np.nan, np.nan)
    )
    rows = [
        ("volcal kernel (vol lookup + repricing, JAX)", kernel_time,
         agreement(pnl_kernel[:POSITIONS])),
        ("volcal.margin as called (+ greeks, margins, contributions)", whole, 0.0),
        ("numpy, same work", numpy_time, agreement(pnl_numpy)),
        ("QuantLib blackFormula loop (numpy lookup)", quantlib_time, agreement(pnl_quantlib)),
    ]  # fmt: skip
    lines = ["# Margin repricing speed", "",
             f"Produced by `python benchmarks/bench_margin.py` on {platform.machine()}, "
             f"{os.cpu_count()} cores, jax {jax.__version__}, QuantLib {ql.__version__}, "
             f"{pd.Timestamp.now(tz='UTC'):%Y-%m-%d}. Surface: eSSVI on "
             f"{SNAPSHOT.stem[-16:]} BTC ({len(surface.t)} expiries). Book: {POSITIONS:,} "
             f"inverse options x {len(moves)} scenarios = {cells:,} position-scenarios, "
             "sticky-moneyness; warm timings, median of "
             f"{REPEATS} (QuantLib: one run).", "",
             "| implementation | seconds | position-scenarios / s | vs numpy | max abs P&L "
             "difference to volcal.margin, coin per contract |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, seconds, difference in rows:
        lines.append(f"| {name} | {seconds:.4f} | {cells / seconds:,.3g} | "
                     f"{numpy_time / seconds:.2f}x | {difference:.1e} |")  # fmt: skip
    lines += ["",
              f"1,000 accounts x 50 positions (50,000 positions, 35-scenario risk matrix, "
              f"margins per account): {accounts_time:.2f} s for "
              f"{len(accounts_result.accounts)} accounts.", "",
              f"1,000,000 positions, 100 accounts, risk matrix, in a new process: "
              f"{million_time:.1f} s warm, peak resident memory {million_rss:,.0f} MiB.",
              ""]  # fmt: skip
    out = ROOT / "benchmarks" / "margin.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if "--million" in sys.argv:
        million(1_000_000)
    else:
        main()

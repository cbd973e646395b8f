"""The main job on real data and its timings; writes docs/refresh_snapshots.md.

1. ``volcal refresh`` on the demo market in a fresh process with an empty compilation cache,
   then again (``--force``) with the warm cache;
2. a warm refresh of one real snapshot, BTC and ETH, all models;
3. ``volcal refresh`` over all five Deribit snapshot files (CSV source), BTC and ETH, every
   model, into one store: the gate outcome of every calibration and, from the published
   surfaces, constant-maturity ATM vol, 25-delta risk reversal and butterfly.

Run: ``python benchmarks/refresh_snapshots.py`` (about 10 minutes on a 2-core machine).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VOLCAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
SNAPSHOTS = sorted((DATA / "raw" / "deribit_svcj_snapshots").glob("*.csv"))
TENORS_DAYS = (7, 30, 90, 180)


def timed_refresh(args: list[str], cache: Path) -> tuple[float, int]:
    """Wall time of ``volcal refresh ARGS`` in a new process, and its exit code."""
    env = {**os.environ, "VOLCAL_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "volcal.cli", "refresh", *args], env=env,
                          capture_output=True, text=True)  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 3):
        print(done.stdout[-3000:], done.stderr[-3000:])
    return elapsed, done.returncode


def config_for(files: list[Path], store: Path) -> str:
    chains = "".join(f'[[chains]]\nvenue = "deribit"\nunderlying = ["BTC", "ETH"]\n'
                     f'source = "{path}"\nformat = "deribit"\n\n' for path in files)  # fmt: skip
    return f'store = "{store}"\nmodels = ["ESSVI", "SVI", "SABR", "Heston"]\n\n{chains}'


def main() -> None:
    from volcal.store import Store

    lines = ["# The refresh job on real data", "",
             f"Produced by `python benchmarks/refresh_snapshots.py` on {platform.machine()}, "
             f"{os.cpu_count()} cores, {pd.Timestamp.now(tz='UTC'):%Y-%m-%d}.", ""]  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        cache = scratch / "cache"
        demo_store = scratch / "demo.sqlite"
        cold, code_cold = timed_refresh(["--store", str(demo_store)], cache)
        warm, code_warm = timed_refresh(["--store", str(demo_store), "--force"], cache)
        one = scratch / "one.toml"
        one.write_text(config_for(SNAPSHOTS[-1:], scratch / "one.sqlite"))
        timed_refresh(["--config", str(one)], cache)  # compiles the real grids' shapes
        real, code_real = timed_refresh(["--config", str(one), "--force"], cache)
        lines += ["## Timings (wall clock, new process each, install excluded)", "",
                  "| run | seconds | exit code |", "|---|---:|---:|",
                  f"| demo market, all models, empty compilation cache | {cold:.1f} "
                  f"| {code_cold} |",
                  f"| demo market, all models, warm cache | {warm:.1f} | {code_warm} |",
                  f"| {SNAPSHOTS[-1].stem[-16:]} BTC + ETH, all models, warm cache | {real:.1f} "
                  f"| {code_real} |", ""]  # fmt: skip
        every = scratch / "every.toml"
        store_path = scratch / "every.sqlite"
        every.write_text(config_for(SNAPSHOTS, store_path))
        total, code = timed_refresh(["--config", str(every)], cache)
        lines += [f"All five snapshot files, BTC and ETH, every model: {total:.0f} s, exit code "
                  f"{code}.", ""]  # fmt: skip
        with Store(store_path) as store:
            history = store.history().sort_values(["snapshot", "underlying", "model"])
            lines += ["## Every calibration and its gate outcome", "",
                      "RMSE in vol points over all fitted quotes; inside = share of two-sided "
                      "quotes with the model IV within bid/ask IV.", "",
                      "| snapshot | underlying | model | status | RMSE | inside | reasons |",
                      "|---|---|---|---|---:|---:|---|"]  # fmt: skip
            for row in history.itertuples():
                model = f"{row.model} (published)" if row.published else row.model
                lines.append(f"| {row.snapshot:%Y-%m-%d %H:%M} | {row.underlying} | {model} | "
                             f"{row.status} | {row.rmse:.2f} | {row.inside:.1%} | "
                             f"{row.reasons or '-'} |")  # fmt: skip
            lines += ["", "## Constant maturity, from the published (eSSVI) surfaces", "",
                      "ATM: at-the-forward vol; RR25 = vol(25-delta call) - vol(25-delta put); "
                      "BF25 = their mean - ATM; decimal vols x 100 (vol points).", "",
                      "| snapshot | underlying | "
                      + " | ".join(f"{d}d ATM | {d}d RR25 | {d}d BF25" for d in TENORS_DAYS)
                      + " |", "|---|---|" + "---:|" * (3 * len(TENORS_DAYS))]  # fmt: skip
            published = history[history["published"] & (history["status"] == "accepted")]
            for row in published.itertuples():
                surface = store.get(row.id).surface
                table = surface.constant_maturity(TENORS_DAYS)
                cells = [f"{table.at[d, c] * 100:.2f}" for d in map(float, TENORS_DAYS)
                         for c in ("atm_vol", "rr25", "bf25")]  # fmt: skip
                lines.append(f"| {row.snapshot:%Y-%m-%d %H:%M} | {row.underlying} | "
                             + " | ".join(cells) + " |")  # fmt: skip
    out = ROOT / "docs" / "refresh_snapshots.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

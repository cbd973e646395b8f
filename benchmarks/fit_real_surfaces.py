"""Fit every model to the five real Deribit snapshots (BTC and ETH) and the SPX 2011 chain.

Writes docs/real_data_fits.md: per surface and model, RMSE of mid IVs in vol points, the share
of two-sided quotes inside [bid IV, ask IV], slices converged, and arbitrage found by
volcal.arbitrage; then the same per expiry. Run: ``python benchmarks/fit_real_surfaces.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import volcal as vc
from volcal.calibrate import calibrate
from volcal.models import ESSVI, SABR, SSVI, SVI, Heston
from volcal.sources.files import read_cboe_quotes, read_deribit_snapshot

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VOLCAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
MODELS = {
    "eSSVI (published)": (ESSVI, {}),
    "raw SVI": (SVI, {}),
    "raw SVI, calendar repaired": (SVI, {"calendar": "repair"}),
    "SSVI (power law)": (SSVI, {}),
    "SABR beta=1 (Obloj)": (SABR, {"fixed": {"beta": 1.0, "expansion": "obloj"}}),
    "Heston": (Heston, {}),
}


def surfaces():
    for path in sorted((SHARED / "raw" / "deribit_svcj_snapshots").glob("*.csv")):
        chain = read_deribit_snapshot(path)
        for currency in ("BTC", "ETH"):
            yield f"Deribit {currency} {path.stem[-16:-8]}", vc.clean(chain, underlying=currency)
    spx = read_cboe_quotes(SHARED / "raw" / "spx_cboe_20110124" / "SPX-Options-24jan2011.csv")
    yield "SPX 2011-01-24", vc.clean(spx)


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub table (floats to 3 decimals, shares as percent)."""

    def cell(column, value):
        if isinstance(value, float):
            return f"{value:.1%}" if column.startswith("inside") else f"{value:.3f}"
        return str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(c, v) for c, v in zip(frame.columns, row, strict=True)) + " |"
            for row in frame.itertuples(index=False)]  # fmt: skip
    return "\n".join([header, rule, *rows])


def by_model(overall: pd.DataFrame) -> pd.DataFrame:
    """Per model over all surfaces: median and worst RMSE, quotes inside (pooled), slices
    converged, surfaces with any butterfly or calendar violation."""
    rows = []
    for label, frame in overall.groupby("model", sort=False):
        done = frame["converged"].str.split("/", expand=True).astype(int).sum()
        rows.append({
            "model": label, "median RMSE (vp)": float(frame["RMSE (vp)"].median()),
            "worst RMSE (vp)": float(frame["RMSE (vp)"].max()),
            "inside": float((frame["inside"] * frame["quotes"]).sum() / frame["quotes"].sum()),
            "converged": f"{done[0]}/{done[1]}",
            "surfaces with butterfly": int((frame["butterfly slices"] > 0).sum()),
            "surfaces with calendar": int((frame["calendar pairs"] > 0).sum()),
        })  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    overall, per_expiry = [], []
    for name, grid in surfaces():
        for label, (model, options) in MODELS.items():
            started = time.perf_counter()
            result = calibrate(model, grid, throw=False, **options)
            elapsed = time.perf_counter() - started
            count = grid.mask.sum(axis=1)
            enough = count >= 8
            inside8 = (result.inside_by_expiry * count)[enough].sum() / count[enough].sum()
            overall.append({
                "surface": name, "model": label, "quotes": int(count.sum()),
                "RMSE (vp)": result.rmse, "inside": result.inside,
                "inside, expiries >= 8 quotes": inside8,
                "converged": f"{int(result.ok_by_expiry.sum())}/{len(count)}",
                "butterfly slices": result.arbitrage.butterfly["slice"].nunique(),
                "calendar pairs": result.arbitrage.calendar["slice"].nunique(),
                "seconds (incl. compile)": elapsed,
            })  # fmt: skip
            table = result.summary()
            for expiry, row in table.iterrows():
                per_expiry.append({"surface": name, "model": label,
                                   "expiry": f"{expiry:%Y-%m-%d}", "quotes": row["quotes"],
                                   "RMSE (vp)": row["rmse_vol_points"],
                                   "inside": row["inside"], "status": row["status"]})  # fmt: skip
            print(overall[-1], flush=True)
    lines = ["# Model fits to real surfaces", "",
             "Produced by `python benchmarks/fit_real_surfaces.py` on "
             f"{time.strftime('%Y-%m-%d')}: mid-IV fits (vol residuals, inverse-spread weights)",
             "to the cleaned two-sided quotes of each surface. *inside*: share of quotes whose",
             "model IV is within [bid IV, ask IV]. Arbitrage from `volcal.arbitrage.check`.", "",
             "eSSVI is the published model (arbitrage-free by construction); raw SVI has its",
             "butterfly penalty and, in the repaired variant, the sequential calendar pass;",
             "Heston (five parameters for the whole surface) cannot follow the short-expiry",
             "crypto skews, and its errors are reported as they are.", "",
             "## By model (all surfaces)", "", markdown(by_model(pd.DataFrame(overall))), "",
             "## Per surface", "", markdown(pd.DataFrame(overall)),
             "", "## Per expiry", "",
             markdown(pd.DataFrame(per_expiry)), ""]  # fmt: skip
    (ROOT / "docs" / "real_data_fits.md").write_text("\n".join(lines))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

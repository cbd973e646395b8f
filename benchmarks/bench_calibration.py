"""Calibration speed and accuracy: volcal's ``calibrate`` against QuantLib on the same inputs.

Measured in one run, times as the median of warm calls after one warm-up call:

1. Heston on 200 synthetic quotes (10 expiries from 1 week to 2 years x 20 strikes over +-2
   standard deviations, forward 100, zero rates) from an equity-like and a crypto-like
   parameter set, clean and with seeded bid/ask noise, from volcal's initial guess and from a
   generic start. volcal: ``calibrate(Heston | Heston(...), grid, throw=False)``. QuantLib:
   ``HestonModel.calibrate`` with one ``HestonModelHelper`` per quote (``ImpliedVolError``),
   ``AnalyticHestonEngine(model)``, ``LevenbergMarquardt()`` and
   ``EndCriteria(400, 40, 1e-8, 1e-8, 1e-8)``; only ``model.calibrate`` is timed. Both fits
   are scored with volcal's Heston pricer (``Heston.implied_vol``) against the true
   (noise-free) vols and against the quoted mids.
2. Raw SVI on the BTC surface of one Deribit snapshot: ``calibrate(SVI, grid)`` (butterfly
   penalty, a few slices stepped side by side in one vmapped step; the arbitrage report of
   the result, computed on first access, is timed with it and alone) against
   ``ql.SviInterpolatedSmileSection`` per slice (all five parameters free, QuantLib's default
   start).
3. SABR (beta = 1, Hagan's expansion) on the same slices: ``calibrate(SABR, grid,
   fixed={"beta": 1.0, "expansion": "hagan"})`` against ``ql.SABRInterpolation`` per slice.
4. First call of ``calibrate`` (SVI, Heston) in fresh processes, with an empty and then a warm
   persistent compilation cache (``VOLCAL_CACHE_DIR``).

Run: ``python benchmarks/bench_calibration.py``; it writes benchmarks/calibration.md and prints
the same tables.
"""

from __future__ import annotations

import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import QuantLib as ql

import volcal as vc
from volcal.calibrate import CalibrationStatus, calibrate
from volcal.clean import CleaningReport, IVGrid
from volcal.models import SABR, SVI, Heston
from volcal.sources.files import read_deribit_snapshot

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VOLCAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
SNAPSHOT = (SHARED / "raw" / "deribit_svcj_snapshots"
            / "deribit_options_snapshot_20260822T153351Z.csv")  # fmt: skip
UNDERLYING = "BTC"
OUTPUT = ROOT / "benchmarks" / "calibration.md"

VOL_POINT = 0.01
#: Heston quotes: expiries in days (ACT/365, so QuantLib's Period(n, Days) gives the same t),
#: strikes per expiry, and their range in standard deviations sqrt(average variance x t).
HESTON_DAYS = np.array([7, 14, 30, 61, 91, 182, 273, 365, 547, 730])
HESTON_STRIKES = 20
HESTON_STDDEVS = 2.0
FORWARD = 100.0
HESTON_SETS = {
    "equity-like": Heston(v0=0.04, kappa=1.5, theta=0.06, xi=0.6, rho=-0.7),
    "crypto-like": Heston(v0=0.36, kappa=3.0, theta=0.30, xi=1.8, rho=0.1),
}
#: The generic start given to both libraries (QuantLib always starts here: it has no guess).
GENERIC_START = Heston(v0=0.1, kappa=1.0, theta=0.1, xi=0.5, rho=-0.5)
#: Bid/ask noise: mid = true vol + U(-HALF_SPREAD, HALF_SPREAD), bid/ask = mid -+ HALF_SPREAD.
HALF_SPREAD = 0.5 * VOL_POINT
NOISE_SEED = 20261125
QL_HESTON_END_CRITERIA = (400, 40, 1e-8, 1e-8, 1e-8)
#: Timed warm calls per measurement (after one warm-up call).
HESTON_REPEATS = 3
CHECK_REPEATS = 2
SMILE_REPEATS = 20

#: Gap (decimal vol) above which a QuantLib SVI section's volatility() is reported as not
#: matching its own parameters.
STALE_GAP = 1e-4

QL_END_TYPES = {getattr(ql.EndCriteria, n): n for n in dir(ql.EndCriteria) if n[0].isupper()}


def time_calls(function, repeats: int, warm_up: bool = True):
    """(median seconds, fastest seconds) of ``repeats`` calls after one warm-up call, and the
    last result."""
    result = function() if warm_up else None
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), float(np.min(times)), result


def time_median(function, repeats: int, warm_up: bool = True):
    """(median seconds of ``repeats`` calls after one warm-up call, last result)."""
    median, _, result = time_calls(function, repeats, warm_up)
    return median, result


def with_report(call):
    """``call`` (a calibrate call) followed by reading its arbitrage report, which
    ``Calibration`` computes on first access."""

    def both():
        result = call()
        _ = result.arbitrage
        return result

    return both


def rmse_vp(model_vol, reference) -> float:
    """Root mean square of ``model_vol - reference`` in vol points (NaN if any vol is NaN)."""
    return float(np.sqrt(np.mean((np.asarray(model_vol) - reference) ** 2)) / VOL_POINT)


def fmt_rmse(value: float) -> str:
    return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


def markdown(rows: list[dict], align: str | None = None) -> str:
    """A GitHub table of pre-formatted cells; ``align`` one letter per column (l or r)."""
    columns = list(rows[0])
    align = align or "l" * len(columns)
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    lines = ["| " + " | ".join(columns) + " |", rule]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# 1. Heston


def heston_layout(model: Heston):
    """t (expiry,), strikes and log-moneyness (expiry, strike), true vols (expiry, strike)."""
    t = HESTON_DAYS / 365.0
    deviation = np.sqrt(np.asarray(model.average_variance(t)) * t)
    k = np.linspace(-HESTON_STDDEVS, HESTON_STDDEVS, HESTON_STRIKES)[None, :] * deviation[:, None]
    strike = FORWARD * np.exp(k)
    true = np.asarray(model.implied_vol(np.full(len(t), FORWARD), strike, t))
    assert np.all(np.isfinite(true)), "true Heston vols must be finite"
    return t, strike, k, true


def synthetic_grid(t, strike, k, mid) -> IVGrid:
    """An IVGrid of the quotes (uniform weights: every spread is 2 HALF_SPREAD)."""
    start = pd.Timestamp("2026-01-01", tz="UTC")
    n = len(t)
    return IVGrid(
        venue="synthetic", underlying="X", snapshot=start,
        expiries=pd.DatetimeIndex(start + pd.to_timedelta(HESTON_DAYS, unit="D")),
        t=t, forward=np.full(n, FORWARD), discount=np.ones(n), strike=strike, log_moneyness=k,
        mid_iv=mid, bid_iv=mid - HALF_SPREAD, ask_iv=mid + HALF_SPREAD, is_call=k >= 0,
        weight=np.ones_like(k), mask=np.ones_like(k, dtype=bool), quotes=pd.DataFrame(),
        report=CleaningReport(pd.DataFrame(), pd.DataFrame()),
    )  # fmt: skip


def quantlib_heston(strike, mid):
    """Time QuantLib's Heston calibration from GENERIC_START; (seconds, fitted Heston, status)."""
    today = ql.Date(1, 1, 2026)
    ql.Settings.instance().evaluationDate = today
    flat = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, ql.Actual365Fixed()))
    spot = ql.QuoteHandle(ql.SimpleQuote(FORWARD))
    helpers = [
        ql.HestonModelHelper(ql.Period(int(days), ql.Days), ql.NullCalendar(), FORWARD,
                             float(strike[i, j]), ql.QuoteHandle(ql.SimpleQuote(float(mid[i, j]))),
                             flat, flat, ql.BlackCalibrationHelper.ImpliedVolError)
        for i, days in enumerate(HESTON_DAYS) for j in range(strike.shape[1])
    ]  # fmt: skip
    s = GENERIC_START

    def fit():
        process = ql.HestonProcess(flat, flat, spot, s.v0, s.kappa, s.theta, s.xi, s.rho)
        model = ql.HestonModel(process)
        engine = ql.AnalyticHestonEngine(model)
        for helper in helpers:
            helper.setPricingEngine(engine)
        started = time.perf_counter()
        model.calibrate(helpers, ql.LevenbergMarquardt(), ql.EndCriteria(*QL_HESTON_END_CRITERIA))
        return time.perf_counter() - started, model

    fit()  # warm-up
    runs = [fit() for _ in range(HESTON_REPEATS)]
    model = runs[-1][1]
    fitted = Heston(v0=model.v0(), kappa=model.kappa(), theta=model.theta(), xi=model.sigma(),
                    rho=model.rho())  # fmt: skip
    status = f"{QL_END_TYPES.get(model.endCriteria(), model.endCriteria())}, " \
             f"{model.functionEvaluation()} evals"  # fmt: skip
    return float(np.median([r[0] for r in runs])), fitted, status


def heston_section():
    rows, ratios, solve_ratios = [], [], []
    for index, (name, true_model) in enumerate(HESTON_SETS.items()):
        t, strike, k, true = heston_layout(true_model)
        rng = np.random.default_rng([NOISE_SEED, index])
        noisy = true + rng.uniform(-HALF_SPREAD, HALF_SPREAD, true.shape)
        for variant, mid in (("clean", true), ("bid/ask noise", noisy)):
            grid = synthetic_grid(t, strike, k, mid)

            def score(model, strike=strike, t=t, true=true, mid=mid):
                vol = np.asarray(model.implied_vol(np.full(len(t), FORWARD), strike, t))
                return rmse_vp(vol, true), rmse_vp(vol, mid)

            ql_seconds, ql_model, ql_status = quantlib_heston(strike, mid)
            ql_true, ql_mid = score(ql_model)
            for start_label, start in (("volcal guess", Heston), ("generic", GENERIC_START)):
                call = lambda start=start, grid=grid: calibrate(start, grid, throw=False)  # noqa: E731
                seconds, result = time_median(call, HESTON_REPEATS)
                reported, _ = time_median(with_report(call), HESTON_REPEATS)
                check, _ = time_median(
                    lambda r=result: vc.arbitrage.check(r.model, r.grid.forward, r.grid.t),
                    CHECK_REPEATS,
                    warm_up=False,
                )
                vc_true, vc_mid = score(result.model)
                ratios.append(ql_seconds / seconds)
                solve_ratios.append(ql_seconds / reported)
                status = CalibrationStatus(int(result.status[0])).name
                rows.append({
                    "set": name, "quotes": variant, "start": start_label,
                    "volcal s": f"{seconds:.3f}", "volcal + report s": f"{reported:.3f}",
                    "arbitrage.check s": f"{check:.3f}",
                    "QuantLib s": f"{ql_seconds:.3f}",
                    "QL / volcal": f"{ratios[-1]:.2f}x",
                    "QL / (volcal + report)": f"{solve_ratios[-1]:.2f}x",
                    "volcal RMSE vs true": fmt_rmse(vc_true), "QL RMSE vs true": fmt_rmse(ql_true),
                    "volcal RMSE vs mid": fmt_rmse(vc_mid), "QL RMSE vs mid": fmt_rmse(ql_mid),
                    "volcal status": f"{status}, {int(result.steps[0])} steps",
                    "QL end": ql_status,
                })  # fmt: skip
                print(rows[-1], flush=True)
    summary = (
        f"QuantLib / volcal time over the {len(ratios)} cases: median {np.median(ratios):.2f}x, "
        f"worst (lowest) {np.min(ratios):.2f}x for `calibrate` as called; with its arbitrage "
        f"report read too: median {np.median(solve_ratios):.2f}x, worst "
        f"{np.min(solve_ratios):.2f}x."
    )
    return rows, summary, (float(np.median(ratios)), float(np.min(ratios)),
                           float(np.median(solve_ratios)), float(np.min(solve_ratios)))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 2 and 3. SVI and SABR on a Deribit surface


def slices(grid: IVGrid):
    """Per expiry: (index, strikes, mid vols) of the quotes."""
    for i in range(len(grid.t)):
        mask = grid.mask[i]
        yield i, grid.strike[i][mask], grid.mid_iv[i][mask]


def quantlib_svi(grid: IVGrid, vega_weighted: bool):
    """One SviInterpolatedSmileSection per slice, all parameters free from QuantLib's default
    start. Returns a function fitting the surface -> (vols (expiry, width), SVI in volcal's t).

    QuantLib's dates have no time of day, so its t is whole days / 365 from the snapshot's
    date; vols are fitted as sqrt(w/t), and SVI is closed under scaling w, so the fitted smile
    in vol is the same and a, b rescale by t_volcal / t_QuantLib for volcal's t."""
    snapshot = grid.snapshot
    today = ql.Date(snapshot.day, snapshot.month, snapshot.year)
    none = ql.nullDouble()

    def fit():
        ql.Settings.instance().evaluationDate = today
        sections = []
        for i, strikes, vols in slices(grid):
            expiry = grid.expiries[i]
            atm = float(vols[np.argmin(np.abs(np.log(strikes / grid.forward[i])))])
            section = ql.SviInterpolatedSmileSection(
                ql.Date(expiry.day, expiry.month, expiry.year), float(grid.forward[i]),
                [float(x) for x in strikes], False, atm, [float(x) for x in vols],
                none, none, none, none, none, False, False, False, False, False, vega_weighted,
            )  # fmt: skip
            section.volatility(float(strikes[0]))  # the fit runs on first use
            sections.append(section)
        return sections

    def evaluate(sections):
        """Vols of the fitted parameters (raw SVI with QuantLib's t), the fit as a volcal SVI,
        and the vols ``section.volatility`` returns."""
        vol = np.full(grid.strike.shape, np.nan)
        reported = np.full(grid.strike.shape, np.nan)
        params = []
        for (i, strikes, _), section in zip(slices(grid), sections, strict=True):
            a, b, rho, m, sigma = (section.a(), section.b(), section.rho(), section.m(),
                                   section.sigma())  # fmt: skip
            k = np.log(strikes / grid.forward[i]) - m
            w = a + b * (rho * k + np.sqrt(k * k + sigma * sigma))
            vol[i, grid.mask[i]] = np.sqrt(np.maximum(w, 0.0) / section.exerciseTime())
            reported[i, grid.mask[i]] = [section.volatility(float(x)) for x in strikes]
            scale = grid.t[i] / section.exerciseTime()
            params.append((a * scale, b * scale, rho, m, sigma))
        a, b, rho, m, sigma = (np.array(p) for p in zip(*params, strict=True))
        return vol, SVI(a=a, b=b, rho=rho, m=m, sigma=sigma), reported

    return fit, evaluate


def quantlib_sabr(grid: IVGrid, vega_weighted: bool):
    """One SABRInterpolation per slice (beta = 1 fixed; alpha, nu, rho free from QuantLib's
    default start; its defaults otherwise)."""
    none = ql.nullDouble()

    def fit():
        fits = []
        for i, strikes, vols in slices(grid):
            interpolation = ql.SABRInterpolation(
                ql.Array([float(x) for x in strikes]), ql.Array([float(x) for x in vols]),
                float(grid.t[i]), float(grid.forward[i]), none, 1.0, none, none,
                False, True, False, False, vega_weighted,
            )  # fmt: skip
            interpolation.alpha()
            fits.append(interpolation)
        return fits

    def evaluate(fits):
        vol = np.full(grid.strike.shape, np.nan)
        for (i, strikes, _), f in zip(slices(grid), fits, strict=True):
            vol[i, grid.mask[i]] = [
                ql.sabrVolatility(float(x), float(grid.forward[i]), float(grid.t[i]), f.alpha(),
                                  1.0, f.nu(), f.rho())
                for x in strikes
            ]  # fmt: skip
        model = SABR(alpha=np.array([f.alpha() for f in fits]), beta=1.0,
                     rho=np.clip([f.rho() for f in fits], -1.0, 1.0),
                     nu=np.array([f.nu() for f in fits]), expansion="hagan")  # fmt: skip
        return vol, model, vol

    return fit, evaluate


def arbitrage_counts(model, grid: IVGrid) -> tuple[int, int]:
    report = vc.arbitrage.check(model, grid.forward, grid.t)
    return report.butterfly["slice"].nunique(), report.calendar["slice"].nunique()


def smile_section(grid: IVGrid, label: str, model_type, options: dict, ql_factory):
    """Summary rows, per-expiry RMSEs (vol points) and notes of one smile model."""
    quotes = int(grid.mask.sum())
    rows, per_expiry, notes = [], {}, []
    volcal_seconds = None
    for weights, weight_label in (("grid", "inverse IV spread (grid, default)"),
                                  ("uniform", "uniform")):  # fmt: skip
        call = lambda w=weights: calibrate(model_type, grid, weights=w, throw=False, **options)  # noqa: E731
        seconds, best, result = time_calls(call, SMILE_REPEATS)
        reported, _ = time_median(with_report(call), SMILE_REPEATS)
        check, _ = time_median(
            lambda r=result: vc.arbitrage.check(r.model, grid.forward, grid.t), SMILE_REPEATS,
            warm_up=False,
        )  # fmt: skip
        butterfly, calendar = arbitrage_counts(result.model, grid)
        if weights == "grid":
            volcal_seconds = seconds
        call_text = f"{model_type.__name__}, grid" + ("" if weights == "grid" else
                                                      ', weights="uniform"')  # fmt: skip
        rows.append({
            "fit": f"volcal `calibrate({call_text})`", "weights": weight_label,
            "seconds": f"{seconds:.4f}", "fastest s": f"{best:.4f}",
            "with report": f"{reported:.4f}",
            "arbitrage.check alone": f"{check:.4f}", "QL / volcal": "",
            "RMSE (vp)": f"{result.rmse:.3f}",
            "converged": f"{int(result.ok_by_expiry.sum())}/{len(grid.t)}",
            "butterfly slices": butterfly, "calendar pairs": calendar,
        })  # fmt: skip
        per_expiry[f"volcal {label} ({weights})"] = result.rmse_by_expiry
        print(rows[-1], flush=True)
    for vega_weighted in (True, False):
        fit, evaluate = ql_factory(grid, vega_weighted)
        seconds, best, fitted = time_calls(fit, SMILE_REPEATS)
        vol, model, reported = evaluate(fitted)
        # Sanity: volcal's model built from QuantLib's parameters gives QuantLib's smile.
        mirror = np.asarray(model.implied_vol(grid.forward, grid.strike, grid.t))
        mirror_gap = float(np.nanmax(np.abs(np.where(grid.mask, mirror - vol, 0.0))))
        assert mirror_gap < 1e-8, f"volcal's {label} of QuantLib's parameters: {mirror_gap:.2e}"
        miss = np.where(grid.mask, vol - grid.mid_iv, np.nan)
        butterfly, calendar = arbitrage_counts(model, grid)
        name = "vega" if vega_weighted else "uniform"
        ql_class = "SviInterpolatedSmileSection" if label == "SVI" else "SABRInterpolation"
        rows.append({
            "fit": f"QuantLib `{ql_class}` per slice",
            "weights": ("vega (QuantLib default)" if vega_weighted
                        else "uniform (vegaWeighted=False)"),
            "seconds": f"{seconds:.4f}", "fastest s": f"{best:.4f}", "with report": "",
            "arbitrage.check alone": "",
            "QL / volcal": f"{seconds / volcal_seconds:.2f}x",
            "RMSE (vp)": f"{np.sqrt(np.nansum(miss**2) / quotes) / VOL_POINT:.3f}",
            "converged": "n/a", "butterfly slices": butterfly, "calendar pairs": calendar,
        })  # fmt: skip
        per_expiry[f"QuantLib {label} ({name})"] = (
            np.sqrt(np.nansum(miss**2, axis=1) / grid.mask.sum(axis=1)) / VOL_POINT
        )
        gap = np.nanmax(np.abs(np.where(grid.mask, reported - vol, 0.0)), axis=1)
        stale = gap > STALE_GAP
        if stale.any():
            reported_miss = np.where(grid.mask, reported - grid.mid_iv, np.nan)
            notes.append(
                f"QuantLib {label} ({name} weights): on {int(stale.sum())} of {len(grid.t)} "
                f"slices `section.volatility(K)` differs by more than {STALE_GAP / VOL_POINT:g} "
                "vol points from the smile of the section's own parameters `a()..m()` (largest "
                f"gap {gap.max() / VOL_POINT:.2f} vol points); the RMSE of what `volatility` "
                f"returns is {np.sqrt(np.nansum(reported_miss**2) / quotes) / VOL_POINT:.3f} vol "
                "points. In QuantLib's source, `XABRInterpolationImpl::update` copies the best "
                "parameters back after its random restarts without refreshing the model "
                "instance that `volatility` evaluates, which keeps the last parameters tried. "
                "The table scores the parameters (the best fit QuantLib found)."
            )
            print(notes[-1], flush=True)
        print(rows[-1], flush=True)
    return rows, per_expiry, notes


# ---------------------------------------------------------------------------------------------
# 4. First calls in new processes

FIRST_CALL = """
import pickle, sys, time
started = time.perf_counter()
import volcal as vc
from volcal.models import {model}
imported = time.perf_counter()
with open(sys.argv[1], "rb") as handle:
    grid = pickle.load(handle)
begin = time.perf_counter()
vc.calibrate({model}, grid, throw=False)
print(imported - started, time.perf_counter() - begin)
"""


def first_call(model: str, grid_path: Path, cache: Path) -> tuple[float, float]:
    env = dict(os.environ, VOLCAL_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", FIRST_CALL.format(model=model), str(grid_path)],
                         env=env, check=True, text=True, capture_output=True)  # fmt: skip
    imported, call = (float(x) for x in out.stdout.strip().splitlines()[-1].split())
    return imported, call


def first_call_rows(grids: dict) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for model, grid in grids.items():
            path = Path(work) / f"{model}.pickle"
            path.write_bytes(pickle.dumps(grid))
            cache = Path(work) / f"cache-{model}"  # new and empty
            for label in ("empty", "warm (same folder, second process)"):
                imported, call = first_call(model, path, cache)
                rows.append({"model": model, "compilation cache": label,
                             "import volcal s": f"{imported:.2f}",
                             "first calibrate s": f"{call:.2f}",
                             "total s": f"{imported + call:.2f}"})  # fmt: skip
                print(rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------------------------------------


def main() -> None:
    load = os.getloadavg()
    heston_rows, heston_summary, heston_ratios = heston_section()

    chain = read_deribit_snapshot(SNAPSHOT)
    grid = vc.clean(chain, underlying=UNDERLYING)
    svi_rows, svi_expiry, svi_notes = smile_section(grid, "SVI", SVI, {}, quantlib_svi)
    sabr_rows, sabr_expiry, sabr_notes = smile_section(
        grid, "SABR", SABR, {"fixed": {"beta": 1.0, "expansion": "hagan"}}, quantlib_sabr
    )
    expiry_rows = []
    for i in range(len(grid.t)):
        row = {"expiry": f"{grid.expiries[i]:%Y-%m-%d}", "t": f"{grid.t[i]:.4f}",
               "quotes": int(grid.mask[i].sum())}  # fmt: skip
        for name, values in {**svi_expiry, **sabr_expiry}.items():
            row[name] = f"{values[i]:.3f}"
        expiry_rows.append(row)

    heston_grid = synthetic_grid(*heston_layout(HESTON_SETS["crypto-like"]))
    first_rows = first_call_rows({"SVI": grid, "Heston": heston_grid})

    import jax

    svi_ql = float(svi_rows[2]["QL / volcal"].rstrip("x"))
    sabr_ql = float(sabr_rows[2]["QL / volcal"].rstrip("x"))
    surface = (f"{UNDERLYING} surface of {SNAPSHOT.name}: {len(grid.t)} expiries, "
               f"{int(grid.mask.sum())} quotes after `vc.clean`")  # fmt: skip
    lines = [
        "# Calibration benchmarks: volcal against QuantLib",
        "",
        f"Produced by `python benchmarks/bench_calibration.py` on {time.strftime('%Y-%m-%d')}.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"(shared; load average {load[0]:.2f} at the start); Python {platform.python_version()}, "
        f"jax {jax.__version__} ({jax.default_backend()}), QuantLib {ql.__version__}.",
        "",
        "Times are the median of warm calls after one warm-up call (Heston: "
        f"{HESTON_REPEATS}, smiles: {SMILE_REPEATS}), wall clock, in seconds. *QL / volcal* is "
        "QuantLib's time over volcal's: above 1, volcal is faster. Smiles also show the "
        "fastest of their calls (*fastest s*): this machine is shared, and a median moves by "
        "up to a third between runs. RMSEs are in vol points (0.01 of vol).",
        "",
        "Headline: Heston QuantLib / volcal median "
        f"{heston_ratios[0]:.2f}x (worst {heston_ratios[1]:.2f}x) for `calibrate` as called, "
        f"{heston_ratios[2]:.2f}x (worst {heston_ratios[3]:.2f}x) with the arbitrage report read; "
        f"SVI {svi_ql:.2f}x, SABR {sabr_ql:.2f}x (QuantLib defaults against volcal defaults).",
        "",
        "## 1. Heston, 200 synthetic quotes",
        "",
        f"10 expiries ({', '.join(str(d) for d in HESTON_DAYS)} days, ACT/365) x "
        f"{HESTON_STRIKES} strikes evenly spaced in ln(K/F) over +-{HESTON_STDDEVS:g} sqrt(average "
        f"variance x t) of the true model, forward {FORWARD:g}, zero rates; true vols from "
        "volcal's `Heston.implied_vol`. Sets: "
        + "; ".join(
            f"{n} `{m.v0}, {m.kappa}, {m.theta}, {m.xi}, {m.rho}`" for n, m in HESTON_SETS.items()
        )
        + " (v0, kappa, theta, xi, rho). *bid/ask noise*: mid = true vol + U(-0.5, 0.5) vol "
        f"points (seed {NOISE_SEED}), bid/ask = mid -+ 0.5 vol points; uniform weights in both "
        "libraries (every spread is equal). Starts: *volcal guess* passes the class `Heston` "
        "(volcal's initial-guess heuristic); *generic* passes "
        f"`Heston(v0={GENERIC_START.v0}, kappa={GENERIC_START.kappa}, theta={GENERIC_START.theta}, "
        f"xi={GENERIC_START.xi}, rho={GENERIC_START.rho})` to volcal and the same values to "
        "QuantLib. QuantLib has no initial guess of its own, so it starts from the generic start "
        "in both rows (one measurement, shown in both). QuantLib: `HestonModel.calibrate` over "
        "one `HestonModelHelper` per quote (`ImpliedVolError`), `AnalyticHestonEngine(model)`, "
        "`LevenbergMarquardt()`, `EndCriteria(400, 40, 1e-8, 1e-8, 1e-8)`; only "
        "`model.calibrate` is timed. volcal: *volcal s* is `calibrate(start, grid, throw=False)` "
        "as called (its result's arbitrage report is computed on first access); *volcal + report "
        "s* also reads `result.arbitrage` (as the store's gate does), and *arbitrage.check s* "
        "times the check alone on the fitted model. *QL / (volcal + report)* compares QuantLib "
        "with that. Both fits are scored with volcal's Heston pricer (`Heston.implied_vol`); "
        "*volcal status* is the `CalibrationStatus` and Levenberg-Marquardt steps, *QL end* "
        "QuantLib's EndCriteria type and its cost-function evaluations.",
        "",
        markdown(heston_rows, "lllrrrrrrrrrrll"),
        "",
        heston_summary,
        "",
        "## 2. Raw SVI, Deribit surface",
        "",
        f"{surface}. volcal: `calibrate(SVI, grid)` (butterfly penalty on Durrleman's g, "
        "up to four slices stepped side by side on a CPU, each lane taking the next slice "
        "when its own has converged) as called; *with report* "
        "also reads the result's arbitrage report (computed on first access, as the store's "
        "gate does), and "
        "*arbitrage.check alone* times the check on the fitted model. Also with "
        '`weights="uniform"`, the weighting whose least-squares objective is the reported '
        "RMSE. QuantLib: one "
        "`ql.SviInterpolatedSmileSection` per slice on the same strikes and mid vols, all five "
        "parameters free from QuantLib's default start (null parameters), no arbitrage "
        "constraint, time summed over the slices (construction and fit). QuantLib's fit is "
        "XABR's: Levenberg-Marquardt, and if the fit error exceeds 0.002 (its default "
        "errorAccept, not settable through this constructor) up to 50 restarts from random "
        "guesses. QuantLib's t is whole days from the snapshot's date (its dates have no time "
        "of day); SVI is closed under scaling of w, so this does not change the vols it can "
        "fit. *butterfly slices* / *calendar pairs*: slices and adjacent pairs with a violation "
        "found by `volcal.arbitrage.check` on each fit. *QL / volcal* compares with volcal's "
        "default call (first row).",
        "",
        markdown(svi_rows, "llrrrrrrrrr"),
        "",
        *[f"Note: {note}\n" for note in svi_notes],
        "",
        "## 3. SABR (beta = 1, Hagan), same slices",
        "",
        'volcal: `calibrate(SABR, grid, fixed={"beta": 1.0, "expansion": "hagan"})`, '
        "batched as SVI's. QuantLib: one `ql.SABRInterpolation` per slice (beta = 1 fixed; alpha, "
        "nu, rho free from QuantLib's default start; Hagan's lognormal formula; its defaults "
        "otherwise: errorAccept 0.002 with up to 50 random restarts), time summed over slices; "
        "QuantLib's vols from `ql.sabrVolatility`.",
        "",
        markdown(sabr_rows, "llrrrrrrrrr"),
        "",
        *[f"Note: {note}\n" for note in sabr_notes],
        "",
        "### Per expiry, RMSE in vol points",
        "",
        markdown(expiry_rows, "l" + "r" * (len(expiry_rows[0]) - 1)),
        "",
        "## 4. First call in a new process",
        "",
        '`subprocess.run([sys.executable, "-c", ...])`: import volcal, then the first '
        "`calibrate(SVI, grid)` on the Deribit grid of section 2, or `calibrate(Heston, grid)` "
        "on the crypto-like clean grid of section 1 (grids unpickled, not rebuilt, so nothing "
        "else compiles first). `VOLCAL_CACHE_DIR` is a new empty folder for the first process "
        "and the same, now filled, folder for the second.",
        "",
        markdown(first_rows, "llrrr"),
        "",
    ]
    text = "\n".join(lines)
    OUTPUT.write_text(text)
    print(text)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

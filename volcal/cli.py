"""The ``volcal`` command. Subcommands arrive with the features they run."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="volcal: option chains to calibrated volatility surfaces and portfolio margin.",
    no_args_is_help=True,
    add_completion=False,
)
# Logs of scheduled runs are not terminals: give their tables room rather than 80 columns.
console = Console(width=None if sys.stdout.isatty() else 150)
#: Most worker processes ``volcal refresh`` starts by default (each holds its own JAX runtime).
MAX_WORKERS = 4


def _print_grid(grid, *, truth: bool = False) -> None:
    """Per-expiry summary of a cleaned grid and where every input row went."""
    from volcal.clean import KEPT

    table = Table(title=f"{grid.venue} {grid.underlying} at {grid.snapshot:%Y-%m-%d %H:%M} UTC")
    columns = ["expiry", "days", "forward", "source", "kept", "dropped", "ATM mid IV"]
    if truth:
        columns.append("max |mid IV - true|")
    for column in columns:
        table.add_column(column, justify="right")
    rows = grid.report.rows
    forwards = grid.report.forwards
    summary = grid.summary()
    for expiry, info in forwards.iterrows():
        in_expiry = rows[rows["expiry"] == expiry]
        kept = int((in_expiry["reason"] == KEPT).sum())
        cells = [
            f"{expiry:%Y-%m-%d %H:%M}",
            f"{info['t'] * 365:.2f}",
            f"{info['forward']:,.2f}",
            str(info["forward_source"]),
            str(kept),
            str(len(in_expiry) - kept),
        ]
        cells.append(f"{summary.at[expiry, 'atm_mid_iv']:.4f}" if expiry in summary.index else "-")
        if truth:
            quotes = grid.quotes[grid.quotes["expiry"] == expiry]
            error = np.abs(quotes["mid_iv"] - quotes["venue_mark_iv"]).max()
            cells.append(f"{error * 100:.2f} vp" if len(quotes) else "-")
        table.add_row(*cells)
    console.print(table)
    console.print(grid.report.summary())


@app.command()
def demo(
    snapshot: Annotated[str, typer.Option(help="Valuation time (UTC) of the demo chain.")] = (
        "2026-01-15T09:30:00Z"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the demo market's spreads and sizes.")] = 0,
) -> None:
    """Generate the offline Deribit-like demo chain, clean it into an implied-vol grid, report."""
    from volcal.clean import clean
    from volcal.sources.demo import demo_chain

    started = time.perf_counter()
    grid = clean(demo_chain(snapshot, seed=seed))
    elapsed = time.perf_counter() - started
    _print_grid(grid, truth=True)
    console.print(f"chain generated and cleaned in {elapsed:.2f} s")
    _print_fits(grid)


def _print_fits(grid) -> None:
    """Calibrate each model to the grid and print one line per model."""
    import volcal as vc

    candidates = {
        "eSSVI (published)": (vc.models.ESSVI, {}),
        "raw SVI": (vc.models.SVI, {}),
        "SSVI": (vc.models.SSVI, {}),
        "SABR (beta 1, Obloj)": (vc.models.SABR, {"fixed": {"beta": 1.0,
                                                            "expansion": "obloj"}}),
        "Heston": (vc.models.Heston, {}),
    }  # fmt: skip
    table = Table(title="calibrations (mid IV, vol residuals)")
    for column in ("model", "RMSE (vol points)", "inside bid/ask", "converged", "arbitrage",
                   "seconds"):  # fmt: skip
        table.add_column(column, justify="right")
    for name, (model, options) in candidates.items():
        started = time.perf_counter()
        fit = vc.calibrate(model, grid, throw=False, **options)
        elapsed = time.perf_counter() - started
        table.add_row(name, f"{fit.rmse:.3f}", f"{fit.inside:.1%}",
                      f"{int(fit.ok_by_expiry.sum())}/{len(fit.status)}",
                      fit.arbitrage.summary()[:40], f"{elapsed:.2f}")  # fmt: skip
    console.print(table)


@app.command("clean")
def clean_command(
    source: Annotated[
        Path, typer.Argument(help="Chain file (CSV or Parquet).", exists=True, dir_okay=False)
    ],
    format: Annotated[
        str, typer.Option("--format", help="File layout: deribit, deribit-2020, cboe, tardis.")
    ],
    underlying: Annotated[str | None, typer.Option(help="Underlying to clean (BTC, ETH...).")] = (
        None
    ),
    snapshot: Annotated[
        str | None,
        typer.Option(help="Snapshot to take from a multi-snapshot file (its UTC timestamp)."),
    ] = None,
) -> None:
    """Read a chain file, clean it into an implied-vol grid, print the per-expiry summary."""
    from volcal.sources import FILE_FORMATS, load_chain

    if format not in FILE_FORMATS:
        console.print(
            f"[red]unknown format {format!r}[/red]; choose one of {', '.join(FILE_FORMATS)}"
        )
        raise typer.Exit(code=2)
    options = {}
    if snapshot is not None:
        options["as_of" if format == "tardis" else "snapshot"] = snapshot
    if format in ("deribit-2020", "cboe") and snapshot is not None:
        console.print(f"[red]--snapshot does not apply to format {format}[/red]")
        raise typer.Exit(code=2)
    _clean_and_print(load_chain(source, format=format, **options), underlying)


@app.command()
def fetch(
    venue: Annotated[str, typer.Option(help="deribit, okx, bybit or binance.")],
    underlying: Annotated[str, typer.Option(help="Underlying coin, e.g. BTC.")],
    record: Annotated[
        Path | None, typer.Option(help="Save the raw venue responses to this cassette file.")
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            help="Answer from a recorded cassette instead of the network.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Per-request timeout, seconds.")] = None,
) -> None:
    """Fetch a venue's option chain through ccxt (or replay a recording), clean it, print the
    per-expiry summary."""
    from volcal.sources.venues import fetch_chain

    try:
        chain = fetch_chain(venue, underlying, record=record, replay=replay, timeout_s=timeout)
    except ValueError as error:  # unknown venue or underlying: the message says what exists
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from error
    if record is not None:
        console.print(f"raw responses recorded to {record}")
    _clean_and_print(chain, underlying)


def _clean_and_print(chain, underlying: str | None) -> None:
    from volcal.clean import clean

    if not len(chain):
        console.print(f"[red]no valid rows in {chain.source}[/red]")
        raise typer.Exit(code=1)
    underlyings = sorted(chain.frame["underlying"].unique())
    for name in [underlying] if underlying else underlyings:
        _print_grid(clean(chain, underlying=name))


@app.command()
def iv(
    price: Annotated[float, typer.Option(help="Option premium, quote currency.")],
    forward: Annotated[float, typer.Option(help="Forward of the expiry.")],
    strike: Annotated[float, typer.Option(help="Strike.")],
    t: Annotated[float, typer.Option(help="Time to expiry in years.")],
    put: Annotated[bool, typer.Option("--put/--call", help="Put or call.")] = False,
    discount: Annotated[float, typer.Option(help="Discount factor of the premium.")] = 1.0,
) -> None:
    """Implied Black-76 volatility of one option price."""
    import volcal as vc

    result = vc.implied_vol(price, forward, strike, t, not put, discount)
    status = vc.IVStatus(int(result.status))
    if status is not vc.IVStatus.OK:
        console.print(f"[red]{status.name}[/red]: {status.meaning}")
        raise typer.Exit(code=1)
    console.print(f"{float(result.vol):.12g}")


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Store database (default: VOLCAL_STORE or "
                 "models/volcal.sqlite).", dir_okay=False),
]  # fmt: skip


@app.command()
def refresh(
    config: Annotated[Path | None, typer.Option(help="TOML configuration file.")] = None,
    venue: Annotated[
        str | None,
        typer.Option(help="Venue (live: deribit, okx, bybit, binance; or a label for a file)."),
    ] = None,
    underlying: Annotated[str | None, typer.Option(help="Underlyings, comma-separated.")] = None,
    source: Annotated[
        str | None, typer.Option(help="live, demo, replay:PATH or a chain file.")
    ] = None,
    format: Annotated[str | None, typer.Option("--format", help="File layout.")] = None,
    snapshot: Annotated[str | None, typer.Option(help="Snapshot time (demo, files).")] = None,
    models: Annotated[
        str | None, typer.Option(help="Models, comma-separated (default ESSVI,SVI,SABR,Heston).")
    ] = None,
    published: Annotated[str | None, typer.Option(help="Published model.")] = None,
    store: StoreOption = None,
    log: Annotated[
        Path | None,
        typer.Option(
            help="Structured log (JSON lines); default refresh.log.jsonl beside the store."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Check the configuration and the store, print the plan, run nothing."
        ),
    ] = False,
    force: Annotated[bool, typer.Option(help="Recalibrate snapshots already stored.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes calibrating each chain's models in parallel "
            "(default: the CPU count, at most 4; 1: in this process)."
        ),
    ] = 0,
) -> None:
    """Fetch, clean, calibrate, gate and store every configured chain (the nightly job).

    Exit codes: 0 every published model accepted; 2 configuration error; 3 partial failure;
    4 nothing accepted."""
    import logging

    from rich.progress import Progress

    from volcal.refresh import ConfigError, ExitCode, JsonLines, exit_code, load_config, run_refresh
    from volcal.store import Store, StoreError

    try:
        plan = load_config(config, venue=venue, underlying=_split(underlying), source=source,
                           format=format, snapshot=snapshot, models=_split(models),
                           published=published, store=store)  # fmt: skip
        checked = Store(plan.store)
        store_path = checked.path
        checked.close()
    except (ConfigError, StoreError, ValueError) as error:
        console.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(code=int(ExitCode.CONFIG_ERROR)) from error
    table = Table(title=f"refresh plan -> {store_path}")
    for column in ("venue", "underlying", "source", "models", "published"):
        table.add_column(column)
    for job in plan.jobs:
        table.add_row(job.venue, job.underlying, job.source, ",".join(job.models), job.published)
    console.print(table)
    if dry_run:
        console.print("dry run: configuration and store are valid; nothing was run")
        return
    handler = logging.FileHandler(log or store_path.parent / "refresh.log.jsonl")
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("volcal.refresh")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        with Progress(console=console, transient=True, disable=len(plan.jobs) < 2) as bar:
            task = bar.add_task("refreshing", total=len(plan.jobs))
            count = workers if workers > 0 else min(os.cpu_count() or 1, MAX_WORKERS)
            count = min(count, max(len(job.models) for job in plan.jobs))
            outcomes = run_refresh(plan, force=force, progress=lambda: bar.advance(task),
                                   workers=count)  # fmt: skip
    except StoreError as error:
        console.print(f"[red]store error:[/red] {error}")
        raise typer.Exit(code=int(ExitCode.CONFIG_ERROR)) from error
    finally:
        logger.removeHandler(handler)
        handler.close()
    _print_outcomes(outcomes)
    code = exit_code(outcomes)
    console.print(f"refresh finished in {time.perf_counter() - started:.1f} s: "
                  f"exit {int(code)} ({code.name.lower().replace('_', ' ')})")  # fmt: skip
    raise typer.Exit(code=int(code))


def _print_outcomes(outcomes) -> None:
    table = Table(title="refresh summary")
    for column in ("venue", "underlying", "snapshot", "model", "status", "RMSE (vp)", "inside",
                   "seconds", "surface id", "reasons / error"):  # fmt: skip
        table.add_column(column)
    colours = {"accepted": "green", "rejected": "yellow", "failed": "red"}
    for o in outcomes:
        model = f"{o.model} (published)" if o.published else o.model
        status = f"[{colours.get(o.status, 'white')}]{o.status}[/]" + ("*" if o.reused else "")
        table.add_row(o.venue, o.underlying, o.snapshot[:16], model, status, f"{o.rmse:.3f}",
                      f"{o.inside:.1%}", f"{o.seconds:.1f}", o.surface_id,
                      (o.reasons or o.error)[:80])  # fmt: skip
    console.print(table)
    reused = sum(o.reused for o in outcomes)
    if reused:
        console.print(f"* {reused} calibration(s) stored before for these snapshots, reported "
                      "as stored (--force recalibrates)")  # fmt: skip


@app.command()
def show(
    store: StoreOption = None,
    venue: Annotated[str | None, typer.Option(help="Only this venue.")] = None,
    underlying: Annotated[str | None, typer.Option(help="Only this underlying.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    surface_id: Annotated[
        str | None, typer.Option("--id", help="Show one surface: its parameters and diagnostics.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most rows to list.")] = 50,
) -> None:
    """List stored surfaces and their gate status (newest first), or one surface in full."""
    from volcal.store import NoSurfaceError, Store, StoreError

    try:
        opened = Store(store)
    except StoreError as error:
        console.print(f"[red]store error:[/red] {error}")
        raise typer.Exit(code=2) from error
    with opened:
        if surface_id is not None:
            try:
                _print_surface(opened.get(surface_id))
            except NoSurfaceError as error:
                console.print(f"[red]{error}[/red]")
                raise typer.Exit(code=1) from error
            return
        history = opened.history(venue, underlying, model=model)
        table = Table(title=f"{len(history)} stored surface(s) in {opened.path}")
        for column in ("id", "venue", "underlying", "snapshot", "model", "status", "RMSE (vp)",
                       "inside", "reasons"):  # fmt: skip
            table.add_column(column)
        for row in history.head(limit).itertuples():
            name = f"{row.model} (published)" if row.published else row.model
            table.add_row(row.id, row.venue, row.underlying, f"{row.snapshot:%Y-%m-%d %H:%M}",
                          name, row.status, f"{row.rmse:.3f}", f"{row.inside:.1%}",
                          row.reasons)  # fmt: skip
        console.print(table)


def _print_surface(stored) -> None:
    import pandas as pd

    console.print(f"surface {stored.id}: {stored.venue} {stored.underlying} {stored.model} at "
                  f"{stored.snapshot:%Y-%m-%d %H:%M} UTC, {stored.status}"
                  f"{' (published model)' if stored.published else ''}")  # fmt: skip
    for failure in stored.reasons:
        console.print(f"  rejected: {failure.reason.value}: {failure.detail}")
    diagnostics = stored.diagnostics
    console.print(f"  RMSE {diagnostics['rmse']:.3f} vol points, inside "
                  f"{diagnostics['inside']:.1%}; arbitrage: "
                  f"{diagnostics['arbitrage']}")  # fmt: skip
    record = stored.record
    per_expiry = {name: value for name, value in record["parameters"].items()
                  if not isinstance(value, str) and np.ndim(value) == 1
                  and len(value) == len(record["t"])}  # fmt: skip
    table = Table(title="parameters")
    columns = {"expiry": [e[:16] for e in record["expiries"]],
               "forward": [f"{f:,.2f}" for f in record["forward"]],
               "RMSE (vp)": [f"{v:.3f}" if v is not None else "-"
                             for v in diagnostics["rmse_by_expiry"]],
               **{name: [f"{v:.6g}" for v in values]
                  for name, values in per_expiry.items()}}  # fmt: skip
    for column in columns:
        table.add_column(column)
    for row in zip(*columns.values(), strict=True):
        table.add_row(*row)
    console.print(table)
    scalars = {k: v for k, v in record["parameters"].items() if k not in per_expiry}
    if scalars:
        console.print("  " + ", ".join(f"{k} = {v}" for k, v in scalars.items()))
    console.print(f"  cleaning: {pd.Series(stored.cleaning).to_dict()}")


@app.command("calibrate")
def calibrate_command(
    source: Annotated[str, typer.Argument(help="'demo', a chain file or replay:PATH.")],
    model: Annotated[str, typer.Option(help="Model name (ESSVI, SSVI, SVI, SABR, Heston).")] = (
        "ESSVI"
    ),
    underlying: Annotated[str, typer.Option(help="Underlying.")] = "BTC",
    venue: Annotated[str, typer.Option(help="Venue label (deribit for Deribit files).")] = (
        "deribit"
    ),
    format: Annotated[str | None, typer.Option("--format", help="File layout.")] = None,
    snapshot: Annotated[str | None, typer.Option(help="Snapshot time.")] = None,
    save: Annotated[bool, typer.Option(help="Gate and store the result.")] = False,
    png: Annotated[
        Path | None,
        typer.Option(
            help="Write the smile grid and the 3D surface as PNGs into this folder "
            "(needs the plot extra and a Chromium)."
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Calibrate one model to one chain and print the fit per expiry; --save gates and
    stores it; --png writes its figures."""
    import volcal as vc
    from volcal.refresh import DEFAULT_MODEL_OPTIONS, ConfigError, _load, load_config
    from volcal.store import Store

    try:
        plan = load_config(None, venue="demo" if source == "demo" else venue,
                           underlying=[underlying], source=source, format=format,
                           snapshot=snapshot, models=[model], published=model)  # fmt: skip
    except ConfigError as error:
        console.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(code=2) from error
    job = plan.jobs[0]
    grid = vc.clean(_load(job, Path("."), {}), underlying=underlying)
    started = time.perf_counter()
    fit = vc.calibrate(vc.models.MODELS[model], grid, throw=False,
                       **DEFAULT_MODEL_OPTIONS.get(model, {}))  # fmt: skip
    elapsed = time.perf_counter() - started
    console.print(fit.summary().to_string(float_format=lambda v: f"{v:.5g}"))
    console.print(f"{model}: RMSE {fit.rmse:.3f} vol points, inside {fit.inside:.1%}, "
                  f"{'converged' if fit.ok else 'NOT converged'}, {fit.arbitrage.summary()}, "
                  f"{elapsed:.2f} s")  # fmt: skip
    if save:
        from dataclasses import replace

        with Store(store) as opened:
            stored = opened.save(replace(fit, grid=replace(grid, venue=job.venue)))
        console.print(f"stored as {stored.id}: {stored.status}"
                      + "".join(f"; {f.detail}" for f in stored.reasons))  # fmt: skip
    if png is not None:
        _write_pngs(fit, png)


def _write_pngs(fit, folder: Path) -> None:
    from volcal import plot

    folder.mkdir(parents=True, exist_ok=True)
    grid = fit.grid
    stem = f"{grid.underlying.lower()}-{type(fit.model).__name__.lower()}-{grid.snapshot:%Y%m%d}"
    figures = {
        f"{stem}-smiles.png": (plot.smile_grid(fit), {}),
        f"{stem}-surface.png": (plot.surface_3d(fit, axis="delta"), {"height": 900}),
    }
    for name, (figure, size) in figures.items():
        try:
            plot.write_png(figure, folder / name, **size)
        except RuntimeError as error:
            console.print(f"[red]PNG export failed:[/red] {error}")
            raise typer.Exit(code=2) from error
        console.print(f"wrote {folder / name}")


@app.command("margin")
def margin_command(
    book: Annotated[
        Path, typer.Option("--book", help="Positions (CSV or JSON).", exists=True, dir_okay=False)
    ],
    scenarios: Annotated[
        str, typer.Option(help="riskmatrix, span, or a scenario CSV file.")
    ] = "riskmatrix",
    asof: Annotated[
        str | None, typer.Option(help="Valuation time (UTC); surfaces as of then. Default: now.")
    ] = None,
    venue: Annotated[str, typer.Option(help="Venue of the stored surfaces.")] = "deribit",
    model: Annotated[
        str | None, typer.Option(help="Surface model (default: the published one).")
    ] = None,
    max_age: Annotated[
        str,
        typer.Option(
            help="Refuse surfaces older than this at the valuation time (pandas Timedelta)."
        ),
    ] = "1D",
    dynamics: Annotated[str, typer.Option(help="sticky_moneyness or sticky_strike.")] = (
        "sticky_moneyness"
    ),
    price_scan_range: Annotated[
        float | None, typer.Option(help="SPAN price scan range (relative).")
    ] = None,
    vol_scan_range: Annotated[
        float | None, typer.Option(help="SPAN vol scan range (decimal vol).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write the report: .csv (positions) or .json (everything).")
    ] = None,
    parameters: Annotated[
        str,
        typer.Option(
            help="Risk-matrix parameters: 'stored' (volcal calibrate-margin's, where stored, "
            "else published) or 'published' (Deribit's)."
        ),
    ] = "stored",
    store: StoreOption = None,
) -> None:
    """Margin of a book on the stored surfaces: summary (margin, binding scenario, top
    contributors) and an optional CSV/JSON report. The risk matrix uses the risk parameters
    stored by ``volcal calibrate-margin`` (the latest as of the valuation time) where there
    are some, unless --parameters published."""
    from volcal.margin import BookError, Market, from_file, load_book, margin, span
    from volcal.store import NoSurfaceError, StaleSurfaceError, Store, StoreError

    try:
        positions = load_book(book, asof=asof)
        with Store(store) as opened:
            market = Market.from_store(opened, venue, positions.underlyings, asof=asof,
                                       model=model, max_age=max_age)  # fmt: skip
        if scenarios == "span":
            if price_scan_range is None or vol_scan_range is None:
                raise ValueError("--scenarios span needs --price-scan-range and "
                                 "--vol-scan-range (exchange parameters; none is published "
                                 "for crypto)")  # fmt: skip
            chosen = span(price_scan_range, vol_scan_range)
        elif scenarios == "riskmatrix":
            chosen = _risk_matrices(store, positions.underlyings, asof, parameters)
        else:
            chosen = from_file(scenarios)
        result = margin(positions, market, chosen, dynamics=dynamics, asof=asof)
    except (BookError, NoSurfaceError, StaleSurfaceError, StoreError, ValueError,
            FileNotFoundError) as error:  # fmt: skip
        console.print(f"[red]margin failed:[/red] {error}")
        raise typer.Exit(code=2) from error
    console.print(result.summary())
    if report is not None:
        _write_margin_report(result, report)
        console.print(f"report written to {report}")


def _risk_matrices(store, underlyings, asof, parameters: str) -> dict:
    """Each underlying's risk matrix: stored calibrated parameters or the published ones."""
    from volcal.margin import risk_matrix
    from volcal.margin.history import from_record
    from volcal.store import Store

    if parameters not in ("stored", "published"):
        raise ValueError(f"--parameters must be 'stored' or 'published', not {parameters!r}")
    sets = {}
    with Store(store) as opened:
        for underlying in underlyings:
            record = None
            if parameters == "stored":
                when = asof or pd.Timestamp.now(tz="UTC")
                record = opened.margin_parameters(underlying, asof=when)
            if record is None:
                sets[underlying] = risk_matrix(underlying)
                console.print(f"{underlying}: published risk-matrix parameters")
                continue
            calibrated = from_record(record["parameters"])
            sets[underlying] = risk_matrix(underlying, **calibrated.overrides())
            console.print(f"{underlying}: calibrated risk-matrix parameters {record['id']} "
                          f"(as of {record['as_of']:%Y-%m-%d}): price range "
                          f"{calibrated.price_range:.2%}")  # fmt: skip
    return sets


def _write_margin_report(result, path: Path) -> None:
    import json

    columns = ["account", "instrument", "quantity", "contract_size", "settlement", "t", "forward",
               "vol", "value_usd", "value_coin", "delta", "delta_coin", "gamma", "vega", "theta",
               "contribution"]  # fmt: skip
    positions = result.positions[columns]
    if path.suffix.lower() == ".json":
        payload = {
            "accounts_usd": result.accounts.to_dict(),
            "groups": json.loads(result.groups.to_json(orient="records")),
            "positions": json.loads(positions.reset_index().to_json(orient="records")),
            "surface_ids": result.surface_ids,
            "dynamics": result.dynamics,
            "scenarios": {u: json.loads(s.table().reset_index().to_json(orient="records"))
                          for u, s in result.scenarios.items()},
            "parameters": json.loads(json.dumps(result.parameters, default=str)),
        }  # fmt: skip
        path.write_text(json.dumps(payload, indent=1))
    else:
        positions.to_csv(path)


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.", dir_okay=False)],
    surface_id: Annotated[str | None, typer.Option("--id", help="Stored surface id.")] = None,
    venue: Annotated[str, typer.Option(help="Venue (without --id).")] = "deribit",
    underlying: Annotated[str, typer.Option(help="Underlying (without --id).")] = "BTC",
    model: Annotated[str | None, typer.Option(help="Model (default: the published one).")] = (None),
    asof: Annotated[str | None, typer.Option(help="Latest accepted surface as of this time.")] = (
        None
    ),
    book: Annotated[
        Path | None,
        typer.Option(
            help="Add the margin of this book (risk matrix, sticky moneyness).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Write a self-contained HTML report (works offline) of a stored calibration, and
    optionally of a book's margin on it."""
    from volcal.margin import BookError, Market, load_book, margin
    from volcal.report import html_report
    from volcal.store import NoSurfaceError, Store, StoreError

    try:
        with Store(store) as opened:
            if surface_id is not None:
                stored = opened.get(surface_id)
            else:
                stored = opened.latest(venue, underlying, model=model, asof=asof)
            result = None
            if book is not None:
                positions = load_book(book, asof=asof)
                market = Market.from_store(
                    opened,
                    stored.venue,
                    positions.underlyings,
                    asof=asof or stored.snapshot,
                    model=stored.model,
                )
                result = margin(positions, market, asof=asof)
    except (BookError, NoSurfaceError, StoreError, ValueError) as error:
        console.print(f"[red]report failed:[/red] {error}")
        raise typer.Exit(code=2) from error
    out.write_text(html_report(stored, margin_result=result))
    console.print(f"report of surface {stored.id} written to {out}")


@app.command()
def version() -> None:
    """Print the volcal version."""
    import volcal as vc

    console.print(vc.__version__)


# The history commands (backfill, calibrate-margin, backtest, stress) live in their own module.
from volcal import cli_history  # noqa: E402, F401

if __name__ == "__main__":
    # Run as ``python -m volcal.cli``: the package's own copy of this module is the one the
    # history commands registered on.
    from volcal.cli import app as registered

    registered()

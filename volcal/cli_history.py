"""The ``volcal`` commands that work on history: ``backfill``, ``calibrate-margin``,
``backtest`` and ``stress`` (registered on :data:`volcal.cli.app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from volcal.cli import StoreOption, _split, app, console


def _default_history() -> str:
    from volcal.sources import shared_data

    try:
        return str(shared_data("deribit_history"))
    except FileNotFoundError as error:
        console.print(f"[red]configuration error:[/red] {error}; or give --source")
        raise typer.Exit(code=2) from error


@app.command()
def backfill(
    source: Annotated[
        str | None,
        typer.Option(
            help="History: a folder with snapshots.csv (default: the shared "
            "deribit_history) or one multi-snapshot file."
        ),
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", help="File layout of a file source: deribit, tardis.")
    ] = None,
    underlying: Annotated[str, typer.Option(help="Underlyings, comma-separated.")] = "BTC,ETH",
    models: Annotated[str, typer.Option(help="Models, comma-separated.")] = "ESSVI",
    venue: Annotated[str, typer.Option(help="Venue the surfaces are stored under.")] = "deribit",
    start: Annotated[str | None, typer.Option(help="First snapshot time (UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="Last snapshot time (UTC).")] = None,
    daily: Annotated[
        bool, typer.Option(help="Only one snapshot per day, the one nearest 16:00 UTC.")
    ] = False,
    block_size: Annotated[int, typer.Option(help="Snapshots per task.")] = 16,
    workers: Annotated[
        int, typer.Option(help="Dask worker processes (LocalCluster); 0: in this process.")
    ] = 2,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a running Dask scheduler (tcp://host:8786).")
    ] = None,
    jump_check: Annotated[
        bool,
        typer.Option(help="Apply the gate's jump check (off: real moves must not drop days)."),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Calibrate every snapshot of a history into the store, fanned out with Dask; stored
    snapshots are skipped (resumable), failures are recorded and the run goes on.

    Exit codes: 0 all stored; 2 configuration error; 3 some snapshots failed."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from volcal.backfill import BackfillError, run_backfill
    from volcal.store import StoreError

    models_list = _split(models) or []
    try:
        with Progress(
            TextColumn("backfill"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} snapshots"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("backfill", total=None)
            summary = run_backfill(
                source or _default_history(),
                store=store,
                venue=venue,
                underlyings=_split(underlying),
                models=models_list,
                format=format,
                start=start,
                end=end,
                daily=daily,
                block_size=block_size,
                workers=workers,
                scheduler=scheduler,
                jump_check=jump_check,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (BackfillError, StoreError, FileNotFoundError, ValueError) as error:
        console.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(code=2) from error
    table = Table(title=f"backfill: {summary.seconds:.1f} s")
    for column in ("underlying", "model", "accepted", "rejected", "failed", "skipped"):
        table.add_column(column)
    for (u, m), row in summary.counts.iterrows():
        table.add_row(
            u, m, *(str(int(row[c])) for c in ("accepted", "rejected", "failed", "skipped"))
        )
    console.print(table)
    for failure in summary.failures[:10]:
        console.print(
            f"  failed: {failure.underlying} {failure.snapshot:%Y-%m-%d %H:%M} "
            f"{failure.model} ({failure.stage}): {failure.error}"
        )
    if not summary.ok:
        raise typer.Exit(code=3)


def _calibration_options(window, method, buffer, stressed_weight, floor_window) -> dict:
    from volcal.margin.procyclicality import MarginBuffer

    if method not in ("historical", "filtered"):
        raise ValueError(f"--method must be 'historical' or 'filtered', not {method!r}")
    return {
        "window": window,
        "method": method,
        "buffer": MarginBuffer(rate=buffer) if buffer else None,
        "stressed_weight": stressed_weight or None,
        "floor_window": floor_window or None,
    }


@app.command("calibrate-margin")
def calibrate_margin(
    underlying: Annotated[str, typer.Option(help="Underlyings, comma-separated.")] = "BTC,ETH",
    venue: Annotated[str, typer.Option(help="Venue of the backfilled surfaces.")] = "deribit",
    asof: Annotated[
        str | None, typer.Option(help="Calibrate on the data known on this day (default: last).")
    ] = None,
    confidence: Annotated[float, typer.Option(help="Coverage, e.g. 0.99 or 0.997.")] = 0.99,
    horizon: Annotated[int, typer.Option(help="Margin period of risk, days (1 or 2).")] = 1,
    window: Annotated[int, typer.Option(help="Lookback of the scan range, days.")] = 365,
    method: Annotated[str, typer.Option(help="historical or filtered (EWMA).")] = "filtered",
    buffer: Annotated[
        float, typer.Option(help="Anti-procyclicality buffer, releasable in stress (0: off).")
    ] = 0.25,
    stressed_weight: Annotated[
        float, typer.Option(help="Weight on the worst window so far (0: off).")
    ] = 0.25,
    floor_window: Annotated[
        int, typer.Option(help="Floor from this longest lookback, days (0: off).")
    ] = 3650,
    stress_floor: Annotated[
        bool, typer.Option(help="Never below what the worst window of the history requires.")
    ] = True,
    dry_run: Annotated[bool, typer.Option(help="Print, do not store.")] = False,
    store: StoreOption = None,
) -> None:
    """Calibrate the risk matrix's parameters per underlying from the spot history and the
    backfilled surfaces, and store them (versioned); ``volcal margin`` then uses them."""
    from volcal.margin.history import calibrate_margin_parameters, to_record
    from volcal.store import Store, StoreError

    try:
        options = _calibration_options(window, method, buffer, stressed_weight, floor_window)
        with Store(store) as opened:
            table = Table(title="calibrated risk-matrix parameters")
            for column in (
                "underlying",
                "as of",
                "price range",
                "vol up",
                "vol down",
                "short power",
                "long power",
                "id",
            ):
                table.add_column(column)
            for name in _split(underlying) or []:
                calibrated = calibrate_margin_parameters(
                    opened,
                    venue,
                    name,
                    asof=asof,
                    confidence=confidence,
                    horizon_days=horizon,
                    stress_floor=stress_floor,
                    **options,
                )
                identifier = "(dry run)"
                if not dry_run:
                    identifier = opened.save_margin_parameters(
                        name, calibrated.as_of, calibrated.method, to_record(calibrated)
                    )
                table.add_row(
                    name,
                    f"{calibrated.as_of:%Y-%m-%d}",
                    f"{calibrated.price_range:.2%}",
                    f"{calibrated.vol_range_up:.2%}",
                    f"{calibrated.vol_range_down:.2%}",
                    f"{calibrated.short_term_vega_power:.3f}",
                    f"{calibrated.long_term_vega_power:.3f}",
                    identifier,
                )
                for key, text in calibrated.audit.items():
                    console.print(f"  {name} {key}: {text}")
    except (StoreError, ValueError, FileNotFoundError) as error:
        console.print(f"[red]calibrate-margin failed:[/red] {error}")
        raise typer.Exit(code=2) from error
    console.print(table)


@app.command()
def backtest(
    underlying: Annotated[str, typer.Option(help="Underlyings, comma-separated.")] = "BTC,ETH",
    venue: Annotated[str, typer.Option(help="Venue of the backfilled surfaces.")] = "deribit",
    horizon: Annotated[int, typer.Option(help="Margin period of risk, days.")] = 1,
    confidence: Annotated[float, typer.Option(help="Promised coverage.")] = 0.99,
    start: Annotated[str | None, typer.Option(help="First day.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random book.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML report here.", dir_okay=False)
    ] = None,
    csv: Annotated[
        Path | None, typer.Option(help="Write the observations (one row per day and book).")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Backtest the Deribit-style, SPAN-style and volcal-calibrated margins on representative
    books rebuilt each day, against the realised loss one margin period later."""
    from rich.progress import Progress

    from volcal.margin.backtest import run_backtest
    from volcal.margin.backtest_report import html_report
    from volcal.store import Store, StoreError

    try:
        with Store(store) as opened, Progress(console=console, transient=True) as bar:
            task = bar.add_task("backtest", total=None)
            result = run_backtest(
                opened,
                venue,
                _split(underlying),
                horizon_days=horizon,
                confidence=confidence,
                start=start,
                end=end,
                seed=seed,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (StoreError, ValueError, FileNotFoundError) as error:
        console.print(f"[red]backtest failed:[/red] {error}")
        raise typer.Exit(code=2) from error
    if result.observations.empty:
        console.print("[red]backtest failed:[/red] no pair of observations one period apart")
        raise typer.Exit(code=2)
    summary = result.summary()
    columns = [
        "underlying",
        "parameter_set",
        "book",
        "n",
        "breaches",
        "kupiec_p_value",
        "christoffersen_p_value",
        "zone",
        "average_margin_usd",
        "largest_5d_increase",
        "peak_to_trough",
    ]
    console.print(summary[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if csv is not None:
        result.observations.to_csv(csv, index=False)
        console.print(f"observations written to {csv}")
    if out is not None:
        out.write_text(html_report(result))
        console.print(f"report written to {out}")


@app.command()
def stress(
    book: Annotated[
        Path, typer.Option("--book", help="Positions (CSV or JSON).", exists=True, dir_okay=False)
    ],
    asof: Annotated[str | None, typer.Option(help="Valuation time (UTC).")] = None,
    venue: Annotated[str, typer.Option(help="Venue of the stored surfaces.")] = "deribit",
    max_age: Annotated[str, typer.Option(help="Refuse surfaces older than this.")] = "1D",
    csv: Annotated[Path | None, typer.Option(help="Write the table here.")] = None,
    store: StoreOption = None,
) -> None:
    """Historical (largest moves of the spot history, with the calibrated vol shock scaled by
    severity) and hypothetical scenarios applied to a book, against the margin it holds."""
    from volcal.margin import BookError, Market, load_book
    from volcal.margin.book import Book
    from volcal.margin.history import stress_scenarios
    from volcal.margin.stress import stress_test
    from volcal.store import NoSurfaceError, StaleSurfaceError, Store, StoreError

    try:
        positions = load_book(book, asof=asof)
        with Store(store) as opened:
            market = Market.from_store(
                opened, venue, positions.underlyings, asof=asof, max_age=max_age
            )
            frames = []
            for name in positions.underlyings:
                scenarios, held = stress_scenarios(opened, venue, name, asof=asof)
                mine = positions.positions[positions.positions["underlying"] == name]
                only = Book(positions=mine, source=positions.source)
                frames.append(
                    stress_test(only, market, scenarios, margin_scenarios=held, asof=asof)
                )
    except (
        BookError,
        NoSurfaceError,
        StaleSurfaceError,
        StoreError,
        ValueError,
        FileNotFoundError,
    ) as error:
        console.print(f"[red]stress failed:[/red] {error}")
        raise typer.Exit(code=2) from error
    import pandas as pd

    table = pd.concat(frames, ignore_index=True)
    columns = [
        "scenario",
        "account",
        "underlying",
        "settlement",
        "loss",
        "margin",
        "loss_over_margin",
        "covered",
    ]
    console.print(table[columns].to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    if csv is not None:
        table.to_csv(csv, index=False)
        console.print(f"table written to {csv}")

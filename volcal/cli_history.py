"""The ``volcal`` commands that work on history: ``backfill``, ``calibrate-margin``,
``backtest`` and ``stress`` (registered on :data:`volcal.cli.app`)."""

from __future__ import annotations

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

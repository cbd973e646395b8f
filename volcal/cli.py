"""The ``volcal`` command. Subcommands arrive with the features they run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="volcal: option chains to calibrated volatility surfaces and portfolio margin.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


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


@app.command()
def version() -> None:
    """Print the volcal version."""
    import volcal as vc

    console.print(vc.__version__)


if __name__ == "__main__":
    app()

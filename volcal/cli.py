"""The ``volcal`` command. Subcommands arrive with the features they run."""

from __future__ import annotations

import time
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


@app.command()
def demo(
    snapshot: Annotated[str, typer.Option(help="Valuation time (UTC) of the demo chain.")] = (
        "2026-01-15T08:00:00Z"
    ),
    strikes: Annotated[int, typer.Option(help="Strikes per expiry.")] = 41,
) -> None:
    """Generate the offline demo chain, invert every bid, mark and ask to implied vol, report."""
    import volcal as vc
    from volcal.sources.demo import demo_quotes

    chain = demo_quotes(snapshot, strikes_per_expiry=strikes)
    args = (
        chain["forward"].to_numpy(),
        chain["strike"].to_numpy(),
        chain["t"].to_numpy(),
        chain["is_call"].to_numpy(),
    )
    started = time.perf_counter()
    vols = {side: vc.implied_vol(chain[side].to_numpy(), *args) for side in ("bid", "mark", "ask")}
    elapsed = time.perf_counter() - started
    for side, result in vols.items():
        chain[f"{side}_iv"] = np.asarray(result.vol)
        chain[f"{side}_status"] = np.asarray(result.status)

    table = Table(title=f"demo chain at {snapshot}: implied vols (decimal)")
    for column in (
        "expiry",
        "forward",
        "quotes",
        "ATM mark IV",
        "bid IV ok",
        "max |mark IV - true|",
    ):
        table.add_column(column, justify="right")
    for expiry, group in chain.groupby("expiry"):
        atm = group.iloc[(np.log(group["strike"] / group["forward"])).abs().argmin()]
        ok = (group["bid_status"] == vc.IVStatus.OK).sum()
        error = np.nanmax(np.abs(group["mark_iv"] - group["true_vol"]))
        table.add_row(
            f"{expiry:%Y-%m-%d}",
            f"{atm['forward']:,.0f}",
            str(len(group)),
            f"{atm['mark_iv']:.4f}",
            f"{ok}/{len(group)}",
            f"{error:.1e}",
        )
    console.print(table)
    statuses: dict = {}
    for result in vols.values():
        for status, count in result.summary().items():
            statuses[status] = statuses.get(status, 0) + count
    for status, count in sorted(statuses.items()):
        console.print(f"{count:6d} x {status.name}: {status.meaning}")
    console.print(
        f"{3 * len(chain)} inversions in {elapsed:.3f} s (including compilation unless cached)"
    )


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

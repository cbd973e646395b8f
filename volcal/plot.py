"""Plotly figures of volcal's own objects: smiles with quotes and fits, term structure, skew,
the 3D surface, fit residuals, and margin P&L.

Every function returns a ``plotly.graph_objects.Figure`` (test it through ``fig.to_dict()``).
Conventions: x is log-forward-moneyness ``k = ln(K/F)`` (dimensionless) or days to expiry;
vols are shown in vol points (decimal vol x 100), as quants read them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from volcal.surface import VolSurface

VOL_POINTS = 100.0
#: Points of each model curve across the quotes' log-moneyness range (plus a margin).
CURVE_POINTS = 201
CURVE_MARGIN = 0.05
EXCLUDED_COLOUR = "lightgrey"
#: One colour per fitted model, the same in every subplot of a grid.
FIT_COLOURS = ("crimson", "darkorange", "seagreen", "mediumpurple", "teal")
K_AXIS = "log-moneyness ln(K/F)"
#: Call deltas spanned by the delta axis of :func:`surface_3d`.
DELTA_RANGE = (0.05, 0.95)
VOL_AXIS = "implied vol (vol points)"


def _surfaces(fits) -> dict[str, VolSurface]:
    """``{label: VolSurface}`` from Calibrations, VolSurfaces, or a dict of them."""
    items = fits.items() if isinstance(fits, dict) else ((None, f) for f in fits)
    out = {}
    for label, fit in items:
        surface = fit if isinstance(fit, VolSurface) else VolSurface.from_calibration(fit)
        out[label or type(surface.model).__name__] = surface
    return out


def _grid_of(source):
    return source.grid if hasattr(source, "grid") else source


def _smile_traces(grid, index: int, surfaces: dict, show_legend: bool) -> list:
    expiry = grid.expiries[index]
    mask = grid.mask[index]
    k = grid.log_moneyness[index][mask]
    mid = grid.mid_iv[index][mask] * VOL_POINTS
    bid = grid.bid_iv[index][mask] * VOL_POINTS
    ask = grid.ask_iv[index][mask] * VOL_POINTS
    strikes = grid.strike[index][mask]
    legend = dict(showlegend=show_legend)
    traces = [
        go.Scatter(
            x=k,
            y=mid,
            mode="markers",
            name="mid (bid/ask bars)",
            legendgroup="mid",
            marker=dict(color="black", size=5),
            error_y=dict(
                type="data",
                symmetric=False,
                array=ask - mid,
                arrayminus=mid - bid,
                color="grey",
                thickness=1,
            ),
            customdata=strikes,
            hovertemplate="K %{customdata:,.0f}<br>k %{x:.3f}<br>mid %{y:.2f} vp<extra></extra>",
            **legend,
        ),
    ]
    quotes = grid.quotes[grid.quotes["expiry"] == expiry]
    if "venue_mark_iv" in quotes and quotes["venue_mark_iv"].notna().any():
        traces.append(
            go.Scatter(
                x=quotes["log_moneyness"],
                y=quotes["venue_mark_iv"] * VOL_POINTS,
                mode="markers",
                name="venue mark IV",
                legendgroup="mark",
                marker=dict(symbol="x", size=5, color="royalblue"),
                **legend,
            )
        )
    excluded = grid.excluded
    if len(excluded):
        excluded = excluded[excluded["expiry"] == expiry]
        vol = excluded["mid_iv"].where(
            excluded["mid_iv"].notna(), excluded[["bid_iv", "ask_iv"]].mean(axis=1)
        )
        shown = excluded[vol.notna() & excluded["log_moneyness"].notna()]
        if len(shown):
            traces.append(
                go.Scatter(
                    x=shown["log_moneyness"],
                    y=vol[shown.index] * VOL_POINTS,
                    mode="markers",
                    name="excluded",
                    legendgroup="excluded",
                    marker=dict(color=EXCLUDED_COLOUR, size=6),
                    hovertext=[
                        f"{i}: {r}"
                        for i, r in zip(shown["instrument"], shown["reason"], strict=True)
                    ],
                    hoverinfo="text",
                    **legend,
                )
            )
    low, high = float(k.min()) - CURVE_MARGIN, float(k.max()) + CURVE_MARGIN
    x = np.linspace(low, high, CURVE_POINTS)
    t = float(grid.t[index])
    for j, (label, surface) in enumerate(surfaces.items()):
        vols = np.asarray(surface.implied_vol_at(x, t)) * VOL_POINTS
        line = dict(color=FIT_COLOURS[j % len(FIT_COLOURS)])
        traces.append(
            go.Scatter(
                x=x, y=vols, mode="lines", name=label, legendgroup=label, line=line, **legend
            )
        )
    return traces


def smile(source, expiry, fits=()) -> go.Figure:
    """One expiry's smile: mid IVs with bid/ask bars, the venue's mark IV, excluded quotes in
    grey (hover: the reason), each fit's curve, and the forward (k = 0) marked.

    Parameters
    ----------
    source : Calibration or IVGrid
    expiry : int or time
        Index into the grid's expiries, or an expiry time.
    fits : Calibrations or VolSurfaces (sequence or dict label -> fit)
        A Calibration ``source`` is drawn too.
    """
    grid = _grid_of(source)
    index = _expiry_index(grid, expiry)
    fits = _surfaces(fits)
    if hasattr(source, "grid"):
        fits = {**_surfaces([source]), **fits}
    figure = go.Figure(_smile_traces(grid, index, fits, True))
    forward = float(grid.forward[index])
    figure.add_vline(x=0.0, line_dash="dot", annotation_text=f"F = {forward:,.2f}")
    figure.update_layout(
        title=f"{grid.venue} {grid.underlying} {grid.expiries[index]:%Y-%m-%d}"
        f" ({grid.t[index] * 365:.1f} days)",
        xaxis_title=K_AXIS,
        yaxis_title=VOL_AXIS,
    )
    return figure


def smile_grid(source, fits=(), columns: int = 3) -> go.Figure:
    """Every expiry's smile (as :func:`smile`) in a grid of subplots."""
    grid = _grid_of(source)
    fits = _surfaces(fits)
    if hasattr(source, "grid"):
        fits = {**_surfaces([source]), **fits}
    n = len(grid.t)
    rows = -(-n // columns)
    titles = [f"{e:%Y-%m-%d} ({t * 365:.1f} d)" for e, t in zip(grid.expiries, grid.t, strict=True)]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles)
    for i in range(n):
        for trace in _smile_traces(grid, i, fits, i == 0):
            figure.add_trace(trace, row=i // columns + 1, col=i % columns + 1)
    figure.update_xaxes(title_text=K_AXIS)
    figure.update_yaxes(title_text=VOL_AXIS)
    figure.update_layout(
        title=f"{grid.venue} {grid.underlying} at {grid.snapshot:%Y-%m-%d %H:%M} UTC",
        height=300 * rows,
    )
    return figure


def term_structure(fits, tenors_days=None) -> go.Figure:
    """ATM (at-the-forward) vol against days to expiry, one line per surface."""
    surfaces = _surfaces(fits)
    figure = go.Figure()
    for label, surface in surfaces.items():
        days = _tenors(surface, tenors_days)
        atm = np.asarray(surface.atm_vol(days / 365.0)) * VOL_POINTS
        figure.add_trace(go.Scatter(x=days, y=atm, mode="lines", name=label))
    figure.update_layout(
        title="ATM term structure",
        xaxis_title="days to expiry",
        yaxis_title="ATM implied vol (vol points)",
    )
    return figure


def skew(fits, tenors_days=None, delta: float = 0.25) -> go.Figure:
    """Constant-maturity risk reversal and butterfly at ``delta`` against days to expiry."""
    surfaces = _surfaces(fits)
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(f"{delta:.0%} delta risk reversal", f"{delta:.0%} delta butterfly"),
    )
    for label, surface in surfaces.items():
        days = _tenors(surface, tenors_days)
        for column, (quantity, short) in enumerate(
            ((surface.risk_reversal, "RR"), (surface.butterfly, "BF")), start=1
        ):
            vols = np.asarray(quantity(days / 365.0, delta)) * VOL_POINTS
            figure.add_trace(go.Scatter(x=days, y=vols, name=f"{label} {short}", mode="lines"),
                             1, column)  # fmt: skip
    figure.update_xaxes(title_text="days to expiry")
    figure.update_yaxes(title_text="vol points")
    figure.update_layout(title="Constant-maturity skew")
    return figure


def surface_3d(
    fit, *, axis: str = "log-moneyness", half_width: float = 0.5, points: int = 41
) -> go.Figure:
    """The implied-vol surface over days to expiry (1 day to the last node) and either
    log-moneyness (``axis="log-moneyness"``, ``-half_width`` to ``half_width``) or the Black
    forward call delta (``axis="delta"``, 0.05 to 0.95: each point's strike is the one whose
    undiscounted call delta on the surface's own smile is that value; high delta = low strike).
    """
    surface = next(iter(_surfaces([fit]).values()))
    days = _tenors(surface, None)
    if axis == "log-moneyness":
        x = np.linspace(-half_width, half_width, points)
        kk, dd = np.meshgrid(x, days)
        x_title = K_AXIS
    elif axis == "delta":
        x = np.linspace(DELTA_RANGE[0], DELTA_RANGE[1], points)
        xx, dd = np.meshgrid(x, days)
        kk = np.asarray(surface.delta_log_moneyness(dd / 365.0, xx, True))
        x_title = "call delta (Black forward delta)"
    else:
        raise ValueError(f"axis must be 'log-moneyness' or 'delta', not {axis!r}")
    vols = np.asarray(surface.implied_vol_at(kk, dd / 365.0)) * VOL_POINTS
    figure = go.Figure(
        go.Surface(
            x=x,
            y=days,
            z=vols,
            customdata=kk,
            hovertemplate="%{x:.3f}, %{y:.1f} days<br>k %{customdata:.3f}<br>"
            "%{z:.2f} vol points<extra></extra>",
            colorbar=dict(title="vol points"),
        )
    )
    figure.update_layout(
        title=f"{surface.underlying} implied-vol surface",
        scene=dict(xaxis_title=x_title, yaxis_title="days to expiry", zaxis_title=VOL_AXIS),
    )
    return figure


def residuals(calibration, bins: int = 21) -> go.Figure:
    """Fit residuals (model IV - mid IV, vol points) as a heatmap of expiry x log-moneyness
    bins (mean per bin)."""
    grid = calibration.grid
    edges = np.linspace(
        np.nanmin(np.where(grid.mask, grid.log_moneyness, np.nan)),
        np.nanmax(np.where(grid.mask, grid.log_moneyness, np.nan)),
        bins + 1,
    )
    centres = 0.5 * (edges[:-1] + edges[1:])
    z = np.full((len(grid.t), bins), np.nan)
    for i in range(len(grid.t)):
        k = grid.log_moneyness[i][grid.mask[i]]
        r = calibration.residuals[i][grid.mask[i]] * VOL_POINTS
        which = np.clip(np.digitize(k, edges) - 1, 0, bins - 1)
        for b in np.unique(which):
            z[i, b] = r[which == b].mean()
    labels = [f"{e:%Y-%m-%d}" for e in grid.expiries]
    figure = go.Figure(
        go.Heatmap(
            x=centres,
            y=labels,
            z=z,
            colorscale="RdBu",
            zmid=0.0,
            colorbar=dict(title="model - mid (vol points)"),
        )
    )
    figure.update_layout(
        title=f"{type(calibration.model).__name__} residuals",
        xaxis_title=K_AXIS,
        yaxis_title="expiry",
    )
    return figure


def arbitrage(calibration) -> go.Figure:
    """Durrleman's g(k) per slice on the checker's grid (g < 0 is butterfly arbitrage), and
    calendar violations (total variance falling to the next expiry) as points."""
    from volcal import arbitrage as checks

    grid = calibration.grid
    k = checks.default_grid(calibration.model, grid.forward, grid.t)
    g = np.asarray(checks.durrleman_g(calibration.model, grid.forward, grid.t, k))
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=("Durrleman g(k) per slice", "calendar violations")
    )
    for i, expiry in enumerate(grid.expiries):
        figure.add_trace(go.Scatter(x=k[i], y=g[i], mode="lines", name=f"{expiry:%Y-%m-%d}"), 1, 1)
    figure.add_hline(y=0.0, line_dash="dot", row=1, col=1)
    calendar = calibration.arbitrage.calendar
    figure.add_trace(
        go.Scatter(
            x=calendar["log_moneyness"],
            y=calendar["decrease"],
            mode="markers",
            name="total variance drop",
            hovertext=[f"slices {int(s)}->{int(s) + 1}" for s in calendar["slice"]],
        ),
        1,
        2,
    )
    figure.update_xaxes(title_text=K_AXIS)
    figure.update_yaxes(title_text="g (dimensionless)", row=1, col=1)
    figure.update_yaxes(title_text="total variance drop (vol^2 x years)", row=1, col=2)
    figure.update_layout(
        title=f"{type(calibration.model).__name__} arbitrage diagnostics: "
        f"{calibration.arbitrage.summary()}"
    )
    return figure


def parameter_history(store, venue: str, underlying: str, model: str) -> go.Figure:
    """Each stored parameter of ``model`` through time (per-expiry parameters at their nearest
    expiry to 30 days), rejected calibrations marked with crosses."""
    history = store.parameter_history(venue, underlying, model)
    names = list(dict.fromkeys(history["name"]))
    figure = make_subplots(rows=len(names), cols=1, shared_xaxes=True, subplot_titles=names)
    for row, name in enumerate(names, start=1):
        part = history[history["name"] == name]
        if part["t"].notna().any():
            # One expiry per surface: the one nearest 30 days.
            part = part.loc[(part["t"] - 30 / 365).abs().groupby(part["surface_id"]).idxmin()]
        for status, symbol in (("accepted", "circle"), ("rejected", "x")):
            shown = part[part["status"] == status]
            figure.add_trace(
                go.Scatter(
                    x=shown["snapshot"],
                    y=shown["value"],
                    mode="markers",
                    marker=dict(symbol=symbol),
                    name=f"{name} ({status})",
                    hovertext=shown["surface_id"],
                ),
                row,
                1,
            )
    figure.update_xaxes(title_text="snapshot (UTC)", row=len(names), col=1)
    figure.update_layout(
        title=f"{venue} {underlying} {model} parameters", height=220 * max(len(names), 1)
    )
    return figure


def margin_pnl(result, underlying: str, account: str | None = None) -> go.Figure:
    """Portfolio P&L per scenario (bars, settlement currency, before weights) for one
    underlying and account (default: the first), the binding scenario highlighted."""
    table = result.portfolio_pnl[underlying]
    account = account or table.index.get_level_values("account")[0]
    rows = table.xs(account, level="account")
    groups = result.groups[
        (result.groups["account"] == account) & (result.groups["underlying"] == underlying)
    ]
    figure = go.Figure()
    for settlement, pnl in rows.iterrows():
        binding = groups[groups["settlement"] == settlement]["binding_scenario"].iloc[0]
        colours = ["crimson" if label == binding else "steelblue" for label in pnl.index]
        figure.add_trace(
            go.Bar(
                x=list(pnl.index),
                y=pnl.to_numpy(),
                marker_color=colours,
                name=f"{underlying} ({settlement})",
            )
        )
    figure.update_layout(
        title=f"{account}: {underlying} portfolio P&L by scenario (binding scenario in red)",
        xaxis_title="scenario",
        yaxis_title="P&L (settlement currency)",
    )
    return figure


def margin_contributions(result, top: int = 20) -> go.Figure:
    """Each position's contribution to its group's binding-scenario loss (settlement
    currency), largest first."""
    positions = result.positions.sort_values("contribution", ascending=False).head(top)
    figure = go.Figure(
        go.Bar(
            x=positions["contribution"],
            y=[
                f"row {r} {i}"
                for r, i in zip(positions.index, positions["instrument"], strict=True)
            ],
            orientation="h",
        )
    )
    figure.update_layout(
        title="Contributions to the binding scenarios",
        xaxis_title="weighted loss (settlement currency)",
        yaxis_title="position",
        yaxis_autorange="reversed",
    )
    return figure


#: Browsers tried, in order, when ``BROWSER_PATH`` is not set (Debian's packages first).
BROWSERS = ("chromium-headless-shell", "chromium", "google-chrome", "chrome")
PNG_WIDTH = 1400


def write_png(figure: go.Figure, path, *, width: int = PNG_WIDTH, height: int | None = None):
    """Write ``figure`` as a PNG through kaleido (the ``plot`` extra) and a headless Chromium.

    The browser is ``$BROWSER_PATH``, else the first of :data:`BROWSERS` on the PATH (Debian's
    ``chromium-headless-shell`` works offline). ``height`` defaults to the figure's own, else
    ``0.6 width``. Raises ``RuntimeError`` naming what is missing.
    """
    import os
    import shutil

    try:
        import kaleido  # noqa: F401
    except ImportError as error:
        raise RuntimeError("PNG export needs kaleido: pip install 'volcal[plot]'") from error
    browser = os.environ.get("BROWSER_PATH") or next(
        (found for name in BROWSERS if (found := shutil.which(name))), None
    )
    if browser is None:
        raise RuntimeError(
            "PNG export needs a Chromium: install Debian's chromium-headless-shell (or set "
            "BROWSER_PATH to a Chrome or Chromium executable)"
        )
    os.environ["BROWSER_PATH"] = browser
    height = height or figure.layout.height or int(0.6 * width)
    figure.write_image(str(path), format="png", width=width, height=height)


def _expiry_index(grid, expiry) -> int:
    if isinstance(expiry, int | np.integer):
        if not 0 <= expiry < len(grid.t):
            raise ValueError(f"expiry index {expiry} outside 0..{len(grid.t) - 1}")
        return int(expiry)
    stamp = pd.Timestamp(expiry)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    matches = np.flatnonzero(grid.expiries == stamp)
    if not len(matches):
        raise ValueError(f"no expiry {stamp} in the grid (it has {list(grid.expiries)})")
    return int(matches[0])


def _tenors(surface: VolSurface, tenors_days) -> np.ndarray:
    if tenors_days is not None:
        return np.asarray(tenors_days, dtype=float)
    last = float(np.asarray(surface.t)[-1]) * 365.0
    return np.linspace(1.0, last, 60)

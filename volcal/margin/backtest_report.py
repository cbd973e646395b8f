"""Figures and a self-contained HTML report of a margin backtest
(:class:`volcal.margin.backtest.BacktestResult`): margin against realised loss through time
with breaches marked, coverage per book, and the calibrated parameters through time."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from volcal.report import html_page

SET_COLOURS = {"deribit": "royalblue", "span": "darkorange", "volcal": "seagreen"}


def margin_vs_loss(result, underlying: str) -> go.Figure:
    """Per book (one panel each): each parameter set's margin (lines) and the realised loss
    (black), in USD, with breaches (loss above that set's margin) marked by crosses."""
    frame = result.observations[result.observations["underlying"] == underlying]
    books = list(dict.fromkeys(frame["book"]))
    figure = make_subplots(
        rows=len(books), cols=1, shared_xaxes=True, subplot_titles=books, vertical_spacing=0.03
    )
    for row, book in enumerate(books, start=1):
        mine = frame[frame["book"] == book]
        first = mine[mine["parameter_set"] == mine["parameter_set"].iloc[0]].sort_values("day")
        figure.add_trace(
            go.Scatter(
                x=first["day"],
                y=first["loss_usd"],
                mode="lines",
                name="realised loss",
                legendgroup="loss",
                showlegend=row == 1,
                line=dict(color="black", width=1),
            ),
            row=row,
            col=1,
        )
        for name, series in mine.groupby("parameter_set", sort=False):
            series = series.sort_values("day")
            colour = SET_COLOURS.get(name)
            figure.add_trace(
                go.Scatter(
                    x=series["day"],
                    y=series["margin_usd"],
                    mode="lines",
                    name=f"margin: {name}",
                    legendgroup=name,
                    showlegend=row == 1,
                    line=dict(color=colour),
                ),
                row=row,
                col=1,
            )
            breaches = series[series["breach"]]
            figure.add_trace(
                go.Scatter(
                    x=breaches["day"],
                    y=breaches["loss_usd"],
                    mode="markers",
                    name=f"breach: {name}",
                    legendgroup=name,
                    showlegend=row == 1,
                    marker=dict(symbol="x", size=9, color=colour),
                ),
                row=row,
                col=1,
            )
        figure.update_yaxes(title_text="USD", row=row, col=1)
    figure.update_layout(
        title=f"{underlying}: margin against the realised {result.horizon_days}-day loss",
        height=260 * len(books),
    )
    return figure


def coverage(result) -> go.Figure:
    """Breach rate per book and parameter set against the promised ``1 - confidence``."""
    summary = result.summary()
    figure = go.Figure()
    for name, frame in summary.groupby("parameter_set", sort=False):
        label = frame["underlying"] + " " + frame["book"]
        figure.add_trace(
            go.Bar(
                x=label,
                y=frame["breach_rate"] * 100,
                name=name,
                marker_color=SET_COLOURS.get(name),
                customdata=np.stack(
                    [frame["breaches"], frame["n"], frame["kupiec_p_value"]], axis=-1
                ),
                hovertemplate="%{customdata[0]} of %{customdata[1]} days<br>"
                "Kupiec p %{customdata[2]:.3f}<extra></extra>",
            )
        )
    figure.add_hline(y=(1 - result.confidence) * 100, line_dash="dash", annotation_text="promised")
    figure.update_layout(
        title="Breach rate per book", yaxis_title="breach rate (%)", barmode="group"
    )
    return figure


def parameters(result) -> go.Figure:
    """The calibrated ("volcal") parameters known on each day, per underlying."""
    frame = result.parameters
    names = [
        "price_range",
        "vol_range_up",
        "vol_range_down",
        "short_term_vega_power",
        "long_term_vega_power",
    ]
    figure = make_subplots(rows=len(names), cols=1, shared_xaxes=True, subplot_titles=names)
    for row, name in enumerate(names, start=1):
        for underlying, series in frame.groupby("underlying"):
            figure.add_trace(
                go.Scatter(
                    x=series["day"],
                    y=series[name],
                    mode="lines",
                    name=underlying,
                    legendgroup=underlying,
                    showlegend=row == 1,
                ),
                row=row,
                col=1,
            )
    figure.update_layout(
        title="Calibrated risk parameters known on each day", height=220 * len(names)
    )
    return figure


def html_report(result) -> str:
    """The backtest as one HTML document (plotly's JavaScript embedded once: works offline)."""
    summary = result.summary()
    parts = [
        f"<h1>Margin backtest: {result.horizon_days}-day margin period, "
        f"{result.confidence:.1%} promised coverage</h1>",
        "<h2>Summary</h2>",
        summary.to_html(index=False, float_format="%.4g"),
    ]
    if len(result.parameters):
        from volcal.margin.backtest import parameter_procyclicality

        parts += [
            "<h2>Procyclicality of the calibrated parameters</h2>",
            parameter_procyclicality(result.parameters).to_html(index=False, float_format="%.4g"),
        ]
    figures = [coverage(result)]
    figures += [margin_vs_loss(result, u) for u in dict.fromkeys(summary["underlying"])]
    if len(result.parameters):
        figures.append(parameters(result))
    return html_page("volcal margin backtest", parts, figures)

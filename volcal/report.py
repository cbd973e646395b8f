"""``volcal report``: a self-contained HTML report of a stored calibration (and optionally a
margin result), readable offline: plotly's JavaScript is embedded once in the page.

Sections: a summary (keys, gate status and reasons, fit quality), the per-expiry table
(forward, quotes, RMSE, solver status, parameters), the cleaning report's counts, the
surface's figures (ATM term structure, skew, 3D surface), and for a margin result its summary,
the groups table and the P&L and contribution figures.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from volcal import plot

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
.rejected { color: #b00; } .accepted { color: #070; }
pre { background: #f7f7f7; padding: 1em; }
"""


def html_report(stored, *, margin_result=None) -> str:
    """The report of a :class:`volcal.store.StoredSurface` (and a :class:`MarginResult`), as
    one HTML document."""
    surface = stored.surface
    record, diagnostics = stored.record, stored.diagnostics
    parts = [
        f"<h1>{html.escape(stored.venue)} {html.escape(stored.underlying)} "
        f"{html.escape(stored.model)} at {stored.snapshot:%Y-%m-%d %H:%M} UTC</h1>"
    ]
    reasons = "; ".join(f"{f.reason.value}: {f.detail}" for f in stored.reasons) or "-"
    summary = pd.DataFrame({
        "surface id": [stored.id], "status": [stored.status],
        "published model": [stored.published], "reasons": [reasons],
        "RMSE (vol points)": [f"{diagnostics['rmse']:.3f}"],
        "inside bid/ask": [f"{diagnostics['inside']:.1%}"],
        "arbitrage": [diagnostics.get("arbitrage", "")],
        "volcal": [stored.volcal_version], "stored at": [f"{stored.created_at:%Y-%m-%d %H:%M}"],
    })  # fmt: skip
    parts += ["<h2>Summary</h2>", summary.T.to_html(header=False)]
    per_expiry = pd.DataFrame({
        "expiry": [e[:16] for e in record["expiries"]],
        "days": np.round(np.asarray(record["t"]) * 365.0, 2),
        "forward": np.round(record["forward"], 2),
        "quotes": diagnostics.get("quotes_by_expiry"),
        "RMSE (vp)": diagnostics.get("rmse_by_expiry"),
        "inside": diagnostics.get("inside_by_expiry"),
        "solver": diagnostics.get("solver_status"),
    })  # fmt: skip
    for name, value in record["parameters"].items():
        if not isinstance(value, str) and np.ndim(value) == 1 and len(value) == len(record["t"]):
            per_expiry[name] = value
    scalars = {k: v for k, v in record["parameters"].items() if k not in per_expiry}
    parts += ["<h2>Per expiry</h2>", per_expiry.to_html(index=False, float_format="%.5g")]
    if scalars:
        parts.append(f"<p>Surface parameters: {html.escape(str(scalars))}</p>")
    cleaning = pd.Series(stored.cleaning, name="rows").to_frame()
    parts += ["<h2>Cleaning report</h2>", cleaning.to_html()]
    figures = [plot.term_structure({stored.model: surface}),
               plot.skew({stored.model: surface}), plot.surface_3d(surface)]  # fmt: skip
    if margin_result is not None:
        parts += ["<h2>Margin</h2>", f"<pre>{html.escape(margin_result.summary())}</pre>",
                  margin_result.groups.to_html(index=False, float_format="%.6g")]  # fmt: skip
        figures += [plot.margin_pnl(margin_result, u) for u in margin_result.portfolio_pnl]
        figures.append(plot.margin_contributions(margin_result))
    return html_page(f"volcal report {stored.id}", parts, figures)


def html_page(title: str, parts: list[str], figures) -> str:
    """One self-contained HTML document: ``parts`` (HTML), then a Figures section with
    ``figures``; plotly's JavaScript is embedded once, in the first figure."""
    parts = [*parts, "<h2>Figures</h2>"]
    for number, figure in enumerate(figures):
        # The first figure carries plotly's JavaScript inline; the others reuse it.
        parts.append(figure.to_html(full_html=False, include_plotlyjs=number == 0))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")  # fmt: skip

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 Interactive skew: sliders, locks, refit, compare, save
#
# Pick an expiry and a slice model (raw SVI or SABR), move its parameters with the sliders and
# watch the smile against the quotes; lock the parameters you trust, refit the others from the
# current point with one click, compare with the surfaces in the store, and save.
#
# Needs the `notebook` extra (`pip install -e ".[notebook]"`: ipywidgets, and anywidget for
# plotly's FigureWidget). Every action below is also a widget you can click; the cells drive
# the same widgets from code, so the notebook checks itself when run top to bottom.

# %%
import tempfile
from pathlib import Path

import volcal as vc
from volcal.interactive import SkewExplorer
from volcal.sources.demo import demo_chain

grid = vc.clean(demo_chain("2026-01-15T09:30:00Z"))
fits = {
    "raw SVI": vc.calibrate(vc.models.SVI, grid),
    "SABR": vc.calibrate(vc.models.SABR, grid, fixed={"beta": 1.0, "expansion": "obloj"}),
}
store = vc.Store(Path(tempfile.mkdtemp()) / "volcal.sqlite")
published = store.save(vc.calibrate(vc.models.ESSVI, grid))
assert published.status == "accepted"

# %% [markdown]
# The explorer: expiry and model pickers, refit and save buttons, one slider and one lock per
# parameter, and the smile with the quotes (bid/ask bars), the model's curve, the stored eSSVI
# surface (dashed) and the forward.

# %%
explorer = SkewExplorer(fits, store=store, expiry=4)
assert any(trace.name.startswith("stored ESSVI") for trace in explorer.figure.data)
explorer

# %% [markdown]
# Steepen the skew by hand: the curve moves, and the slice's RMSE against the mids rises.

# %%
fitted_rmse = explorer.slice_rmse()
explorer.sliders["rho"].value = explorer.sliders["rho"].value - 0.25
explorer.sliders["b"].value = explorer.sliders["b"].value * 1.3
print(explorer.status.value)
assert explorer.slice_rmse() > fitted_rmse + 1.0

# %% [markdown]
# Lock the smile's centre `m` and refit the rest: the solver starts from the sliders' values,
# holds `m`, and comes back to the quotes.

# %%
explorer.locks["m"].value = True
m = explorer.sliders["m"].value
explorer.refit_button.click()
print(explorer.status.value)
assert explorer.sliders["m"].value == m
assert abs(explorer.slice_rmse() - fitted_rmse) < 0.01

# %% [markdown]
# Switch to SABR on the same expiry (beta is the user's choice: always locked), nudge vol of
# vol, refit, and save the edited SABR surface through the quality gate.

# %%
explorer.model.value = "SABR"
explorer.sliders["nu"].value = explorer.sliders["nu"].value * 0.7
explorer.refit_button.click()
saved = explorer.save()
print(explorer.status.value)
assert saved.model == "SABR" and saved.status == "accepted"
assert store.latest(grid.venue, grid.underlying, model="SABR").id == saved.id
explorer.figure

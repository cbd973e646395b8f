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
# # 01 Quickstart: demo market -> clean -> calibrate -> plots -> store
#
# Offline from start to end: the demo market is a Deribit-like BTC chain priced on a known
# arbitrage-free SSVI surface. Each cell asserts what it shows.

# %%
import tempfile
from pathlib import Path

import volcal as vc
from volcal import plot
from volcal.sources.demo import demo_chain
from volcal.surface import VolSurface

chain = demo_chain("2026-01-15T09:30:00Z")
grid = vc.clean(chain)
print(grid.report.summary())
assert grid.mask.sum() > 500 and len(grid.t) >= 10

# %% [markdown]
# Calibrate every model. eSSVI is the published one: free of butterfly and calendar
# arbitrage by construction.

# %%
fits = {
    "eSSVI": vc.calibrate(vc.models.ESSVI, grid),
    "raw SVI": vc.calibrate(vc.models.SVI, grid),
    "SSVI": vc.calibrate(vc.models.SSVI, grid),
    "SABR": vc.calibrate(vc.models.SABR, grid, fixed={"beta": 1.0, "expansion": "obloj"}),
    "Heston": vc.calibrate(vc.models.Heston, grid, throw=False),
}
for name, fit in fits.items():
    print(
        f"{name:8s} RMSE {fit.rmse:6.3f} vol points, inside {fit.inside:6.1%}, "
        f"{fit.arbitrage.summary()}"
    )
# The demo surface is SSVI: eSSVI and SSVI fit it to within the quotes' spreads.
assert fits["eSSVI"].rmse < 1.0 and fits["eSSVI"].arbitrage.ok
assert fits["SSVI"].rmse < 1.0 and fits["raw SVI"].arbitrage.butterfly.empty

# %% [markdown]
# The published surface: any strike and expiry, constant-maturity quantities.

# %%
surface = VolSurface.from_calibration(fits["eSSVI"])
table = surface.constant_maturity()
print(table)
assert (table["rr25"] < 0).all()  # the demo smile is skewed to puts, as BTC's usually is

# %% [markdown]
# Figures: every expiry's smile with the quotes and two fits, the term structure and skew.

# %%
smiles = plot.smile_grid(fits["eSSVI"], fits={"raw SVI": fits["raw SVI"]})
term = plot.term_structure({name: fits[name] for name in ("eSSVI", "SSVI", "Heston")})
skew = plot.skew({"eSSVI": surface})
assert len([t for t in smiles.data if t.name == "ESSVI"]) == len(grid.t)
smiles

# %%
term

# %%
skew

# %% [markdown]
# Store the published fit (gated) in a throw-away store, and read it back as of now.

# %%
with tempfile.TemporaryDirectory() as folder, vc.Store(Path(folder) / "volcal.sqlite") as store:
    stored = store.save(fits["eSSVI"])
    print(stored.id, stored.status, stored.reasons)
    assert stored.accepted
    latest = store.latest("demo", "BTC")
    assert latest.id == stored.id
    assert abs(float(latest.surface.atm_vol(30 / 365)) - float(surface.atm_vol(30 / 365))) < 1e-15

"""Interactive skew calibration in a notebook: sliders, locks, one-click refit, save.

:class:`SkewExplorer` shows one expiry's quotes (bid/ask bars, mid, the venue's mark) and the
smile of a slice model (raw SVI or SABR) in a plotly ``FigureWidget``, with one slider per
parameter. Moving a slider redraws the curve; a ticked "lock" keeps that parameter at its
value through a refit; "refit" solves the slice again from the current point
(Levenberg-Marquardt, the same weighted vol residuals as :func:`volcal.calibrate`, plus raw
SVI's butterfly penalty); "save" stores the edited calibration, through the store's quality
gate. The stored surfaces of the same pair at or before the grid's snapshot are drawn dashed
for comparison.

Every widget is an attribute (``expiry``, ``model``, ``sliders``, ``locks``, ``refit_button``,
``save_button``), so the logic is driven and tested by setting values, without a browser.
Needs the ``notebook`` extra (ipywidgets, and anywidget for plotly's ``FigureWidget``).
"""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from volcal.calibrate import (
    MAX_STEPS,
    SLICE_FTOL,
    Calibration,
    CalibrationStatus,
    _least_squares,
    _weighted_miss,
    assess,
)
from volcal.models import SABR, SVI
from volcal.models.base import Model
from volcal.plot import CURVE_MARGIN, CURVE_POINTS, K_AXIS, VOL_AXIS, VOL_POINTS, _smile_traces

#: Correlations are kept strictly inside (-1, 1) by ``CORRELATION_MAX tanh(u)`` (as raw SVI's
#: own bijection does), positive parameters above zero by ``softplus(u)``.
CORRELATION_MAX = 0.999
#: Each parameter's domain in the refit: "free" (any real), "positive", "correlation", or
#: "fixed" (never solved: SABR's beta is chosen by the user, as in :func:`volcal.calibrate`).
DOMAINS: dict[type, dict[str, str]] = {
    SVI: {"a": "free", "b": "positive", "rho": "correlation", "m": "free", "sigma": "positive"},
    SABR: {"alpha": "positive", "beta": "fixed", "rho": "correlation", "nu": "positive"},
}
#: Smallest half-width of a slider's range around the parameter's value (the half-width is
#: otherwise the value's size): a flat-ish smile's slopes can still be moved by hand.
MINIMUM_SPAN = {"a": 0.02, "b": 0.05, "rho": 0.5, "m": 0.1, "sigma": 0.1, "alpha": 0.05,
                "beta": 0.5, "nu": 0.5}  # fmt: skip
#: Hard bounds of the sliders (``None``: unbounded), inside each parameter's domain.
SLIDER_BOUNDS = {"b": (0.0, None), "rho": (-CORRELATION_MAX, CORRELATION_MAX),
                 "sigma": (1e-4, None), "alpha": (1e-8, None), "beta": (0.0, 1.0),
                 "nu": (0.0, None)}  # fmt: skip
SLIDER_STEPS = 400
#: The forward (k = 0), marked as a dotted vertical line across the plot.
FORWARD_LINE = dict(type="line", x0=0.0, x1=0.0, xref="x", y0=0.0, y1=1.0, yref="paper",
                    line=dict(dash="dot", color="grey"))  # fmt: skip
FORWARD_LABEL = dict(x=0.0, xref="x", y=1.0, yref="paper", text="forward", showarrow=False,
                     yanchor="bottom")  # fmt: skip


def _to_unconstrained(domain: str, value):
    value = jnp.asarray(value, dtype=float)
    if domain == "positive":
        value = jnp.maximum(value, 1e-12)
        return value + jnp.log(-jnp.expm1(-value))  # softplus inverse, stable for large values
    if domain == "correlation":
        return jnp.arctanh(jnp.clip(value, -CORRELATION_MAX, CORRELATION_MAX) / CORRELATION_MAX)
    return value


def _from_unconstrained(domain: str, u):
    if domain == "positive":
        return jax.nn.softplus(u)
    if domain == "correlation":
        return CORRELATION_MAX * jnp.tanh(u)
    return u


_REFITS: dict = {}


def _refit_solver(model_type: type[Model], free: tuple[str, ...]):
    """The compiled refit of one slice with ``free`` parameters solved and the others held,
    shared by every explorer (one compile per model type and set of free parameters)."""
    key = (model_type, free)
    if key in _REFITS:
        return _REFITS[key]
    spec = model_type.calibration
    domains = DOMAINS[model_type]

    def model_of(u, template):
        values = tuple(_from_unconstrained(domains[n], u[i]) for i, n in enumerate(free))
        return eqx.tree_at(lambda m: tuple(getattr(m, n) for n in free), template, values)

    def residuals(u, args):
        template, data = args
        model = model_of(u, template)
        fit = _weighted_miss(model, data, "vol", "linear", 1.0)
        return jnp.concatenate([fit, spec.penalty(model, data[6])])

    @eqx.filter_jit
    def solve(template, data):
        u0 = jnp.stack([_to_unconstrained(domains[n], getattr(template, n)) for n in free])
        # calibrate's own Levenberg-Marquardt (trust region, cost stop) on this one slice.
        u, status, steps, _ = _least_squares(residuals, u0, (template, data), MAX_STEPS,
                                             SLICE_FTOL)  # fmt: skip
        return model_of(u, template), status, steps

    _REFITS[key] = solve
    return solve


@eqx.filter_jit
def _curve(model, forward, strike, t):
    return model.implied_vol(forward, strike, t)


def _slice(model: Model, index: int) -> Model:
    """Slice ``index`` of a slice model (parameters as scalars)."""
    return jax.tree.map(lambda x: jnp.asarray(x).reshape(-1)[index] if jnp.ndim(x) else
                        jnp.asarray(x), model)  # fmt: skip


def _with_slice(model: Model, index: int, values: Mapping[str, float]) -> Model:
    """``model`` with slice ``index`` of each named parameter replaced."""
    names = tuple(values)
    n = max(np.size(getattr(model, name)) for name in DOMAINS[type(model)])
    arrays = []
    for name in names:
        column = np.array(np.broadcast_to(np.asarray(getattr(model, name), float), (n,)))
        column[index] = float(values[name])
        arrays.append(jnp.asarray(column))
    return eqx.tree_at(lambda m: tuple(getattr(m, k) for k in names), model, tuple(arrays))


class SkewExplorer:
    """Calibrate one expiry's skew by hand and by solver, in a notebook.

    Parameters
    ----------
    calibrations : Calibration or mapping of label -> Calibration
        Slice-model fits (raw SVI, SABR) of the same grid, the starting points; the
        ``model`` dropdown picks one.
    store : Store, optional
        Where "save" writes, and where the surfaces compared with are read (the latest
        accepted ones at or before the grid's snapshot: the pair's published model and the
        edited model).
    expiry : int, optional
        The expiry shown first (index into the grid's expiries).

    Attributes
    ----------
    expiry, model : ipywidgets.Dropdown
    sliders, locks : dict of parameter name -> ipywidgets.FloatSlider / Checkbox
    refit_button, save_button : ipywidgets.Button
    status : ipywidgets.HTML
        This slice's RMSE (vol points) and share of quotes inside, and the last action.
    figure : plotly.graph_objects.FigureWidget
    widget : ipywidgets.VBox
        Everything, to display (the explorer displays itself too).
    fits : dict of label -> Calibration
        The current state of each model, edits and refits included.
    """

    def __init__(self, calibrations, *, store=None, expiry: int = 0):
        import ipywidgets as widgets
        import plotly.graph_objects as go

        if isinstance(calibrations, Calibration):
            calibrations = {type(calibrations.model).__name__: calibrations}
        for label, fit in calibrations.items():
            if type(fit.model) not in DOMAINS:
                raise TypeError(
                    f"{label!r} is a {type(fit.model).__name__} fit; the explorer edits slice "
                    f"models ({', '.join(t.__name__ for t in DOMAINS)}) one expiry at a time"
                )
        grids = {id(fit.grid) for fit in calibrations.values()}
        if len(grids) != 1:
            raise ValueError("every calibration must be of the same grid")
        self.fits: dict[str, Calibration] = dict(calibrations)
        self.grid = next(iter(self.fits.values())).grid
        self.store = store
        self.saved = []
        self._syncing = False

        labels = [f"{e:%Y-%m-%d} ({t * 365:.0f} d)" for e, t in
                  zip(self.grid.expiries, self.grid.t, strict=True)]  # fmt: skip
        self.expiry = widgets.Dropdown(options=list(zip(labels, range(len(labels)), strict=True)),
                                       value=expiry, description="expiry")  # fmt: skip
        self.model = widgets.Dropdown(options=list(self.fits), description="model")
        self.refit_button = widgets.Button(description="refit", icon="refresh")
        self.save_button = widgets.Button(description="save", icon="save",
                                          disabled=store is None)  # fmt: skip
        self.status = widgets.HTML()
        self.figure = go.FigureWidget()
        self.figure.update_layout(xaxis_title=K_AXIS, yaxis_title=VOL_AXIS, height=480,
                                  margin=dict(t=40))  # fmt: skip
        self.sliders: dict = {}
        self.locks: dict = {}
        self._parameters = widgets.VBox()
        self.widget = widgets.VBox([
            widgets.HBox([self.expiry, self.model, self.refit_button, self.save_button]),
            widgets.HBox([self._parameters, self.figure]),
            self.status,
        ])  # fmt: skip

        self.expiry.observe(lambda change: self._show(), names="value")
        self.model.observe(lambda change: self._show(), names="value")
        self.refit_button.on_click(lambda button: self.refit())
        self.save_button.on_click(lambda button: self.save())
        self._show()

    # -- state ------------------------------------------------------------------------------

    @property
    def calibration(self) -> Calibration:
        """The current fit of the selected model."""
        return self.fits[self.model.value]

    @property
    def parameters(self) -> dict[str, float]:
        """The selected slice's parameters, as the sliders hold them."""
        return {name: float(slider.value) for name, slider in self.sliders.items()}

    def slice_rmse(self) -> float:
        """RMSE of the selected slice's model vols against the mid vols, in vol points."""
        i = self.expiry.value
        mask = self.grid.mask[i]
        vols = np.asarray(self._vols(self.grid.strike[i][mask]))
        return float(np.sqrt(np.mean((vols - self.grid.mid_iv[i][mask]) ** 2)) * VOL_POINTS)

    def _vols(self, strikes):
        i = self.expiry.value
        model = _slice(self.calibration.model, i)
        return _curve(model, jnp.asarray(self.grid.forward[i]), jnp.asarray(strikes),
                      jnp.asarray(self.grid.t[i]))  # fmt: skip

    # -- actions ----------------------------------------------------------------------------

    def refit(self) -> Calibration:
        """Solve the selected slice again from the sliders' values, locked parameters held."""
        i = self.expiry.value
        model = self.calibration.model
        domains = DOMAINS[type(model)]
        free = tuple(n for n in domains if domains[n] != "fixed" and not self.locks[n].value)
        if not free:
            self._message("every parameter is locked: nothing to refit")
            return self.calibration
        template = _slice(_with_slice(model, i, self.parameters), i)
        fit = self.calibration
        grid = self.grid
        weight = np.sqrt(np.where(grid.mask[i], grid.weight[i], 0.0))
        atm = np.abs(np.where(grid.mask[i], grid.log_moneyness[i], np.inf)).argmin()
        data = (grid.forward[i], grid.t[i], grid.strike[i], grid.mid_iv[i], weight,
                grid.mask[i], grid.mid_iv[i][atm] ** 2 * grid.t[i], grid.is_call[i])  # fmt: skip
        before = self.slice_rmse()
        solved, status, steps = _refit_solver(type(model), free)(
            template, tuple(jnp.asarray(a) for a in data)
        )
        values = {n: float(getattr(solved, n)) for n in free}
        statuses, all_steps = np.array(fit.status), np.array(fit.steps)
        statuses[i], all_steps[i] = int(status), int(steps)
        self._replace(_with_slice(model, i, values), statuses, all_steps)
        self._sync_sliders()
        self._draw()
        outcome = CalibrationStatus(int(status))
        self._message(f"refit {', '.join(free)}: RMSE {before:.3f} -> {self.slice_rmse():.3f} "
                      f"vol points ({outcome.meaning}, {int(steps)} steps)")  # fmt: skip
        return self.calibration

    def save(self):
        """Store the selected model's current calibration (all expiries) through the gate."""
        if self.store is None:
            raise RuntimeError("this explorer has no store: SkewExplorer(..., store=Store(...))")
        stored = self.store.save(self.calibration)
        self.saved.append(stored)
        reasons = "; ".join(f"{r.reason.value}: {r.detail}" for r in stored.reasons)
        self._message(f"saved as surface {stored.id}: {stored.status}"
                      + (f" ({reasons})" if reasons else ""))  # fmt: skip
        self._draw()
        return stored

    # -- drawing ----------------------------------------------------------------------------

    def _replace(self, model, status=None, steps=None):
        fit = self.calibration
        self.fits[self.model.value] = assess(
            model, self.grid, fit.status if status is None else status,
            fit.steps if steps is None else steps, setup=fit.setup,
        )  # fmt: skip

    def _show(self):
        """Rebuild the sliders for the selected model and expiry, and redraw."""
        import ipywidgets as widgets

        i = self.expiry.value
        model = _slice(self.calibration.model, i)
        domains = DOMAINS[type(model)]
        old_locks = {n: box.value for n, box in self.locks.items()}
        self.sliders, self.locks, rows = {}, {}, []
        for name, domain in domains.items():
            slider = widgets.FloatSlider(description=name, readout_format=".4g",
                                         continuous_update=False)  # fmt: skip
            _place(slider, name, float(getattr(model, name)))
            lock = widgets.Checkbox(value=domain == "fixed" or old_locks.get(name, False),
                                    description="lock", disabled=domain == "fixed",
                                    indent=False)  # fmt: skip
            slider.observe(lambda change: self._moved(), names="value")
            self.sliders[name], self.locks[name] = slider, lock
            rows.append(widgets.HBox([slider, lock]))
        self._parameters.children = rows
        self._draw()
        self._message("")

    def _moved(self):
        if self._syncing:
            return
        self._replace(_with_slice(self.calibration.model, self.expiry.value, self.parameters))
        self._draw()
        self._message("moved by hand")

    def _sync_sliders(self):
        model = _slice(self.calibration.model, self.expiry.value)
        self._syncing = True
        try:
            for name, slider in self.sliders.items():
                _place(slider, name, float(getattr(model, name)))
        finally:
            self._syncing = False

    def _draw(self):
        import plotly.graph_objects as go

        i = self.expiry.value
        grid = self.grid
        traces = _smile_traces(grid, i, {}, True)
        k = grid.log_moneyness[i][grid.mask[i]]
        x = np.linspace(k.min() - CURVE_MARGIN, k.max() + CURVE_MARGIN, CURVE_POINTS)
        forward, t = float(grid.forward[i]), float(grid.t[i])
        vols = np.asarray(self._vols(forward * np.exp(x))) * VOL_POINTS
        traces.append(go.Scatter(x=x, y=vols, mode="lines", name=self.model.value,
                                 line=dict(color="crimson", width=2)))  # fmt: skip
        for label, surface in self._stored().items():
            stored = np.asarray(surface.implied_vol_at(x, t)) * VOL_POINTS
            traces.append(go.Scatter(x=x, y=stored, mode="lines", name=label,
                                     line=dict(dash="dash")))  # fmt: skip
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(traces)
            self.figure.layout.title = (f"{grid.underlying} {grid.expiries[i]:%Y-%m-%d}, "
                                        f"F = {forward:,.2f}")  # fmt: skip
            self.figure.layout.shapes = [FORWARD_LINE]
            self.figure.layout.annotations = [FORWARD_LABEL]

    def _stored(self) -> dict:
        """The stored surfaces to compare with: ``{label: VolSurface}``."""
        if self.store is None:
            return {}
        from volcal.store import NoSurfaceError

        grid = self.grid
        wanted = [None, type(self.calibration.model).__name__]
        out = {}
        for model in wanted:
            try:
                stored = self.store.latest(grid.venue, grid.underlying, model=model,
                                           asof=grid.snapshot)  # fmt: skip
            except NoSurfaceError:
                continue
            out[f"stored {stored.model} ({stored.snapshot:%Y-%m-%d %H:%M})"] = stored.surface
        return out

    def _message(self, text: str):
        i = self.expiry.value
        fit = self.calibration
        rmse = self.slice_rmse()
        inside = fit.inside_by_expiry[i]
        line = f"<b>{self.model.value}</b>, slice RMSE {rmse:.3f} vol points, inside {inside:.0%}"
        self.status.value = line + (f"<br>{text}" if text else "")

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _place(slider, name: str, value: float) -> None:
    """Set ``slider`` to ``value`` with a range around it (module constants)."""
    span = max(abs(value), MINIMUM_SPAN.get(name, 0.1))
    low, high = value - span, value + span
    bounds = SLIDER_BOUNDS.get(name, (None, None))
    if bounds[0] is not None:
        low = max(low, bounds[0])
    if bounds[1] is not None:
        high = min(high, bounds[1])
    # Widen before narrowing so that the value is never clipped on the way.
    slider.min, slider.max = min(slider.min, low), max(slider.max, high)
    slider.value = value
    slider.min, slider.max = low, high
    slider.step = (high - low) / SLIDER_STEPS

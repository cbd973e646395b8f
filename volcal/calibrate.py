"""``calibrate(model, grid)``: fit a volatility model to an implied-vol grid.

One entry function, strategies as keyword options, one typed result (STYLE.md items 1-3):
Levenberg-Marquardt from optimistix with autodiff Jacobians, the model's own constraint
bijection and penalties (its ``calibration`` spec), vmapped over slices for slice models (a
few at a time on a CPU, :func:`_queued_least_squares`), loud failure by default.

Residuals (per quote, padded quotes contribute 0): ``sqrt(weight) (sigma_model - sigma_mid)``
in vol space (default), or ``sqrt(weight) (C_model - C_mid) / F`` in price space; a robust
``loss`` rewrites each residual ``r`` as ``f sign(r) sqrt(rho((r/f)^2))`` with scale ``f`` =
``loss_scale`` (soft-l1: ``rho(z) = 2 (sqrt(1 + z) - 1)``; Huber: ``z`` below 1, ``2 sqrt(z) - 1``
above), so least squares minimises ``sum rho`` as in scipy's ``least_squares``.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field, replace
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pandas as pd

from volcal import arbitrage
from volcal.black import black_price
from volcal.clean import IVGrid
from volcal.models.base import Model, SurfaceSpec

VOL_POINT = 0.01
#: Residual (decimal vol) of a quote whose model price has no implied vol at a trial point.
NO_VOL_RESIDUAL = 1.0
#: Solver tolerances on the unconstrained parameters and the cost (optimistix's rtol/atol).
RTOL = 1e-10
ATOL = 1e-12
#: A solve also ends when two accepted steps in a row leave the cost (sum of squared
#: residuals) lower by less than FTOL of itself: the cost has settled (MINPACK's and scipy's
#: ``ftol`` test, QuantLib's functionEpsilon). optimistix's own test needs every residual and
#: parameter to stop moving, which in a near-degenerate valley (raw SVI's) takes ~100 more
#: steps that change the cost by 1e-15 of itself. 1e-8 of the cost is a relative change of
#: 5e-9 in the RMSE. Exact fits (synthetic quotes) end by optimistix's test, the cost falling
#: to zero.
FTOL = 1e-8
#: The same test for the per-slice solves (raw SVI, SABR, the calendar repair), at 1e-6 of
#: the cost, a relative change of 5e-7 in the RMSE. Where raw SVI's butterfly penalty binds,
#: Gauss-Newton steps alternate across the constraint, each halving the cost's distance to its
#: limit: 1e-8 took 10 more such steps. On the eleven real surfaces of docs/real_data_fits.md
#: the raw SVI vols are within 1.7e-4 (0.017 vol points, a thirtieth of the narrowest quote
#: spread the weights allow) of a 1e-10 stop's, with 18% fewer steps than at 1e-8. Surface
#: solves keep FTOL (Heston's benchmark against QuantLib compares like stopping rules).
SLICE_FTOL = 1e-6
MAX_STEPS = 400
#: When a solve stops at MAX_STEPS, it is continued for STALL_STEPS more; if the cost then falls
#: by less than STALL_RTOL of itself, the fit is final and the solver only creeps along a
#: parameter pressed against its constraint (its unconstrained coordinate drifting towards
#: infinity, which the step-size test never accepts): status CONSTRAINT_ACTIVE. 1e-6 of the
#: cost is a relative change of 5e-7 in the RMSE, far below any quote's spread.
#: A fit whose weighted residuals have fallen below STALL_RESIDUAL in root mean square is final
#: too (an exact fit approached along a constraint, e.g. vol of variance -> 0 on a flat smile).
#: The continuation starts a new trust region, which can take larger steps than the one that
#: crept to the step limit: if it then meets the solver's own stopping test, the fit has
#: converged (status SUCCESS, its steps counted with the first solve's).
STALL_STEPS = 10
STALL_RTOL = 1e-6
STALL_RESIDUAL = 1e-8


class CalibrationStatus(enum.IntEnum):
    """Outcome of one slice's (or the surface's) solve; ``.meaning`` says it in words."""

    SUCCESS = 0
    MAX_STEPS_REACHED = 1
    FAILED = 2
    NON_FINITE = 3
    CONSTRAINT_ACTIVE = 4

    @property
    def meaning(self) -> str:
        return {
            CalibrationStatus.SUCCESS: "converged",
            CalibrationStatus.MAX_STEPS_REACHED: f"stopped after the maximum number of steps "
            f"({MAX_STEPS}) without converging",
            CalibrationStatus.FAILED: "the solver failed (diverged or singular)",
            CalibrationStatus.NON_FINITE: "parameters or residuals are not finite",
            CalibrationStatus.CONSTRAINT_ACTIVE: "converged in cost with a parameter pressed "
            "against its constraint",
        }[self]

    @property
    def ok(self) -> bool:
        """A usable fit: converged, or converged in cost at a constraint."""
        return self in (CalibrationStatus.SUCCESS, CalibrationStatus.CONSTRAINT_ACTIVE)


class CalibrationError(RuntimeError):
    """A calibration failed and ``throw=True``; ``.calibration`` holds the failed result."""

    def __init__(self, message: str, calibration: Calibration):
        super().__init__(message)
        self.calibration = calibration


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`calibrate`.

    Attributes
    ----------
    model : Model
        Calibrated parameters (arrays of shape ``(expiry,)`` for slice models).
    grid : IVGrid
        The data it was fitted to.
    model_iv : ndarray ``(expiry, width)``
        Model implied vol per quote (NaN at padding).
    residuals : ndarray ``(expiry, width)``
        ``model_iv - mid_iv`` (decimal vol; NaN at padding).
    rmse : float
        Root mean square of the residuals over all quotes, in vol points (unweighted).
    rmse_by_expiry, inside_by_expiry : ndarray ``(expiry,)``
        The same per slice, and the share of quotes with bid IV <= model IV <= ask IV.
    inside : float
        Share of all (two-sided) quotes inside.
    steps : ndarray ``(expiry,)``
        Solver steps per slice.
    status : ndarray of int ``(expiry,)``
        :class:`CalibrationStatus` per slice.
    arbitrage : ArbitrageReport
        Butterfly and calendar violations of the calibrated model: checked on first access
        (:func:`volcal.arbitrage.check`; the store's gate always reads it), then kept, so that
        a fit whose report nobody reads does not pay for it.
    """

    model: Model
    grid: IVGrid
    model_iv: np.ndarray
    residuals: np.ndarray
    rmse: float
    rmse_by_expiry: np.ndarray
    inside: float
    inside_by_expiry: np.ndarray
    steps: np.ndarray
    status: np.ndarray
    #: The arbitrage report once computed (or given); read :attr:`arbitrage`.
    arbitrage_report: arbitrage.ArbitrageReport | None = field(default=None, repr=False)
    #: How the fit was made (residual, loss, loss_scale, settings, weight), for
    #: :func:`parameter_sensitivities`.
    setup: dict = field(default_factory=dict, repr=False)

    @property
    def arbitrage(self) -> arbitrage.ArbitrageReport:
        if self.arbitrage_report is None:
            report = arbitrage.check(self.model, self.grid.forward, self.grid.t)
            object.__setattr__(self, "arbitrage_report", report)  # a cache, not a change
        return self.arbitrage_report

    @property
    def ok_by_expiry(self) -> np.ndarray:
        """Per slice: converged (``CalibrationStatus.ok``)."""
        return np.array([CalibrationStatus(int(s)).ok for s in self.status], dtype=bool)

    @property
    def ok(self) -> bool:
        """Every slice converged."""
        return bool(self.ok_by_expiry.all())

    def summary(self) -> pd.DataFrame:
        """Per expiry: quotes, RMSE (vol points), share inside, steps, status, parameters."""
        table = pd.DataFrame({
            "t": self.grid.t,
            "quotes": self.grid.mask.sum(axis=1),
            "rmse_vol_points": self.rmse_by_expiry,
            "inside": self.inside_by_expiry,
            "steps": self.steps,
            "status": [CalibrationStatus(int(s)).name for s in self.status],
        }, index=self.grid.expiries)  # fmt: skip
        for name in type(self.model).calibration.parameter_names:
            table[name] = np.asarray(getattr(self.model, name))
        return table


def _robust(residual, loss: str, scale: float):
    """``r sqrt(rho(z)/z)`` with ``z = (r/f)^2``: the residual whose square is ``f^2 rho(z)``,
    written with the ratio ``rho(z)/z`` (smooth at 0) so exact fits have finite Jacobians."""
    if loss == "linear":
        return residual
    z = (residual / scale) ** 2
    if loss == "soft_l1":
        ratio = 2.0 / (jnp.sqrt(1.0 + z) + 1.0)  # = 2 (sqrt(1 + z) - 1) / z
    elif loss == "huber":
        z_tail = jnp.maximum(z, 1.0)
        ratio = jnp.where(z <= 1.0, 1.0, (2.0 * jnp.sqrt(z_tail) - 1.0) / z_tail)
    else:
        raise ValueError(f"loss must be 'linear', 'soft_l1' or 'huber', not {loss!r}")
    return residual * jnp.sqrt(ratio)


def _weighted_miss(model, data, residual: str, loss: str, loss_scale: float):
    """Robust weighted residuals of ``model`` against the mid vols of ``data`` (slice or
    surface arrays: ``forward`` and ``t`` per slice, quotes on the last axis)."""
    forward, t, strike, mid_iv, sqrt_weight, mask = data[:6]
    is_call = data[7]
    vol = model.calibration_vol(forward, strike, t)
    # A price with no implied vol (outside the no-arbitrage bounds, from a pricer's rounding at
    # extreme trial parameters) costs NO_VOL_RESIDUAL, so the solver rejects the step rather
    # than failing on a NaN.
    vol = jnp.where(jnp.isfinite(vol), vol, mid_iv + NO_VOL_RESIDUAL)
    if residual == "vol":
        miss = vol - mid_iv
    else:
        f, tt = jnp.expand_dims(forward, -1), jnp.expand_dims(t, -1)
        miss = (black_price(f, strike, tt, vol, is_call)
                - black_price(f, strike, tt, mid_iv, is_call)) / f  # fmt: skip
    return _robust(jnp.where(mask, sqrt_weight * miss, 0.0), loss, loss_scale)


#: Levenberg-Marquardt's trust region (optimistix's ClassicalTrustRegion, whose step size is
#: 1/lambda, the inverse of the damping): it starts at INITIAL_STEP_SIZE and grows (x3.5)
#: after a step whose cost fell by at least TRUST_REGION_GROW of the fall its linear model
#: predicted. optimistix's defaults, 1 and 0.99, suit residuals of order one; volcal's are vol
#: misses of order 1e-3 with weights averaging 1, so J^T J is small and lambda = 1 damped the
#: first steps to a crawl (on the benchmark's BTC surface raw SVI spent its first eight steps
#: growing the step size), and a step whose fall was merely close to its prediction (0.9 to
#: 0.99 of it) never let the step size grow. With lambda starting at 1e-4 (Gauss-Newton in
#: all but name; a rejected step shrinks the step size x4) and 0.9, the eleven real surfaces
#: of docs/real_data_fits.md took 4,800 slice steps against 7,200, with the same slices
#: converged and the same RMSEs to three decimals.
INITIAL_STEP_SIZE = 1e4
TRUST_REGION_GROW = 0.9


#: The calendar repair's refits keep optimistix's trust region (initial step size 1, growth
#: above 0.99). A refit starts at the first pass's optimum, where the calendar penalty's many
#: hinge points start to bite, and Gauss-Newton-sized first steps overshoot across them: on
#: Deribit ETH 2025-12-30 the 0.99-year slice's refit stopped after 411 steps and was not
#: kept, against 177 steps and a kept refit with these.
REPAIR_TRUST_REGION = (1.0, 0.99)


class _TrustRegion(optx.ClassicalTrustRegion):
    """optimistix's trust region, starting at step size ``initial_step_size``."""

    initial_step_size: float = INITIAL_STEP_SIZE

    def init(self, y, f_info_struct):
        state = super().init(y, f_info_struct)
        return eqx.tree_at(lambda s: s.step_size, state, jnp.asarray(self.initial_step_size))


#: Each Levenberg-Marquardt step solves the damped Gauss-Newton system ``(J^T J + lambda I)
#: d = -J^T r`` (a few parameters) by Cholesky, instead of optimistix's default QR of the
#: stacked ``[J; sqrt(lambda) I]`` (residuals x parameters). The damping keeps the normal
#: matrix positive definite, and an inexact step only costs the solver a step: the cost and
#: the stopping tests are evaluated on the residuals themselves. A raw SVI slice-step took
#: 12.3 us against 15.5 us with QR; on the eleven real surfaces of docs/real_data_fits.md the
#: solves took 4,165 steps against 4,171, with the same statuses and RMSEs to 1e-5 vol points.
LINEAR_SOLVER = lx.Normal(lx.Cholesky())


class _LevenbergMarquardt(optx.LevenbergMarquardt):
    """optimistix's Levenberg-Marquardt with volcal's trust region (``trust_region``: initial
    step size and growth threshold), which also stops once the cost has settled (``ftol``)."""

    ftol: float

    def __init__(self, rtol: float, atol: float, ftol: float = FTOL,
                 trust_region: tuple = (INITIAL_STEP_SIZE, TRUST_REGION_GROW)):  # fmt: skip
        super().__init__(rtol=rtol, atol=atol, linear_solver=LINEAR_SOLVER)
        self.search = _TrustRegion(initial_step_size=trust_region[0],
                                   high_cutoff=trust_region[1])  # fmt: skip
        self.ftol = ftol

    def step(self, fn, y, args, options, state, tags):
        y, new_state, aux = super().step(fn, y, args, options, state, tags)
        before = jnp.sum(state.f_info.residual**2)
        after = jnp.sum(new_state.f_info.residual**2)
        accepted = new_state.num_accepted_steps > state.num_accepted_steps
        # The first accepted step only evaluates the start; the previous step must have been
        # accepted too, so that a step shortened after a rejection does not count.
        settled = (accepted & (state.num_accepted_steps >= 1)
                   & (state.num_steps_since_acceptance == 0)
                   & (before - after <= self.ftol * after))  # fmt: skip
        new_state = eqx.tree_at(lambda s: s.terminate, new_state, new_state.terminate | settled)
        return y, new_state, aux


def _least_squares(residuals, u0, data, max_steps=MAX_STEPS, ftol=FTOL,
                   trust_region=(INITIAL_STEP_SIZE, TRUST_REGION_GROW)):  # fmt: skip
    """Levenberg-Marquardt; returns (solution, CalibrationStatus code, steps, cost), the cost
    being ``sum r^2 / 2`` at the solution."""
    solver = _LevenbergMarquardt(rtol=RTOL, atol=ATOL, ftol=ftol, trust_region=trust_region)
    solution = optx.least_squares(residuals, solver, u0, args=data, throw=False,
                                  max_steps=max_steps)  # fmt: skip
    steps = solution.stats["num_steps"]
    success = solution.result == optx.RESULTS.successful
    status = jnp.where(success, 0, jnp.where(steps >= max_steps, 1, 2))
    cost = 0.5 * jnp.sum(residuals(solution.value, data) ** 2)
    return solution.value, status, steps, cost


def _slice_residuals(model_type: type[Model], residual: str, loss: str, loss_scale: float,
                     settings):  # fmt: skip
    """The residual function ``(u, data) -> r`` of one slice: quotes, then the spec's penalty."""
    spec = model_type.calibration

    def residuals(u, data):
        model = spec.from_unconstrained(u, settings)
        fit = _weighted_miss(model, data, residual, loss, loss_scale)
        # A padding slice (no quotes) has nothing to fit: all its residuals are zero, so its
        # solve stops at once instead of repeating the slice it copies.
        penalty = jnp.where(jnp.any(data[5]), spec.penalty(model, data[6]), 0.0)
        return jnp.concatenate([fit, penalty])

    return residuals


#: Slices a CPU steps side by side (the lanes of :func:`_queued_least_squares`). A vmapped
#: step of n slices costs less than n single steps (on this repository's 2-core benchmark
#: machine, a Levenberg-Marquardt step of a raw SVI slice, by QR, took 22 us alone, 32 for two,
#: 48 for four and 123 for twelve), but an idle lane costs as much as a busy one. On
#: the benchmark's BTC surface (12 slices, 4 to 15 steps each; best of 70 calls) the solve
#: took 1.39 ms with two lanes, 1.27 ms with four and 1.37 ms with eight, against 1.49 ms for
#: fixed pairs (``jax.lax.map`` in batches of two). (Lanes that narrow once no slice
#: waits stepped fewer idle lanes, but were no faster there and doubled the compile time.)
#: Accelerators run a batch in parallel and take all slices in one vmap (None).
CPU_SLICE_LANES = 4


def _slice_lanes() -> int | None:
    """Slices stepped side by side on this backend: CPU_SLICE_LANES on a CPU, else all (None)."""
    return CPU_SLICE_LANES if jax.default_backend() == "cpu" else None


def _queued_least_squares(residuals, u0, data, lanes: int, max_steps: int, ftol: float):
    """Levenberg-Marquardt on every slice (leading axis of ``u0`` and ``data``), a few slices
    stepped side by side in one vmapped step, each lane taking the next waiting slice as soon
    as its own has converged; returns :func:`_least_squares`'s outputs per slice.

    A vmapped while loop (``jax.vmap`` or ``jax.lax.map`` of :func:`_least_squares`) steps
    every slice of a batch until the slowest has converged, and raw SVI's slices take from 4
    to hundreds of steps: on the eleven real surfaces of docs/real_data_fits.md, fixed pairs
    of slices stepped 1.7 times the slice-steps the slices needed. Here a lane that is done
    takes the next waiting slice. Each slice is stepped exactly as ``optx.least_squares``
    would step it (optimistix's own ``init``, ``step`` and ``terminate``; the step limit
    counts per slice). Slices without quotes are not solved and keep their start (converged,
    0 steps)."""
    solver = _LevenbergMarquardt(rtol=RTOL, atol=ATOL, ftol=ftol)
    n = u0.shape[0]
    tags = frozenset()

    def fn(u, args):
        return residuals(u, args), None

    def take(index):
        return jax.tree.map(lambda a: a[index], data)

    f_struct = jax.eval_shape(residuals, u0[0], take(0))

    def init(u, args):
        return solver.init(fn, u, args, {}, f_struct, None, tags)

    static = eqx.partition(init(u0[0], take(0)), eqx.is_array)[1]  # its arrays are unused

    def fresh(index):
        states = eqx.filter_vmap(init)(u0[index], take(index))
        return u0[index], eqx.partition(states, eqx.is_array)[0]

    def advance(u, args, dynamic, steps):
        """One step of one lane, as optimistix's iterative solve takes it."""
        state = eqx.combine(static, dynamic)
        new_u, state, _ = solver.step(fn, u, args, {}, state, tags)
        terminate, result = solver.terminate(fn, u, args, {}, state, tags)
        result = optx.RESULTS.where(jnp.all(jnp.isfinite(u)), result, optx.RESULTS.nonfinite)
        ok = result == optx.RESULTS.successful
        steps = steps + 1
        done = ~ok | terminate | (steps >= max_steps)
        status = jnp.where(ok & terminate, 0, jnp.where(steps >= max_steps, 1, 2))
        return new_u, eqx.partition(state, eqx.is_array)[0], steps, done, status

    has_quotes = jnp.any(data[5], axis=-1)
    order = jnp.argsort(~has_quotes, stable=True)  # slices with quotes first, in order
    work = jnp.sum(has_quotes)

    def body(carry):
        lanes, queued, out = carry
        lane, u, dynamic, steps, active = lanes
        u, dynamic, steps, done, status = jax.vmap(advance)(u, take(lane), dynamic, steps)
        done = done & active
        slot = jnp.where(done, lane, n)  # out of range: dropped
        out = tuple(o.at[slot].set(v, mode="drop")
                    for o, v in zip(out, (u, status, steps), strict=True))  # fmt: skip
        position = queued + jnp.cumsum(done) - 1
        refill = done & (position < work)
        lane = jnp.where(refill, order[jnp.minimum(position, n - 1)], lane)

        def reload(u_dynamic):
            return jax.tree.map(
                lambda a, b: jnp.where(refill.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
                fresh(lane), u_dynamic)  # fmt: skip

        u, dynamic = jax.lax.cond(jnp.any(refill), reload, lambda x: x, (u, dynamic))
        steps = jnp.where(done, 0, steps)
        active = jnp.where(done, refill, active)
        return (lane, u, dynamic, steps, active), queued + jnp.sum(done), out

    width = min(lanes, n)
    lane = order[:width]
    carry = ((lane, *fresh(lane), jnp.zeros(width, dtype=int), jnp.arange(width) < work),
             jnp.asarray(width), (u0, jnp.zeros(n, dtype=int), jnp.zeros(n, dtype=int)))
    carry = jax.lax.while_loop(lambda carry: jnp.any(carry[0][-1]), body, carry)
    u, status, steps = carry[-1]
    cost = jax.vmap(lambda u, args: 0.5 * jnp.sum(residuals(u, args) ** 2))(u, data)
    return u, status, steps, cost


def _slice_solve(model_type: type[Model], residual: str, loss: str, loss_scale: float,
                 settings, max_steps: int):  # fmt: skip
    """The (uncompiled) solve of every slice: ``(u0, padded data) -> (u, status, steps,
    cost)``, arrays per slice."""
    residuals = _slice_residuals(model_type, residual, loss, loss_scale, settings)

    def solve(u0, data):
        lanes = _slice_lanes()
        if lanes is None:  # one vmap over every slice
            return jax.vmap(lambda u, args: _least_squares(residuals, u, args, max_steps,
                                                           SLICE_FTOL))(u0, data)  # fmt: skip
        return _queued_least_squares(residuals, u0, data, lanes, max_steps, SLICE_FTOL)

    return solve


def _slice_solver(model_type: type[Model], residual: str, loss: str, loss_scale: float,
                  settings, max_steps: int):  # fmt: skip
    return eqx.filter_jit(_slice_solve(model_type, residual, loss, loss_scale, settings,
                                       max_steps))  # fmt: skip


def _slice_start(key: tuple):
    """A slice model's initial guess per slice, unconstrained: ``padded data -> u0``."""
    spec, settings = key[0].calibration, key[-1]

    def start(data):
        forward, t, strike, mid_iv, sqrt_weight, mask = data[:6]
        guess = jax.vmap(spec.initial_guess, in_axes=(0, 0, 0, 0, 0, 0, None))(
            forward, t, strike, mid_iv, sqrt_weight**2, mask, settings)
        return spec.to_unconstrained(guess, settings)

    return start


def _slice_finish(key: tuple):
    """The end of a slice model's fit: ``(u, padded data) -> (model, its vols on the padded
    quotes)``."""
    spec, settings = key[0].calibration, key[-1]

    def finish(u, data):
        model = spec.from_unconstrained(u, settings)
        return model, model.implied_vol(data[0], data[2], data[1])

    return finish


def _finisher(key: tuple):
    """:func:`_slice_finish`, compiled and shared by every call with the same options."""
    return _shared(("finish", *key), lambda: eqx.filter_jit(_slice_finish(key)))


def _slice_fitter(key: tuple, cold: bool):
    """The whole compiled fit of a slice model, one call: ``(start, padded data) -> (u,
    status, steps, cost, model, model vols)``, where ``start`` is the padded data to take the
    initial guess from (``cold``) or the unconstrained start ``u0``. (Each call of a compiled
    function costs tens of microseconds before it computes anything; the start, the solve and
    the model vols are one.)"""
    start, finish = _slice_start(key), _slice_finish(key)
    solve = _slice_solve(*key, MAX_STEPS)

    def fit(start_from, data):
        u0 = start(start_from) if cold else start_from
        u, status, steps, cost = solve(u0, data)
        return (u, status, steps, cost, *finish(u, data))

    return _shared(("fit", cold, *key, MAX_STEPS), lambda: eqx.filter_jit(fit))


def _surface_residuals(model_type: type[Model], residual: str, loss: str, loss_scale: float):
    spec = model_type.calibration

    def residuals(u, data):
        model = spec.from_unconstrained(u, data[1])
        return _weighted_miss(model, data, residual, loss, loss_scale).reshape(-1)

    return residuals


def _surface_solver(model_type: type[Model], residual: str, loss: str, loss_scale: float,
                    settings, max_steps: int):  # fmt: skip
    del settings
    residuals = _surface_residuals(model_type, residual, loss, loss_scale)

    @eqx.filter_jit
    def solve(u0, data):
        return _least_squares(residuals, u0, data, max_steps)

    return solve


def _solver(surface: bool, key: tuple, max_steps: int):
    """The compiled solve for ``key`` = (model type, residual, loss, loss scale, settings),
    shared by every call with the same options."""
    make = _surface_solver if surface else _slice_solver
    return _shared((surface, *key, max_steps), lambda: make(*key, max_steps))


def _shared(full_key: tuple, make):
    """The compiled function kept under ``full_key`` in _SOLVERS, made by ``make()`` once."""
    if full_key not in _SOLVERS:
        _SOLVERS[full_key] = make()
    return _SOLVERS[full_key]


def _finish_stalled(solve_more, u, status, steps, cost, data):
    """Continue the solves that hit MAX_STEPS by STALL_STEPS; those whose cost then falls by
    less than STALL_RTOL are CONSTRAINT_ACTIVE (module constants), and those whose
    continuation meets the solver's own stopping test are converged. Arrays per slice."""
    stalled = np.asarray(status) == CalibrationStatus.MAX_STEPS_REACHED
    if not stalled.any():
        return u, status, steps
    u2, status2, steps2, cost2 = solve_more(jnp.asarray(u), data)
    cost, cost2 = np.asarray(cost), np.asarray(cost2)
    quotes = np.asarray(data[5]).sum(axis=-1)
    quotes = quotes.sum() if np.ndim(stalled) == 0 else quotes
    exact = cost2 <= 0.5 * quotes * STALL_RESIDUAL**2
    final = stalled & ((cost2 >= cost * (1.0 - STALL_RTOL)) | exact)
    converged = stalled & ~final & (np.asarray(status2) == CalibrationStatus.SUCCESS)
    status = np.where(final, int(CalibrationStatus.CONSTRAINT_ACTIVE), status)
    status = np.where(converged, int(CalibrationStatus.SUCCESS), status)
    take = stalled[..., None] if np.ndim(u) > np.ndim(stalled) else stalled
    u = np.where(take, np.asarray(u2), np.asarray(u))
    steps = np.where(stalled, np.asarray(steps) + np.asarray(steps2), steps)
    return u, status, steps


_SOLVERS: dict = {}


def calibrate(
    model: type[Model] | Model,
    grid: IVGrid,
    *,
    residual: Literal["vol", "price"] = "vol",
    loss: Literal["linear", "soft_l1", "huber"] = "linear",
    loss_scale: float = VOL_POINT,
    weights: np.ndarray | Literal["grid", "uniform"] = "grid",
    fixed: dict | None = None,
    calendar: Literal["report", "repair"] = "report",
    throw: bool = True,
) -> Calibration:
    """Fit ``model`` to ``grid``.

    Parameters
    ----------
    model : Model class or instance
        ``SVI`` or ``SSVI`` (a class: start from its initial-guess heuristic) or a calibrated
        instance (warm start from its parameters; one entry per expiry of ``grid``). Slice
        models are solved per expiry, a few slices side by side in one vmapped step;
        surface models in one solve.
    grid : IVGrid
        From :func:`volcal.clean`.
    residual : {"vol", "price"}
        Residual space (module docstring).
    loss : {"linear", "soft_l1", "huber"}
        Robust loss, with ``loss_scale`` (decimal vol, default one vol point).
    weights : array ``(expiry, width)``, "grid" or "uniform"
        Quote weights; "grid" uses ``grid.weight`` (inverse IV spread).
    fixed : dict, optional
        Parameters held fixed, as the model's spec allows: SABR needs ``{"beta": 0.5}``
        (unless warm-started) and may fix ``rho``/``nu`` and choose ``expansion``.
    calendar : {"report", "repair"}
        Slice models: calendar conflicts between neighbouring slices are always reported in
        ``arbitrage``; "repair" adds a second, sequential pass that refits each conflicting
        slice (in expiry order, against the already repaired slice before it) with a penalty
        on total variance falling below the previous slice's (:func:`_repair_calendar`).
    throw : bool
        Raise :class:`CalibrationError` when a slice does not converge (default); with
        ``throw=False`` the failure is recorded in ``status``.
    """
    model_type = model if isinstance(model, type) else type(model)
    spec = model_type.calibration
    if spec is None:
        raise TypeError(f"{model_type.__name__} has no calibration spec")
    if residual not in ("vol", "price"):
        raise ValueError(f"residual must be 'vol' or 'price', not {residual!r}")
    if calendar not in ("report", "repair"):
        raise ValueError(f"calendar must be 'report' or 'repair', not {calendar!r}")
    if loss not in ("linear", "soft_l1", "huber"):
        raise ValueError(f"loss must be 'linear', 'soft_l1' or 'huber', not {loss!r}")
    if isinstance(weights, str):
        weight = grid.weight if weights == "grid" else grid.mask.astype(float)
    else:
        weight = np.asarray(weights, dtype=float)
    mask = grid.mask
    total_variance = grid.mid_iv**2 * grid.t[:, None]
    atm = np.abs(np.where(mask, grid.log_moneyness, np.inf)).argmin(axis=1)
    atm_w = total_variance[np.arange(len(grid.t)), atm]
    data = (grid.forward, grid.t, grid.strike, grid.mid_iv, np.sqrt(weight), mask, atm_w,
            grid.is_call)  # fmt: skip
    n = len(grid.t)
    key = (model_type, residual, loss, float(loss_scale))
    if isinstance(spec, SurfaceSpec):
        if isinstance(model, type):
            start = spec.initial_guess(grid.t, grid.log_moneyness, total_variance, mask)
        else:
            start = model
        key = (*key, None)
        u0 = spec.to_unconstrained(start, grid.t)
        data = tuple(jnp.asarray(a) for a in data)
        u, status, steps, cost = _solver(True, key, MAX_STEPS)(u0, data)
        u, status, steps = _finish_stalled(_solver(True, key, STALL_STEPS), u, status, steps,
                                           cost, data)  # fmt: skip
        fitted = spec.from_unconstrained(jnp.asarray(u), jnp.asarray(grid.t))
        status = np.full(n, int(status))
        steps = np.full(n, int(steps))
        finite = np.full(n, bool(np.isfinite(np.asarray(u)).all()))
    else:
        settings = spec.settings(None if isinstance(model, type) else model, fixed or {})
        key = (*key, settings)
        rows, padded, copies = _padded(data)
        if isinstance(model, type):
            fit = _slice_fitter(key, cold=True)(copies, padded)
        else:
            u0 = np.asarray(spec.to_unconstrained(model, settings))[rows]
            fit = _slice_fitter(key, cold=False)(u0, padded)
        # One transfer of every output (the model's parameters stay numpy arrays).
        u, status, steps, cost, fitted, model_iv = jax.device_get(fit)
        solved = u
        u, status, steps = _finish_stalled(_solver(False, key, STALL_STEPS), u, status, steps,
                                           cost, padded)  # fmt: skip
        u, status, steps = np.asarray(u)[:n], np.asarray(status)[:n], np.asarray(steps)[:n]
        if calendar == "repair":
            u, status, steps = _repair_calendar(key, u, status, steps, data)
        if not np.array_equal(u, solved[:n]):  # continued or repaired: new model vols
            fitted, model_iv = jax.device_get(_finisher(key)(u[rows], padded))
        fitted = jax.tree.map(lambda x: x[:n] if np.ndim(x) else x, fitted)
        model_iv = model_iv[:n, : mask.shape[1]]
        finite = np.isfinite(u).all(axis=-1)
    status = status.astype(int)
    status = np.where(finite, status, int(CalibrationStatus.NON_FINITE))
    result = _result(fitted, grid, status, np.asarray(steps),
                     None if isinstance(spec, SurfaceSpec) else model_iv)  # fmt: skip
    result = replace(result, setup={
        "residual": residual, "loss": loss, "loss_scale": float(loss_scale), "weight": weight,
        "settings": None if isinstance(spec, SurfaceSpec) else settings,
    })  # fmt: skip
    if throw and not result.ok:
        failed = [f"{e:%Y-%m-%d}: {CalibrationStatus(int(s)).meaning}"
                  for e, s in zip(grid.expiries, status, strict=True)
                  if not CalibrationStatus(int(s)).ok]  # fmt: skip
        raise CalibrationError(f"{model_type.__name__} calibration failed on "
                               f"{len(failed)} slice(s): " + "; ".join(failed), result)  # fmt: skip
    return result


#: Calendar repair (``calibrate(..., calendar="repair")``): the refitted slice's total variance
#: must exceed the previous slice's by CALENDAR_MARGIN (in vol at the later expiry; five times
#: the hinge's smoothing, so the softened hinge is all but zero once it holds) at CALENDAR_POINTS
#: log-moneyness points spanning the wider of the two slices' arbitrage-check grids, plus as
#: many within PENALTY_STANDARD_DEVIATIONS ATM deviations of the earlier slice (where the
#: slices are closest); each point's shortfall, divided by 2 sqrt(w t) to be in vol, enters
#: as a residual times CALENDAR_WEIGHT (a 1e-4 vol shortfall then costs as much as a one vol
#: point miss on one quote), through the same softened hinge as SVI's butterfly penalty. The
#: hinge is softened over CALENDAR_SMOOTHING (1e-4 vol) and aims CALENDAR_MARGIN (3e-4 vol)
#: clear of the previous slice: a sharper hinge (1e-6) left Levenberg-Marquardt creeping along
#: it without converging, and such refits were dropped (on the four BTC and ETH surfaces of
#: 2025-12-30 and 2026-04-15, 11 conflicting slices were left against 2).
CALENDAR_POINTS = 161
CALENDAR_MARGIN = 3e-4
CALENDAR_WEIGHT = 100.0
CALENDAR_SMOOTHING = 1e-4
CALENDAR_NEAR_STANDARD_DEVIATIONS = 8.0
#: A repaired slice is kept only if its quotes' RMSE rises by at most this many vol points
#: (about a Deribit bid/ask spread); a larger rise means the previous slice's wings cross
#: this one's far from its quotes (on SPX 2011-01-24 a repair that held a 1.4-year slice above
#: the one before missed its quotes by 31 vol points, and the next slices followed): the
#: conflict is then left in the report, as for a refit that does not converge.
CALENDAR_MAX_RMSE_INCREASE = 1.0


def _repair_solver(key: tuple, max_steps: int = MAX_STEPS):
    full_key = ("repair", *key, max_steps)
    if full_key in _SOLVERS:
        return _SOLVERS[full_key]
    model_type, residual, loss, loss_scale, settings = key
    spec = model_type.calibration
    base = _slice_residuals(model_type, residual, loss, loss_scale, settings)

    def residuals(u, args):
        data, u_prev, f_prev, t_prev, k = args
        forward, t = data[0], data[1]
        model = spec.from_unconstrained(u, settings)
        previous = spec.from_unconstrained(u_prev, settings)
        w = model.implied_vol(forward, forward * jnp.exp(k), t).reshape(-1) ** 2 * t
        w_prev = (previous.implied_vol(f_prev, f_prev * jnp.exp(k), t_prev).reshape(-1) ** 2
                  * t_prev)  # fmt: skip
        shortfall = (w_prev - w) / (2.0 * jnp.sqrt(jnp.maximum(w, 1e-300) * t)) + CALENDAR_MARGIN
        penalty = CALENDAR_WEIGHT * CALENDAR_SMOOTHING * jax.nn.softplus(
            shortfall / CALENDAR_SMOOTHING)
        return jnp.concatenate([base(u, data), penalty])

    @eqx.filter_jit
    def solve(u0, args):
        return _least_squares(residuals, u0, args, max_steps, SLICE_FTOL, REPAIR_TRUST_REGION)

    _SOLVERS[full_key] = solve
    return solve


def _repair_calendar(key: tuple, u, status, steps, data):
    """Second pass of ``calendar="repair"``: in expiry order, each slice whose total variance
    falls below the (repaired) previous slice's on the comparison grid is refitted from its
    first-pass parameters with the calendar penalty (constants above); the others are kept, and
    so is a slice whose refit does not converge or misses its quotes by more than
    CALENDAR_MAX_RMSE_INCREASE (its conflict stays in the report). A refit
    that stalls against the penalty is final, as in the first pass (:func:`_finish_stalled`).
    Crossings beyond the comparison grid (far wings whose slopes cross) are not repaired."""
    model_type, settings = key[0], key[-1]
    spec = model_type.calibration
    u, status, steps = np.array(u), np.array(status), np.array(steps)
    forward, t = np.asarray(data[0]), np.asarray(data[1])
    atm_w = np.asarray(data[6])
    solve = _repair_solver(key)
    for i in range(1, len(t)):
        wide = float(max(arbitrage.half_width(atm_w[i]), arbitrage.half_width(atm_w[i - 1])))
        near = CALENDAR_NEAR_STANDARD_DEVIATIONS * np.sqrt(max(atm_w[i - 1], 0.0))
        k = np.concatenate([np.linspace(-wide, wide, CALENDAR_POINTS),
                            np.linspace(-near, near, CALENDAR_POINTS)])  # fmt: skip
        current = spec.from_unconstrained(jnp.asarray(u[i]), settings)
        previous = spec.from_unconstrained(jnp.asarray(u[i - 1]), settings)
        w = np.asarray(current.implied_vol(forward[i], forward[i] * np.exp(k), t[i])) ** 2 * t[i]
        w_prev = (np.asarray(previous.implied_vol(forward[i - 1], forward[i - 1] * np.exp(k),
                                                  t[i - 1])) ** 2 * t[i - 1])  # fmt: skip
        if np.all(w.reshape(-1) >= w_prev.reshape(-1)):
            continue
        slice_data = tuple(jnp.asarray(np.asarray(a)[i]) for a in data)
        args = (slice_data, jnp.asarray(u[i - 1]), jnp.asarray(forward[i - 1]),
                jnp.asarray(t[i - 1]), jnp.asarray(k))  # fmt: skip
        u_i, status_i, steps_i, cost_i = solve(jnp.asarray(u[i]), args)
        # A refit pressed against the calendar penalty creeps along it: as in the first pass,
        # one that stalls is final (CONSTRAINT_ACTIVE).
        u_i, status_i, steps_i = _finish_stalled(
            functools.partial(_continue_repair, _repair_solver(key, STALL_STEPS), args),
            u_i, status_i, steps_i, cost_i, slice_data,
        )  # fmt: skip
        steps[i] += int(steps_i)
        cost = _slice_rmse(spec, settings, u_i, slice_data) - _slice_rmse(spec, settings, u[i],
                                                                          slice_data)  # fmt: skip
        if CalibrationStatus(int(status_i)).ok and cost <= CALENDAR_MAX_RMSE_INCREASE:
            u[i] = np.asarray(u_i)
    return u, status, steps


def _slice_rmse(spec, settings, u, data) -> float:
    """RMSE (vol points) of one slice's quotes under the parameters ``u``."""
    forward, t, strike, mid_iv, _, mask = data[:6]
    vol = spec.from_unconstrained(jnp.asarray(u), settings).implied_vol(forward, strike, t)
    miss = np.where(np.asarray(mask), np.asarray(vol) - np.asarray(mid_iv), 0.0)
    return float(np.sqrt(np.sum(miss**2) / max(int(np.sum(mask)), 1)) / VOL_POINT)


def _continue_repair(solve, args, u, data):
    """``solve`` continued from ``u`` on a repair's own arguments (``data``, the slice's quotes,
    is what :func:`_finish_stalled` counts quotes on)."""
    del data
    return solve(u, args)


#: Slices are padded to a multiple of this many (repeating the last slice) and quotes to a
#: multiple of QUOTE_BUCKET (masked out), so surfaces of similar size share one compiled solve.
SLICE_BUCKET = 4
QUOTE_BUCKET = 16


def _padded(data: tuple) -> tuple:
    """``(rows, padded data, copies)``: ``rows`` picks each padded slice's source slice; in
    ``padded`` the padding slices have no quotes (nothing to fit), in ``copies`` they keep the
    quotes of the slice they copy (to start from)."""
    n, width = data[2].shape
    slices = -(-n // SLICE_BUCKET) * SLICE_BUCKET
    quotes = -(-width // QUOTE_BUCKET) * QUOTE_BUCKET
    rows = np.minimum(np.arange(slices), n - 1)

    def pad(array):
        array = np.asarray(array)[rows]
        if array.ndim == 2 and quotes > width:
            # Padded quotes repeat the slice's first quote and are masked out below.
            array = np.concatenate([array, np.repeat(array[:, :1], quotes - width, axis=1)], axis=1)
        return array

    # numpy arrays: the compiled functions copy them to the device in one go.
    padded = [pad(a) for a in data]
    mask = padded[5].copy()
    mask[:, width:] = False
    copies = padded.copy()
    copies[5] = mask.copy()
    mask[n:] = False
    padded[5] = mask
    return rows, tuple(padded), tuple(copies)


def assess(model: Model, grid: IVGrid, status=None, steps=None, *, setup=None) -> Calibration:
    """The :class:`Calibration` record of given parameters on ``grid``, with no solve: model
    vols, residuals, RMSE, share inside and the arbitrage report (e.g. of parameters set by
    hand). ``status`` and ``steps`` per slice default to SUCCESS and 0."""
    n = len(grid.t)
    status = np.zeros(n, dtype=int) if status is None else np.asarray(status)
    steps = np.zeros(n, dtype=int) if steps is None else np.asarray(steps)
    result = _result(model, grid, status, steps)
    return result if setup is None else replace(result, setup=setup)


def _result(model, grid: IVGrid, status, steps, model_iv=None) -> Calibration:
    """The record of ``model`` on ``grid``; ``model_iv`` (its vols on the grid), when given,
    saves evaluating them again."""
    mask = grid.mask
    if model_iv is None:
        model_iv = model.implied_vol(grid.forward, grid.strike, grid.t)
    model_iv = np.where(mask, np.asarray(model_iv), np.nan)
    residuals = model_iv - np.where(mask, grid.mid_iv, np.nan)
    inside = (model_iv >= grid.bid_iv) & (model_iv <= grid.ask_iv) & mask
    count = mask.sum(axis=1)
    with np.errstate(invalid="ignore"):
        rmse_by_expiry = np.sqrt(np.nansum(residuals**2, axis=1) / count) / VOL_POINT
        inside_by_expiry = inside.sum(axis=1) / count
    return Calibration(
        model=model,
        grid=grid,
        model_iv=model_iv,
        residuals=residuals,
        rmse=float(np.sqrt(np.nansum(residuals**2) / mask.sum()) / VOL_POINT),
        rmse_by_expiry=rmse_by_expiry,
        inside=float(inside.sum() / mask.sum()),
        inside_by_expiry=inside_by_expiry,
        steps=steps,
        status=status,
    )


def parameter_sensitivities(calibration: Calibration) -> np.ndarray:
    """Derivatives of the calibrated parameters with respect to the input mid vols.

    Implicit differentiation through the least-squares solve (optimistix's implicit adjoint:
    at the optimum ``J^T r = 0``, so ``du/dsigma_mid`` solves a linear system with the
    Jacobian of ``J^T r``), started at the calibrated solution; then the chain rule through
    the model's bijection.

    Returns
    -------
    ndarray
        Slice models, ``(expiry, parameter, width)``: ``d p_i / d sigma_mid_j`` within each
        expiry (other expiries do not move a slice's parameters), parameters in
        ``parameter_names`` order, zero at padding. Surface models, ``(parameter, expiry,
        width)``: the derivative of each entry of the flattened parameters (a per-expiry
        parameter such as eSSVI's ``theta`` contributes one entry per expiry, in
        ``parameter_names`` order) with respect to every quote's mid vol, by reverse mode.
    """
    model_type = type(calibration.model)
    spec = model_type.calibration
    if isinstance(spec, SurfaceSpec):
        return _surface_sensitivities(calibration)
    setup = calibration.setup
    grid = calibration.grid
    settings = setup["settings"]
    residuals = _slice_residuals(model_type, setup["residual"], setup["loss"],
                                 setup["loss_scale"], settings)  # fmt: skip
    mask = grid.mask
    total_variance = grid.mid_iv**2 * grid.t[:, None]
    atm = np.abs(np.where(mask, grid.log_moneyness, np.inf)).argmin(axis=1)
    atm_w = total_variance[np.arange(len(grid.t)), atm]
    u_star = spec.to_unconstrained(calibration.model, settings)
    names = spec.parameter_names

    def parameters(mid_iv, u0, forward, t, strike, sqrt_weight, mask, atm_w, is_call):
        data = (forward, t, strike, mid_iv, sqrt_weight, mask, atm_w, is_call)
        u, _, _, _ = _least_squares(residuals, u0, data)
        model = spec.from_unconstrained(u, settings)
        return jnp.stack([jnp.asarray(getattr(model, name), dtype=float) for name in names])

    jacobian = jax.jit(jax.vmap(jax.jacfwd(parameters)))(
        jnp.asarray(grid.mid_iv), jnp.asarray(u_star), jnp.asarray(grid.forward),
        jnp.asarray(grid.t), jnp.asarray(grid.strike), jnp.sqrt(jnp.asarray(setup["weight"])),
        jnp.asarray(mask), jnp.asarray(atm_w), jnp.asarray(grid.is_call),
    )  # fmt: skip
    return np.where(mask[:, None, :], np.asarray(jacobian), 0.0)


def _surface_sensitivities(calibration: Calibration) -> np.ndarray:
    """:func:`parameter_sensitivities` of a surface model (one solve, reverse mode)."""
    model_type = type(calibration.model)
    spec = model_type.calibration
    setup = calibration.setup
    grid = calibration.grid
    residuals = _surface_residuals(model_type, setup["residual"], setup["loss"],
                                   setup["loss_scale"])  # fmt: skip
    t = jnp.asarray(grid.t)
    u_star = spec.to_unconstrained(calibration.model, t)
    total_variance = grid.mid_iv**2 * grid.t[:, None]
    atm = np.abs(np.where(grid.mask, grid.log_moneyness, np.inf)).argmin(axis=1)
    atm_w = total_variance[np.arange(len(grid.t)), atm]
    rest = tuple(jnp.asarray(a) for a in (grid.forward, grid.t, grid.strike))
    tail = tuple(jnp.asarray(a) for a in (np.sqrt(setup["weight"]), grid.mask, atm_w,
                                          grid.is_call))  # fmt: skip

    def parameters(mid_iv):
        u, _, _, _ = _least_squares(residuals, u_star, (*rest, mid_iv, *tail))
        model = spec.from_unconstrained(u, t)
        return jnp.concatenate([jnp.ravel(jnp.asarray(getattr(model, name), dtype=float))
                                for name in spec.parameter_names])  # fmt: skip

    jacobian = np.asarray(jax.jit(jax.jacrev(parameters))(jnp.asarray(grid.mid_iv)))
    return np.where(grid.mask[None], jacobian, 0.0)

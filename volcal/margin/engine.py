"""The margin engine: every position repriced under every scenario on calibrated surfaces.

For a position on underlying U expiring at ``T`` (years from U's surface snapshot), with
signed quantity ``q`` and contract size ``c``, forward ``F = F_U(T)`` (the index ``S`` for
perpetuals), and a scenario moving the index and every forward by ``m`` (``S' = S(1+m)``,
``F' = F(1+m)``):

* options: ``V'`` = Black-76 on ``F'`` at the shocked vol ``max(sigma scale + shift, floor)``
  (:meth:`ScenarioSet.vol_terms`), discounted by the surface's ``D(T)``, in USD per coin.
  ``sigma`` is the surface's vol at the option's strike under sticky-strike dynamics, or at
  its shifted log-moneyness ``ln(K/F')`` under sticky-moneyness (the default);
* linear (USDC/USDT-settled) contracts: P&L in USD, ``q c (V' - V)`` for options and
  ``q c (F' - F)`` for futures;
* inverse (coin-settled) contracts: value in coin, ``q c V'/F'`` for options (Deribit's coin
  premium: the USD premium over the expiry's forward) and, for futures of ``c`` USD per
  contract, P&L ``q c (1/F - 1/F')`` coin; in USD a coin amount is worth the index, so the USD
  P&L is ``value'_coin S' - value_coin S``.

Margin per (account, underlying, settlement currency), no offsets between them: the scan risk is
the largest weighted loss ``max_s w_s (-sum_p PnL_ps)`` (0 if no scenario loses), in the
settlement currency (coin for inverse contracts, USD for linear ones); then the set's add-on:
the minimum delta requirement ``(2% |net delta| + 1% hedged delta) S`` (risk matrix; margin =
the larger) or the short option minimum (SPAN; margin = the larger). Each position's
contribution is its weighted loss in the binding scenario (they sum to the scan risk).
Greeks are autodiff derivatives of the position values (:func:`position_greeks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.lax import erfc

from volcal.black import VOL_POINT, black_price
from volcal.margin.book import Book, BookError
from volcal.margin.scenarios import ScenarioSet, risk_matrix
from volcal.surface import VolSurface

DAYS_PER_YEAR = 365.0
SQRT_HALF = 0.5**0.5
#: Positions per compiled repricing call: books are padded to a multiple of this, so every
#: book size shares one compiled program per scenario count.
CHUNK = 16384
#: Each call's positions are padded to a multiple of this (at most PAD - 1 wasted rows).
PAD = 1024


@dataclass(frozen=True)
class Market:
    """The surfaces (and so forwards and index prices) margin runs on, by underlying."""

    surfaces: dict[str, VolSurface]

    @classmethod
    def from_store(
        cls, store, venue: str, underlyings, *, asof=None, model=None, max_age=None
    ) -> Market:
        """Each underlying's latest accepted surface of the published model (or ``model``)
        at or before ``asof``, refusing surfaces older than ``max_age``."""
        return cls(
            {
                u: store.latest(venue, u, model=model, asof=asof, max_age=max_age).surface
                for u in underlyings
            }
        )

    def index(self, underlying: str) -> float:
        surface = self.surfaces[underlying]
        spot = float(surface.spot)
        return spot if np.isfinite(spot) else float(surface.forward_at(0.0))


@dataclass(frozen=True)
class MarginResult:
    """A margin run.

    Attributes
    ----------
    positions : DataFrame
        The book's positions with ``t`` (years), ``forward``, ``vol`` (surface vol),
        ``value_usd``, ``value_coin`` (inverse contracts), greeks (``delta`` in coin, ``gamma``
        in coin per USD, ``vega`` in USD per vol point, ``theta`` in USD per day,
        ``delta_coin`` the premium-adjusted coin delta of inverse options), ``contribution``
        (weighted loss in the group's binding scenario, settlement currency) and its group.
    pnl : dict underlying -> DataFrame
        P&L per position (rows, the book's row numbers) and scenario (columns), in each
        position's settlement currency.
    pnl_usd : dict underlying -> DataFrame
        The same in USD.
    groups : DataFrame
        Per (account, underlying, settlement): ``scan_risk``, ``add_on`` and its name,
        ``margin`` (settlement currency), ``margin_usd``, ``binding_scenario``,
        ``binding_loss``, and the book greeks: ``net_delta`` (coin), ``gross_delta`` (sum of
        absolute position deltas, coin), ``gamma`` (coin per USD), ``vega`` (USD per vol
        point), ``theta`` (USD per day).
    accounts : Series
        Total margin in USD per account (groups summed, no cross offsets).
    portfolio_pnl : dict underlying -> DataFrame
        Each group's P&L per scenario (rows: account and settlement currency; settlement
        currency), before the scenario weights.
    scenarios : dict underlying -> ScenarioSet
    surface_ids : dict underlying -> str
    dynamics : str
    """

    positions: pd.DataFrame
    pnl: dict
    pnl_usd: dict
    groups: pd.DataFrame
    accounts: pd.Series
    portfolio_pnl: dict
    scenarios: dict
    surface_ids: dict
    dynamics: str
    parameters: dict = field(default_factory=dict)

    def summary(self, top: int = 5) -> str:
        lines = []
        for account, total in self.accounts.items():
            lines.append(f"account {account}: margin {total:,.2f} USD")
            for group in self.groups[self.groups["account"] == account].itertuples():
                lines.append(
                    f"  {group.underlying} ({group.settlement}): margin {group.margin:,.6g} "
                    f"{group.settlement} = {group.margin_usd:,.2f} USD; scan risk "
                    f"{group.scan_risk:,.6g}, {group.add_on_name} {group.add_on:,.6g}; binding "
                    f"scenario '{group.binding_scenario}'"
                )
                mine = self.positions[
                    (self.positions["account"] == account)
                    & (self.positions["underlying"] == group.underlying)
                    & (self.positions["settlement"] == group.settlement)
                ]
                for row, p in mine.nlargest(top, "contribution").iterrows():
                    lines.append(
                        f"    row {row} {p['instrument']} x {p['quantity']:g}: "
                        f"contributes {p['contribution']:,.6g} {group.settlement}"
                    )
        surfaces = ", ".join(f"{u}: {i}" for u, i in self.surface_ids.items())
        lines.append(f"surfaces {surfaces}; dynamics {self.dynamics}")
        return "\n".join(lines)


def margin(
    book: Book, surfaces, scenarios="riskmatrix", *, dynamics="sticky_moneyness", asof=None
) -> MarginResult:
    """Margin of ``book`` on ``surfaces`` under ``scenarios`` (module docstring).

    Parameters
    ----------
    book : Book
        From :func:`volcal.margin.load_book`.
    surfaces : Market or dict of underlying -> VolSurface
    scenarios : "riskmatrix", ScenarioSet, or dict of underlying -> ScenarioSet
        "riskmatrix" builds :func:`risk_matrix` per underlying from its published defaults.
    dynamics : {"sticky_moneyness", "sticky_strike"}
    asof : time, optional
        Valuation time; default each surface's snapshot. Positions expiring at or before it
        are errors naming their row.
    """
    if dynamics not in ("sticky_moneyness", "sticky_strike"):
        raise ValueError(
            f"dynamics must be 'sticky_moneyness' or 'sticky_strike', not {dynamics!r}"
        )
    if not isinstance(surfaces, Market):
        # Calibrations in memory become their surfaces.
        surfaces = Market({u: s if isinstance(s, VolSurface) else VolSurface.from_calibration(s)
                           for u, s in dict(surfaces).items()})  # fmt: skip
    market = surfaces
    positions = book.positions.copy()
    missing = positions[~positions["underlying"].isin(list(market.surfaces))]
    if len(missing):
        raise BookError(
            [
                (
                    row,
                    f"underlying {p['underlying']} of {p['instrument']} has no "
                    "surface in the market",
                )
                for row, p in missing.iterrows()
            ],
            book.source,
        )
    parts, pnl, pnl_usd, sets = [], {}, {}, {}
    problems = []
    for underlying, group in positions.groupby("underlying", sort=True):
        surface = market.surfaces[underlying]
        now = pd.Timestamp(asof if asof is not None else surface.snapshot)
        now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
        t = ((group["expiry"] - now).dt.total_seconds() / (DAYS_PER_YEAR * 86400.0)).to_numpy()
        t = np.where(group["kind"] == "perpetual", 0.0, t)
        expired = (group["kind"] != "perpetual") & ~(t > 0)
        problems += [
            (
                row,
                f"{p['instrument']} expired at {p['expiry']:%Y-%m-%d %H:%M} UTC, "
                f"not after the valuation time {now:%Y-%m-%d %H:%M} UTC",
            )
            for row, p in group[expired].iterrows()
        ]
        if problems:
            continue
        chosen = _scenarios_for(scenarios, underlying)
        sets[underlying] = chosen
        frame, matrix, matrix_usd = _reprice(
            group, t, surface, market.index(underlying), chosen, dynamics
        )
        parts.append(frame)
        pnl[underlying] = pd.DataFrame(matrix, index=group.index, columns=list(chosen.labels))
        pnl_usd[underlying] = pd.DataFrame(
            matrix_usd, index=group.index, columns=list(chosen.labels)
        )
    if problems:
        raise BookError(problems, book.source)
    positions = pd.concat(parts).loc[positions.index]
    groups, contributions, portfolio = _margins(positions, pnl, sets, market)
    positions["contribution"] = contributions.reindex(positions.index).fillna(0.0)
    accounts = groups.groupby("account")["margin_usd"].sum()
    return MarginResult(
        positions=positions,
        pnl=pnl,
        pnl_usd=pnl_usd,
        groups=groups,
        accounts=accounts,
        portfolio_pnl=portfolio,
        scenarios=sets,
        surface_ids={u: market.surfaces[u].surface_id or market.surfaces[u].snapshot for u in sets},
        dynamics=dynamics,
        parameters={u: s.parameters for u, s in sets.items()},
    )


def _scenarios_for(scenarios, underlying: str) -> ScenarioSet:
    if isinstance(scenarios, ScenarioSet):
        return scenarios
    if isinstance(scenarios, dict):
        if underlying not in scenarios:
            raise ValueError(f"no scenario set for underlying {underlying}")
        return scenarios[underlying]
    if scenarios == "riskmatrix":
        return risk_matrix(underlying)
    raise ValueError(
        f"scenarios must be 'riskmatrix', a ScenarioSet or a dict of them, not {scenarios!r}"
    )


def _reprice(
    group: pd.DataFrame, t, surface: VolSurface, index: float, scenarios: ScenarioSet, dynamics: str
):
    """Values, greeks and the P&L matrices of one underlying's positions."""
    n = len(group)
    is_option = (group["kind"] == "option").to_numpy()
    is_perpetual = (group["kind"] == "perpetual").to_numpy()
    strike = np.where(is_option, group["strike"].to_numpy(dtype=float), 1.0)
    safe_t = np.where(t > 0, t, 1.0 / DAYS_PER_YEAR)
    forward = np.where(is_perpetual, index, np.asarray(surface.forward_at(safe_t)))
    discount = np.where(is_option, np.asarray(surface.discount_at(safe_t)), 1.0)
    scale, shift, floor = scenarios.vol_terms(t * DAYS_PER_YEAR, strike, safe_t, forward)
    amount = (group["quantity"] * group["contract_size"]).to_numpy(dtype=float)
    arrays = dict(
        strike=strike,
        t=safe_t,
        is_call=group["is_call"].to_numpy(),
        forward=forward,
        discount=discount,
        is_option=is_option,
        inverse=group["inverse"].to_numpy(),
        amount=amount,
    )
    moves = jnp.asarray(scenarios.price_move)
    sticky = dynamics == "sticky_moneyness"
    spot = jnp.asarray(index, dtype=float)
    outputs = []
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        chunk = {k: _pad(v[start:stop]) for k, v in arrays.items()}
        terms = [_pad(x[start:stop]) for x in (scale, shift, floor)]
        # Unlabelled: surfaces of different snapshots share the compiled programs.
        bare = surface.unlabelled()
        result = _scenario_pnl(bare, chunk, moves, *terms, sticky)
        result = (*result, *_unit_greeks(bare, chunk, spot, sticky))
        outputs.append([np.asarray(r)[: stop - start] for r in result])
    (base_vol, unit_now, pnl, unit_value, unit_delta, unit_gamma, unit_vega,
     unit_theta) = (np.concatenate(o) for o in zip(*outputs, strict=True))  # fmt: skip
    inverse = arrays["inverse"]
    coin_now = np.where(inverse, amount * unit_now / forward, 0.0)
    pnl_usd = _usd_pnl(pnl, coin_now, inverse, scenarios.price_move, index)
    value_usd = np.where(inverse, coin_now * index, amount * unit_now)
    value_coin = coin_now
    greeks = position_greeks(
        unit_value, unit_delta, unit_gamma, unit_vega, unit_theta, arrays, index
    )
    frame = group.copy()
    frame["t"] = np.where(is_perpetual, 0.0, t)
    frame["forward"] = forward
    frame["vol"] = np.where(is_option, base_vol, np.nan)
    frame["value_usd"] = value_usd
    frame["value_coin"] = np.where(arrays["inverse"], value_coin, np.nan)
    for name, values in greeks.items():
        frame[name] = values
    return frame, pnl, pnl_usd


def _black(forward, strike, log_moneyness, t, vol, is_call, discount):
    """Black-76 in its textbook form, ``D (F Phi(d1) - K Phi(d2))`` with ``d1 = -k/s + s/2``
    for ``k = ln(K/F)`` (given: the vol lookup has it already) and puts by parity. For scenario
    P&L, whose scale is the position's notional, its absolute error of a few ulp of the forward
    is what matters, and it costs a fraction of :func:`volcal.black.black_price` (which keeps
    relative accuracy down to 1e-300 premiums, for implied vols). ``Phi(x) = erfc(-x/sqrt 2)/2``
    (accurate in the lower tail). Zero total vol prices the intrinsic value."""
    total = vol * jnp.sqrt(t)
    positive = total > 0.0
    safe = jnp.where(positive, total, 1.0)
    d1 = -log_moneyness / safe + 0.5 * safe
    call = 0.5 * (forward * erfc(-d1 * SQRT_HALF) - strike * erfc((safe - d1) * SQRT_HALF))
    call = jnp.where(positive, call, jnp.maximum(forward - strike, 0.0))
    return discount * jnp.where(is_call, call, call - forward + strike)


def _pad(values):
    """Pad the first axis to a multiple of PAD with copies of the first row, so that book sizes
    share compiled programs; padding rows are cut off after."""
    values = np.asarray(values)
    size = -(-len(values) // PAD) * PAD
    if size == len(values):
        return jnp.asarray(values)
    filler = np.repeat(values[:1], size - len(values), axis=0)
    return jnp.asarray(np.concatenate([values, filler]))


@eqx.filter_jit
def _scenario_pnl(surface, p, moves, scale, shift, floor, sticky_moneyness):
    """``(base vol, unit value now, P&L)``: the P&L ``(position, scenario)`` is in each
    position's settlement currency (coin for inverse contracts, USD for linear ones); the unit
    value is the option's USD value per coin (0 for futures). Vectorised over both axes
    (``(position, 1)`` against ``(1, scenario)``); one ``(position, scenario)`` output, so the
    compiler fuses the whole chain into one pass (:func:`_usd_pnl` converts to USD)."""
    forward = p["forward"][:, None]
    shocked = forward * (1.0 + moves[None, :])
    t = p["t"][:, None]
    strike = p["strike"][:, None]
    k_now = jnp.log(strike / forward)
    rows = p["t"]
    base_vol = jnp.sqrt(surface.total_variance_rows(k_now, rows) / t)
    k_shocked = jnp.log(strike / shocked)
    if sticky_moneyness:
        vol = jnp.sqrt(surface.total_variance_rows(k_shocked, rows) / t)
    else:
        vol = base_vol
    vol = jnp.maximum(vol * scale + shift, floor)
    is_call = p["is_call"][:, None]
    discount = p["discount"][:, None]
    option_now = _black(forward, strike, k_now, t, base_vol, is_call, discount)
    option = _black(shocked, strike, k_shocked, t, vol, is_call, discount)
    is_option = p["is_option"][:, None]
    inverse = p["inverse"][:, None]
    amount = p["amount"][:, None]
    # Linear: USD P&L. Inverse: coin P&L (options: premium over the forward; futures of
    # `amount` USD: amount (1/F - 1/F')).
    linear = jnp.where(is_option, option - option_now, shocked - forward)
    coin = jnp.where(is_option, option / shocked - option_now / forward,
                     1.0 / forward - 1.0 / shocked)  # fmt: skip
    pnl = amount * jnp.where(inverse, coin, linear)
    return base_vol[:, 0], jnp.where(is_option, option_now, 0.0)[:, 0], pnl


def _usd_pnl(pnl, coin_now, inverse, moves, index):
    """USD P&L from settlement-currency P&L: an inverse position's coin value, ``coin_now +
    pnl``, is worth the shocked index ``S (1 + m)``; linear P&L is USD already."""
    usd = (coin_now[:, None] + pnl) * (index * (1.0 + moves[None, :])) - coin_now[:, None] * index
    return np.where(inverse[:, None], usd, pnl)


@eqx.filter_jit
def _unit_greeks(surface, p, index, sticky_moneyness):
    """Per unit of ``amount``: value (USD per coin for options, the forward for futures) and
    its derivatives in the index, the vols and the expiry time (see :func:`position_greeks`)."""
    one = jnp.ones_like(p["t"])
    zero = jnp.zeros_like(p["t"])

    def unit_value(shift, vol_shift, t):
        forward = p["forward"] * shift
        k_ref = jnp.log(p["strike"] / (forward if sticky_moneyness else p["forward"]))
        vol = surface.implied_vol_at(k_ref, p["t"]) + vol_shift
        option = black_price(forward, p["strike"], t, vol, p["is_call"], p["discount"])
        return jnp.where(p["is_option"], option, forward)

    def by_shift(s):
        return jax.jvp(lambda x: unit_value(x, zero, p["t"]), (s,), (one,))[1]

    value = unit_value(one, zero, p["t"])
    d_shift, dd_shift = jax.jvp(by_shift, (one,), (one,))
    vega = jax.jvp(lambda v: unit_value(one, v, p["t"]), (zero,), (one,))[1]
    theta = -jax.jvp(lambda tt: unit_value(one, zero, tt), (p["t"],), (one,))[1]
    # A proportional shift s of every forward is an index move of (s - 1) S.
    return value, d_shift / index, dd_shift / index**2, vega, theta


def position_greeks(value, delta, gamma, vega, theta, arrays: dict, index: float) -> dict:
    """Position greeks from :func:`_unit_greeks`' per-unit values (every forward moving with
    the index): ``delta`` in coin (USD per USD of index; a linear future's is ``q c F/S``, an
    inverse future's ``q c / F``), ``gamma`` in coin per USD, ``vega`` in USD per vol point,
    ``theta`` in USD per day (forward, vol and rate fixed) and, for inverse options,
    ``delta_coin = q c (Delta_Black - V/F)``: the index-scaled delta of the coin value,
    Deribit's premium-adjusted coin delta."""
    amount = arrays["amount"]
    option = arrays["is_option"]
    inverse = arrays["inverse"]
    forward = arrays["forward"]
    delta_black = delta * index / forward  # dV/dF
    future_delta = np.where(inverse, 1.0 / forward, forward / index)
    # An inverse option's USD value is its coin value V/F at the index S: V S/F, with S/F
    # fixed under proportional moves.
    usd = amount * np.where(option & inverse, index / forward, 1.0)
    return {
        "delta": np.where(option, usd * delta, amount * future_delta),
        "gamma": np.where(option, usd * gamma, 0.0),
        "vega": np.where(option, usd * vega, 0.0) * VOL_POINT,
        "theta": np.where(option, usd * theta, 0.0) / DAYS_PER_YEAR,
        "delta_coin": np.where(option & inverse, amount * (delta_black - value / forward), np.nan),
    }


def _margins(positions: pd.DataFrame, pnl: dict, sets: dict, market: Market):
    rows, contributions, portfolio = [], [], {}
    keys = ["account", "underlying", "settlement"]
    for (account, underlying, settlement), group in positions.groupby(keys, sort=True):
        scenarios = sets[underlying]
        matrix = pnl[underlying].loc[group.index].to_numpy()
        total_pnl = matrix.sum(axis=0)
        portfolio.setdefault(underlying, {})[account, settlement] = total_pnl
        loss = -total_pnl * scenarios.weight
        binding = int(np.argmax(loss))
        scan = max(float(loss[binding]), 0.0)
        spot = market.index(underlying)
        inverse = bool(group["inverse"].iloc[0])
        net = float(group["delta"].sum())
        gross = float(group["delta"].abs().sum())
        add_on, name = 0.0, "no add-on"
        if scenarios.min_delta:
            hedged = gross - abs(net)
            requirement = 0.02 * abs(net) + 0.01 * hedged  # coin; x spot in USD
            add_on = requirement if inverse else requirement * spot
            name = "minimum delta requirement"
        if scenarios.short_option_minimum > 0:
            options = group[group["kind"] == "option"]
            by_series = (
                (options["quantity"] * options["contract_size"])
                .groupby(options["instrument"])
                .sum()
            )
            shorts = float(np.maximum(-by_series, 0.0).sum())
            add_on = scenarios.short_option_minimum * shorts * (1.0 if inverse else spot)
            name = "short option minimum"
        total = max(scan, add_on)
        rows.append(
            {
                "account": account,
                "underlying": underlying,
                "settlement": settlement,
                "scan_risk": scan,
                "add_on": add_on,
                "add_on_name": name,
                "margin": total,
                "margin_usd": total * spot if inverse else total,
                "binding_scenario": scenarios.labels[binding] if scan > 0 else "(no loss)",
                "binding_loss": float(loss[binding]),
                "net_delta": net,
                "gross_delta": gross,
                "gamma": float(group["gamma"].sum()),
                "vega": float(group["vega"].sum()),
                "theta": float(group["theta"].sum()),
            }
        )
        weight = scenarios.weight[binding]
        contributions.append(
            pd.Series(-matrix[:, binding] * weight if scan > 0 else 0.0, index=group.index)
        )
    portfolio = {
        u: pd.DataFrame(list(v.values()), columns=list(sets[u].labels),
                        index=pd.MultiIndex.from_tuples(list(v), names=["account", "settlement"]))
        for u, v in portfolio.items()
    }  # fmt: skip
    return pd.DataFrame(rows), pd.concat(contributions), portfolio

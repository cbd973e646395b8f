"""``volcal refresh``: fetch -> clean -> calibrate -> gate -> store, for every configured chain.

The main job. For each (venue, underlying) of the configuration: load the chain (live venue,
a replay cassette, a file, or the demo market), clean it, calibrate each configured model
(warm-started from its last accepted surface when the expiries match), run each model's gate
and store the result. One failing chain or model never stops the others; each write is one
transaction, so a crash loses at most the calibration being written; a rerun skips what is
already stored (``force=True`` recalibrates and appends).

Configuration (TOML; every key optional except ``chains``)::

    store = "models/volcal.sqlite"     # default: VOLCAL_STORE or models/volcal.sqlite
    raw_dir = "models/raw"              # live runs keep their raw venue responses here
    models = ["ESSVI", "SVI", "SABR", "Heston"]

    [[chains]]
    venue = "deribit"                   # store key; with source = "live", the ccxt venue
    underlying = ["BTC", "ETH"]          # one name or a list
    source = "live"                     # "live", "demo", "replay:PATH" or a file path
    format = "deribit"                  # file layout (volcal.sources.FILE_FORMATS)
    published = "ESSVI"                 # the pair's published model
    models = ["ESSVI", "SVI"]           # overrides the top-level list

    [gate.SVI]                          # limits of volcal.gate.GateConfig, per model
    max_rmse_vol_points = 2.0

    [model_options.SABR]                # keyword options of volcal.calibrate, per model
    fixed = { beta = 1.0, expansion = "obloj" }

Exit codes (:class:`ExitCode`): 0 every published model accepted; 2 configuration error
(nothing run); 3 partial failure (some chain or published model failed or was rejected, the
rest stored); 4 nothing accepted at all.
"""

from __future__ import annotations

import enum
import json
import logging
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from volcal.store import Store, validate_model, validate_name

#: Models calibrated when the configuration names none: the published eSSVI, raw SVI, SABR
#: and Heston.
DEFAULT_MODELS = ("ESSVI", "SVI", "SABR", "Heston")
#: The demo market's default snapshot, so that reruns of the demo refresh are idempotent.
DEMO_SNAPSHOT = "2026-01-15T09:30:00Z"
#: Calibration options per model unless configured: SABR needs its beta fixed; beta = 1
#: (lognormal backbone) with Obloj's correction suits coin-margined crypto options.
DEFAULT_MODEL_OPTIONS = {"SABR": {"fixed": {"beta": 1.0, "expansion": "obloj"}}}
SOURCE_KINDS = ("live", "demo", "replay", "file")
#: Relative calibration cost by model (measured: Heston's Fourier pricer compiles and solves
#: several times slower than SABR, SABR than the SVI family); worker pools start the costliest.
SLOWEST_FIRST = {"Heston": 3, "SABR": 2, "SVI": 1, "ESSVI": 1, "SSVI": 1}

log = logging.getLogger("volcal.refresh")


class ExitCode(enum.IntEnum):
    """``volcal refresh``'s exit status."""

    OK = 0
    CONFIG_ERROR = 2
    PARTIAL_FAILURE = 3
    FAILED = 4


class ConfigError(ValueError):
    """The refresh configuration is invalid; nothing was run."""


@dataclass(frozen=True)
class ChainJob:
    """One (venue, underlying) to refresh."""

    venue: str
    underlying: str
    source: str  # "live", "demo", "replay:PATH" or a file path
    format: str | None = None
    snapshot: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    published: str = "ESSVI"

    @property
    def kind(self) -> str:
        if self.source in ("live", "demo"):
            return self.source
        return "replay" if self.source.startswith("replay:") else "file"


@dataclass(frozen=True)
class RefreshConfig:
    jobs: tuple[ChainJob, ...]
    store: Path | None = None
    raw_dir: Path | None = None
    gate: dict = field(default_factory=dict)
    model_options: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What happened to one model of one chain: ``status`` is accepted, rejected or failed
    (an error before storing; ``error`` says which); ``reused`` when this snapshot was
    already stored and the stored verdict is reported."""

    venue: str
    underlying: str
    model: str
    published: bool
    status: str
    snapshot: str = ""
    rmse: float = float("nan")
    inside: float = float("nan")
    reasons: str = ""
    surface_id: str = ""
    seconds: float = 0.0
    error: str = ""
    reused: bool = False


def load_config(path: str | Path | None = None, **flags) -> RefreshConfig:
    """A :class:`RefreshConfig` from a TOML file and/or command-line ``flags`` (``venue``,
    ``underlying`` (list), ``source``, ``format``, ``snapshot``, ``models`` (list),
    ``published``, ``store``); with neither, the demo market. Raises :class:`ConfigError`."""
    data: dict = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as error:
            raise ConfigError(f"configuration file {path} does not exist") from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"configuration file {path} is not valid TOML: {error}") from error
    unknown = sorted(set(data) - {"store", "raw_dir", "models", "chains", "gate", "model_options"})
    if unknown:
        raise ConfigError(f"unknown configuration key(s) {unknown}")
    flags = {k: v for k, v in flags.items() if v not in (None, (), [])}
    top_models = flags.get("models") or data.get("models") or DEFAULT_MODELS
    chains = list(data.get("chains", []))
    if flags.get("venue") or flags.get("source"):
        chains = [
            {
                key: flags[key]
                for key in ("venue", "underlying", "source", "format", "snapshot", "published")
                if key in flags
            }
        ]
        chains[0].setdefault("source", "live")
        chains[0].setdefault("venue", "demo" if chains[0]["source"] == "demo" else None)
    if not chains:
        chains = [{"venue": "demo", "underlying": flags.get("underlying") or ["BTC"],
                   "source": "demo"}]  # fmt: skip
    if flags.get("snapshot"):
        chains = [{**chain, "snapshot": flags["snapshot"]} for chain in chains]
    jobs = []
    for number, chain in enumerate(chains, start=1):
        where = f"chain {number}"
        unknown = sorted(
            set(chain)
            - {"venue", "underlying", "source", "format", "snapshot", "models", "published"}
        )
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}")
        source = str(chain.get("source", "live"))
        venue = chain.get("venue")
        if venue is None:
            raise ConfigError(f"{where}: needs venue=")
        underlyings = chain.get("underlying") or (["BTC"] if source == "demo" else None)
        if underlyings is None:
            raise ConfigError(f"{where}: needs underlying=")
        if isinstance(underlyings, str):
            underlyings = [u.strip() for u in underlyings.split(",")]
        models = tuple(flags.get("models") or chain.get("models") or top_models)
        published = flags.get("published") or chain.get("published") or "ESSVI"
        try:
            validate_name("venue", venue)
            for underlying in underlyings:
                validate_name("underlying", underlying)
            for model in (*models, published):
                validate_model(model)
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from error
        if published not in models:
            models = (published, *models)
        job_format = chain.get("format")
        kind = ChainJob(venue, "x", source).kind
        if kind == "file":
            if not Path(source).is_file():
                raise ConfigError(
                    f"{where}: source {source!r} is not 'live', 'demo', "
                    "'replay:PATH' or an existing file"
                )
            from volcal.sources import FILE_FORMATS

            job_format = job_format or "deribit"
            if job_format not in FILE_FORMATS:
                raise ConfigError(f"{where}: format {job_format!r} is not one of {FILE_FORMATS}")
        if kind == "replay" and not Path(source.removeprefix("replay:")).is_file():
            raise ConfigError(f"{where}: replay cassette {source[7:]!r} does not exist")
        if kind in ("live", "replay"):
            from volcal.sources.venues import SUPPORTED_VENUES

            if venue.lower() not in SUPPORTED_VENUES:
                raise ConfigError(f"{where}: venue {venue!r} is not one of {SUPPORTED_VENUES}")
        jobs += [
            ChainJob(
                venue=venue,
                underlying=u,
                source=source,
                format=job_format,
                snapshot=chain.get("snapshot"),
                models=models,
                published=published,
            )
            for u in underlyings
        ]
    gate = data.get("gate", {})
    from volcal.gate import gate_config

    for model, limits in gate.items():
        try:
            validate_model(model)
            gate_config(model, limits)
        except ValueError as error:
            raise ConfigError(f"[gate.{model}]: {error}") from error
    options = data.get("model_options", {})
    for model in options:
        try:
            validate_model(model)
        except ValueError as error:
            raise ConfigError(f"[model_options.{model}]: {error}") from error
    store = flags.get("store") or data.get("store")
    raw_dir = data.get("raw_dir")
    return RefreshConfig(
        jobs=tuple(jobs),
        store=Path(store) if store else None,
        raw_dir=Path(raw_dir) if raw_dir else None,
        gate=gate,
        model_options=options,
    )


def _load(job: ChainJob, raw_dir: Path, cache: dict):
    """The job's chain; files are read once for all their underlyings."""
    from volcal.sources import load_chain

    if job.kind == "demo":
        return load_chain("demo", snapshot=job.snapshot or DEMO_SNAPSHOT, underlying=job.underlying)
    if job.kind == "replay":
        return load_chain(
            job.venue, underlying=job.underlying, replay=Path(job.source.removeprefix("replay:"))
        )
    if job.kind == "live":
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
        folder = raw_dir / job.venue / job.underlying
        folder.mkdir(parents=True, exist_ok=True)
        return load_chain(job.venue, underlying=job.underlying, record=folder / f"{stamp}.json")
    key = (job.source, job.format, job.snapshot)
    if key not in cache:
        options = {"snapshot": job.snapshot} if job.snapshot else {}
        cache[key] = load_chain(job.source, format=job.format, **options)
    return cache[key]


def _warm_start(store: Store, job: ChainJob, model: str, grid):
    """The last accepted model of this pair before the snapshot when its nodes are the
    grid's expiries (or it is a surface-wide model), else the model class (cold start)."""
    from volcal.models import MODELS

    previous = store.previous(job.venue, job.underlying, model, grid.snapshot)
    if previous is not None:
        record = previous.record
        same_nodes = list(record["expiries"]) == [
            e.isoformat() for e in grid.expiries.tz_convert("UTC")
        ]
        if model == "Heston" or same_nodes:
            return previous.surface.model
    return MODELS[model]


def run_refresh(config: RefreshConfig, *, force: bool = False, progress=None,
                workers: int = 1) -> list[Outcome]:  # fmt: skip
    """Run every job of ``config`` into its store; returns one :class:`Outcome` per model
    (or one failed outcome per chain that could not be loaded or cleaned).

    With ``workers`` > 1, the models of each chain are calibrated in that many worker
    processes (started with spawn: JAX must not be forked) while this process keeps the store
    (the one writer): chains still run in order, so each fit is gated against, and warm-started
    from, the surfaces stored before it."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import volcal as vc

    store = Store(config.store)
    raw_dir = config.raw_dir or store.path.parent / "raw"
    outcomes: list[Outcome] = []
    cache: dict = {}
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(max_workers=workers,
                                   mp_context=multiprocessing.get_context("spawn"))  # fmt: skip
        # Start every worker now: each imports volcal (JAX) while this process loads and
        # cleans the first chain.
        for _ in range(workers):
            pool.submit(_ready)
    try:
        for job in config.jobs:
            if store.published_model(job.venue, job.underlying) != job.published:
                store.set_published(job.venue, job.underlying, job.published)
            started = time.perf_counter()
            try:
                grid = vc.clean(_load(job, raw_dir, cache), underlying=job.underlying)
            except Exception as error:  # one chain's failure never stops the others
                outcomes.append(Outcome(job.venue, job.underlying, "(chain)", True, "failed",
                                        error=f"{type(error).__name__}: {error}",
                                        seconds=time.perf_counter() - started))  # fmt: skip
                _log("chain_failed", job=job, error=outcomes[-1].error)
                if progress:
                    progress()
                continue
            if grid.venue != job.venue:
                # The store keys by the configured venue (a file's rows may name another).
                from dataclasses import replace

                grid = replace(grid, venue=job.venue)
            pending = []
            # Submit the slowest fits first, so the pool's wall time is about the slowest one's.
            for model in sorted(job.models, key=lambda m: -SLOWEST_FIRST.get(m, 0)):
                outcome, start, options = _prepare(store, config, job, model, grid, force)
                if start is None:
                    pending.append((outcome, None, 0.0))
                    continue
                begun = time.perf_counter()
                if pool is None:
                    try:
                        work = _fit(start, grid, options)
                    except Exception as error:
                        work = error
                else:
                    work = pool.submit(_fit, start, grid, options)
                pending.append((outcome, work, begun))
            pending.sort(key=lambda entry: job.models.index(entry[0].model))
            for outcome, work, begun in pending:
                if outcome.reused:
                    outcomes.append(outcome)
                    continue
                if pool is not None:
                    try:
                        work = work.result()
                    except Exception as error:
                        work = error
                outcomes.append(_finish(store, config, job, outcome, work, begun))
            if progress:
                progress()
    finally:
        if pool is not None:
            pool.shutdown()
        store.close()
    return outcomes


def _ready() -> None:
    import volcal  # noqa: F401  (a worker's start-up cost, paid before the first fit)


def _prepare(store, config, job, model, grid, force):
    """``(outcome, start, options)``: ``start`` is None when this snapshot's calibration of
    ``model`` is stored already (the outcome then reports it), else the warm or cold start."""
    snapshot = pd.Timestamp(grid.snapshot).tz_convert("UTC").isoformat()
    outcome = Outcome(job.venue, job.underlying, model, model == job.published, "failed",
                      snapshot=snapshot)  # fmt: skip
    stored = None if force else store.find(job.venue, job.underlying, grid.snapshot, model)
    if stored is not None:
        outcome.status, outcome.reused, outcome.surface_id = stored.status, True, stored.id
        outcome.rmse = stored.diagnostics.get("rmse", float("nan"))
        outcome.inside = stored.diagnostics.get("inside", float("nan"))
        outcome.reasons = "; ".join(f.detail for f in stored.reasons)
        _log("already_stored", job=job, model=model, snapshot=snapshot, status=stored.status,
             surface_id=stored.id)  # fmt: skip
        return outcome, None, None
    options = {**DEFAULT_MODEL_OPTIONS.get(model, {}), **config.model_options.get(model, {})}
    return outcome, _warm_start(store, job, model, grid), options


def _fit(start, grid, options):
    """Calibrate (here or in a worker process); a warm start that fails is retried from the
    model's own initial guess."""
    import volcal as vc

    fit = vc.calibrate(start, grid, throw=False, **options)
    if not fit.ok and not isinstance(start, type):
        fit = vc.calibrate(type(start), grid, throw=False, **options)
    _ = fit.arbitrage  # checked here (in the worker), not by the one writer that gates it
    return fit


def _finish(store, config, job, outcome, fit, begun) -> Outcome:
    """Gate and store ``fit`` (or record the exception that replaced it)."""
    model, snapshot = outcome.model, outcome.snapshot
    try:
        if isinstance(fit, Exception):
            raise fit
        stored = store.save(fit, gate=config.gate.get(model))
    except Exception as error:
        outcome.status = "failed"
        outcome.error = f"{type(error).__name__}: {error}"
        outcome.seconds = time.perf_counter() - begun
        _log("model_failed", job=job, model=model, snapshot=snapshot, error=outcome.error)
        return outcome
    outcome.status = stored.status
    outcome.rmse = fit.rmse
    outcome.inside = fit.inside
    outcome.reasons = "; ".join(f.detail for f in stored.reasons)
    outcome.surface_id = stored.id
    outcome.seconds = time.perf_counter() - begun
    _log("stored", job=job, model=model, snapshot=snapshot, status=stored.status,
         surface_id=stored.id, rmse=fit.rmse, inside=fit.inside,
         reasons=[f.reason.value for f in stored.reasons], seconds=outcome.seconds)  # fmt: skip
    return outcome


def exit_code(outcomes: list[Outcome]) -> ExitCode:
    """:class:`ExitCode` of a run (module docstring's table)."""
    published = [o for o in outcomes if o.published]
    if not any(o.status == "accepted" for o in outcomes):
        return ExitCode.FAILED
    if all(o.status == "accepted" for o in published):
        return ExitCode.OK
    return ExitCode.PARTIAL_FAILURE


def _log(event: str, *, job: ChainJob, **fields) -> None:
    log.info(
        event,
        extra={
            "fields": {"event": event, "venue": job.venue, "underlying": job.underlying, **fields}
        },
    )


class JsonLines(logging.Formatter):
    """One JSON object per log record: time (UTC), level, and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {"message": record.getMessage()})
        stamp = pd.Timestamp(record.created, unit="s", tz="UTC").isoformat()
        return json.dumps({"time": stamp, "level": record.levelname, **fields}, default=str)

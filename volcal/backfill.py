"""``volcal backfill``: calibrate every snapshot of a history into the store, fanned out with
Dask.

The unit of work is a :class:`Block`: a run of consecutive snapshots of one underlying still to
be calibrated (at most ``block_size``). A block is calibrated in order inside one worker, each
snapshot warm-started from the block's previous fit of the same model when the expiries match
(the first snapshot of a block starts cold, so a block's results do not depend on which worker
ran the one before it). Workers return their results; this process is the only writer: it
gates and stores each block's fits in snapshot order per underlying (a finished block waits for
the blocks before it), so the quality gate's jump check always compares with the same previous
surface, whatever order the workers finish in. The results of one process and of a cluster are
therefore the same computations; ``tests/test_backfill.py`` checks they agree to 1e-10 in vol.

Executors: ``workers=0`` calibrates in this process; ``workers=N`` starts a Dask
``LocalCluster`` of N single-threaded worker processes (spawned: JAX must not be forked);
``scheduler="tcp://host:8786"`` uses a running cluster, whose workers need volcal and the
history source at the same path. Dask is the ``distributed`` extra.

Resumable and idempotent: snapshots whose every model is stored already (accepted or
rejected), or settled by a recorded failure (:meth:`volcal.store.Store.failures`), are
skipped. A snapshot whose chain cannot be loaded or cleaned, or whose fit raises, is recorded
as a failure with its error and the run goes on; a fit that does not pass the gate is stored as
rejected; a lost worker or a failed write is recorded and retried by the next run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from volcal.history import SnapshotHistory
from volcal.store import Store

#: Snapshots per block (a block is one task: its warm starts run in order).
BLOCK_SIZE = 16
DEFAULT_MODELS = ("ESSVI",)
DISTRIBUTED_HINT = "pip install 'volcal[distributed]'"
#: Stage names of recorded failures.
CHAIN_STAGE = "chain"


class BackfillError(RuntimeError):
    """The backfill cannot start (no Dask, no such source, bad options)."""


@dataclass(frozen=True)
class Block:
    """Consecutive snapshots of one underlying, calibrated in order by one worker."""

    underlying: str
    snapshots: tuple[pd.Timestamp, ...]
    models: tuple[str, ...]


@dataclass
class SnapshotResult:
    """One snapshot's outcome for one model (``model`` is "(chain)" when the chain failed):
    the fit, or the error and the stage it happened in."""

    underlying: str
    snapshot: pd.Timestamp
    model: str
    fit: object | None = None
    error: str = ""
    stage: str = ""
    seconds: float = 0.0


@dataclass
class BackfillSummary:
    """Counts of a run: per (underlying, model), snapshots ``accepted``, ``rejected``,
    ``failed`` and ``skipped`` (stored, or settled by a recorded failure, before the run);
    ``seconds`` of wall time."""

    counts: pd.DataFrame
    seconds: float
    failures: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def plan_blocks(history: SnapshotHistory, store: Store, venue: str, underlyings, models, *,
                start=None, end=None, daily: bool = False,
                block_size: int = BLOCK_SIZE) -> tuple[list[Block], dict]:  # fmt: skip
    """The blocks still to calibrate, and the snapshots skipped per underlying: every model
    stored, or settled by a recorded failure (a chain that could not be loaded or cleaned
    settles every model of its snapshot; a model whose fit raised settles that model; a lost
    worker or a failed write settles nothing, and is retried)."""
    if block_size < 1:
        raise BackfillError(f"block size must be at least 1, not {block_size}")
    snapshots = history.daily(start, end) if daily else history.timestamps(start, end)
    blocks, skipped = [], {}
    for underlying in underlyings:
        failures = store.failures(venue, underlying)
        broken = set(failures.loc[failures["stage"] == CHAIN_STAGE, "snapshot"])
        fits = failures[failures["stage"] == "calibrate"]
        raised = set(zip(fits["snapshot"], fits["model"], strict=True))
        todo, run = [], []
        skipped[underlying] = 0
        for snapshot in snapshots:
            done = snapshot in broken or all(
                (snapshot, model) in raised
                or store.find(venue, underlying, snapshot, model) is not None
                for model in models
            )
            if done:
                skipped[underlying] += 1
                if run:
                    todo.append(run)
                    run = []
                continue
            run.append(snapshot)
        if run:
            todo.append(run)
        for run in todo:
            for i in range(0, len(run), block_size):
                chunk = tuple(run[i : i + block_size])
                blocks.append(Block(underlying, chunk, tuple(models)))
    return blocks, skipped


def calibrate_block(source: str, format: str, venue: str, block: Block,
                    model_options: dict) -> list[SnapshotResult]:  # fmt: skip
    """Calibrate one block (in a worker, or here): every snapshot, every model, in order."""
    import volcal as vc
    from volcal.models import MODELS
    from volcal.refresh import DEFAULT_MODEL_OPTIONS, _fit

    history = SnapshotHistory.open(source, format=format)
    previous: dict = {}
    results = []
    for snapshot in block.snapshots:
        begun = time.perf_counter()
        try:
            chain = history.chain(snapshot, block.underlying)
            grid = replace(vc.clean(chain, underlying=block.underlying), venue=venue)
            if pd.Timestamp(grid.snapshot) != snapshot:
                raise ValueError(f"the chain is timed {grid.snapshot}, not at the snapshot")
            if not grid.mask.any():
                counts = grid.report.rows["reason"].value_counts().to_dict()
                raise ValueError(f"no quote survived cleaning ({counts})")
        except Exception as error:  # a bad snapshot is recorded, never stops the run
            results.append(SnapshotResult(block.underlying, snapshot, "(chain)",
                                          error=f"{type(error).__name__}: {error}",
                                          stage=CHAIN_STAGE,
                                          seconds=time.perf_counter() - begun))  # fmt: skip
            continue
        for model in block.models:
            begun = time.perf_counter()
            options = {**DEFAULT_MODEL_OPTIONS.get(model, {}), **model_options.get(model, {})}
            start = _warm(previous.get(model), grid) or MODELS[model]
            try:
                fit = _fit(start, grid, options)
            except Exception as error:
                results.append(SnapshotResult(block.underlying, snapshot, model,
                                              error=f"{type(error).__name__}: {error}",
                                              stage="calibrate",
                                              seconds=time.perf_counter() - begun))  # fmt: skip
                continue
            if fit.ok:
                previous[model] = (grid.expiries, fit.model)
            results.append(SnapshotResult(block.underlying, snapshot, model, fit=fit,
                                          seconds=time.perf_counter() - begun))  # fmt: skip
    return results


def _warm(previous, grid):
    """The block's previous fit of a model when its expiries are the grid's (or it is a
    surface-wide Heston), else None (cold start)."""
    if previous is None:
        return None
    expiries, model = previous
    if type(model).__name__ == "Heston" or list(expiries) == list(grid.expiries):
        return model
    return None


def run_backfill(
    source: str | Path,
    *,
    store: Store | str | Path | None = None,
    venue: str = "deribit",
    underlyings=("BTC", "ETH"),
    models=DEFAULT_MODELS,
    format: str | None = None,
    start=None,
    end=None,
    daily: bool = False,
    block_size: int = BLOCK_SIZE,
    workers: int = 0,
    scheduler: str | None = None,
    model_options: dict | None = None,
    gate: dict | None = None,
    jump_check: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BackfillSummary:
    """Backfill ``source`` (a history folder or file) into ``store`` (module docstring).

    ``gate`` holds gate limits per model (as :func:`volcal.gate.gate_config`). The gate's
    jump check is off unless ``jump_check``: it protects a live surface from a fit that moves
    too far from the last accepted one, but in a history it would reject the days of real
    market moves (and then each day after, measured against an ever older surface), the days a
    margin backtest needs most. ``progress(done, total)`` (snapshots) is called after each
    block is committed.
    """
    from volcal.models import MODELS

    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise BackfillError(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    history = SnapshotHistory.open(source, format=format)
    owned = not isinstance(store, Store)
    store = Store(store) if owned else store
    began = time.perf_counter()
    client = cluster = None
    try:
        blocks, skipped = plan_blocks(history, store, venue, underlyings, models, start=start,
                                      end=end, daily=daily, block_size=block_size)  # fmt: skip
        total = sum(len(b.snapshots) for b in blocks)
        args = (str(history.source), history.format, venue)
        options = model_options or {}
        if blocks and (workers > 0 or scheduler):
            client, cluster = _client(workers, scheduler)
            results = _distributed(client, blocks, args, options)
        else:
            results = ((i, calibrate_block(*args, block, options)) for i, block in
                       enumerate(blocks))  # fmt: skip
        limits = {m: {**(gate or {}).get(m, {}), **({} if jump_check else {"jump_floor": None})}
                  for m in models}  # fmt: skip
        tally = _Tally(skipped, models)
        done = 0
        for block, block_results in _in_order(blocks, results):
            for result in block_results:
                tally.add(result, _commit(store, venue, result, limits))
            done += len(block.snapshots)
            if progress:
                progress(done, total)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        if owned:
            store.close()
    return BackfillSummary(tally.table(), time.perf_counter() - began, tally.failures)


def _client(workers: int, scheduler: str | None):
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError as error:
        raise BackfillError(
            f"a backfill with workers needs dask.distributed: {DISTRIBUTED_HINT} (or run it "
            "in this process with workers=0)"
        ) from error
    if scheduler:
        return Client(scheduler), None
    # Spawned worker processes: JAX must not be forked (dask's default, made explicit). The
    # scheduler's HTTP server takes any free port, so two backfills can run side by side.
    dask.config.set({"distributed.worker.multiprocessing-method": "spawn"})
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0")  # fmt: skip
    return Client(cluster), cluster


def _distributed(client, blocks, args, options):
    """``(block number, results)`` as the cluster finishes them."""
    from dask.distributed import as_completed

    futures = {client.submit(calibrate_block, *args, block, options, pure=False): i
               for i, block in enumerate(blocks)}  # fmt: skip
    for future in as_completed(futures):
        try:
            yield futures[future], future.result()
        except Exception as error:  # a lost worker: the block's snapshots are failures
            block = blocks[futures[future]]
            yield futures[future], [
                SnapshotResult(
                    block.underlying, s, "(chain)", stage="worker",
                    error=f"{type(error).__name__}: {error}",
                )
                for s in block.snapshots
            ]


def _in_order(blocks, results):
    """``(block, results)`` in plan order per underlying: a block finished early waits for
    the blocks before it of the same underlying (the store writes in snapshot order)."""
    waiting: dict[int, list] = {}
    queues: dict[str, list[int]] = {}
    for i, block in enumerate(blocks):
        queues.setdefault(block.underlying, []).append(i)
    for i, block_results in results:
        waiting[i] = block_results
        queue = queues[blocks[i].underlying]
        while queue and queue[0] in waiting:
            j = queue.pop(0)
            yield blocks[j], waiting.pop(j)


def _commit(store: Store, venue: str, result: SnapshotResult, gate: dict) -> str:
    """Store one result: "accepted"/"rejected" (the gate's verdict), "failed" (recorded), or
    "skipped" (stored meanwhile)."""
    if result.fit is None:
        store.record_failure(venue, result.underlying, result.snapshot, result.model,
                             result.stage, result.error)  # fmt: skip
        return "failed"
    if store.find(venue, result.underlying, result.snapshot, result.model) is not None:
        return "skipped"
    try:
        stored = store.save(result.fit, gate=gate.get(result.model))
    except Exception as error:
        store.record_failure(venue, result.underlying, result.snapshot, result.model, "store",
                             f"{type(error).__name__}: {error}")  # fmt: skip
        return "failed"
    return stored.status


class _Tally:
    def __init__(self, skipped: dict, models):
        self.rows: dict = {}
        self.failures: list = []
        for underlying, count in skipped.items():
            for model in models:
                self._row(underlying, model)["skipped"] += count

    def _row(self, underlying, model):
        return self.rows.setdefault((underlying, model), {"accepted": 0, "rejected": 0,
                                                          "failed": 0, "skipped": 0})

    def add(self, result: SnapshotResult, status: str) -> None:
        self._row(result.underlying, result.model)[status] += 1
        if status == "failed":
            self.failures.append(result)

    def table(self) -> pd.DataFrame:
        frame = pd.DataFrame.from_dict(self.rows, orient="index")
        if frame.empty:
            return pd.DataFrame(columns=["accepted", "rejected", "failed", "skipped"])
        frame.index = pd.MultiIndex.from_tuples(frame.index, names=["underlying", "model"])
        return frame.sort_index()

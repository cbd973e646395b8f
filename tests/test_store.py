"""The parameter store and the quality gate: history and as-of queries, staleness, the gate's
reasons one by one, crash safety under SIGKILL inside a write, reader isolation, the writer
lock, bad keys and paths, schema migration and JSON export/import."""

from __future__ import annotations

import dataclasses
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from volcal.arbitrage import ArbitrageReport
from volcal.calibrate import CalibrationStatus
from volcal.gate import GateReason, evaluate, gate_config
from volcal.refresh import ExitCode, Outcome, exit_code
from volcal.store import (
    _SCHEMA,
    SCHEMA_VERSION,
    NoSurfaceError,
    StaleSurfaceError,
    Store,
    StoreError,
    _row_values,
    _stored,
)

HOUR = pd.Timedelta(hours=1)


def at(fit, snapshot, **grid_changes):
    """``fit`` as if taken at ``snapshot`` (and other grid labels)."""
    grid = dataclasses.replace(fit.grid, snapshot=pd.Timestamp(snapshot), **grid_changes)
    return dataclasses.replace(fit, grid=grid)


def scaled(fit, factor):
    """``fit`` with every eSSVI total variance scaled by ``factor`` (vols by its root)."""
    model = dataclasses.replace(
        fit.model, theta=fit.model.theta * factor, psi=fit.model.psi * factor
    )
    return dataclasses.replace(fit, model=model)


@pytest.fixture()
def store(tmp_path) -> Store:
    with Store(tmp_path / "models" / "volcal.sqlite") as opened:
        yield opened


def test_history_latest_as_of_and_staleness(store, demo_essvi_fit):
    snapshot = demo_essvi_fit.grid.snapshot
    first = store.save(at(demo_essvi_fit, snapshot - 24 * HOUR))
    second = store.save(at(demo_essvi_fit, snapshot))
    assert first.accepted and second.accepted and first.id != second.id
    assert store.latest("demo", "BTC", now=snapshot + HOUR).id == second.id
    assert store.latest("demo", "BTC", asof=snapshot - HOUR).id == first.id
    assert store.latest("demo", "BTC", model="ESSVI", asof=snapshot).published
    with pytest.raises(NoSurfaceError, match="no accepted ESSVI surface for demo BTC"):
        store.latest("demo", "BTC", asof=snapshot - 48 * HOUR)
    with pytest.raises(StaleSurfaceError, match="older than the allowed 0 days 01:00:00"):
        store.latest("demo", "BTC", now=snapshot + 2 * HOUR, max_age="1h")
    assert store.latest("demo", "BTC", now=snapshot + 2 * HOUR, max_age="3h").id == second.id
    history = store.history("demo", "BTC")
    assert list(history["id"]) == [second.id, first.id]
    surface = store.get(second.id).surface
    assert surface.surface_id == second.id
    np.testing.assert_allclose(
        surface.implied_vol_at(0.1, 0.2),
        store.latest("demo", "BTC", now=snapshot).surface.implied_vol_at(0.1, 0.2),
    )
    parameters = store.parameter_history("demo", "BTC", "ESSVI")
    assert set(parameters["name"]) == {"theta", "rho", "psi"}
    assert len(parameters) == 2 * 3 * len(demo_essvi_fit.grid.t)


# --- the gate, one reason at a time ------------------------------------------------------


def _breaks(reason, fit):
    """(calibration, gate limits, previous fit) that fail ``reason`` and nothing else."""
    n = len(fit.grid.t)
    if reason is GateReason.NOT_CONVERGED:
        status = np.full(n, int(CalibrationStatus.SUCCESS))
        status[2] = int(CalibrationStatus.MAX_STEPS_REACHED)
        return dataclasses.replace(fit, status=status), None, None
    if reason is GateReason.TOO_FEW_QUOTES:
        return fit, {"min_quotes": int(fit.grid.mask.sum()) + 1}, None
    if reason is GateReason.RMSE:
        return fit, {"max_rmse_vol_points": 0.5 * fit.rmse}, None
    report = fit.arbitrage
    if reason is GateReason.BUTTERFLY:
        row = pd.DataFrame(
            {"slice": [1], "t": [fit.grid.t[1]], "log_moneyness": [0.3], "g": [-0.01]}
        )
        report = ArbitrageReport(row, report.calendar)
        return dataclasses.replace(fit, arbitrage_report=report), None, None
    if reason is GateReason.CALENDAR:
        row = pd.DataFrame(
            {
                "slice": [1],
                "t": [fit.grid.t[1]],
                "t_next": [fit.grid.t[2]],
                "log_moneyness": [0.3],
                "decrease": [1e-4],
            }
        )
        return (
            dataclasses.replace(fit, arbitrage_report=ArbitrageReport(report.butterfly, row)),
            None,
            None,
        )
    # JUMP: the previous accepted surface, one day earlier, had vols 40% lower: a change of
    # ~0.2-0.3 in vol, above the limit 0.05 + 0.10 sqrt(1 day).
    return fit, None, scaled(fit, 0.36)


@pytest.mark.parametrize("reason", list(GateReason))
def test_each_gate_reason_rejects_and_keeps_the_previous_surface(store, demo_essvi_fit, reason):
    snapshot = demo_essvi_fit.grid.snapshot
    candidate, limits, previous = _breaks(reason, demo_essvi_fit)
    if previous is None:
        previous = demo_essvi_fit
    good = store.save(at(previous, snapshot - 24 * HOUR))
    assert good.accepted, good.reasons
    decision = evaluate(
        at(candidate, snapshot), config=gate_config("ESSVI", limits), previous=good.surface
    )
    assert decision.reasons == (reason,), decision.failures
    stored = store.save(at(candidate, snapshot), gate=limits)
    assert stored.status == "rejected" and stored.reasons[0].reason is reason
    assert reason.value in store.history("demo", "BTC")["reasons"].iloc[0]
    assert store.latest("demo", "BTC", now=snapshot + HOUR).id == good.id
    # In a refresh, a published model stored as rejected beside an accepted one: exit 3.
    published = Outcome("demo", "BTC", "ESSVI", True, stored.status)
    other = Outcome("demo", "BTC", "SVI", False, "accepted")
    assert exit_code([published, other]) == ExitCode.PARTIAL_FAILURE


def test_unknown_gate_limit_is_an_error():
    with pytest.raises(ValueError, match="unknown gate limit"):
        gate_config("ESSVI", {"max_rsme": 1.0})


# --- crash safety and isolation ----------------------------------------------------------

CHILD = textwrap.dedent("""
    import json, os, signal, sys, time
    from pathlib import Path
    from volcal.store import Store

    path, row_file, point, mode = sys.argv[1:5]

    class Interrupted(Store):
        def _checkpoint(self, name):
            if name != point:
                return
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            Path(path + ".paused").touch()
            while not Path(path + ".go").exists():
                time.sleep(0.01)

    Interrupted(path)._insert(json.loads(Path(row_file).read_text()))
""")


def _write_in_child(path: Path, row: dict, point: str, mode: str) -> subprocess.Popen:
    row_file = path.with_suffix(".row.json")
    row_file.write_text(json.dumps(row))
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(row_file), point, mode])


def _next_row(store, fit, snapshot) -> dict:
    """The row ``store.save`` would write for ``fit`` at ``snapshot``, written elsewhere."""
    with Store(store.path.with_name("scratch.sqlite")) as scratch:
        stored = scratch.save(at(fit, snapshot))
        return scratch.export_rows([stored.id])[0]


def _consistent(path: Path) -> None:
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    orphans = db.execute(
        "SELECT count(*) FROM parameters WHERE surface_id NOT IN (SELECT id FROM surfaces)"
    ).fetchone()[0]
    assert orphans == 0
    db.close()


@pytest.mark.parametrize(
    "point", ["surface_written", "parameters_written", "before_commit", "after_commit"]
)
def test_sigkill_inside_a_write_leaves_the_store_consistent(store, demo_essvi_fit, point):
    snapshot = demo_essvi_fit.grid.snapshot
    old = store.save(at(demo_essvi_fit, snapshot - 24 * HOUR))
    row = _next_row(store, demo_essvi_fit, snapshot)
    child = _write_in_child(store.path, row, point, "kill")
    assert child.wait(timeout=120) == -signal.SIGKILL
    _consistent(store.path)
    with Store(store.path) as reopened:
        latest = reopened.latest("demo", "BTC", now=snapshot + HOUR)
        committed = point == "after_commit"
        assert latest.id == (row["id"] if committed else old.id)
        assert len(reopened.history()) == (2 if committed else 1)
        assert len(reopened.parameter_history("demo", "BTC", "ESSVI")) == (
            (2 if committed else 1) * 3 * len(demo_essvi_fit.grid.t)
        )


def test_reader_sees_old_surface_until_commit_never_a_mix(store, demo_essvi_fit):
    snapshot = demo_essvi_fit.grid.snapshot
    old = store.save(at(demo_essvi_fit, snapshot - 24 * HOUR))
    row = _next_row(store, demo_essvi_fit, snapshot)
    child = _write_in_child(store.path, row, "before_commit", "pause")
    paused = Path(str(store.path) + ".paused")
    deadline = time.monotonic() + 120
    while not paused.exists():
        assert child.poll() is None and time.monotonic() < deadline, "writer did not pause"
        time.sleep(0.02)
    with Store(store.path) as reader:
        now = snapshot + HOUR
        with reader.reading():
            assert reader.latest("demo", "BTC", now=now).id == old.id
            assert len(reader.parameter_history("demo", "BTC", "ESSVI")) == 3 * len(
                demo_essvi_fit.grid.t
            )
            Path(str(store.path) + ".go").touch()
            assert child.wait(timeout=60) == 0
            # Committed now, but this read transaction still sees the state it began with.
            assert reader.latest("demo", "BTC", now=now).id == old.id
            assert len(reader.history()) == 1
        assert reader.latest("demo", "BTC", now=now).id == row["id"]
        assert len(reader.parameter_history("demo", "BTC", "ESSVI")) == 2 * 3 * len(
            demo_essvi_fit.grid.t
        )


def test_one_writer_at_a_time(store, demo_essvi_fit):
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with Store(store.path, timeout=0.2) as second:
            with pytest.raises(StoreError, match="locked by another writer"):
                second.save(demo_essvi_fit)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.save(demo_essvi_fit).accepted


# --- bad keys, paths and versions --------------------------------------------------------


def test_bad_keys_are_refused(store, demo_essvi_fit):
    for name in ("../x", "BTC/USD", "", "a" * 40, "-BTC"):
        with pytest.raises(ValueError, match="not a valid name"):
            store.save(at(demo_essvi_fit, demo_essvi_fit.grid.snapshot, underlying=name))
        with pytest.raises(ValueError, match="not a valid name"):
            store.latest("demo", name)
    with pytest.raises(ValueError, match=r"unknown model 'Vanna'.*ESSVI"):
        store.latest("demo", "BTC", model="Vanna")
    with pytest.raises(ValueError, match="unknown model"):
        store.set_published("demo", "BTC", "Vanna")
    assert store.history().empty


def test_bad_store_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="is not a volcal store: file is not a database"):
        Store(garbage)
    foreign = tmp_path / "foreign.sqlite"
    sqlite3.connect(foreign).execute("CREATE TABLE trades (x)").connection.commit()
    with pytest.raises(StoreError, match="not a volcal store"):
        Store(foreign)
    newer = tmp_path / "newer.sqlite"
    db = sqlite3.connect(newer)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="schema version 99, newer than this volcal"):
        Store(newer)
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)


def test_migrates_a_version_1_store(tmp_path, store, demo_essvi_fit):
    """A store written with schema 1 (no parameters table) opens, migrates to the current
    version in one transaction and keeps every surface, its parameters rebuilt."""
    stored = store.save(demo_essvi_fit)
    row = store.export_rows([stored.id])[0]
    old = tmp_path / "v1.sqlite"
    db = sqlite3.connect(old, isolation_level=None)
    db.executescript(_SCHEMA[1])
    db.execute(
        f"INSERT INTO surfaces VALUES ({', '.join('?' * 14)})",
        _row_values({**row, "schema_version": 1}),
    )
    db.execute("PRAGMA user_version = 1")
    db.close()
    with Store(old) as migrated:
        assert migrated.schema_version == SCHEMA_VERSION == 3
        assert migrated.failures().empty and migrated.margin_parameters("BTC") is None
        assert migrated.latest("demo", "BTC", now=demo_essvi_fit.grid.snapshot).id == stored.id
        assert len(migrated.parameter_history("demo", "BTC", "ESSVI")) == 3 * len(
            demo_essvi_fit.grid.t
        )


def test_json_export_import_round_trip(tmp_path, store, demo_essvi_fit):
    snapshot = demo_essvi_fit.grid.snapshot
    store.save(at(demo_essvi_fit, snapshot - 24 * HOUR))
    store.save(at(demo_essvi_fit, snapshot), gate={"max_rmse_vol_points": 0.01})
    path = tmp_path / "export.json"
    assert store.export_json(path) == 2
    with Store(tmp_path / "copy.sqlite") as copy:
        assert copy.import_json(path) == 2
        assert copy.import_json(path) == 0  # already there: nothing added twice
        pd.testing.assert_frame_equal(copy.history(), store.history())
        a = copy.latest("demo", "BTC", now=snapshot).surface
        b = store.latest("demo", "BTC", now=snapshot).surface
        np.testing.assert_array_equal(
            a.implied_vol_at(jnp.linspace(-1, 1, 5), 0.3),
            b.implied_vol_at(jnp.linspace(-1, 1, 5), 0.3),
        )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "volcal-store", "schema_version": 99, "surfaces": []}))
    with pytest.raises(StoreError, match="newer"):
        store.import_json(bad)


def test_stored_record_keeps_diagnostics(store, demo_essvi_fit):
    stored = store.save(demo_essvi_fit)
    again = _stored(store.export_rows([stored.id])[0])
    assert again.diagnostics["rmse"] == pytest.approx(demo_essvi_fit.rmse, rel=1e-15)
    assert again.cleaning["kept"] == int(demo_essvi_fit.grid.mask.sum())
    assert again.diagnostics["solver_status"][0] in ("SUCCESS", "CONSTRAINT_ACTIVE")


def test_failures_margin_parameters_and_snapshot_spots(store, demo_essvi_fit):
    """Schema 3's tables: recorded failures, versioned margin parameters (latest as of a
    time), and the spot recorded with each stored snapshot."""
    grid = demo_essvi_fit.grid
    store.record_failure("demo", "BTC", grid.snapshot, "(chain)", "chain", "ValueError: bad")
    failures = store.failures("demo", "BTC")
    assert failures[["model", "stage", "error"]].values.tolist() == [
        ["(chain)", "chain", "ValueError: bad"]
    ]
    assert failures["snapshot"].iloc[0] == grid.snapshot
    first = store.save_margin_parameters("BTC", "2026-01-01", "filtered", {"price_range": 0.1})
    second = store.save_margin_parameters("BTC", "2026-02-01", "filtered", {"price_range": 0.2})
    assert store.margin_parameters("BTC")["id"] == second
    assert store.margin_parameters("BTC", asof="2026-01-15")["id"] == first
    assert store.margin_parameters("BTC", asof="2025-12-31") is None
    assert store.margin_parameter_history("BTC")["price_range"].tolist() == [0.1, 0.2]
    store.save(demo_essvi_fit)
    spots = store.snapshot_spots("demo", "BTC")
    # The demo chain's nearest expiry is not on the index: its forward is the spot.
    forwards = grid.report.forwards.sort_values("t")
    assert spots.index.tolist() == [grid.snapshot]
    assert spots.iloc[0] == float(forwards["forward"].iloc[0])

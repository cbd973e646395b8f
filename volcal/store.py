"""``Store``: the parameter store, a SQLite database of every calibration.

Where: ``models/volcal.sqlite`` relative to the working directory by default, or the path in
``VOLCAL_STORE``, or the ``path`` argument (``--store`` on the command line). The schema, its
units and its migrations are documented in ``models/README.md``; :data:`SCHEMA_VERSION` is kept
in SQLite's ``user_version``.

Consistency:

* Every write is one transaction begun with ``BEGIN IMMEDIATE``, which takes SQLite's write
  lock: one writer at a time (others wait up to ``timeout`` seconds), and a crash before
  ``COMMIT`` leaves nothing behind.
* The database runs in WAL mode: a reader sees the last committed state when its read began,
  never a partial write, and never blocks the writer. :meth:`Store.reading` holds one read
  transaction across several queries.
* History is append-only: a calibration is never overwritten. "Latest" means the accepted
  calibration with the latest snapshot at or before the as-of time (ties: the last stored).

Which surface is "the" surface: each (venue, underlying) has one published model (default
:data:`volcal.models.PUBLISHED_MODEL`, changed with :meth:`Store.set_published`);
:meth:`Store.latest` returns its latest accepted surface unless told another model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from volcal._store_tables import SCHEMA_V3, StoreTables
from volcal.gate import GateDecision, GateFailure, GateReason, evaluate, gate_config
from volcal.surface import VolSurface

SCHEMA_VERSION = 3
DEFAULT_PATH = Path("models") / "volcal.sqlite"
#: Seconds a writer waits for another writer's lock before failing.
LOCK_TIMEOUT = 30.0
#: Venue and underlying names: letters, digits, '_', '-' and '.', starting with a letter or
#: digit, at most 32 characters (they end up in file names of kept raw responses).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")

_SCHEMA = {
    1: """
        CREATE TABLE surfaces (
            id TEXT PRIMARY KEY,
            venue TEXT NOT NULL,
            underlying TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
            reasons TEXT NOT NULL,
            published INTEGER NOT NULL,
            surface TEXT NOT NULL,
            diagnostics TEXT NOT NULL,
            cleaning TEXT NOT NULL,
            volcal_version TEXT NOT NULL,
            schema_version INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX surfaces_latest ON surfaces (venue, underlying, model, status, snapshot);
        CREATE TABLE published (
            venue TEXT NOT NULL,
            underlying TEXT NOT NULL,
            model TEXT NOT NULL,
            PRIMARY KEY (venue, underlying)
        );
    """,
    # Version 2: parameters in long form, one row per parameter and expiry, so parameter
    # history is one indexed query rather than a JSON parse of every surface.
    2: """
        CREATE TABLE parameters (
            surface_id TEXT NOT NULL REFERENCES surfaces (id),
            expiry TEXT,
            t REAL,
            name TEXT NOT NULL,
            value REAL
        );
        CREATE INDEX parameters_surface ON parameters (surface_id);
    """,
    # Version 3: failures recorded by backfills, and the margin engine's risk parameters.
    3: SCHEMA_V3,
}


class StoreError(RuntimeError):
    """The store cannot be opened or used: not a database, a newer schema, a bad path."""


class NoSurfaceError(LookupError):
    """No accepted surface matches the query."""


class StaleSurfaceError(LookupError):
    """The latest accepted surface is older than the allowed age."""


def validate_name(kind: str, value: str) -> str:
    """``value`` if it is a valid venue or underlying name (:data:`NAME_PATTERN`), else a
    ``ValueError`` naming the problem."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{kind} {value!r} is not a valid name: use letters, digits, '_', "
            "'-' and '.', starting with a letter or digit, at most 32 characters"
        )
    return value


def validate_model(name: str) -> str:
    from volcal.models import MODELS

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return name


def default_path() -> Path:
    """``VOLCAL_STORE`` if set, else ``models/volcal.sqlite`` in the working directory."""
    return Path(os.environ.get("VOLCAL_STORE") or DEFAULT_PATH)


@dataclass(frozen=True)
class StoredSurface:
    """One stored calibration.

    Attributes
    ----------
    id : str
        Surface id (16 hex digits of a SHA-256 of the record).
    venue, underlying, model, status : str
        ``status`` is "accepted" or "rejected".
    snapshot, created_at : Timestamp (UTC)
    reasons : tuple of GateFailure
        Why it was rejected (empty when accepted).
    published : bool
        Whether ``model`` was the pair's published model when stored.
    record : dict
        :meth:`VolSurface.to_record` output; :attr:`surface` rebuilds the surface.
    diagnostics : dict
        RMSE (vol points), share inside, per-expiry RMSE/inside/steps/status, arbitrage counts,
        the gate's measures.
    cleaning : dict
        The cleaning report's counts: rows per reason.
    volcal_version : str
    schema_version : int
    """

    id: str
    venue: str
    underlying: str
    snapshot: pd.Timestamp
    model: str
    status: str
    reasons: tuple[GateFailure, ...]
    published: bool
    record: dict = field(repr=False)
    diagnostics: dict = field(repr=False)
    cleaning: dict = field(repr=False)
    volcal_version: str = ""
    schema_version: int = SCHEMA_VERSION
    created_at: pd.Timestamp | None = None

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def surface(self) -> VolSurface:
        return VolSurface.from_record(self.record, surface_id=self.id)


class Store(StoreTables):
    """The parameter store (module docstring).

    Parameters
    ----------
    path : str or Path, optional
        Database file; default :func:`default_path`. Created, with its folder, when missing.
    timeout : float
        Seconds a writer waits for the write lock.
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = LOCK_TIMEOUT):
        self.path = Path(path) if path is not None else default_path()
        if self.path.is_dir():
            raise StoreError(f"store path {self.path} is a directory; give a database file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot create the store's folder {self.path.parent}: {error}"
            ) from error
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._prepare()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path} is not a volcal store: {error}") from error

    # --- schema ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            from volcal import __version__

            raise StoreError(
                f"{self.path} has schema version {version}, newer than this "
                f"volcal ({__version__}) reads ({SCHEMA_VERSION}): upgrade volcal"
            )
        tables = {
            row[0]
            for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if version == 0 and tables:
            raise StoreError(
                f"{self.path} is a SQLite database but not a volcal store "
                f"(tables {sorted(tables)}, no schema version)"
            )
        if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._db.execute("PRAGMA journal_mode = WAL")
        if version < SCHEMA_VERSION:
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        """Apply the schema steps after ``version`` in one transaction."""
        with self._writing() as db:
            current = db.execute("PRAGMA user_version").fetchone()[0]
            for step in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _SCHEMA[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
                if step == 2:
                    rows = db.execute("SELECT id, surface FROM surfaces").fetchall()
                    for surface_id, record in rows:
                        db.executemany(
                            "INSERT INTO parameters VALUES (?, ?, ?, ?, ?)",
                            _parameter_rows(surface_id, json.loads(record)),
                        )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # --- transactions ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(f"{self.path} is locked by another writer ({error}); try again "
                             "when it has finished") from error
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._checkpoint("before_commit")
        self._db.execute("COMMIT")
        self._checkpoint("after_commit")

    def _checkpoint(self, name: str) -> None:
        """Hook at named points of a write ("surface_written", "parameters_written",
        "before_commit", "after_commit"); a no-op, overridden by crash-safety tests."""

    @contextlib.contextmanager
    def reading(self) -> Iterator[Store]:
        """Hold one read transaction: every query inside sees the same committed state."""
        self._db.execute("BEGIN")
        try:
            self._db.execute("SELECT count(*) FROM surfaces").fetchone()  # start the snapshot
            yield self
        finally:
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writing --------------------------------------------------------------------------

    def published_model(self, venue: str, underlying: str) -> str:
        """The pair's published model (default :data:`volcal.models.PUBLISHED_MODEL`)."""
        from volcal.models import PUBLISHED_MODEL

        row = self._db.execute(
            "SELECT model FROM published WHERE venue = ? AND underlying = ?", (venue, underlying)
        ).fetchone()
        return row[0] if row else PUBLISHED_MODEL.__name__

    def set_published(self, venue: str, underlying: str, model: str) -> None:
        """Make ``model`` the pair's published model."""
        validate_name("venue", venue)
        validate_name("underlying", underlying)
        validate_model(model)
        with self._writing() as db:
            db.execute(
                "INSERT OR REPLACE INTO published VALUES (?, ?, ?)", (venue, underlying, model)
            )

    def save(
        self, calibration, decision: GateDecision | None = None, *, gate: dict | None = None
    ) -> StoredSurface:
        """Store a calibration with the gate's verdict, in one transaction.

        ``decision`` defaults to :func:`volcal.gate.evaluate` with the model's gate (limits
        ``gate`` overriding the defaults) against the latest accepted surface of the same
        model at or before this snapshot. Returns the stored record; a rejected calibration
        is stored (with its reasons) but never becomes the latest.
        """
        grid = calibration.grid
        venue = validate_name("venue", grid.venue)
        underlying = validate_name("underlying", grid.underlying)
        model = validate_model(type(calibration.model).__name__)
        if decision is None:
            previous = self.previous(venue, underlying, model, grid.snapshot)
            decision = evaluate(
                calibration,
                config=gate_config(model, gate),
                previous=None if previous is None else previous.surface,
            )
        from volcal import __version__

        record = VolSurface.from_calibration(calibration).to_record()
        snapshot = pd.Timestamp(grid.snapshot).tz_convert("UTC")
        created = pd.Timestamp.now(tz="UTC")
        row = {
            "venue": venue,
            "underlying": underlying,
            "snapshot": snapshot.isoformat(),
            "model": model,
            "status": "accepted" if decision.accepted else "rejected",
            "reasons": [{"reason": f.reason.value, "detail": f.detail} for f in decision.failures],
            "published": model == self.published_model(venue, underlying),
            "surface": record,
            "diagnostics": _diagnostics(calibration, decision),
            "cleaning": _cleaning(grid),
            "volcal_version": __version__,
            "schema_version": SCHEMA_VERSION,
            "created_at": created.isoformat(),
        }
        row["id"] = _surface_id(row)
        self._insert(row)
        return _stored(row)

    def _insert(self, row: dict) -> None:
        with self._writing() as db:
            db.execute(
                f"INSERT INTO surfaces ({_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                _row_values(row),
            )
            self._checkpoint("surface_written")
            db.executemany(
                "INSERT INTO parameters VALUES (?, ?, ?, ?, ?)",
                _parameter_rows(row["id"], row["surface"]),
            )
            self._checkpoint("parameters_written")

    # --- reading --------------------------------------------------------------------------

    def find(self, venue: str, underlying: str, snapshot, model: str) -> StoredSurface | None:
        """The last stored calibration of ``model`` for this pair and snapshot (or None)."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM surfaces WHERE venue = ? AND underlying = ? AND "
            "snapshot = ? AND model = ? ORDER BY created_at DESC LIMIT 1",
            (venue, underlying, _utc(snapshot).isoformat(), model),
        ).fetchone()
        return None if row is None else _from_row(row)

    def get(self, surface_id: str) -> StoredSurface:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM surfaces WHERE id = ?", (surface_id,)
        ).fetchone()
        if row is None:
            raise NoSurfaceError(f"no stored surface with id {surface_id!r} in {self.path}")
        return _from_row(row)

    def previous(self, venue: str, underlying: str, model: str, before) -> StoredSurface | None:
        """The latest accepted surface of ``model`` strictly before ``before`` (or None)."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM surfaces WHERE venue = ? AND underlying = ? AND model = ? "
            "AND status = 'accepted' AND snapshot < ? ORDER BY snapshot DESC, created_at DESC "
            "LIMIT 1",
            (venue, underlying, model, _utc(before).isoformat()),
        ).fetchone()
        return None if row is None else _from_row(row)

    def latest(
        self,
        venue: str,
        underlying: str,
        *,
        model: str | None = None,
        asof=None,
        max_age=None,
        now=None,
    ) -> StoredSurface:
        """The latest accepted surface at or before ``asof`` (default: now).

        Parameters
        ----------
        model : str, optional
            Default: the pair's published model.
        asof : time, optional
            UTC time (str or Timestamp); surfaces with later snapshots are ignored.
        max_age : Timedelta or str, optional
            Raise :class:`StaleSurfaceError` when the surface's snapshot is older than this
            at ``asof`` (or ``now``, default the current time).
        """
        validate_name("venue", venue)
        validate_name("underlying", underlying)
        model = validate_model(model or self.published_model(venue, underlying))
        reference = _utc(asof if asof is not None else (now or pd.Timestamp.now(tz="UTC")))
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM surfaces WHERE venue = ? AND underlying = ? AND model = ? "
            "AND status = 'accepted' AND snapshot <= ? ORDER BY snapshot DESC, created_at DESC "
            "LIMIT 1",
            (venue, underlying, model, reference.isoformat()),
        ).fetchone()
        if row is None:
            raise NoSurfaceError(
                f"no accepted {model} surface for {venue} {underlying} at or "
                f"before {reference.isoformat()} in {self.path}"
            )
        stored = _from_row(row)
        if max_age is not None:
            age = reference - stored.snapshot
            if age > pd.Timedelta(max_age):
                raise StaleSurfaceError(
                    f"latest accepted {model} surface for {venue} {underlying} is from "
                    f"{stored.snapshot.isoformat()}, {age} before {reference.isoformat()}, "
                    f"older than the allowed {pd.Timedelta(max_age)}"
                )
        return stored

    def history(
        self,
        venue: str | None = None,
        underlying: str | None = None,
        *,
        model: str | None = None,
        status: str | None = None,
    ) -> pd.DataFrame:
        """Stored calibrations (newest snapshot first): id, venue, underlying, snapshot,
        model, status, reasons, published, rmse (vol points), inside, created_at."""
        clauses, values = [], []
        for column, value in (
            ("venue", venue),
            ("underlying", underlying),
            ("model", model),
            ("status", status),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM surfaces {where} ORDER BY snapshot "
            "DESC, venue, underlying, model, created_at DESC",
            values,
        ).fetchall()
        stored = [_from_row(row) for row in rows]
        return pd.DataFrame(
            {
                "id": [s.id for s in stored],
                "venue": [s.venue for s in stored],
                "underlying": [s.underlying for s in stored],
                "snapshot": pd.to_datetime([s.snapshot for s in stored], utc=True),
                "model": [s.model for s in stored],
                "status": [s.status for s in stored],
                "reasons": [", ".join(f.reason.value for f in s.reasons) for s in stored],
                "published": [s.published for s in stored],
                "rmse": [s.diagnostics.get("rmse", np.nan) for s in stored],
                "inside": [s.diagnostics.get("inside", np.nan) for s in stored],
                "created_at": pd.to_datetime([s.created_at for s in stored], utc=True),
            }
        )

    def parameter_history(self, venue: str, underlying: str, model: str) -> pd.DataFrame:
        """Every stored parameter of ``model`` through time (long form): snapshot, status,
        surface id, expiry, t, name, value."""
        rows = self._db.execute(
            "SELECT s.snapshot, s.status, s.id, p.expiry, p.t, p.name, p.value FROM parameters "
            "p JOIN surfaces s ON s.id = p.surface_id WHERE s.venue = ? AND s.underlying = ? "
            "AND s.model = ? ORDER BY s.snapshot, p.name, p.t",
            (venue, underlying, model),
        ).fetchall()
        frame = pd.DataFrame(
            rows, columns=["snapshot", "status", "surface_id", "expiry", "t", "name", "value"]
        )
        frame["snapshot"] = pd.to_datetime(frame["snapshot"], utc=True)
        return frame

    # --- JSON -----------------------------------------------------------------------------

    def export_rows(self, ids: list[str]) -> list[dict]:
        """The stored rows of ``ids`` as JSON-ready dicts (the export format's entries)."""
        rows = [
            self._db.execute(f"SELECT {_COLUMNS} FROM surfaces WHERE id = ?", (i,)).fetchone()
            for i in ids
        ]
        missing = [i for i, row in zip(ids, rows, strict=True) if row is None]
        if missing:
            raise NoSurfaceError(f"no stored surface with id(s) {missing} in {self.path}")
        return [_row_dict(row) for row in rows]

    def export_json(self, path: str | Path, **filters) -> int:
        """Write stored calibrations (``filters`` as :meth:`history`) to a JSON file; returns
        how many."""
        rows = self.export_rows(self.history(**filters)["id"].tolist())
        payload = {"format": "volcal-store", "schema_version": SCHEMA_VERSION, "surfaces": rows}
        Path(path).write_text(json.dumps(payload, indent=1, default=_json))
        return len(rows)

    def import_json(self, path: str | Path) -> int:
        """Add the calibrations of a :meth:`export_json` file that are not stored yet (by
        id), in one transaction; returns how many were added."""
        payload = json.loads(Path(path).read_text())
        if payload.get("format") != "volcal-store":
            raise StoreError(f"{path} is not a volcal store export")
        if payload.get("schema_version", 0) > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {payload['schema_version']}, newer "
                f"than this volcal reads ({SCHEMA_VERSION}): upgrade volcal"
            )
        added = 0
        for row in payload["surfaces"]:
            validate_name("venue", row["venue"])
            validate_name("underlying", row["underlying"])
            validate_model(row["model"])
            exists = self._db.execute(
                "SELECT 1 FROM surfaces WHERE id = ?", (row["id"],)
            ).fetchone()
            if exists is None:
                self._insert(row)
                added += 1
        return added


_COLUMNS = (
    "id, venue, underlying, snapshot, model, status, reasons, published, surface, "
    "diagnostics, cleaning, volcal_version, schema_version, created_at"
)


def _row_values(row: dict) -> tuple:
    """A row dict (:meth:`Store.save`'s, or an export's) as the values of ``_COLUMNS``."""
    return (
        row["id"], row["venue"], row["underlying"], row["snapshot"], row["model"],
        row["status"], json.dumps(row["reasons"]), int(row["published"]),
        json.dumps(row["surface"]), json.dumps(row["diagnostics"], default=_json),
        json.dumps(row["cleaning"]), row["volcal_version"], row["schema_version"],
        row["created_at"],
    )  # fmt: skip


def _row_dict(row) -> dict:
    names = [c.strip() for c in _COLUMNS.split(",")]
    values = dict(zip(names, row, strict=True))
    for key in ("reasons", "surface", "diagnostics", "cleaning"):
        values[key] = json.loads(values[key])
    values["published"] = bool(values["published"])
    return values


def _from_row(row) -> StoredSurface:
    return _stored(_row_dict(row))


def _stored(row: dict) -> StoredSurface:
    return StoredSurface(
        id=row["id"],
        venue=row["venue"],
        underlying=row["underlying"],
        snapshot=_utc(row["snapshot"]),
        model=row["model"],
        status=row["status"],
        reasons=tuple(GateFailure(GateReason(r["reason"]), r["detail"]) for r in row["reasons"]),
        published=bool(row["published"]),
        record=row["surface"],
        diagnostics=row["diagnostics"],
        cleaning=row["cleaning"],
        volcal_version=row["volcal_version"],
        schema_version=int(row["schema_version"]),
        created_at=_utc(row["created_at"]),
    )


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _json(value):
    """JSON for numpy scalars and arrays inside diagnostics."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _surface_id(row: dict) -> str:
    content = json.dumps({k: v for k, v in row.items() if k != "id"}, sort_keys=True, default=_json)
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def _parameter_rows(surface_id: str, record: dict) -> list[tuple]:
    """Long-form parameter rows of a surface record: per-expiry arrays one row per expiry,
    scalars one row with no expiry; static settings (strings) are not numbers and stay in the
    record only."""
    rows = []
    expiries, t = record.get("expiries", []), record.get("t", [])
    for name, value in record["parameters"].items():
        if isinstance(value, str):
            continue
        values = np.asarray(value, dtype=float)
        if values.ndim == 1 and len(values) == len(t):
            rows += [
                (
                    surface_id,
                    expiries[i] if i < len(expiries) else None,
                    float(t[i]),
                    name,
                    float(values[i]),
                )
                for i in range(len(t))
            ]
        else:
            rows += [(surface_id, None, None, name, float(v)) for v in values.reshape(-1)]
    return rows


def _diagnostics(calibration, decision: GateDecision) -> dict:
    from volcal.calibrate import CalibrationStatus
    from volcal.history import snapshot_spot

    spot, spot_source = snapshot_spot(calibration.grid)

    def finite(values):
        return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, float)]

    return {
        "rmse": float(calibration.rmse),
        "inside": float(calibration.inside),
        "rmse_by_expiry": finite(calibration.rmse_by_expiry),
        "inside_by_expiry": finite(calibration.inside_by_expiry),
        "quotes_by_expiry": calibration.grid.mask.sum(axis=1).tolist(),
        "steps": np.asarray(calibration.steps).tolist(),
        "solver_status": [CalibrationStatus(int(s)).name for s in calibration.status],
        "butterfly_points": len(calibration.arbitrage.butterfly),
        "calendar_points": len(calibration.arbitrage.calendar),
        "arbitrage": calibration.arbitrage.summary(),
        "snapshot_spot": spot if np.isfinite(spot) else None,
        "snapshot_spot_source": spot_source,
        "gate": {
            k: (v if not isinstance(v, float) or np.isfinite(v) else None)
            for k, v in decision.measures.items()
        },
    }


def _cleaning(grid) -> dict:
    counts = grid.report.rows["reason"].value_counts()
    return {str(reason): int(n) for reason, n in counts.items()}

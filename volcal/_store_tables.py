"""The store's tables beside the surfaces (schema version 3): failures recorded by backfills,
and the margin engine's calibrated risk parameters, with the spot of each stored snapshot.

Mixed into :class:`volcal.store.Store`; see ``models/README.md`` for the schema.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

SCHEMA_V3 = """
    CREATE TABLE failures (
        venue TEXT NOT NULL,
        underlying TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        model TEXT NOT NULL,
        stage TEXT NOT NULL,
        error TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX failures_key ON failures (venue, underlying, snapshot);
    CREATE TABLE margin_parameters (
        id TEXT PRIMARY KEY,
        underlying TEXT NOT NULL,
        as_of TEXT NOT NULL,
        method TEXT NOT NULL,
        parameters TEXT NOT NULL,
        volcal_version TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX margin_parameters_latest ON margin_parameters (underlying, as_of);
"""


class StoreTables:
    """Failures, margin parameters and snapshot spots (methods of :class:`Store`)."""

    # --- failures -------------------------------------------------------------------------

    def record_failure(self, venue: str, underlying: str, snapshot, model: str, stage: str,
                       error: str) -> None:  # fmt: skip
        """Record that ``model`` (or "(chain)") of a snapshot failed at ``stage``."""
        from volcal.store import _utc, validate_name

        validate_name("venue", venue)
        validate_name("underlying", underlying)
        with self._writing() as db:
            db.execute(
                "INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    venue,
                    underlying,
                    _utc(snapshot).isoformat(),
                    model,
                    stage,
                    str(error),
                    pd.Timestamp.now(tz="UTC").isoformat(),
                ),
            )

    def failures(self, venue: str | None = None, underlying: str | None = None) -> pd.DataFrame:
        """Recorded failures: venue, underlying, snapshot (UTC), model, stage, error,
        created_at."""
        clauses, values = [], []
        for column, value in (("venue", venue), ("underlying", underlying)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        frame = pd.read_sql_query(
            f"SELECT venue, underlying, snapshot, model, stage, error, created_at FROM failures "
            f"{where} ORDER BY snapshot",
            self._db,
            params=values,
        )
        frame["snapshot"] = pd.to_datetime(frame["snapshot"], utc=True, format="ISO8601")
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
        return frame

    # --- margin risk parameters -----------------------------------------------------------

    def save_margin_parameters(self, underlying: str, as_of, method: str,
                               parameters: dict) -> str:  # fmt: skip
        """Store one calibration of the margin engine's risk parameters (a JSON-able dict,
        e.g. :meth:`volcal.margin.risk_parameters.RiskParameters.to_record`); returns its id.
        Versions are kept: every call adds a row."""
        from volcal import __version__
        from volcal.store import _utc, validate_name

        validate_name("underlying", underlying)
        text = json.dumps(parameters, sort_keys=True, default=_json_default)
        created = pd.Timestamp.now(tz="UTC").isoformat()
        as_of = _utc(as_of).isoformat()
        digest = hashlib.sha256(f"{underlying}|{as_of}|{method}|{text}|{created}".encode())
        identifier = digest.hexdigest()[:16]
        with self._writing() as db:
            db.execute(
                "INSERT INTO margin_parameters VALUES (?, ?, ?, ?, ?, ?, ?)",
                (identifier, underlying, as_of, method, text, __version__, created),
            )
        return identifier

    def margin_parameters(self, underlying: str, *, asof=None,
                          method: str | None = None) -> dict | None:  # fmt: skip
        """The latest stored margin parameters of ``underlying`` with ``as_of`` at or before
        ``asof`` (default: any), or None: a dict with ``id``, ``underlying``, ``as_of``,
        ``method``, ``parameters``, ``volcal_version``, ``created_at``."""
        from volcal.store import _utc

        query = "SELECT * FROM margin_parameters WHERE underlying = ?"
        values: list = [underlying]
        if asof is not None:
            query += " AND as_of <= ?"
            values.append(_utc(asof).isoformat())
        if method is not None:
            query += " AND method = ?"
            values.append(method)
        row = self._db.execute(query + " ORDER BY as_of DESC, created_at DESC LIMIT 1",
                               values).fetchone()  # fmt: skip
        return None if row is None else _margin_row(row)

    def margin_parameter_history(self, underlying: str) -> pd.DataFrame:
        """Every stored version for ``underlying``: one row each, the parameters' scalar
        values as columns (oldest first)."""
        rows = self._db.execute(
            "SELECT * FROM margin_parameters WHERE underlying = ? ORDER BY as_of, created_at",
            (underlying,),
        ).fetchall()
        records = []
        for row in rows:
            entry = _margin_row(row)
            flat = {k: v for k, v in entry["parameters"].items() if np.isscalar(v)}
            records.append({"id": entry["id"], "as_of": entry["as_of"],
                            "method": entry["method"], **flat})  # fmt: skip
        return pd.DataFrame(records)

    # --- snapshot spots -------------------------------------------------------------------

    def snapshot_spots(self, venue: str, underlying: str, *,
                       model: str | None = None) -> pd.Series:  # fmt: skip
        """The spot of every accepted snapshot of the pair's published model (or ``model``),
        as recorded in its diagnostics (:func:`volcal.history.snapshot_spot`), indexed by
        snapshot time (UTC)."""
        model = model or self.published_model(venue, underlying)
        rows = self._db.execute(
            "SELECT snapshot, diagnostics FROM surfaces WHERE venue = ? AND underlying = ? AND "
            "model = ? AND status = 'accepted' ORDER BY snapshot, created_at",
            (venue, underlying, model),
        ).fetchall()
        spots = {}
        for snapshot, diagnostics in rows:
            value = json.loads(diagnostics).get("snapshot_spot")
            if value is not None:
                spots[snapshot] = float(value)
        index = pd.to_datetime(list(spots), utc=True, format="ISO8601")
        return pd.Series(list(spots.values()), index=index, name="spot", dtype=float)


def _margin_row(row) -> dict:
    identifier, underlying, as_of, method, parameters, version, created = row
    return {
        "id": identifier,
        "underlying": underlying,
        "as_of": pd.Timestamp(as_of),
        "method": method,
        "parameters": json.loads(parameters),
        "volcal_version": version,
        "created_at": pd.Timestamp(created),
    }


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (pd.Series, pd.DataFrame)):
        return json.loads(value.to_json(date_format="iso"))
    raise TypeError(f"cannot store a {type(value).__name__} in margin parameters")

"""What the last `crm-roi run` published, kept in the database beside it, so that a run that finds nothing new
(no month of the export changed, the same assumptions, the same day, the same code) says what was published
instead of recomputing it: the nightly run over an unchanged export then costs a second, not the metrics.

The key is everything the published figures depend on: the staged tables' write stamps (every staging write
comments its crm.* table with its run and time), the assumptions file, the as_of day (today when the file sets
none: the windows move with it), the pipeline's code and the report's path. Anything else that publishes (a UI
materialization, the automation) leaves the stored key behind the data, and the next run recomputes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb

from crm_roi_pipeline.project import code_digest


def publication_key(conn: duckdb.DuckDBPyConnection, assumptions_file: Path, as_of: dt.date, report: Path) -> str:
    from crm_roi_pipeline.metrics.compute import staged_stamp

    digest = hashlib.sha256()
    digest.update(staged_stamp(conn).encode())
    digest.update(assumptions_file.read_bytes())
    digest.update(f"{as_of}|{report}".encode())
    digest.update(code_digest().encode())
    return digest.hexdigest()


def remember(conn: duckdb.DuckDBPyConnection, key: str, outcome: dict) -> None:
    """Store the run's printed outcome (summary rows, headline lines, report path, failed checks) under `key`."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS roi")
    conn.execute("CREATE TABLE IF NOT EXISTS roi.last_run (key VARCHAR, published_at TIMESTAMP, outcome JSON)")
    conn.execute("BEGIN TRANSACTION")
    conn.execute("DELETE FROM roi.last_run")
    conn.execute("INSERT INTO roi.last_run VALUES (?, now()::TIMESTAMP, ?)", [key, json.dumps(outcome)])
    conn.execute("COMMIT")


def recall(conn: duckdb.DuckDBPyConnection, key: str) -> tuple[dt.datetime, dict] | None:
    """The stored outcome and when it was published, when it was published under `key`."""
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'roi' AND table_name = 'last_run'"
    ).fetchone()[0]
    if not exists:
        return None
    row = conn.execute("SELECT published_at, outcome FROM roi.last_run WHERE key = ?", [key]).fetchone()
    return (row[0], json.loads(row[1])) if row else None

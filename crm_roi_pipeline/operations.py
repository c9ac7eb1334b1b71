"""How the pipeline runs beside itself and beside other readers of the DuckDB file.

DuckDB lets one process write a file, or several read it, never both. Every asset and check that opens
the file is in one Dagster concurrency pool (limit 1 in dagster_home/dagster.yaml), and every connection
also takes a file lock (see `resources.Warehouse`) so runs outside the Dagster daemon queue too. Readers
that must not block the pipeline (a BI tool, a notebook) read the Parquet copies published after each run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
from dagster import FreshnessPolicy

DUCKDB_POOL = "crm_roi_duckdb"
# The nightly run lands by morning; a table a day and a half old means a night was missed.
NIGHTLY_FRESHNESS = FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=36), warn_window=dt.timedelta(hours=26))


def publish_parquet(conn: duckdb.DuckDBPyConnection, table: str, folder: Path) -> Path:
    """A read-only copy of a published table, written beside and then renamed over the last one, so a
    reader never sees half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{table.replace('.', '_')}.parquet"
    partial = target.with_suffix(".parquet.partial")
    conn.execute(f"COPY {table} TO '{partial}' (FORMAT parquet)")
    partial.replace(target)
    return target

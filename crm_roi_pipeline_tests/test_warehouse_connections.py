"""Warehouse connections: one in-process DuckDB attaches the file per connection, and leaves nothing behind."""


from __future__ import annotations

import subprocess
import sys

import pytest

from crm_roi_pipeline.resources import Warehouse

# Starts processes: outside the fast tier (pytest -m "not slow"); .ci/run runs it.
pytestmark = pytest.mark.slow


def test_a_closed_connection_leaves_the_file_free_and_nothing_behind(tmp_path):
    warehouse = Warehouse(database=str(tmp_path / "crm_roi.duckdb"))
    with warehouse.get_connection() as conn:
        conn.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS x")
        conn.execute("INSERT INTO crm.sync_state VALUES ('csv', 'deals', TIMESTAMP '2024-01-01', now()::TIMESTAMP)")
    # A write left open when the connection closes is rolled back, not committed by the next one.
    with warehouse.get_connection() as conn:
        conn.execute("BEGIN TRANSACTION")
        conn.execute("DELETE FROM crm.sync_state")
    with warehouse.get_connection() as conn:
        assert conn.execute("SELECT count(*) FROM crm.sync_state").fetchone()[0] == 1
        temporary = conn.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
        assert ("scratch",) not in temporary
    # Between connections another process can open the file for writing (DuckDB allows one writer).
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
        "c.execute(\"INSERT INTO crm.sync_state VALUES ('hubspot', 'deals', TIMESTAMP '2024-02-01', now()::TIMESTAMP)\"); "
        "c.close()"
    )
    subprocess.run([sys.executable, "-c", code, str(warehouse.path)], check=True, timeout=60)
    with warehouse.get_connection() as conn:
        assert conn.execute("SELECT source FROM crm.sync_state ORDER BY 1").fetchall() == [("csv",), ("hubspot",)]

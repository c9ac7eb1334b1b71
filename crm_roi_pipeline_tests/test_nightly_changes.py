"""A run costs what changed (issue 20): `crm-roi run` over an unchanged export stages no month and records no
partition event; a one-month change restages that month alone, and leaves crm.* as a full rerun would; the
instance keeps every month materialized (the UI shows none missing)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, EventRecordsFilter

from crm_roi_pipeline_tests.conftest import REPO

# Starts processes: outside the fast tier (pytest -m "not slow"); .ci/run runs it.
pytestmark = pytest.mark.slow

CRM_ROI = str(Path(sys.executable).parent / "crm-roi")
# Fewer partitions, so a persistent instance records a few hundred events rather than seven hundred; the sample's
# rows before 2023 are rejects of no partition (every run rewrites them).
HISTORY_START = "2023-01-01"
TABLES = {
    "deals": "deal_id", "leads": "lead_id", "activities": "activity_id", "spend": "month, category, channel",
    "tickets": "ticket_id",
}


def _run(env: dict, *args: str) -> str:
    proc = subprocess.run([CRM_ROI, "run", "-q", *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _tables(path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{path}' AS w (READ_ONLY)")
        out = {name: conn.execute(f"SELECT * FROM w.crm.{name} ORDER BY {key}, source_system").fetchall()
               for name, key in TABLES.items()}
        out["rejects"] = conn.execute(
            "SELECT * EXCLUDE (run_id) FROM w.crm.rejects ORDER BY entity, source_file, source_row").fetchall()
    return out


def test_a_run_stages_only_the_months_that_changed(tmp_path):
    folder = tmp_path / "exports"
    shutil.copytree(REPO / "data" / "sample", folder)
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "CRM_ROI_CSV_DIR": str(folder), "CRM_ROI_DUCKDB_PATH": str(tmp_path / "crm.duckdb"),
           "CRM_ROI_ASSUMPTIONS": str(REPO / "data" / "roi_assumptions.yaml"), "CRM_ROI_HISTORY_START": HISTORY_START,
           "DAGSTER_HOME": str(home)}

    first = _run(env)
    assert "every month of every table" in first and "stage_crm for 2023-01 …" in first
    unchanged = _run(env)
    assert "changed since last staged: nothing" in unchanged and "no month to stage" in unchanged
    # Nothing new at all: the published figures are repeated, not recomputed; the same headline.
    assert "metrics and ROI are current" in unchanged
    assert "stage_crm" not in unchanged and "publish_metrics" not in unchanged
    headline = first[first.index("ROI "):first.index("Report: ")]
    assert headline in unchanged
    # Other assumptions: the metrics and the ROI are recomputed, with no month staged.
    assumptions = tmp_path / "assumptions.yaml"
    assumptions.write_text((REPO / "data" / "roi_assumptions.yaml").read_text().replace(
        "gross_margin: 0.70", "gross_margin: 0.60"))
    env["CRM_ROI_ASSUMPTIONS"] = str(assumptions)
    other = _run(env)
    assert "no month to stage" in other and "publish_metrics done" in other and "are current" not in other

    # One deal of 2024-05 gets a new amount.
    text = (folder / "deals.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    deal = next(r for r in rows if r["created_at"].startswith("2024-05") and r["amount"])
    line = next(line for line in text.splitlines() if line.startswith(deal["deal_id"] + ","))
    (folder / "deals.csv").write_text(text.replace(line, line.replace(deal["amount"], "12345.67"), 1))
    changed = _run(env)
    assert "changed since last staged: deals 2024-05\n" in changed
    assert "stage_crm for 2024-05 … 2024-05" in changed

    instance = DagsterInstance.from_config(str(home))
    staging_runs = [r for r in instance.get_runs() if r.job_name == "stage_crm"]
    assert len(staging_runs) == 2  # the first run and the changed month; the unchanged night made none
    latest = max(staging_runs, key=lambda r: instance.get_run_stats(r.run_id).start_time)
    events = instance.get_event_records(EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION,
                                                           asset_key=AssetKey(["crm", "deals"])))
    mine = [e for e in events if e.run_id == latest.run_id]
    assert [e.partition_key for e in mine] == ["2024-05-01"]
    assert mine[0].asset_materialization.metadata["months_rewritten"].value == 1
    # Every month stays materialized: nothing shows as missing in the UI.
    keys = instance.get_materialized_partitions(AssetKey(["crm", "deals"]))
    expected = subprocess.run(
        [sys.executable, "-c", "from crm_roi_pipeline.staging.partitions import monthly_partitions as p; "
         "print(len(p.get_partition_keys()))"], env=env, capture_output=True, text=True, check=True).stdout
    assert len(keys) == int(expected)

    # crm.* as a full rerun of the same files leaves it, on a copy of the database.
    staged = _tables(tmp_path / "crm.duckdb")
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{tmp_path / 'crm.duckdb'}' AS w (READ_ONLY)")
        assert conn.execute("SELECT amount FROM w.crm.deals WHERE deal_id = ?", [deal["deal_id"]]).fetchall() == [
            (12345.67,)]
    full_db = tmp_path / "full.duckdb"
    shutil.copy(tmp_path / "crm.duckdb", full_db)
    _run({**env, "CRM_ROI_DUCKDB_PATH": str(full_db)}, "--full", "--ephemeral")
    assert _tables(full_db) == staged

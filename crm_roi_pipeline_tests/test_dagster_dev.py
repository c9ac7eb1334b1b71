"""A real Dagster instance: `dagster dev` (webserver and daemon) on a free port with a temporary
DAGSTER_HOME holding the project's dagster.yaml; a 12-month backfill launched through the GraphQL API."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from crm_roi_pipeline_tests.conftest import REPO

# Starts processes: outside the fast tier (pytest -m "not slow"); .ci/run runs it.
pytestmark = pytest.mark.slow

MONTHS = [f"{y}-{m:02d}-01" for y, m in [(2023, m) for m in range(7, 13)] + [(2024, m) for m in range(1, 7)]]
ASSETS = [["crm", "deals"], ["crm", "leads"], ["crm", "activities"], ["crm", "spend"],
          ["metrics", "monthly"], ["metrics", "adoption"], ["metrics", "lead_sources"],
          ["roi", "summary"], ["roi", "cashflows"], ["roi", "sensitivity"]]
LAUNCH = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}"""
STATUS = """query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs { runId status } }
    ... on PythonError { message }
  }
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


class DagsterDev:
    """`dagster dev` for the project, with its own DAGSTER_HOME and DuckDB file (its reports and Parquet copies
    land beside it, in crm_roi_reports/ and crm_roi_published/)."""

    def __init__(self, root: Path, csv_dir: Path):
        self.root = root
        self.home = root / "dagster_home"
        self.home.mkdir()
        shutil.copy(REPO / "dagster_home" / "dagster.yaml", self.home / "dagster.yaml")
        self.db = root / "crm_roi.duckdb"
        self.port = _free_port()
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "CRM_ROI_CSV_DIR": str(csv_dir),
            "CRM_ROI_DUCKDB_PATH": str(self.db),
            "CRM_ROI_ASSUMPTIONS": str(REPO / "data" / "roi_assumptions.yaml"),
        }
        self.env.pop("CRM_ROI_REPORTS_DIR", None)  # the default: beside the database
        dagster = str(Path(sys.executable).parent / "dagster")
        self.log = (root / "dagster_dev.log").open("w")
        self.proc = subprocess.Popen(
            [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                graphql(self.port, "{ version }")
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError("dagster dev did not start:\n" + (root / "dagster_dev.log").read_text()[-3000:])
                time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture
def dagster_dev(tmp_path):
    server = DagsterDev(tmp_path, REPO / "data" / "sample")
    yield server
    server.stop()


def test_a_12_month_backfill_through_the_graphql_api(dagster_dev):
    params = {"partitionNames": MONTHS, "assetSelection": [{"path": p} for p in ASSETS], "fromFailure": False}
    launched = graphql(dagster_dev.port, LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    deadline = time.monotonic() + 300
    while True:
        status = graphql(dagster_dev.port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if status["status"] in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
            break
        assert time.monotonic() < deadline, f"backfill still {status['status']} after 300 s"
        time.sleep(2)
    assert status["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), status
    # BackfillPolicy.single_run: the 12 months are one staging run, then the unpartitioned assets.
    assert all(run["status"] == "SUCCESS" for run in status["runs"]), status["runs"]

    with duckdb.connect(str(dagster_dev.db), read_only=True) as conn:
        first, last = conn.execute("SELECT min(created_at)::DATE, max(created_at)::DATE FROM crm.deals").fetchone()
        staged = conn.execute("SELECT count(*) FROM crm.deals").fetchone()[0]
        rejected = conn.execute(
            "SELECT count(*) FROM crm.rejects WHERE entity = 'deals' "
            "AND partition_month BETWEEN DATE '2023-07-01' AND DATE '2024-06-01'"
        ).fetchone()[0]
        windows = conn.execute("SELECT DISTINCT pre_months, post_months FROM metrics.adoption").fetchall()
        roi_figures = conn.execute("SELECT count(*) FROM roi.summary").fetchone()[0]
    assert str(first) >= "2023-07-01" and str(last) <= "2024-06-30"
    # Every deal row of the sample created in those months is staged or rejected (counted from the CSV).
    with (REPO / "data" / "sample" / "deals.csv").open(encoding="utf-8") as handle:
        expected = sum(1 for row in csv.DictReader(handle) if "2023-07-01" <= row["created_at"][:10] <= "2024-06-30")
    assert staged + rejected == expected
    # Data from 2023-07 and adoption in 2024-01: windows of 6 months (METRICS.md's own example).
    assert windows == [(6, 6)]
    assert roi_figures > 0

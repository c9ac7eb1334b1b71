"""`crm-roi` as a user runs it: a real process, the real Definitions, a real DuckDB file."""


from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from crm_roi_pipeline_tests.conftest import ASSUMPTIONS, FIXTURES, REPO

# Starts processes: outside the fast tier (pytest -m "not slow"); .ci/run runs it.
pytestmark = pytest.mark.slow

CRM_ROI = str(Path(sys.executable).parent / "crm-roi")


def _run(tmp_path, *args, csv_dir=None, assumptions=None, extra_env=None):
    env = {
        **os.environ,
        "CRM_ROI_CSV_DIR": str(csv_dir or FIXTURES / "data_cloud_workshop"),
        "CRM_ROI_DUCKDB_PATH": str(tmp_path / "out.duckdb"),
        "CRM_ROI_ASSUMPTIONS": str(assumptions or _assumptions(tmp_path)),
        # The default instance, as a user runs it, in a DAGSTER_HOME of the test's own.
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        **(extra_env or {}),
    }
    return subprocess.run([CRM_ROI, *args], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def _assumptions(tmp_path, text=ASSUMPTIONS):
    path = tmp_path / "assumptions.yaml"
    path.write_text(text)
    return path


def test_run_stages_every_table_and_exits_zero(tmp_path):
    proc = _run(tmp_path, "run")
    assert proc.returncode == 0, proc.stderr
    # 50 opportunities, 60 leads, 75 tasks; the 8 campaigns have no ActualCost and are rejected.
    assert "crm/deals" in proc.stdout and "deals: 50 rows staged, 0 rejected" in proc.stdout
    assert "spend: 0 rows staged, 8 rejected" in proc.stdout
    # The headline: the lift's method and why, the verdict read off the before/after interval, which lies
    # wholly below zero on this export (−1,521,726 to −527,029), and the empty pre window beside it.
    out = " ".join(proc.stdout.split())  # the CLI wraps long lines
    assert "from the before/after comparison. Why: benefit_method is auto, but the interrupted time series cannot be fitted" in out
    assert "Won revenue fell: USD 958,415 a month less after adoption than before (95% interval USD −1,521,726 to USD −527,029)" in out
    assert "No clear evidence" not in out
    assert "The pre window holds 0.0 deals a month against 4.5 in the post window" in out
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as conn:
        counts = [conn.execute(f"SELECT count(*) FROM crm.{t}").fetchone()[0] for t in ("deals", "leads", "activities", "spend", "rejects")]
    assert counts == [50, 60, 75, 0, 8]


def test_a_failed_error_check_exits_one_naming_the_check_the_rows_and_the_fix(tmp_path):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "deals.csv").write_text(
        "deal_id,stage,is_closed,is_won,amount,created_at,closed_at\n"
        "D1,Closed Won,true,true,1200,2023-11-02,2023-11-20\n"
        "D2,Closed Won,true,true,-2350,2024-02-08,2024-02-22\n"
    )
    proc = _run(tmp_path, "run", "-q", csv_dir=csv_dir)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert "FAILED crm/deals amounts_not_negative (ERROR check; metrics and ROI are not published from this data)" in err
    assert "D2, -2,350.00" in err and "Fix: correct the amount" in err
    assert "publish_metrics done" not in proc.stdout  # the metrics run never started
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as conn:
        schemas = {r[0] for r in conn.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    assert "metrics" not in schemas and "roi" not in schemas


def test_from_to_limit_the_months(tmp_path):
    # Every CreatedDate in this org is 2024-01-22, and the tasks' dates fall in 2021-12 … 2024-01.
    proc = _run(tmp_path, "run", "--from", "2023-12", "--to", "2023-12")
    # With no deal or lead staged there is nothing to compare: the comparison fails (exit 1), naming why,
    # while staging and metrics.monthly succeed.
    assert proc.returncode == 1, proc.stderr
    assert "FAILED metrics/adoption: Cannot compare before and after adoption: the pre window is empty" in proc.stderr
    assert "FAILED crm/" not in proc.stderr and "FAILED metrics/monthly" not in proc.stderr
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM crm.deals").fetchone()[0] == 0
        months = conn.execute("SELECT DISTINCT strftime(occurred_at, '%Y-%m') FROM crm.activities").fetchall()
    assert months == [("2023-12",)]


def test_a_failing_asset_exits_one_with_its_message(tmp_path):
    # The Power BI org's Lead.csv has no CreatedDate column.
    proc = _run(tmp_path, "run", "-q", csv_dir=FIXTURES / "salesforce_in_powerbi")
    assert proc.returncode == 1
    assert "FAILED crm/leads: Lead.csv: the required column for leads field 'created_at' is missing" in proc.stderr
    assert "Lead.mapping.yaml" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_settings_exit_two_before_any_run(tmp_path):
    bad = _assumptions(tmp_path, ASSUMPTIONS.replace("gross_margin: 0.7", "gross_margin: 7"))
    proc = _run(tmp_path, "run", assumptions=bad)
    assert proc.returncode == 2
    assert "gross_margin" in proc.stderr
    assert not (tmp_path / "out.duckdb").exists()
    proc = _run(tmp_path, "run", extra_env={"CRM_ROI_SOURCE": "csv,pipedrive"})
    assert proc.returncode == 2 and "pipedrive" in proc.stderr
    proc = _run(tmp_path, "run", "--from", "1999-01")
    assert proc.returncode == 2 and "outside the partitions" in proc.stderr
    proc = _run(tmp_path, "run", "--from", "January")
    assert proc.returncode == 2 and "not a month" in proc.stderr


def test_definitions_validate_through_workspace_yaml(tmp_path):
    dagster = str(Path(sys.executable).parent / "dagster")
    proc = subprocess.run(
        [dagster, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_two_runs_at_once_queue_on_the_lock_and_lose_nothing(tmp_path):
    env = {
        **os.environ,
        "CRM_ROI_CSV_DIR": str(REPO / "data" / "sample"),
        "CRM_ROI_DUCKDB_PATH": str(tmp_path / "out.duckdb"),
        "CRM_ROI_ASSUMPTIONS": str(REPO / "data" / "roi_assumptions.yaml"),
        # Both runs record in one instance, as two runs of a team's cron and an analyst would.
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    # The whole history and the sample's months at the same time, as a backfill and an analyst would.
    runs = [
        subprocess.Popen([CRM_ROI, "run", "-q"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        subprocess.Popen([CRM_ROI, "run", "-q", "--from", "2022-01", "--to", "2025-06"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    ]
    for proc in runs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    with open(REPO / "data" / "sample" / "deals.csv", encoding="utf-8") as handle:
        deal_rows = sum(1 for _ in handle) - 1
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as conn:
        staged = conn.execute("SELECT count(*) FROM crm.deals").fetchone()[0]
        rejected = conn.execute("SELECT count(*) FROM crm.rejects WHERE entity = 'deals'").fetchone()[0]
        doubled = conn.execute("SELECT count(*) FROM (SELECT deal_id FROM crm.deals GROUP BY 1 HAVING count(*) > 1)").fetchone()[0]
    assert staged + rejected == deal_rows
    assert doubled == 0


def test_missing_salesforce_credentials_exit_two_naming_the_variables(tmp_path):
    proc = _run(tmp_path, "run", extra_env={"CRM_ROI_SOURCE": "csv,salesforce", "SALESFORCE_CONSUMER_KEY": "3MVG9abc"})
    assert proc.returncode == 2
    assert "SALESFORCE_CONSUMER_SECRET" in proc.stderr and "SALESFORCE_ACCESS_TOKEN" in proc.stderr
    assert "3MVG9abc" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out.duckdb").exists()


def test_secrets_are_bound_through_envvar_so_the_ui_shows_names_not_values(tmp_path):
    code = (
        "from crm_roi_pipeline.definitions import defs\n"
        "from dagster import EnvVar\n"
        "sf = defs.resources['salesforce']\n"
        "print(isinstance(sf.access_token, EnvVar), sf.access_token.env_var_name, sf.consumer_secret)\n"
    )
    env = {**os.environ, "SALESFORCE_ACCESS_TOKEN": "00D!very-secret", "SALESFORCE_INSTANCE_URL": "https://x"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "SALESFORCE_ACCESS_TOKEN", "None"]


def test_the_ui_shows_what_crm_roi_run_materialized(tmp_path):
    # No DAGSTER_HOME: `crm-roi run` records in the project's instance, <project>/dagster_home/ (the project
    # is this test's folder, CRM_ROI_PROJECT_ROOT), and the webserver reading that instance shows its runs and
    # every month of every staged table as materialized: 2015-01 (CRM_ROI_HISTORY_START's default) to this
    # month, all of them on a first run.
    from crm_roi_pipeline_tests.test_webserver import _free_port, _graphql

    env = {**os.environ, "CRM_ROI_PROJECT_ROOT": str(tmp_path), "CRM_ROI_CSV_DIR": str(FIXTURES / "data_cloud_workshop"),
           "CRM_ROI_DUCKDB_PATH": str(tmp_path / "out.duckdb"), "CRM_ROI_ASSUMPTIONS": str(_assumptions(tmp_path))}
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.run([CRM_ROI, "run", "-q"], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = sorted(line.rsplit("(run ", 1)[1].rstrip(")") for line in proc.stdout.splitlines() if "(run " in line)
    assert len(printed) == 2  # stage_crm and publish_metrics
    home = tmp_path / "dagster_home"
    assert home.is_dir()

    today = dt.date.today()
    months = (today.year - 2015) * 12 + today.month
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env={**env, "DAGSTER_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    query = """{
      runsOrError { ... on Runs { results { runId status tags { key value } } } }
      assetNodes { assetKey { path } partitionStats { numMaterialized numPartitions numFailed } } }"""
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                data = _graphql(port, query)["data"]
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the webserver did not answer"
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    runs = data["runsOrError"]["results"]
    assert sorted(run["runId"][:8] for run in runs) == printed
    assert {run["status"] for run in runs} == {"SUCCESS"}
    assert all({"key": "crm_roi/launched_by", "value": "crm-roi run"} in run["tags"] for run in runs)
    stats = {"/".join(node["assetKey"]["path"]): node["partitionStats"] for node in data["assetNodes"]
             if node["assetKey"]["path"][0] == "crm"}
    assert sorted(stats) == ["crm/activities", "crm/deals", "crm/leads", "crm/spend", "crm/tickets"]
    assert all(s == {"numMaterialized": months, "numPartitions": months, "numFailed": 0} for s in stats.values()), stats


def test_ephemeral_leaves_no_instance_behind(tmp_path):
    env = {**os.environ, "CRM_ROI_PROJECT_ROOT": str(tmp_path), "CRM_ROI_CSV_DIR": str(FIXTURES / "data_cloud_workshop"),
           "CRM_ROI_DUCKDB_PATH": str(tmp_path / "out.duckdb"), "CRM_ROI_ASSUMPTIONS": str(_assumptions(tmp_path))}
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.run([CRM_ROI, "run", "-q", "--ephemeral"], env=env, capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "dagster_home").exists()


def test_the_postgres_instance_without_its_url_is_a_plain_error_and_nothing_is_run(tmp_path):
    # deploy/postgres/dagster.yaml copied into DAGSTER_HOME, as docs/operations.md says, but DAGSTER_PG_URL unset.
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "deploy" / "postgres" / "dagster.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_PG_URL"}
    proc = subprocess.run([CRM_ROI, "run", "-q"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env={
        **env, "DAGSTER_HOME": str(home), "CRM_ROI_DUCKDB_PATH": str(tmp_path / "out.duckdb"),
        "CRM_ROI_ASSUMPTIONS": str(_assumptions(tmp_path))})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        f"crm-roi: {home / 'dagster.yaml'}: the Dagster instance settings cannot be read: DAGSTER_PG_URL is not set. "
        "Nothing was run. Fix: set the variable it names, or run with --ephemeral.")
    assert not (tmp_path / "out.duckdb").exists()
    # Set but empty: named too.
    proc = _run(tmp_path, "run", "-q", extra_env={"DAGSTER_HOME": str(home), "DAGSTER_PG_URL": ""})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("crm-roi: DAGSTER_PG_URL is empty: the Dagster instance's database"), proc.stderr
    assert not (tmp_path / "out.duckdb").exists()

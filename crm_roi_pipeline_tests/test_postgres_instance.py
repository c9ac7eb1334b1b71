"""The project deployed as docs/operations.md ("Beyond one machine") says: a real PostgreSQL server holds the Dagster
instance (deploy/postgres/dagster.yaml, its URL in DAGSTER_PG_URL), and the webserver, the daemon and a code
server (deploy/postgres/workspace.yaml) each run as their own process. Through the GraphQL API: a 12-month
backfill, then a backfill and a nightly-schedule run at once; `crm-roi run` against an instance whose
PostgreSQL was stopped; deploy/postgres/prune_runs.py.

The server: CRM_ROI_TEST_PG_URL (a superuser's URL: each test makes its own database; .ci/run starts one), else
a throwaway server started here (postgres_server.py) when the PostgreSQL binaries are installed; else skipped,
saying why.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import duckdb
import pytest
import yaml

from crm_roi_pipeline_tests.conftest import REPO
from crm_roi_pipeline_tests.postgres_server import (
    NoServer,
    PostgresServer,
    free_port,
    new_root,
)
from crm_roi_pipeline_tests.test_dagster_dev import (
    ASSETS,
    LAUNCH,
    MONTHS,
    STATUS,
    graphql,
)

# Starts processes: outside the fast tier (pytest -m "not slow"); .ci/run runs it.
pytestmark = pytest.mark.slow

SAMPLE = REPO / "data" / "sample"
DEPLOY = REPO / "deploy" / "postgres"
BIN = Path(sys.executable).parent
LOCATION = "crm_roi_pipeline"
# Each staged table: its id column and the column (and CSV column) whose month is its partition.
TABLES = {"deals": ("deal_id", "created_at"), "leads": ("lead_id", "created_at"),
          "activities": ("activity_id", "occurred_at"), "spend": (None, "month"),
          "tickets": ("ticket_id", "created_at")}
FINISHED = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")
IN_FLIGHT = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]

LOCATION_STATUS = """{ workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
PARTITIONS = """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  partitionStats { numMaterialized numFailed numMaterializing numPartitions }
  assetPartitionStatuses { ... on TimePartitionStatuses { ranges { startKey endKey status } } } } } }"""
RUNS = """query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
  runId status jobName creationTime startTime endTime tags { key value } } } ... on PythonError { message } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } ... on RunNotFoundError { message } } }"""
DRY_RUN = """mutation($selector: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) { __typename
    ... on DryRunInstigationTick { evaluationResult { skipReason error { message }
      runRequests { runKey jobName runConfigYaml tags { key value } } } }
    ... on PythonError { message } } }"""
LAUNCH_RUN = """mutation($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }"""


# --- the PostgreSQL server --------------------------------------------------------------------------------------

def _connect(url: str, database: str | None = None):
    import psycopg2

    parts = urlsplit(url)
    if database is not None:
        parts = parts._replace(path=f"/{database}")
    return psycopg2.connect(urlunsplit(parts), connect_timeout=10)


@pytest.fixture(scope="session")
def postgres_server_url():
    """A superuser's URL of a PostgreSQL server: CRM_ROI_TEST_PG_URL's, else a throwaway server's."""
    given = os.environ.get("CRM_ROI_TEST_PG_URL")
    if given:
        import psycopg2

        try:
            _connect(given).close()
        except psycopg2.Error as exc:  # a server CI said it started must answer: fail, not skip
            pytest.fail(f"CRM_ROI_TEST_PG_URL does not answer: {str(exc).strip()}")
        yield given
        return
    with own_server("no PostgreSQL server for the instance tests") as (_, url):
        yield url


@contextmanager
def own_server(why: str):
    """A throwaway PostgreSQL server, (the server, its URL), stopped and removed after; where none can start,
    the test is skipped with `why` and the reason."""
    server = PostgresServer(new_root())
    try:
        url = server.start()
    except NoServer as exc:
        server.stop()
        pytest.skip(f"{why}: {exc}")
    try:
        yield server, url
    finally:
        server.stop()


def _new_database(server_url: str) -> tuple[str, str]:
    """A new, empty database on the server: (its name, its URL)."""
    name = f"crm_roi_test_{secrets.token_hex(4)}"
    conn = _connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name, urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def _drop_database(server_url: str, name: str) -> None:
    conn = _connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture
def pg_url(postgres_server_url):
    """The URL of a new database for this test's Dagster instance (dropped afterwards)."""
    name, url = _new_database(postgres_server_url)
    yield url
    _drop_database(postgres_server_url, name)


# --- the deployment -------------------------------------------------------------------------------------------

class Deployment:
    """A code server, the webserver and the daemon, each its own process, on the PostgreSQL instance of
    deploy/postgres/dagster.yaml and the workspace of deploy/postgres/workspace.yaml (its port made free)."""

    def __init__(self, root: Path, pg_url: str, csv_dir: Path):
        self.root = root
        self.home = root / "dagster_home"
        self.home.mkdir()
        shutil.copy(DEPLOY / "dagster.yaml", self.home / "dagster.yaml")
        self.db = root / "crm_roi.duckdb"
        workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
        entry = workspace["load_from"][0]["grpc_server"]
        assert entry["location_name"] == LOCATION
        entry["port"] = self.code_port = free_port()
        self.workspace = root / "workspace.yaml"
        self.workspace.write_text(yaml.safe_dump(workspace))
        self.port = free_port()
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "DAGSTER_PG_URL": pg_url,
            "CRM_ROI_CSV_DIR": str(csv_dir),
            "CRM_ROI_DUCKDB_PATH": str(self.db),
            "CRM_ROI_ASSUMPTIONS": str(REPO / "data" / "roi_assumptions.yaml"),
        }
        self.env.pop("CRM_ROI_REPORTS_DIR", None)
        self.procs: dict[str, subprocess.Popen] = {}
        try:
            # As docs/operations.md starts them: the code server first, then the webserver and the daemon.
            self._start("code-server", [str(BIN / "dagster"), "code-server", "start", "-m", "crm_roi_pipeline.definitions",
                                        "-h", "127.0.0.1", "-p", str(self.code_port), "--location-name", LOCATION])
            self._start("webserver", [str(BIN / "dagster-webserver"), "-w", str(self.workspace), "-h", "127.0.0.1",
                                      "-p", str(self.port)])
            self._start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)])
            self._wait_for_location()
        except BaseException:
            self.stop()
            raise

    def _start(self, name: str, argv: list[str]) -> None:
        log = (self.root / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(argv, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        log.close()

    def logs(self) -> str:
        return "\n".join(f"--- {name}.log (end)\n{(self.root / f'{name}.log').read_text()[-2500:]}"
                         for name in self.procs)

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.logs()}")

    def _wait_for_location(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                entries = graphql(self.port, LOCATION_STATUS)["workspaceOrError"]["locationEntries"]
                entry = next(e for e in entries if e["name"] == LOCATION)
                if entry["locationOrLoadError"] and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation":
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the code location did not load in {timeout:.0f} s:\n{self.logs()}")
            time.sleep(1)

    def query(self, query: str, variables: dict | None = None) -> dict:
        return graphql(self.port, query, variables)

    def runs(self, **run_filter) -> list[dict]:
        return self.query(RUNS, {"filter": run_filter})["runsOrError"]["results"]

    def _until(self, read, done, timeout: float, what, pause: float = 2) -> dict | str:
        """Poll `read()` until `done(value)`, the processes alive; past `timeout`, fail saying `what(value)` with
        the processes' logs."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            value = read()
            if done(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what(value)} after {timeout:.0f} s:\n{self.logs()}")
            time.sleep(pause)

    def _backfill(self, backfill_id: str) -> dict:
        return self.query(STATUS, {"id": backfill_id})["partitionBackfillOrError"]

    def wait_for_backfill(self, backfill_id: str, timeout: float) -> dict:
        return self._until(lambda: self._backfill(backfill_id), lambda status: status["status"] in FINISHED, timeout,
                           lambda status: f"backfill still {status['status']}")

    def wait_for_backfill_run(self, backfill_id: str, timeout: float) -> None:
        """Wait until the daemon has submitted the backfill's first run (queued, or already taken)."""
        status = self._until(lambda: self._backfill(backfill_id),
                             lambda status: status["runs"] or status["status"] in FINISHED, timeout,
                             lambda status: f"the backfill's run was not submitted ({status})", pause=0.5)
        assert status["runs"], f"the backfill ended without a run ({status}):\n{self.logs()}"

    def wait_for_run(self, run_id: str, timeout: float) -> str:
        return self._until(lambda: self.query(RUN, {"id": run_id})["runOrError"]["status"],
                           lambda status: status in ("SUCCESS", "FAILURE", "CANCELED"), timeout,
                           lambda status: f"run {run_id} still {status}")

    def quiesce(self, timeout: float = 180) -> None:
        """Stop the daemon (no new run, no sensor tick), then wait for the runs under way to end: the DuckDB file
        is then ours to read."""
        self._stop("daemon")
        deadline = time.monotonic() + timeout
        while self.runs(statuses=["STARTING", "STARTED", "CANCELING"]):
            if time.monotonic() > deadline:
                raise AssertionError(f"runs still under way after {timeout:.0f} s:\n{self.logs()}")
            time.sleep(2)

    def _stop(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def stop(self) -> None:
        for name in ("daemon", "webserver", "code-server"):
            self._stop(name)


@pytest.fixture
def deployment(tmp_path, pg_url):
    deployed = Deployment(tmp_path, pg_url, SAMPLE)
    try:
        yield deployed
    finally:
        deployed.stop()


# --- what is expected, from the sample's CSV files -------------------------------------------------------------

def csv_rows_by_month(first: str = "0000-00", last: str = "9999-99") -> dict[str, dict[str, int]]:
    """Rows of each sample file by the month of its partition column (YYYY-MM), between first and last."""
    conn = duckdb.connect()
    counts = {}
    for table, (_, column) in TABLES.items():
        rows = conn.execute(
            f"SELECT left({column}, 7) AS m, count(*) FROM read_csv(?, all_varchar = true) "
            "WHERE left({column}, 7) BETWEEN ? AND ? GROUP BY m".replace("{column}", column),
            [str(SAMPLE / f"{table}.csv"), first, last],
        ).fetchall()
        counts[table] = dict(rows)
    conn.close()
    return counts


def csv_rows(table: str) -> int:
    conn = duckdb.connect()
    count = conn.execute("SELECT count(*) FROM read_csv(?, all_varchar = true)", [str(SAMPLE / f"{table}.csv")]).fetchone()[0]
    conn.close()
    return count


def staged_by_month(conn, table: str, first: str = "0000-00", last: str = "9999-99") -> dict[str, int]:
    """Rows staged in crm.<table> plus rows of it rejected, by month."""
    _, column = TABLES[table]
    rows = conn.execute(
        f"""SELECT m, sum(n)::BIGINT FROM (
              SELECT strftime({column}, '%Y-%m') AS m, count(*) AS n FROM crm.{table} GROUP BY m
              UNION ALL
              SELECT strftime(partition_month, '%Y-%m'), count(*) FROM crm.rejects
              WHERE entity = ? AND partition_month IS NOT NULL GROUP BY 1)
            WHERE m BETWEEN ? AND ? GROUP BY m""",
        [table, first, last],
    ).fetchall()
    return dict(rows)


def read_duckdb(path: Path):
    return duckdb.connect(str(path), read_only=True)


def partition_ranges(deployment: Deployment, key: list[str]) -> tuple[dict, list[tuple[str, str, str]]]:
    node = deployment.query(PARTITIONS, {"key": {"path": key}})["assetNodeOrError"]
    ranges = [(r["startKey"], r["endKey"], r["status"]) for r in node["assetPartitionStatuses"]["ranges"]]
    return node["partitionStats"], ranges


def runs_in_postgres(pg_url: str) -> dict[str, str]:
    """The run history as the PostgreSQL database holds it: run id -> status."""
    conn = _connect(pg_url)
    with conn.cursor() as cur:
        cur.execute("SELECT run_id, status FROM runs")
        runs = dict(cur.fetchall())
    conn.close()
    return runs


# --- the tests --------------------------------------------------------------------------------------------------

def test_a_12_month_backfill_through_graphql_on_a_postgres_instance(deployment, pg_url):
    params = {"partitionNames": MONTHS, "assetSelection": [{"path": p} for p in ASSETS], "fromFailure": False}
    launched = deployment.query(LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    status = deployment.wait_for_backfill(backfill_id, timeout=360)
    assert status["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (status, deployment.logs())
    backfill_runs = {run["runId"]: run["status"] for run in status["runs"]}
    assert backfill_runs and set(backfill_runs.values()) == {"SUCCESS"}, status["runs"]

    # The run history: the backfill's runs, tagged with it, succeeded.
    history = deployment.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])
    assert {run["runId"]: run["status"] for run in history} == backfill_runs

    # The partitions' status in the instance: exactly the 12 months materialized, for every staged asset.
    for key in ASSETS:
        if key[0] != "crm":
            continue
        stats, ranges = partition_ranges(deployment, key)
        assert ranges == [(MONTHS[0], MONTHS[-1], "MATERIALIZED")], (key, ranges)
        assert (stats["numMaterialized"], stats["numFailed"], stats["numMaterializing"]) == (12, 0, 0), (key, stats)

    deployment.quiesce()
    all_runs = deployment.runs()
    deployment.stop()
    assert_none_failed(all_runs)  # nor did a sensor's run fail
    # The same history is in the PostgreSQL database, not anywhere else.
    in_postgres = runs_in_postgres(pg_url)
    assert {run_id: in_postgres.get(run_id) for run_id in backfill_runs} == backfill_runs
    assert set(in_postgres) == {run["runId"] for run in all_runs}
    assert not list((deployment.home).glob("**/*.db")), "a SQLite file was written beside the PostgreSQL instance"

    # crm.*: every sample row of those months staged or rejected, once; no other month staged.
    expected = csv_rows_by_month("2023-07", "2024-06")
    with read_duckdb(deployment.db) as conn:
        for key in ASSETS:
            if key[0] != "crm":
                continue
            table = key[1]
            id_column = TABLES[table][0]
            assert staged_by_month(conn, table, "2023-07", "2024-06") == expected[table], table
            column = TABLES[table][1]
            outside = conn.execute(f"SELECT count(*) FROM crm.{table} WHERE {column} < DATE '2023-07-01' "
                                   f"OR {column} >= DATE '2024-07-01'").fetchone()[0]
            assert outside == 0, f"crm.{table}: {outside} rows of months not backfilled"
            if id_column:
                rows, ids = conn.execute(f"SELECT count(*), count(DISTINCT {id_column}) FROM crm.{table}").fetchone()
                assert rows == ids, f"crm.{table}: {rows - ids} rows doubled"


def test_a_backfill_and_the_nightly_run_at_once_on_a_postgres_instance(deployment, pg_url):
    # The nightly schedule's run, as its tick forms it (evaluated by the code server), launched as the UI's
    # "Test schedule" launches it; the database is empty, so it stages every month.
    selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "scheduleName": "nightly_refresh"}
    tick = deployment.query(DRY_RUN, {"selector": selector, "timestamp": time.time()})["scheduleDryRun"]
    assert tick["__typename"] == "DryRunInstigationTick", tick
    requests = tick["evaluationResult"]["runRequests"]
    assert len(requests) == 1, tick["evaluationResult"]
    nightly = requests[0]
    tags = {tag["key"]: tag["value"] for tag in nightly["tags"]}
    assert tags["crm_roi/launched_by"] == "nightly_refresh"
    assert tags["dagster/asset_partition_range_start"] == "2015-01-01", tags
    run_params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
                     "jobName": nightly["jobName"] or "stage_crm"},
        "runConfigData": nightly["runConfigYaml"],
        "executionMetadata": {"tags": [*nightly["tags"], {"key": "dagster/schedule_name", "value": "nightly_refresh"}]},
    }
    backfill_params = {"partitionNames": MONTHS, "assetSelection": [{"path": ["crm", t]} for t in TABLES],
                       "fromFailure": False}

    # At once: the nightly run is launched as soon as the daemon has submitted the backfill's run (on its next
    # pass over backfills), so both are in the queue together.
    launched_backfill = deployment.query(LAUNCH, {"params": backfill_params})["launchPartitionBackfill"]
    assert launched_backfill["__typename"] == "LaunchBackfillSuccess", launched_backfill
    deployment.wait_for_backfill_run(launched_backfill["backfillId"], timeout=180)
    launched_run = deployment.query(LAUNCH_RUN, {"params": run_params})["launchPipelineExecution"]
    assert launched_run["__typename"] == "LaunchRunSuccess", launched_run
    nightly_id = launched_run["run"]["runId"]
    backfill = deployment.wait_for_backfill(launched_backfill["backfillId"], timeout=420)
    nightly_status = deployment.wait_for_run(nightly_id, timeout=420)
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (backfill, deployment.logs())
    assert [run["status"] for run in backfill["runs"]] == ["SUCCESS"], backfill["runs"]
    assert nightly_status == "SUCCESS", deployment.logs()

    # Both runs in the history, in PostgreSQL, and at once: each was in the instance (queued or running) before
    # the other ended. The daemon's queue holds a run whose first step's pool, crm_roi_duckdb (limit 1), is
    # taken, so the DuckDB writes did not collide.
    backfill_run_id = backfill["runs"][0]["runId"]
    deployment.quiesce()
    history = {run["runId"]: run for run in deployment.runs()}
    deployment.stop()
    one, other = history[nightly_id], history[backfill_run_id]
    assert one["creationTime"] < other["endTime"] and other["creationTime"] < one["endTime"], (one, other)
    assert_none_failed(history.values())
    in_postgres = runs_in_postgres(pg_url)
    assert in_postgres[nightly_id] == "SUCCESS"
    assert in_postgres[backfill_run_id] == "SUCCESS"
    assert set(in_postgres) == set(history)

    # crm.*: every sample row staged or rejected exactly once, as one clean run over every month leaves it.
    expected = csv_rows_by_month()
    with read_duckdb(deployment.db) as conn:
        for table, (id_column, _) in TABLES.items():
            assert staged_by_month(conn, table) == expected[table], table
            staged = conn.execute(f"SELECT count(*) FROM crm.{table}").fetchone()[0]
            rejected = conn.execute("SELECT count(*) FROM crm.rejects WHERE entity = ?", [table]).fetchone()[0]
            assert staged + rejected == csv_rows(table), table
            distinct = (f"count(DISTINCT {id_column})" if id_column else
                        f"(SELECT count(*) FROM (SELECT DISTINCT * FROM crm.{table}))")
            assert conn.execute(f"SELECT count(*), {distinct} FROM crm.{table}").fetchone() == (staged, staged), table
        rejects, distinct_rejects = conn.execute(
            "SELECT count(*), count(DISTINCT (entity, source_file, source_row)) FROM crm.rejects").fetchone()
        assert rejects == distinct_rejects, "a rejected row recorded twice"


def assert_none_failed(runs) -> None:
    """No run failed or was canceled. A metrics run the refresh_metrics sensor queued after the staging runs
    may still wait in the queue when the test stops the daemon (`quiesce`); waiting is no failure."""
    runs = list(runs)
    bad = [(run["runId"], run["jobName"], run["status"]) for run in runs if run["status"] not in ("SUCCESS", "QUEUED")]
    queued = [run for run in runs if run["status"] == "QUEUED"]
    assert bad == [], bad
    assert all(run["jobName"] != "stage_crm" and not any(t["key"] == "dagster/backfill" for t in run["tags"])
               for run in queued), [(run["runId"], run["jobName"], run["tags"]) for run in queued]


def _fingerprint(path: Path) -> tuple[str, float]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime


def test_a_run_after_postgres_stopped_fails_plainly_and_leaves_duckdb_as_it_was(tmp_path):
    with own_server("no PostgreSQL binaries to start (and stop) a server of this test's own") as (server, url):
        password = urlsplit(url).password
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
        db = tmp_path / "crm_roi.duckdb"
        env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": url, "CRM_ROI_CSV_DIR": str(SAMPLE),
               "CRM_ROI_DUCKDB_PATH": str(db), "CRM_ROI_ASSUMPTIONS": str(REPO / "data" / "roi_assumptions.yaml")}
        command = [str(BIN / "crm-roi"), "run", "--from", "2023-12", "--to", "2024-01", "-q"]
        first = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stdout + first.stderr
        assert len(runs_in_postgres(url)) == 2  # the staging run and the metrics run, recorded in PostgreSQL
        before = _fingerprint(db)

        server.stop(remove=False)  # the database goes away between two runs
        second = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2, second.stdout + second.stderr
    shown = url.replace(f":{password}@", ":***@")
    assert second.stderr.startswith(f"crm-roi: the Dagster instance's database {shown} (DAGSTER_PG_URL"), second.stderr
    assert "cannot be reached: connection to server at" in second.stderr, second.stderr
    assert "Nothing was run and nothing was written to DuckDB" in second.stderr
    assert "Traceback" not in second.stderr
    assert password not in second.stdout + second.stderr
    assert _fingerprint(db) == before


MATERIALIZED = """
import sys
from dagster import AssetKey, DagsterInstance
instance = DagsterInstance.get()
for key in sys.argv[1:]:
    print(key, ",".join(sorted(instance.get_materialized_partitions(AssetKey(key.split("/"))))))
"""


def test_pruning_old_runs_keeps_the_runs_behind_the_latest_materializations(tmp_path, pg_url):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": pg_url, "CRM_ROI_CSV_DIR": str(SAMPLE),
           "CRM_ROI_DUCKDB_PATH": str(tmp_path / "crm_roi.duckdb"),
           "CRM_ROI_ASSUMPTIONS": str(REPO / "data" / "roi_assumptions.yaml")}

    def run(*argv: str) -> subprocess.CompletedProcess:
        done = subprocess.run(argv, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    # Twice the same months: the second run's materializations replace the first's.
    for _ in range(2):
        run(str(BIN / "crm-roi"), "run", "--from", "2023-12", "--to", "2024-01", "-q")
    conn = _connect(pg_url)
    with conn.cursor() as cur:
        cur.execute("SELECT run_id FROM runs ORDER BY create_timestamp")
        first_staging, first_metrics, second_staging, second_metrics = [row[0] for row in cur.fetchall()]
    conn.close()
    prune = [str(Path(sys.executable)), str(DEPLOY / "prune_runs.py"), "--older-than-days", "0"]

    listed = run(*prune).stdout  # without --yes: lists, deletes nothing
    assert f"would delete run {first_staging}" in listed and f"would delete run {first_metrics}" in listed, listed
    assert second_staging not in listed and second_metrics not in listed, listed
    assert len(runs_in_postgres(pg_url)) == 4

    deleted = run(*prune, "--yes").stdout
    assert "2 of 4 finished runs" in deleted, deleted
    assert set(runs_in_postgres(pg_url)) == {second_staging, second_metrics}
    # The months are still materialized: the runs behind their latest materializations were kept.
    shown = run(str(Path(sys.executable)), "-c", MATERIALIZED, "crm/deals", "crm/tickets").stdout.split()
    assert shown == ["crm/deals", "2023-12-01,2024-01-01", "crm/tickets", "2023-12-01,2024-01-01"], shown

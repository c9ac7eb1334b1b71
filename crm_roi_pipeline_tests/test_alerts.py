"""Alerts on failed runs (docs/alerts.md): the message built from real failed runs, the run-failure sensor
evaluated on a real instance, delivery with retries to a real local HTTP server, no secret in what is sent or
logged, and `crm-roi run` alerting its own failed run once."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from crm_roi_pipeline_tests.conftest import ASSUMPTIONS, Project

UI = "http://dagster.example:3000/"
HOOK = "/services/T0001/B0002/hook-Key-5150"  # a Slack-like path: the webhook URL's own secret
# Secret values of the settings that hold them; distinctive, so that a leak cannot hide in other text.
SECRETS = {
    "SALESFORCE_PASSWORD": "pw-Zebra-7731",
    "SALESFORCE_SECURITY_TOKEN": "tok-Quince-4402",
    "SALESFORCE_CONSUMER_SECRET": "cs-Walrus-0919",
    "HUBSPOT_ACCESS_TOKEN": "pat-na1-Heron-5566",
    "DAGSTER_PG_URL": "postgresql://dagster:pg-Otter-8080@db.internal:5432/dagster",
}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
JULY = {"dagster/asset_partition_range_start": "2024-07-01", "dagster/asset_partition_range_end": "2024-07-01"}
# One won deal and one with a negative won amount, in July 2024: the blocking ERROR check
# `crm/deals amounts_not_negative` fails (test_blocking_checks.py).
NEGATIVE_DEALS = """\
deal_id,is_closed,is_won,amount,created_at,closed_at
W1,true,true,1200.00,2024-07-01T09:00:00Z,2024-07-10T09:00:00Z
N1,true,true,-2350.00,2024-07-08T10:00:00Z,2024-07-22T10:00:00Z
"""
# No created_at column: the deals asset itself fails, with the source's message.
NO_CREATED_AT = """\
deal_id,is_closed,is_won,amount,closed_at
W1,true,true,1200.00,2024-07-10T09:00:00Z
"""


@dataclass
class FailedRuns:
    project: Project
    cursor: str  # the sensor's cursor from before any of these runs
    check: object  # ExecuteInProcessResult of each failed run
    asset: object
    secret: object
    cli: object

    @property
    def instance(self):
        return self.project.instance


def _deals_run(project: Project, memory_limit: str | None = None, tags: dict | None = None):
    """crm/deals and its checks for July 2024, as one run that may fail."""
    from dagster import AssetKey, materialize

    from crm_roi_pipeline.resources import Warehouse
    from crm_roi_pipeline.staging.assets import staging_assets
    from crm_roi_pipeline.staging.checks import staging_checks

    deals = AssetKey(["crm", "deals"])
    assets = [a for a in staging_assets if a.key == deals]
    checks = [c for c in staging_checks if next(iter(c.check_keys)).asset_key == deals]
    resources = project.resources()
    if memory_limit is not None:
        resources["warehouse"] = Warehouse(database=str(project.db_path), memory_limit=memory_limit)
    return materialize([*assets, *checks], resources=resources, instance=project.instance,
                       tags={**JULY, **(tags or {})}, raise_on_error=False)


@pytest.fixture(scope="module")
def failed(tmp_path_factory) -> FailedRuns:
    """Four failed runs in one instance, made once for the module (each run takes most of a second)."""
    from dagster import build_sensor_context

    from crm_roi_pipeline.alerting import Alerts, alert_on_run_failure

    project = Project(tmp_path_factory.mktemp("alerts"))
    # The sensor's first tick only sets its cursor to the instance's latest run event: none yet.
    context = build_sensor_context(instance=project.instance, resources={"alerts": Alerts()})
    alert_on_run_failure.evaluate_tick(context)
    project.write("deals.csv", NEGATIVE_DEALS)
    check = _deals_run(project)
    # A secret pasted into the wrong setting: DuckDB refuses it as a memory size and the message quotes it.
    secret = _deals_run(project, memory_limit=SECRETS["SALESFORCE_PASSWORD"])
    # What `crm-roi run` launches: tagged so, and alerted by the CLI rather than the sensor.
    cli = _deals_run(project, memory_limit="lots", tags={"crm_roi/launched_by": "crm-roi run"})
    project.write("deals.csv", NO_CREATED_AT)
    asset = _deals_run(project)
    assert not any(r.success for r in (check, secret, cli, asset))
    yield FailedRuns(project, context.cursor, check, asset, secret, cli)
    project.give_back_instance()


@pytest.fixture
def secrets_set(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    for name in ("CRM_ROI_ALERT_WEBHOOK", "CRM_ROI_UI_URL"):
        monkeypatch.delenv(name, raising=False)


def _text(result, ui_url=UI, secrets=()) -> str:
    from crm_roi_pipeline.alerts import alert_text, run_messages

    run = result.dagster_run
    return alert_text(run.run_id, run.job_name, run.tags, run_messages(result.all_events), ui_url, secrets)


def _tick(failed: FailedRuns, alerts, cursor: str | None = None) -> str:
    """One evaluation of the sensor against the instance, as the daemon's tick makes it; its new cursor."""
    from dagster import build_sensor_context

    from crm_roi_pipeline.alerting import alert_on_run_failure

    context = build_sensor_context(instance=failed.instance, cursor=cursor or failed.cursor,
                                   resources={"alerts": alerts})
    alert_on_run_failure.evaluate_tick(context)
    return context.cursor


def _sent(httpserver) -> list[str]:
    """The text of each alert the server received, checking each is Slack's body and nothing more."""
    bodies = [request.get_json() for request, _ in httpserver.log]
    assert all(set(body) == {"text"} for body in bodies), bodies
    return [body["text"] for body in bodies]


# --- the message, from real failed runs ---------------------------------------------------------------------

def test_a_failed_error_check_is_told_by_its_name_rows_and_fix_with_the_runs_link(failed):
    run_id = failed.check.run_id
    lines = _text(failed.check).splitlines()
    assert lines[0] == "crm_roi_pipeline: a run failed (selected assets, month 2024-07)"
    # The check's own result: which check, the row (N1, its amount), and the fix.
    assert lines[1].startswith("• crm/deals amounts_not_negative (ERROR check; metrics and ROI are not published "
                               "from this data): 1 found (first 1: csv, N1, -2,350.00, "), lines[1]
    assert "Fix: correct the amount" in lines[1]
    assert lines[2] == f"Run {run_id}: http://dagster.example:3000/runs/{run_id}"
    assert len(lines) == 3


def test_a_failed_asset_is_told_by_its_key_and_its_errors_first_line_escaped_for_slack(failed):
    lines = _text(failed.asset, ui_url=None).splitlines()
    assert lines[0] == "crm_roi_pipeline: a run failed (selected assets, month 2024-07)"
    # The source's message, with Slack's three markup characters escaped (<column> would be read as a link).
    assert lines[1] == (
        "• crm/deals: deals.csv: the required column for deals field 'created_at' is missing (looked for created_at). "
        "Fix: export the file with that column, or map another column to it in deals.mapping.yaml: "
        "'columns: {created_at: &lt;column&gt;}'.")
    assert lines[2] == f"Run {failed.asset.run_id}"  # no CRM_ROI_UI_URL: no link


def test_the_cli_and_the_alert_tell_a_failure_in_the_same_words(failed):
    from crm_roi_pipeline.alerts import failure_messages
    from crm_roi_pipeline.cli import failure_messages as printed

    for result in (failed.check, failed.asset, failed.secret):
        assert failure_messages(result.all_events) == printed(result)


def test_the_job_and_who_launched_it_are_in_the_header():
    from crm_roi_pipeline.alerts import alert_text

    tags = {"dagster/asset_partition_range_start": "2023-01-01", "dagster/asset_partition_range_end": "2024-12-01",
            "crm_roi/launched_by": "nightly_refresh"}
    text = alert_text("r1", "stage_crm", tags, ["crm/leads: boom"], "http://ui/")
    assert text == ("crm_roi_pipeline: a run failed (stage_crm, months 2023-01 … 2024-12, launched by nightly_refresh)\n"
                    "• crm/leads: boom\nRun r1: http://ui/runs/r1")


def test_the_message_is_short_first_lines_five_failures_at_most_each_cut():
    from crm_roi_pipeline.alerts import ITEM_CHARS, alert_text

    messages = [f"metrics/m{i}: Binder Error: column x{i} not found\n\nLINE 1: SELECT x{i}" for i in range(7)]
    messages[0] = "crm/deals: " + "y" * 1000
    lines = alert_text("r1", "publish_metrics", {}, messages, None).splitlines()
    assert lines[0] == "crm_roi_pipeline: a run failed (publish_metrics)"
    assert lines[1] == "• " + ("crm/deals: " + "y" * 1000)[: ITEM_CHARS - 1] + "…"
    assert lines[2:6] == [f"• metrics/m{i}: Binder Error: column x{i} not found" for i in range(1, 5)]
    assert lines[6:] == ["… and 2 more failures, in the run's logs", "Run r1"]


def test_a_run_that_failed_before_any_step_is_told_by_the_runs_own_failure():
    from dagster import DagsterEvent, DagsterEventType
    from dagster._core.events import JobFailureData
    from dagster._utils.error import SerializableErrorInfo

    from crm_roi_pipeline.alerts import run_messages

    error = SerializableErrorInfo("DagsterResourceFunctionError: the resource warehouse failed to start\nmore\n",
                                  [], "DagsterResourceFunctionError")
    event = DagsterEvent(DagsterEventType.RUN_FAILURE.value, "stage_crm", message="Execution failed.",
                         event_specific_data=JobFailureData(error=error))
    assert run_messages([event]) == ["DagsterResourceFunctionError: the resource warehouse failed to start"]
    assert run_messages([]) == ["the run failed; see the Dagster run logs"]


# --- secrets ---------------------------------------------------------------------------------------------------

def test_every_secret_setting_is_known_to_the_scrubber():
    from crm_roi_pipeline.alerts import secret_variables

    assert {*SECRETS, "SALESFORCE_ACCESS_TOKEN", "CRM_ROI_ALERT_WEBHOOK"} <= set(secret_variables({}))
    # Another tool's secret in the same environment is caught by its name; a plain setting is not.
    names = secret_variables({"GITHUB_TOKEN": "x", "DB_PASSWORD": "x", "CRM_ROI_SOURCE": "csv"})
    assert {"GITHUB_TOKEN", "DB_PASSWORD"} <= set(names) and "CRM_ROI_SOURCE" not in names


def test_a_secret_in_a_failure_message_is_scrubbed_from_the_alert(failed, secrets_set):
    from crm_roi_pipeline.alerts import secret_values

    # The run's own message quotes the value it was given, which is the Salesforce password.
    assert SECRETS["SALESFORCE_PASSWORD"] in _text(failed.secret)
    text = _text(failed.secret, secrets=secret_values(extra=[f"http://localhost:1{HOOK}"]))
    assert text.splitlines()[1].startswith(
        "• crm/deals: CRM_ROI_DUCKDB_MEMORY_LIMIT='[redacted]' is not a memory size (Parser Error: Memory must have a number")
    assert SECRETS["SALESFORCE_PASSWORD"] not in text


def test_urls_tokens_and_the_webhook_itself_are_scrubbed(secrets_set):
    from crm_roi_pipeline.alerts import alert_text, secret_values

    webhook = f"https://hooks.example.com{HOOK}"
    messages = [
        f"metrics/facts: cannot reach {SECRETS['DAGSTER_PG_URL']} (password pg-Otter-8080)",
        f"crm/leads: GET https://api.example.com/v1?access_token={SECRETS['HUBSPOT_ACCESS_TOKEN']}&page=2 failed",
        f"crm/deals: login as ops:{SECRETS['SALESFORCE_SECURITY_TOKEN']} via https://bob:hunter22@sf.example/x",
        f"roi/summary: posting to {webhook} and to {HOOK} failed",
    ]
    text = alert_text("r1", "stage_crm", {}, messages, "https://viewer:ui-Pass-31@dagster.example/",
                      secret_values(extra=[webhook]))
    assert text.splitlines()[1:] == [
        "• metrics/facts: cannot reach [redacted] (password [redacted])",
        "• crm/leads: GET https://api.example.com/v1?access_token=[redacted]&amp;page=2 failed",
        "• crm/deals: login as ops:[redacted] via https://bob:[redacted]@sf.example/x",
        "• roi/summary: posting to [redacted] and to [redacted] failed",
        "Run r1: https://viewer:[redacted]@dagster.example/runs/r1",
    ]
    for value in [*SECRETS.values(), "pg-Otter-8080", "hunter22", "ui-Pass-31", webhook, HOOK]:
        assert value not in text


# --- the sensor, on a real instance -------------------------------------------------------------------------

def test_the_sensor_alerts_each_failed_run_once_and_leaves_the_clis_runs_to_it(failed, httpserver, secrets_set):
    from crm_roi_pipeline.alerting import Alerts

    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    alerts = Alerts(webhook_url=httpserver.url_for(HOOK), ui_url=UI)
    cursor = _tick(failed, alerts)
    sent = _sent(httpserver)
    # One alert per failed run, in the order they failed; none for the run `crm-roi run` launched.
    runs = [failed.check, failed.secret, failed.asset]
    assert [re.findall(rf"^Run ({UUID}): ", text, re.M) for text in sent] == [[r.run_id] for r in runs]
    assert all(f"http://dagster.example:3000/runs/{r.run_id}" in text for r, text in zip(runs, sent))
    assert "crm/deals amounts_not_negative (ERROR check" in sent[0]
    assert "crm/deals: CRM_ROI_DUCKDB_MEMORY_LIMIT='[redacted]' is not a memory size" in sent[1]
    assert "'created_at' is missing" in sent[2]
    for text in sent:
        assert not any(value in text for value in [*SECRETS.values(), HOOK, httpserver.url_for(HOOK)])
    # The next tick starts past these runs: nothing is sent twice.
    _tick(failed, alerts, cursor)
    assert len(httpserver.log) == 3


def test_the_sensor_binds_the_webhook_from_the_environment_and_sends_nothing_without_it(failed, httpserver, monkeypatch):
    from crm_roi_pipeline.alerting import Alerts

    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    monkeypatch.delenv("CRM_ROI_ALERT_WEBHOOK", raising=False)
    monkeypatch.delenv("CRM_ROI_UI_URL", raising=False)
    _tick(failed, Alerts.from_env())
    assert httpserver.log == []

    monkeypatch.setenv("CRM_ROI_ALERT_WEBHOOK", httpserver.url_for(HOOK))
    monkeypatch.setenv("CRM_ROI_UI_URL", "http://ui.example")
    alerts = Alerts.from_env()
    from dagster import EnvVar

    assert alerts.webhook_url == EnvVar("CRM_ROI_ALERT_WEBHOOK")  # the UI shows the variable, not its key
    _tick(failed, alerts)
    sent = _sent(httpserver)
    assert len(sent) == 3 and f"http://ui.example/runs/{failed.check.run_id}" in sent[0]


def test_an_unreachable_webhook_changes_nothing_but_a_warning(failed, capfd):
    from dagster import DagsterRunStatus

    from crm_roi_pipeline.alerting import Alerts

    with _closed_port() as port:
        webhook = f"http://127.0.0.1:{port}{HOOK}"
        began = time.monotonic()
        _tick(failed, Alerts(webhook_url=webhook, retry_wait_seconds=0.01, timeout_seconds=1))  # raises nothing
    assert time.monotonic() - began < 5
    assert failed.instance.get_run_by_id(failed.check.run_id).status == DagsterRunStatus.FAILURE
    # The sensor logs through its tick's Dagster logger (the tick's log in the UI), which writes to stderr here.
    warnings = [line for line in capfd.readouterr().err.splitlines() if " - WARNING - " in line]
    assert [w.split(" - WARNING - ")[1] for w in warnings] == [
        f"the alert for run {run.run_id} was not delivered to CRM_ROI_ALERT_WEBHOOK: ConnectionError on each of 4 tries"
        for run in (failed.check, failed.secret, failed.asset)
    ]
    assert not any(HOOK in w or str(port) in w for w in warnings)


# --- delivery --------------------------------------------------------------------------------------------------

def test_a_500_is_retried_and_the_alert_arrives_once(failed, httpserver):
    from crm_roi_pipeline.alerting import Alerts

    httpserver.expect_ordered_request(HOOK, method="POST").respond_with_data("busy", status=500)
    httpserver.expect_ordered_request(HOOK, method="POST").respond_with_data("ok")
    alerts = Alerts(webhook_url=httpserver.url_for(HOOK), retry_wait_seconds=0.01)
    assert alerts.alert(failed.check.dagster_run, failed.check.all_events)
    assert len(httpserver.log) == 2
    assert [status for _, response in httpserver.log for status in [response.status_code]] == [500, 200]
    first, second = _sent(httpserver)
    assert first == second == _text(failed.check, ui_url=None)  # the same alert, delivered once


def test_a_429_waits_as_told_then_delivers(failed, httpserver):
    from crm_roi_pipeline.alerting import Alerts

    httpserver.expect_ordered_request(HOOK).respond_with_data("slow down", status=429, headers={"Retry-After": "1"})
    httpserver.expect_ordered_request(HOOK).respond_with_data("ok")
    began = time.monotonic()
    assert Alerts(webhook_url=httpserver.url_for(HOOK), retry_wait_seconds=0.01).alert(
        failed.check.dagster_run, failed.check.all_events)
    assert 1 <= time.monotonic() - began < 3  # Retry-After's second, not the 0.01 s backoff
    assert len(httpserver.log) == 2


def test_a_refusal_is_not_retried_and_is_logged_without_the_url(failed, httpserver, caplog):
    from crm_roi_pipeline.alerting import Alerts

    httpserver.expect_request(HOOK).respond_with_data("no_service", status=404)
    with caplog.at_level(logging.WARNING, logger="crm_roi_pipeline.alerts"):
        delivered = Alerts(webhook_url=httpserver.url_for(HOOK), retry_wait_seconds=0.01).alert(
            failed.asset.dagster_run, failed.asset.all_events)
    assert not delivered
    assert len(httpserver.log) == 1
    assert caplog.messages == [f"the alert for run {failed.asset.run_id} was not delivered to CRM_ROI_ALERT_WEBHOOK: "
                               "it answered HTTP 404 'no_service' (not retried)"]


def test_a_server_that_never_answers_costs_a_bounded_time(failed, caplog):
    from crm_roi_pipeline.alerting import Alerts

    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:  # accepts connections, never answers
        webhook = f"http://127.0.0.1:{silent.getsockname()[1]}{HOOK}"
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="crm_roi_pipeline.alerts"):
            delivered = Alerts(webhook_url=webhook, retry_wait_seconds=0.01, timeout_seconds=0.2).alert(
                failed.check.dagster_run, failed.check.all_events)
        elapsed = time.monotonic() - began
    assert not delivered
    assert 0.8 <= elapsed < 3  # four tries of 0.2 s each, and short waits between them
    assert caplog.messages == [f"the alert for run {failed.check.run_id} was not delivered to CRM_ROI_ALERT_WEBHOOK: "
                               "ReadTimeout on each of 4 tries"]


def test_without_a_webhook_nothing_is_sent(failed, httpserver):
    from crm_roi_pipeline.alerting import Alerts

    assert not Alerts(ui_url=UI).alert(failed.check.dagster_run, failed.check.all_events)
    assert httpserver.log == []


@contextlib.contextmanager
def _closed_port():
    """A local port nothing listens on: connections to it are refused at once."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    yield port


# --- crm-roi run ---------------------------------------------------------------------------------------------

def _cli(tmp_path: Path, extra_env: dict) -> subprocess.CompletedProcess:
    """`crm-roi run` on failing data, recording its runs in an instance under tmp_path (`crm-roi run` records
    them in the project's dagster_home/ unless DAGSTER_HOME says otherwise)."""
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir(exist_ok=True)
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (csv_dir / "deals.csv").write_text(NEGATIVE_DEALS)
    (tmp_path / "assumptions.yaml").write_text(ASSUMPTIONS)
    env = {
        **{k: v for k, v in os.environ.items()
           if k not in ("DAGSTER_HOME", "CRM_ROI_ALERT_WEBHOOK", "CRM_ROI_UI_URL")},
        "CRM_ROI_CSV_DIR": str(csv_dir),
        "CRM_ROI_DUCKDB_PATH": str(tmp_path / "out.duckdb"),
        "CRM_ROI_ASSUMPTIONS": str(tmp_path / "assumptions.yaml"),
        "DAGSTER_HOME": str(home),
        **SECRETS,
        **extra_env,
    }
    cli = Path(sys.executable).parent / "crm-roi"
    return subprocess.run([str(cli), "run", "-q", "--from", "2024-07", "--to", "2024-07"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


@pytest.mark.slow
def test_crm_roi_run_alerts_its_failed_run_once_even_beside_a_daemons_sensor(tmp_path, httpserver):
    from dagster import DagsterInstance, build_sensor_context

    from crm_roi_pipeline.alerting import Alerts, alert_on_run_failure

    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    webhook = httpserver.url_for(HOOK)
    # The instance a daemon would watch (DAGSTER_HOME), with its sensor's cursor set before the run.
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance = DagsterInstance.from_config(str(home))
    alerts = Alerts(webhook_url=webhook, ui_url=UI)
    context = build_sensor_context(instance=instance, resources={"alerts": alerts})
    alert_on_run_failure.evaluate_tick(context)

    proc = _cli(tmp_path, {"CRM_ROI_ALERT_WEBHOOK": webhook, "CRM_ROI_UI_URL": UI})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED crm/deals amounts_not_negative" in proc.stderr
    assert "not delivered" not in proc.stderr
    (text,) = _sent(httpserver)
    run_id = re.search(rf"^Run ({UUID}): ", text, re.M).group(1)
    assert text.splitlines()[0] == "crm_roi_pipeline: a run failed (stage_crm, month 2024-07, launched by crm-roi run)"
    assert text.splitlines()[1].startswith("• crm/deals amounts_not_negative (ERROR check")
    assert text.splitlines()[-1] == f"Run {run_id}: http://dagster.example:3000/runs/{run_id}"
    assert not any(value in text for value in [*SECRETS.values(), HOOK, webhook])

    # The daemon's sensor, on its next tick, sees the failed run and leaves it to the CLI.
    failed_runs = instance.get_runs()
    assert [r.run_id for r in failed_runs] == [run_id]
    alert_on_run_failure.evaluate_tick(
        build_sensor_context(instance=instance, cursor=context.cursor, resources={"alerts": alerts}))
    assert len(httpserver.log) == 1
    instance.dispose()


@pytest.mark.slow
def test_crm_roi_run_sends_nothing_without_the_webhook(tmp_path, httpserver):
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    proc = _cli(tmp_path, {"CRM_ROI_UI_URL": UI})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED crm/deals amounts_not_negative" in proc.stderr
    assert httpserver.log == []

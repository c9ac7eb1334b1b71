"""The nightly schedule asks for the months that changed, at a given evaluation time."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import DefaultScheduleStatus, SkipReason, build_schedule_context

from crm_roi_pipeline.schedules import NIGHTLY_CRON, NIGHTLY_TIMEZONE, nightly_refresh
from crm_roi_pipeline.staging.partitions import monthly_partitions
from crm_roi_pipeline_tests.conftest import Project, planned_events_as_ranges

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)
CURRENT = monthly_partitions.get_last_partition_key()
DEALS = "deal_id,is_won,created_at\nD1,false,2024-03-05\nD2,false,2024-05-05\n"


@pytest.fixture
def env(project, monkeypatch):
    """The schedule reads the environment as a daemon would: the project's folder, database and assumptions."""
    monkeypatch.setenv("CRM_ROI_CSV_DIR", str(project.csv_dir))
    monkeypatch.setenv("CRM_ROI_DUCKDB_PATH", str(project.db_path))
    monkeypatch.setenv("CRM_ROI_ASSUMPTIONS", str(project.assumptions))
    monkeypatch.setenv("CRM_ROI_SOURCE", "csv")
    return monkeypatch


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Project:
    """DEALS staged over every month once; a test goes on from a copy of its database (Project.use_database)."""
    project = Project(tmp_path_factory.mktemp("staged"))
    project.write("deals.csv", DEALS)
    with planned_events_as_ranges():
        assert project.stage().success
    return project


def _staged(project, staged) -> None:
    project.write("deals.csv", DEALS)
    project.use_database(staged.db_path)


def _evaluate(when: dt.datetime = NOW):
    return nightly_refresh(build_schedule_context(scheduled_execution_time=when))


def _ranges(result) -> list[tuple[str, str]]:
    requests = result if isinstance(result, list) else [result]
    return [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests]


def test_a_new_export_is_staged_whole_then_an_unchanged_one_not_at_all(project, env, staged):
    project.write("deals.csv", DEALS)
    # Nothing staged yet: every month, as one run.
    assert _ranges(_evaluate()) == [("2015-01-01", CURRENT)]
    _staged(project, staged)  # what staging every month leaves
    # The same files the next night: no run, and the reason says so.
    skipped = _evaluate()
    assert isinstance(skipped, SkipReason)
    assert "changed since last staged: nothing" in skipped.skip_message


def test_a_changed_month_is_the_only_month_requested(project, env, staged):
    _staged(project, staged)
    project.write("deals.csv", DEALS.replace("D2,false,2024-05-05", "D2,true,2024-05-05"))
    requests = _evaluate()
    assert _ranges(requests) == [("2024-05-01", "2024-05-01")]
    assert requests[0].run_key == f"nightly-{NOW:%Y-%m-%d}-2024-05-2024-05"
    assert "deals 2024-05" in requests[0].tags["crm_roi/why"]


@pytest.mark.parametrize("sources", ["salesforce", "hubspot", "salesforce,hubspot"])
def test_api_sources_pull_the_current_month_and_sync_the_rest(env, sources):
    env.setenv("CRM_ROI_SOURCE", sources)
    # On the first of a month the month has just begun: it is the current partition (end_offset 1).
    assert _ranges(_evaluate(dt.datetime(2024, 3, 1, 2, 0, tzinfo=UTC))) == [("2024-03-01", "2024-03-01")]


def test_csv_with_an_api_source_adds_the_current_month(project, env, staged):
    _staged(project, staged)
    project.write("deals.csv", DEALS.replace("2024-03-05", "2024-03-06"))
    env.setenv("CRM_ROI_SOURCE", "csv,salesforce")
    assert _ranges(_evaluate()) == [("2024-03-01", "2024-03-01"), (CURRENT, CURRENT)]


def test_a_database_it_cannot_read_stages_every_month_as_before(project, env):
    project.write("deals.csv", DEALS)
    project.db_path.mkdir()  # a folder where the database should be: no comparison is possible
    assert _ranges(_evaluate()) == [("2015-01-01", CURRENT)]


def test_schedule_defaults():
    assert nightly_refresh.default_status == DefaultScheduleStatus.RUNNING
    assert (NIGHTLY_CRON, NIGHTLY_TIMEZONE) == ("0 2 * * *", "UTC")
    assert nightly_refresh.execution_timezone == "UTC"

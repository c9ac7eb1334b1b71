"""The nightly schedule asks for the right months at a given evaluation time."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import DefaultScheduleStatus, build_schedule_context

from crm_roi_pipeline.schedules import NIGHTLY_CRON, NIGHTLY_TIMEZONE, nightly_refresh

UTC = dt.timezone.utc


def _request(monkeypatch, sources: str, when: dt.datetime):
    monkeypatch.setenv("CRM_ROI_SOURCE", sources)
    return nightly_refresh(build_schedule_context(scheduled_execution_time=when))


def test_csv_exports_are_reread_whole_every_night(monkeypatch):
    request = _request(monkeypatch, "csv", dt.datetime(2026, 11, 22, 2, 0, tzinfo=UTC))
    # Every month from CRM_ROI_HISTORY_START to the month of the evaluation, as one run.
    assert request.tags["dagster/asset_partition_range_start"] == "2015-01-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-11-01"
    assert request.run_key == "nightly-2026-11-22"


@pytest.mark.parametrize("sources", ["salesforce", "hubspot", "salesforce,hubspot"])
def test_api_sources_pull_the_current_month_and_sync_the_rest(monkeypatch, sources):
    request = _request(monkeypatch, sources, dt.datetime(2024, 3, 1, 2, 0, tzinfo=UTC))
    # On the first of a month the month has just begun: it is the current partition (end_offset 1).
    assert request.tags["dagster/asset_partition_range_start"] == "2024-03-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-01"


def test_csv_with_an_api_source_rereads_every_month(monkeypatch):
    request = _request(monkeypatch, "csv,salesforce", dt.datetime(2025, 1, 31, 23, 30, tzinfo=UTC))
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (
        "2015-01-01", "2025-01-01")


def test_schedule_defaults():
    assert nightly_refresh.default_status == DefaultScheduleStatus.RUNNING
    assert (NIGHTLY_CRON, NIGHTLY_TIMEZONE) == ("0 2 * * *", "UTC")
    assert nightly_refresh.execution_timezone == "UTC"

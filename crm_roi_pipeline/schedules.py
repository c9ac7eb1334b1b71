"""The nightly refresh, and the sensor that recomputes metrics and ROI after any ingestion."""

from __future__ import annotations

import os

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    schedule,
)

from crm_roi_pipeline.settings import env_setting
from crm_roi_pipeline.sources.registry import parse_sources
from crm_roi_pipeline.staging.jobs import stage_crm_job
from crm_roi_pipeline.staging.partitions import monthly_partitions

NIGHTLY_CRON = os.environ.get("CRM_ROI_SCHEDULE_CRON") or "0 2 * * *"
NIGHTLY_TIMEZONE = os.environ.get("CRM_ROI_SCHEDULE_TIMEZONE") or "UTC"


def nightly_range(sources: tuple[str, ...], partition_keys: list[str]) -> tuple[str, str]:
    """The months tonight's run stages. A CSV export is re-read whole, so every month is rewritten and a
    change to an old record lands in its month; API sources pull the current month and their change sync
    brings in every record modified since the last run, whatever its month."""
    last = partition_keys[-1]
    return (partition_keys[0] if "csv" in sources else last), last


@schedule(
    name="nightly_refresh",
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=NIGHTLY_TIMEZONE,
    job=stage_crm_job,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every night: brings every change since the last run into crm.* (the whole CSV export, or the "
    "API sources' current month plus their change sync); metrics and ROI follow through the "
    "refresh_metrics sensor. CRM_ROI_SCHEDULE_CRON and CRM_ROI_SCHEDULE_TIMEZONE set when.",
)
def nightly_refresh(context: ScheduleEvaluationContext) -> RunRequest:
    keys = monthly_partitions.get_partition_keys(current_time=context.scheduled_execution_time)
    first, last = nightly_range(parse_sources(env_setting("CRM_ROI_SOURCE")), keys)
    return RunRequest(
        run_key=f"nightly-{context.scheduled_execution_time:%Y-%m-%d}",
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
            "crm_roi/launched_by": "nightly_refresh",
        },
    )


refresh_metrics = AutomationConditionSensorDefinition(
    "refresh_metrics",
    target=AssetSelection.groups("metrics", "roi"),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Recomputes metrics.* and roi.* after any staging write: the nightly run, a UI "
    "materialization or a backfill.",
)

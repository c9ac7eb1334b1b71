"""The nightly refresh, and the sensor that recomputes metrics and ROI after any ingestion."""

from __future__ import annotations

import datetime as dt

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from crm_roi_pipeline.policies import NIGHTLY_CRON, NIGHTLY_TIMEZONE
from crm_roi_pipeline.settings import env_setting
from crm_roi_pipeline.sources.registry import parse_sources
from crm_roi_pipeline.staging.jobs import stage_crm_job
from crm_roi_pipeline.staging.partitions import monthly_partitions



def nightly_range(sources: tuple[str, ...], partition_keys: list[str]) -> tuple[str, str]:
    """The months tonight's run stages when they cannot be compared with what was staged (the database is busy
    or unreadable): a CSV export is re-read whole, so every month is rewritten and a change to an old record
    lands in its month; API sources pull the current month and their change sync brings in every record
    modified since the last run, whatever its month."""
    last = partition_keys[-1]
    return (partition_keys[0] if "csv" in sources else last), last


def _request(context: ScheduleEvaluationContext, first: str, last: str, why: str) -> RunRequest:
    return RunRequest(
        run_key=f"nightly-{context.scheduled_execution_time:%Y-%m-%d}-{first[:7]}-{last[:7]}",
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
            "crm_roi/launched_by": "nightly_refresh",
            "crm_roi/why": why[:200],
        },
    )


@schedule(
    name="nightly_refresh",
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=NIGHTLY_TIMEZONE,
    job=stage_crm_job,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every night: brings every change since the last run into crm.*: the months of the CSV export "
    "whose rows changed (none when the export did not change: then no run), and the API sources' current month "
    "plus their change sync; metrics and ROI follow through the refresh_metrics sensor. CRM_ROI_SCHEDULE_CRON and "
    "CRM_ROI_SCHEDULE_TIMEZONE set when.",
)
def nightly_refresh(context: ScheduleEvaluationContext):
    # The Definitions' resources, bound to the environment as it is now.
    import duckdb

    from crm_roi_pipeline.errors import CrmRoiError
    from crm_roi_pipeline.resources import bound_resources, initialized
    from crm_roi_pipeline.staging.plan import plan_staging

    keys = monthly_partitions.get_partition_keys(current_time=context.scheduled_execution_time)
    try:
        resources = initialized(bound_resources())
        plan = plan_staging(resources["warehouse"], resources["settings"], resources["assumptions"], resources,
                            last_partition=dt.date.fromisoformat(keys[-1]))
    except (CrmRoiError, OSError, duckdb.Error) as exc:  # a database another run holds, a folder gone: as before
        first, last = nightly_range(parse_sources(env_setting("CRM_ROI_SOURCE")), keys)
        context.log.warning(f"nightly_refresh: could not compare the export with what was staged ({exc}); "
                            f"staging {first[:7]} … {last[:7]}")
        return _request(context, first, last, "no comparison possible")
    context.log.info(f"nightly_refresh: {plan.describe()}")
    ranges = plan.ranges()
    if not ranges:
        return SkipReason(f"nothing to stage: {plan.describe()}")
    return [_request(context, first, last, plan.describe()) for first, last in ranges]


refresh_metrics = AutomationConditionSensorDefinition(
    "refresh_metrics",
    target=AssetSelection.groups("metrics", "roi"),
    default_status=DefaultSensorStatus.RUNNING,
    # Every 10 s rather than Dagster's 30: the metrics of a UI backfill are published up to 20 s sooner
    # (benchmarks/backfill_ui.py --staging-only), for ~1.5% of one core while idle (a tick evaluates the
    # conditions in ~0.25 s; benchmarks/idle_cost.py: the deployment used 10.4 s of CPU in 180 s against 7.7 s).
    minimum_interval_seconds=10,
    description="Recomputes metrics.* and roi.* after any staging write (the nightly run, a UI "
    "materialization or a backfill), and every night at the nightly refresh's time even when nothing was staged: "
    "the comparison windows move with as_of.",
)

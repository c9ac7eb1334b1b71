"""Monthly partitions from CRM_ROI_HISTORY_START to the current month (the month in progress included)."""

from __future__ import annotations

import datetime as dt

from dagster import MonthlyPartitionsDefinition

from crm_roi_pipeline.settings import env_setting, parse_history_start

# Read when the code location loads: a partitions definition is structure, not run configuration.
HISTORY_START: dt.date = parse_history_start(env_setting("CRM_ROI_HISTORY_START"))

monthly_partitions = MonthlyPartitionsDefinition(start_date=HISTORY_START.isoformat(), end_offset=1)


def last_partition_month() -> dt.date:
    return dt.date.fromisoformat(monthly_partitions.get_last_partition_key())

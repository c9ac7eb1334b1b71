"""The policies every asset shares: how the pipeline runs beside itself and beside other readers of the
DuckDB file, and how fresh its tables should be.

DuckDB lets one process write a file, or several read it, never both. Every asset and check that opens
the file is in one Dagster concurrency pool (limit 1 in dagster_home/dagster.yaml); Dagster sets pools on
each op's decorator, with no way to set one for all, so each decorator names DUCKDB_POOL and
test_definitions checks that none is missing. Every connection also takes a file lock (see
`resources.Warehouse`) so runs outside the Dagster daemon queue too. Readers that must not block the
pipeline (a BI tool, a notebook) read the Parquet copies published after each run.
"""

import datetime as dt
import os

from dagster import FreshnessPolicy

DUCKDB_POOL = "crm_roi_duckdb"
# When the nightly refresh runs (schedules.nightly_refresh), and the metrics and ROI with it.
NIGHTLY_CRON = os.environ.get("CRM_ROI_SCHEDULE_CRON") or "0 2 * * *"
NIGHTLY_TIMEZONE = os.environ.get("CRM_ROI_SCHEDULE_TIMEZONE") or "UTC"

# The published tables (metrics/*, roi/*) are recomputed every night, so one a day and a half old means a night
# was missed. Applied once, in definitions.py, to every asset but the staged tables: a month of crm.* is
# rewritten only when its export changes (staging/fingerprints.py), so an old write there is no sign of trouble.
NIGHTLY_FRESHNESS = FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=36), warn_window=dt.timedelta(hours=26))

"""The one `Definitions` of the project: what `dagster dev`, `crm-roi` and the tests all load."""

from __future__ import annotations

import warnings

from dagster import Definitions, PreviewWarning, in_process_executor

from crm_roi_pipeline.alerting import Alerts, alert_on_run_failure
from crm_roi_pipeline.metrics.assets import metrics_assets, metrics_checks
from crm_roi_pipeline.metrics.uplift_assets import uplift_assets
from crm_roi_pipeline.policies import NIGHTLY_FRESHNESS
from crm_roi_pipeline.resources import bound_resources as resources
from crm_roi_pipeline.roi.assets import roi_assets
from crm_roi_pipeline.schedules import nightly_refresh, refresh_metrics
from crm_roi_pipeline.staging.assets import staging_assets
from crm_roi_pipeline.staging.checks import staging_checks
from crm_roi_pipeline.staging.jobs import publish_metrics_job, stage_crm_job


# Definitions.map_asset_specs is a preview in Dagster 1.13; requirements.lock pins the version we tested.
warnings.filterwarnings("ignore", category=PreviewWarning, message=".*map_(resolved_)?asset_specs")

defs = Definitions(
    assets=[*staging_assets, *metrics_assets, *uplift_assets, *roi_assets],
    asset_checks=[*staging_checks, *metrics_checks],
    jobs=[stage_crm_job, publish_metrics_job],
    schedules=[nightly_refresh],
    # A failed run's alert (CRM_ROI_ALERT_WEBHOOK; without it, nothing is sent): runs of `crm-roi run` alert
    # from the CLI, every other run from this sensor under the daemon (docs/alerts.md).
    sensors=[refresh_metrics, alert_on_run_failure],
    resources={**resources(), "alerts": Alerts.from_env()},
    # Every step opens the one DuckDB file, in turn (the pool of policies.py): a process per step, Dagster's
    # default, would only add its start-up to each. A 60-month backfill through the UI spent most of its time
    # there (benchmarks/backfill_ui.py).
    executor=in_process_executor,
    # Every published table is recomputed by the nightly run, so one freshness policy holds for all of them; the
    # staged tables change only when their export does (policies.py).
).map_asset_specs(func=lambda spec: spec if spec.group_name == "staging"
                  else spec.replace_attributes(freshness_policy=NIGHTLY_FRESHNESS))

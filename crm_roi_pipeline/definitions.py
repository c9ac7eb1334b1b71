"""The one `Definitions` of the project: what `dagster dev`, `crm-roi` and the tests all load."""

from __future__ import annotations

import os
import warnings

from dagster import Definitions, EnvVar, PreviewWarning

from crm_roi_pipeline.metrics.assets import metrics_assets, metrics_checks
from crm_roi_pipeline.metrics.uplift_assets import uplift_assets
from crm_roi_pipeline.policies import NIGHTLY_FRESHNESS
from crm_roi_pipeline.resources import AssumptionsFile, PipelineSettings, Reports, Warehouse, env_or_default
from crm_roi_pipeline.roi.assets import roi_assets
from crm_roi_pipeline.schedules import nightly_refresh, refresh_metrics
from crm_roi_pipeline.settings import DEFAULTS
from crm_roi_pipeline.sources.registry import API_SOURCES
from crm_roi_pipeline.staging.assets import staging_assets
from crm_roi_pipeline.staging.checks import staging_checks
from crm_roi_pipeline.staging.jobs import publish_metrics_job, stage_crm_job


def _env(name: str):
    return env_or_default(name, DEFAULTS[name])


def resources() -> dict:
    """The resources, bound to the environment as it is now (the settings of CONTRACT.md); each API source's
    resource reads its own variables (`from_env`)."""
    return {
        "warehouse": Warehouse(database=_env("CRM_ROI_DUCKDB_PATH"), memory_limit=_env("CRM_ROI_DUCKDB_MEMORY_LIMIT")),
        "settings": PipelineSettings(source=_env("CRM_ROI_SOURCE"), csv_dir=_env("CRM_ROI_CSV_DIR")),
        "assumptions": AssumptionsFile(path=_env("CRM_ROI_ASSUMPTIONS")),
        # Unset, CRM_ROI_REPORTS_DIR means "beside the database": <db dir>/<db file stem>_reports/.
        "reports": Reports(
            dir=EnvVar("CRM_ROI_REPORTS_DIR") if os.environ.get("CRM_ROI_REPORTS_DIR") else None,
            database=_env("CRM_ROI_DUCKDB_PATH"),
        ),
        **{name: resource.from_env() for name, resource in API_SOURCES.items()},
    }


# Definitions.map_asset_specs is a preview in Dagster 1.13; requirements.lock pins the version we tested.
warnings.filterwarnings("ignore", category=PreviewWarning, message=".*map_(resolved_)?asset_specs")

defs = Definitions(
    assets=[*staging_assets, *metrics_assets, *uplift_assets, *roi_assets],
    asset_checks=[*staging_checks, *metrics_checks],
    jobs=[stage_crm_job, publish_metrics_job],
    schedules=[nightly_refresh],
    sensors=[refresh_metrics],
    resources=resources(),
    # Every asset is published by the nightly run, so one freshness policy holds for all of them.
).map_asset_specs(func=lambda spec: spec.replace_attributes(freshness_policy=NIGHTLY_FRESHNESS))

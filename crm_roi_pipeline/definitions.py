"""The one `Definitions` of the project: what `dagster dev`, `crm-roi` and the tests all load."""

from __future__ import annotations

import os

from dagster import Definitions, EnvVar

from crm_roi_pipeline.metrics.assets import metrics_assets, metrics_checks
from crm_roi_pipeline.metrics.uplift_assets import uplift_assets
from crm_roi_pipeline.roi.assets import roi_assets
from crm_roi_pipeline.resources import (
    AssumptionsFile,
    HubSpotResource,
    PipelineSettings,
    Reports,
    SalesforceResource,
    Warehouse,
    env_or_default,
)
from crm_roi_pipeline.settings import DEFAULTS
from crm_roi_pipeline.staging.assets import staging_assets
from crm_roi_pipeline.staging.checks import staging_checks
from crm_roi_pipeline.schedules import nightly_refresh, refresh_metrics
from crm_roi_pipeline.staging.jobs import METRICS_JOB, RUN_ORDER, STAGING_JOB, publish_metrics_job, stage_crm_job  # noqa: F401

def _env(name: str):
    return env_or_default(name, DEFAULTS[name])


# Salesforce settings: each set variable is bound through EnvVar, so the UI shows its name, never a secret.
_SALESFORCE_VARIABLES = {
    "login_url": "SALESFORCE_LOGIN_URL",
    "instance_url": "SALESFORCE_INSTANCE_URL",
    "access_token": "SALESFORCE_ACCESS_TOKEN",
    "consumer_key": "SALESFORCE_CONSUMER_KEY",
    "consumer_secret": "SALESFORCE_CONSUMER_SECRET",
    "username": "SALESFORCE_USERNAME",
    "password": "SALESFORCE_PASSWORD",
    "security_token": "SALESFORCE_SECURITY_TOKEN",
    "api_version": "SALESFORCE_API_VERSION",
    "lead_source_field": "SALESFORCE_LEAD_SOURCE_FIELD",
    "deal_type_field": "SALESFORCE_DEAL_TYPE_FIELD",
    "team_field": "SALESFORCE_TEAM_FIELD",
}


def _salesforce_settings() -> dict:
    settings = {field: EnvVar(name) for field, name in _SALESFORCE_VARIABLES.items() if os.environ.get(name)}
    if os.environ.get("SALESFORCE_BULK_THRESHOLD"):
        settings["bulk_threshold"] = EnvVar.int("SALESFORCE_BULK_THRESHOLD")
    return settings


def _hubspot_settings() -> dict:
    settings = {
        field: EnvVar(name)
        for field, name in (("access_token", "HUBSPOT_ACCESS_TOKEN"), ("base_url", "HUBSPOT_BASE_URL"))
        if os.environ.get(name)
    }
    if os.environ.get("HUBSPOT_SEARCH_RPS"):
        settings["search_rps"] = float(os.environ["HUBSPOT_SEARCH_RPS"])
    if os.environ.get("HUBSPOT_BURST_PER_10S"):
        settings["burst_per_10s"] = EnvVar.int("HUBSPOT_BURST_PER_10S")
    return settings


def resources() -> dict:
    """The resources, bound to the environment as it is now (the settings of CONTRACT.md)."""
    return {
        "warehouse": Warehouse(database=_env("CRM_ROI_DUCKDB_PATH"), memory_limit=_env("CRM_ROI_DUCKDB_MEMORY_LIMIT")),
        "settings": PipelineSettings(source=_env("CRM_ROI_SOURCE"), csv_dir=_env("CRM_ROI_CSV_DIR")),
        "assumptions": AssumptionsFile(path=_env("CRM_ROI_ASSUMPTIONS")),
        # Unset, CRM_ROI_REPORTS_DIR means "beside the database": <db dir>/<db file stem>_reports/.
        "reports": Reports(
            dir=EnvVar("CRM_ROI_REPORTS_DIR") if os.environ.get("CRM_ROI_REPORTS_DIR") else None,
            database=_env("CRM_ROI_DUCKDB_PATH"),
        ),
        "salesforce": SalesforceResource(**_salesforce_settings()),
        "hubspot": HubSpotResource(**_hubspot_settings()),
    }


defs = Definitions(
    assets=[*staging_assets, *metrics_assets, *uplift_assets, *roi_assets],
    asset_checks=[*staging_checks, *metrics_checks],
    jobs=[stage_crm_job, publish_metrics_job],
    schedules=[nightly_refresh],
    sensors=[refresh_metrics],
    resources=resources(),
)

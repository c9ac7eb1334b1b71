"""The Salesforce org as a Dagster resource, and the environment variables it is configured by."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import ClassVar

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from crm_roi_pipeline.sources.salesforce.objects import DEAL_TYPES

# field -> variable; SALESFORCE_BULK_THRESHOLD (an integer) and SALESFORCE_CSAT_SCALE_MAX (a number) are read in
# `from_env`.
ENV_VARIABLES = {
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
    "first_response_milestone": "SALESFORCE_FIRST_RESPONSE_MILESTONE",
    "csat_field": "SALESFORCE_CSAT_FIELD",
}


def _number(name: str) -> float:
    """A numeric setting (not a secret, so its value may be quoted): Dagster's EnvVar has int only."""
    from crm_roi_pipeline.errors import SettingsError

    value = os.environ[name]
    try:
        return float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a number; set it to the survey's top score, e.g. 5 or 10.") from None


class SalesforceResource(ConfigurableResource):
    """A Salesforce org (CRM_ROI_SOURCE includes salesforce). Secrets come through EnvVar and stay here."""

    login_url: str = Field(default="https://login.salesforce.com", description="SALESFORCE_LOGIN_URL")
    instance_url: str | None = Field(default=None, description="SALESFORCE_INSTANCE_URL")
    access_token: str | None = Field(default=None, description="SALESFORCE_ACCESS_TOKEN (secret)")
    consumer_key: str | None = Field(default=None, description="SALESFORCE_CONSUMER_KEY")
    consumer_secret: str | None = Field(default=None, description="SALESFORCE_CONSUMER_SECRET (secret)")
    username: str | None = Field(default=None, description="SALESFORCE_USERNAME")
    password: str | None = Field(default=None, description="SALESFORCE_PASSWORD (secret)")
    security_token: str | None = Field(default=None, description="SALESFORCE_SECURITY_TOKEN (secret)")
    api_version: str = Field(default="62.0", description="SALESFORCE_API_VERSION")
    bulk_threshold: int = Field(default=50_000, description="SALESFORCE_BULK_THRESHOLD: records above which Bulk 2.0 is used")
    lead_source_field: str | None = Field(default=None, description="SALESFORCE_LEAD_SOURCE_FIELD: custom field")
    deal_type_field: str | None = Field(default=None, description="SALESFORCE_DEAL_TYPE_FIELD: custom field")
    team_field: str | None = Field(default=None, description="SALESFORCE_TEAM_FIELD: custom field on User")
    first_response_milestone: str = Field(
        default="First Response",
        description="SALESFORCE_FIRST_RESPONSE_MILESTONE: the milestone type whose completion is a case's first response",
    )
    csat_field: str | None = Field(default=None, description="SALESFORCE_CSAT_FIELD: the Case field holding a satisfaction score")
    csat_scale_max: float | None = Field(default=None, description="SALESFORCE_CSAT_SCALE_MAX: that score's top value")
    retries: int = Field(default=5, description="attempts per call on transient faults")
    retry_wait_seconds: float = Field(default=2.0, description="first backoff wait; doubles each retry")
    bulk_poll_seconds: float = Field(default=5.0, description="wait between Bulk 2.0 job status polls")
    bulk_page_size: int = Field(default=50_000, description="records per Bulk 2.0 result page (Sforce-Locator)")

    deal_types: ClassVar[dict[str, str]] = DEAL_TYPES

    @classmethod
    def from_env(cls) -> "SalesforceResource":
        """The resource bound to the variables that are set, each through EnvVar: the UI shows the variable's
        name, never a secret; an unset one keeps the field's default."""
        settings = {field: EnvVar(name) for field, name in ENV_VARIABLES.items() if os.environ.get(name)}
        if os.environ.get("SALESFORCE_BULK_THRESHOLD"):
            settings["bulk_threshold"] = EnvVar.int("SALESFORCE_BULK_THRESHOLD")
        if os.environ.get("SALESFORCE_CSAT_SCALE_MAX"):
            settings["csat_scale_max"] = _number("SALESFORCE_CSAT_SCALE_MAX")
        return cls(**settings)

    def case_settings(self):
        """What the org's cases need beyond standard fields, for the API source and for Case.csv exports."""
        from crm_roi_pipeline.sources.salesforce.objects import CaseSettings

        return CaseSettings(self.first_response_milestone, self.csat_field, self.csat_scale_max)

    def credentials(self):
        from crm_roi_pipeline.sources.salesforce.client import Credentials

        return Credentials(
            login_url=self.login_url, api_version=self.api_version, instance_url=self.instance_url,
            access_token=self.access_token, consumer_key=self.consumer_key, consumer_secret=self.consumer_secret,
            username=self.username, password=self.password, security_token=self.security_token,
        )

    def source(self, workdir: Path | None):
        from crm_roi_pipeline.sources.salesforce.source import SalesforceSettings, SalesforceSource
        from crm_roi_pipeline.sources.salesforce.client import SalesforceClient

        credentials = self.credentials()
        credentials.require()  # no network yet: a missing variable fails before anything else

        def connect() -> SalesforceClient:
            return SalesforceClient(
                credentials, retries=self.retries, retry_wait_seconds=self.retry_wait_seconds,
                bulk_poll_seconds=self.bulk_poll_seconds, bulk_page_size=self.bulk_page_size,
            )

        settings = SalesforceSettings(
            lead_source_field=self.lead_source_field, deal_type_field=self.deal_type_field,
            team_field=self.team_field, bulk_threshold=self.bulk_threshold, case=self.case_settings(),
        )
        return SalesforceSource(connect, settings, workdir or Path(tempfile.gettempdir()))

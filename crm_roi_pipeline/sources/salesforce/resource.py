"""The Salesforce org as a Dagster resource, and the environment variables it is configured by."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import ClassVar

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from crm_roi_pipeline.sources.salesforce.objects import DEAL_TYPES

# field -> variable; SALESFORCE_BULK_THRESHOLD (an integer) is read in `from_env`.
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
}


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
        return cls(**settings)

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
            team_field=self.team_field, bulk_threshold=self.bulk_threshold,
        )
        return SalesforceSource(connect, settings, workdir or Path(tempfile.gettempdir()))

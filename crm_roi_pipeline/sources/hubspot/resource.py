"""The HubSpot portal as a Dagster resource, and the environment variables it is configured by."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import ClassVar

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from crm_roi_pipeline.sources.hubspot.exports import DEAL_TYPES

# field -> variable; HUBSPOT_SEARCH_RPS (a number) and HUBSPOT_BURST_PER_10S (an integer) are read in `from_env`.
ENV_VARIABLES = {"access_token": "HUBSPOT_ACCESS_TOKEN", "base_url": "HUBSPOT_BASE_URL"}


class HubSpotResource(ConfigurableResource):
    """A HubSpot portal (CRM_ROI_SOURCE includes hubspot). The token comes through EnvVar and stays here."""

    access_token: str | None = Field(default=None, description="HUBSPOT_ACCESS_TOKEN (secret): a private app token")
    base_url: str = Field(default="https://api.hubapi.com", description="HUBSPOT_BASE_URL")
    search_rps: float = Field(default=4.0, description="HUBSPOT_SEARCH_RPS: search requests per second at most (HubSpot allows 4 per token); 0 = no spacing")
    burst_per_10s: int = Field(default=100, description="HUBSPOT_BURST_PER_10S: requests in any 10 s at most (the app's burst limit); 0 = none")
    retries: int = Field(default=5, description="attempts per call on 429 and 5xx")
    backoff_seconds: float = Field(default=1.0, description="first backoff wait when no Retry-After is given")

    deal_types: ClassVar[dict[str, str]] = DEAL_TYPES

    @classmethod
    def from_env(cls) -> "HubSpotResource":
        """The resource bound to the variables that are set (the token through EnvVar, so the UI shows the
        variable's name, never the token); an unset one keeps the field's default."""
        settings = {field: EnvVar(name) for field, name in ENV_VARIABLES.items() if os.environ.get(name)}
        if os.environ.get("HUBSPOT_SEARCH_RPS"):
            settings["search_rps"] = float(os.environ["HUBSPOT_SEARCH_RPS"])
        if os.environ.get("HUBSPOT_BURST_PER_10S"):
            settings["burst_per_10s"] = EnvVar.int("HUBSPOT_BURST_PER_10S")
        return cls(**settings)

    def credentials(self):
        from crm_roi_pipeline.sources.hubspot.client import HubSpotCredentials

        return HubSpotCredentials(access_token=self.access_token, base_url=self.base_url)

    def source(self, workdir: Path | None):
        from crm_roi_pipeline.sources.hubspot.source import HubSpotSource
        from crm_roi_pipeline.sources.hubspot.client import HubSpotClient

        credentials = self.credentials()
        credentials.require()

        def connect() -> HubSpotClient:
            return HubSpotClient(credentials, search_rps=self.search_rps or None, retries=self.retries,
                                 backoff_seconds=self.backoff_seconds, burst_per_10s=self.burst_per_10s or None)

        return HubSpotSource(connect, workdir or Path(tempfile.gettempdir()))

"""Every source the pipeline knows, in one place. Adding a CRM is a folder under `sources/` and one line in
`API_SOURCES` below (see the README, "Adding a source")."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from crm_roi_pipeline.errors import SettingsError
from crm_roi_pipeline.sources.base import Source
from crm_roi_pipeline.sources.csv_exports.source import CsvSource
from crm_roi_pipeline.sources.hubspot.resource import HubSpotResource
from crm_roi_pipeline.sources.salesforce.resource import SalesforceResource

# A CRM read through its API: CRM_ROI_SOURCE's name for it -> its Dagster resource (bound under that name in
# the Definitions). Each resource has `from_env()` (its settings), `source(workdir)` (a `Source`) and
# `deal_types` (the CRM's standard deal type values). When two sources deliver the same record, an API
# source's row is kept over the csv one.
API_SOURCES = {
    "salesforce": SalesforceResource,
    "hubspot": HubSpotResource,
}
SOURCES = ("csv", *API_SOURCES)

# The CRMs' standard deal type values -> deal class; `deal_types` in the assumptions adds to and overrides these.
BUILTIN_DEAL_TYPES = {value: kind for resource in API_SOURCES.values() for value, kind in resource.deal_types.items()}


def parse_sources(value: str) -> tuple[str, ...]:
    """`csv,salesforce` -> ("csv", "salesforce"); unknown or repeated names are an error."""
    names = tuple(part.strip().lower() for part in value.split(",") if part.strip())
    if not names:
        raise SettingsError(f"CRM_ROI_SOURCE is empty: set it to {', '.join(SOURCES)} or a comma list of them.")
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise SettingsError(
            f"CRM_ROI_SOURCE={value!r}: unknown source {', '.join(map(repr, unknown))}; "
            f"use {', '.join(SOURCES)} or a comma list of them."
        )
    if len(set(names)) != len(names):
        raise SettingsError(f"CRM_ROI_SOURCE={value!r} names a source twice.")
    return names


def open_source(name: str, *, csv_dir: Path, resources: Mapping[str, object], workdir: Path) -> Source:
    """The `Source` called `name`: the CSV folder, or the API source of the resource bound under that name."""
    if name == "csv":
        # Case.csv exports read the Salesforce settings for what the org keeps in custom fields.
        salesforce = resources.get("salesforce")
        return CsvSource(csv_dir, salesforce.case_settings() if salesforce is not None else None)
    resource = resources.get(name)
    if name not in API_SOURCES or resource is None:
        raise SettingsError(f"CRM_ROI_SOURCE names '{name}', but no {name} resource is configured in the Definitions.")
    return resource.source(workdir)

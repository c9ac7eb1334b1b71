"""What a Salesforce org's objects hold, in canonical fields: the built-in mapping of each object's export
(a Data Loader or report export in the CSV folder, and the files the API source writes), the objects that
only enrich other rows, and Salesforce's standard Opportunity types."""

from __future__ import annotations

from dataclasses import dataclass, replace

from crm_roi_pipeline.errors import SettingsError
from crm_roi_pipeline.sources.mappings import FileMapping

# Salesforce exports, one file per object, named after it. Labels of report exports are accepted too.
SALESFORCE_OBJECTS: dict[str, FileMapping] = {
    "opportunity": FileMapping(
        entity="deals",
        source_system="salesforce",
        kind="Salesforce Opportunity export",
        columns={
            "deal_id": ("Id", "Opportunity ID"),
            "account_id": ("AccountId", "Account ID"),
            "account_name": ("Account.Name", "Account Name"),
            "owner_id": ("OwnerId", "Owner ID", "Opportunity Owner"),
            "name": ("Name", "Opportunity Name"),
            "stage": ("StageName", "Stage"),
            "is_closed": ("IsClosed", "Closed"),
            "is_won": ("IsWon", "Won"),
            "amount": ("Amount",),
            "currency": ("CurrencyIsoCode", "Opportunity Currency"),
            "deal_type": ("Type",),
            "lead_source": ("LeadSource", "Lead Source"),
            "created_at": ("CreatedDate", "Created Date"),
            "closed_at": ("CloseDate", "Close Date"),
            "is_deleted": ("IsDeleted",),
        },
    ),
    "lead": FileMapping(
        entity="leads",
        source_system="salesforce",
        kind="Salesforce Lead export",
        columns={
            "lead_id": ("Id", "Lead ID"),
            "owner_id": ("OwnerId", "Lead Owner"),
            "lead_source": ("LeadSource", "Lead Source"),
            "status": ("Status", "Lead Status"),
            "created_at": ("CreatedDate", "Create Date", "Created Date"),
            "is_converted": ("IsConverted", "Converted"),
            "converted_at": ("ConvertedDate", "Converted Date"),
            "converted_deal_id": ("ConvertedOpportunityId", "Converted Opportunity ID"),
            "converted_account_id": ("ConvertedAccountId", "Converted Account ID"),
            "is_deleted": ("IsDeleted",),
        },
    ),
    "task": FileMapping(
        entity="activities",
        source_system="salesforce",
        kind="Salesforce Task export",
        columns={
            "activity_id": ("Id", "Activity ID"),
            "type": ("Type",),
            "subtype": ("TaskSubtype",),
            "status": ("Status",),
            "is_closed": ("IsClosed",),
            # A completed task happened when it was completed; otherwise its due date, else its creation.
            "occurred_at": ("CompletedDateTime", "ActivityDate", "CreatedDate"),
            "owner_id": ("OwnerId",),
            "what_id": ("WhatId",),
            "who_id": ("WhoId",),
            "account_id": ("AccountId",),
            "duration_seconds": ("CallDurationInSeconds",),
            "is_deleted": ("IsDeleted",),
        },
        defaults={"subtype": "task"},
    ),
    "event": FileMapping(
        entity="activities",
        source_system="salesforce",
        kind="Salesforce Event export",
        columns={
            "activity_id": ("Id", "Activity ID"),
            "type": ("Type",),
            "subtype": ("EventSubtype",),
            "occurred_at": ("ActivityDateTime", "StartDateTime", "ActivityDate"),
            "owner_id": ("OwnerId",),
            "what_id": ("WhatId",),
            "who_id": ("WhoId",),
            "account_id": ("AccountId",),
            "duration_minutes": ("DurationInMinutes",),
            "is_deleted": ("IsDeleted",),
        },
        defaults={"subtype": "meeting"},
    ),
    "campaign": FileMapping(
        entity="spend",
        source_system="salesforce",
        kind="Salesforce Campaign export",
        columns={
            "spend_id": ("Id", "Campaign ID"),
            "month": ("StartDate", "Start Date"),
            "amount": ("ActualCost", "Actual Cost in Campaign"),
            "currency": ("CurrencyIsoCode",),
            "is_deleted": ("IsDeleted",),
        },
        defaults={"category": "marketing"},
    ),
    "case": FileMapping(
        entity="tickets",
        source_system="salesforce",
        kind="Salesforce Case export",
        columns={
            "ticket_id": ("Id", "Case ID"),
            "account_id": ("AccountId", "Account ID"),
            "account_name": ("Account.Name", "Account Name"),
            "owner_id": ("OwnerId", "Owner ID", "Case Owner"),
            "status": ("Status",),
            "is_closed": ("IsClosed", "Closed"),
            "priority": ("Priority",),
            "channel": ("Origin", "Case Origin"),
            "created_at": ("CreatedDate", "Date/Time Opened", "Opened Date"),
            "closed_at": ("ClosedDate", "Date/Time Closed", "Closed Date"),
            "is_deleted": ("IsDeleted",),
        },
    ),
}

# Files that only enrich other rows: Account gives account names (for account_key), User owner teams.
SALESFORCE_LOOKUPS = {
    "account": {"key": ("Id",), "value": ("Name",), "lookup": "account_names"},
    "user": {"key": ("Id",), "value": ("UserRole.Name", "Department", "Division"), "lookup": "owner_teams"},
}

# Opportunity.Type's standard values; `deal_types` in the assumptions adds to and overrides these.
DEAL_TYPES = {
    "New Customer": "new_business",
    "Existing Customer - Upgrade": "expansion",
    "Existing Customer - Replacement": "renewal",
    "Existing Customer - Downgrade": "renewal",
}


@dataclass(frozen=True)
class CaseSettings:
    """How an org records what Salesforce has no standard field for: the milestone whose completion is a
    case's first response (entitlements), and a custom satisfaction field with its scale."""

    first_response_milestone: str = "First Response"
    csat_field: str | None = None
    csat_scale_max: float | None = None

    def __post_init__(self) -> None:
        if self.csat_field and not self.csat_scale_max:
            raise SettingsError(
                f"SALESFORCE_CSAT_FIELD is {self.csat_field!r} but SALESFORCE_CSAT_SCALE_MAX is not set: a score "
                "means nothing without its scale. Set SALESFORCE_CSAT_SCALE_MAX to the survey's top score (5, 10, ...)."
            )
        if self.csat_scale_max is not None and not self.csat_scale_max > 0:
            raise SettingsError(
                f"SALESFORCE_CSAT_SCALE_MAX is {self.csat_scale_max:g}; it must be the survey's top score, above 0."
            )


def case_mapping(settings: CaseSettings) -> FileMapping:
    """The Case export's mapping with the org's satisfaction field, when the settings name one."""
    mapping = SALESFORCE_OBJECTS["case"]
    if not settings.csat_field:
        return mapping
    return replace(
        mapping,
        columns={**mapping.columns, "csat_score": (settings.csat_field,)},
        constants={**mapping.constants, "csat_scale_max": f"{settings.csat_scale_max:g}"},
        # The setting names a column the export must have: a missing one is an error, not a silent null.
        explicit_columns=mapping.explicit_columns | {"csat_score"},
    )


# A case's first response is the completion of a milestone (entitlement management): CaseMilestone.csv, with
# the milestone's type by name (a report export) or by id, named in MilestoneType.csv (a Data Loader export).
CASE_MILESTONE_COLUMNS = {
    "case_id": ("CaseId", "Case ID"),
    "type_name": ("MilestoneType.Name", "Milestone", "Milestone Name", "Milestone Type"),
    "type_id": ("MilestoneTypeId", "Milestone Type ID"),
    "completed_at": ("CompletionDate", "Completion Date"),
}
MILESTONE_TYPE_COLUMNS = {"id": ("Id",), "name": ("Name",)}

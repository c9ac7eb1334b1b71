"""What a Salesforce org's objects hold, in canonical fields: the built-in mapping of each object's export
(a Data Loader or report export in the CSV folder, and the files the API source writes), the objects that
only enrich other rows, and Salesforce's standard Opportunity types."""

from __future__ import annotations

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

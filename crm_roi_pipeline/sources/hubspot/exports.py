"""What a HubSpot portal's exports hold, in canonical fields: the built-in mappings of the deals, contacts,
activities and tickets exports (recognised by their header in the CSV folder, and used for the files the API source
writes), and HubSpot's standard deal types."""

from __future__ import annotations

from dataclasses import replace

from crm_roi_pipeline.sources.mappings import FileMapping, norm_name

_HUBSPOT_ID = ("hs_object_id", "Record ID")
HUBSPOT_EXPORTS: dict[str, FileMapping] = {
    "deals": FileMapping(
        entity="deals",
        source_system="hubspot",
        kind="HubSpot deals export",
        columns={
            "deal_id": (*_HUBSPOT_ID, "Deal ID"),
            "name": ("dealname", "Deal Name"),
            "stage": ("dealstage", "Deal Stage"),
            "amount": ("amount", "Amount"),
            "closed_at": ("closedate", "Close Date"),
            "created_at": ("createdate", "Create Date"),
            "deal_type": ("dealtype", "Deal Type"),
            "lead_source": ("hs_analytics_source", "Original Source Type", "Original Traffic Source", "Original Source"),
            "owner_id": ("hubspot_owner_id", "Deal owner"),
            "currency": ("deal_currency_code", "Currency"),
            "is_won": ("hs_is_closed_won", "Is Closed Won"),
            "is_closed": ("hs_is_closed", "Is Deal Closed?"),
            "account_id": ("associatedcompanyid", "Associated Company IDs", "Associated Company IDs (Primary)"),
            "account_name": ("Associated Company", "Associated Company (Primary)"),
        },
        # The default pipeline's closed stages, as internal ids or labels; every other stage is open.
        # Custom pipelines with other closed stages need a `stages` override in a mapping file.
        stages={"closedwon": "won", "closed won": "won", "closedlost": "lost", "closed lost": "lost"},
        stage_default="open",
        stages_case_insensitive=True,
    ),
    "leads": FileMapping(
        entity="leads",
        source_system="hubspot",
        kind="HubSpot contacts export",
        columns={
            "lead_id": (*_HUBSPOT_ID, "Contact ID"),
            "created_at": ("createdate", "Create Date"),
            "status": ("lifecyclestage", "Lifecycle Stage"),
            "lead_source": ("hs_analytics_source", "Original Source", "Original Traffic Source"),
            "owner_id": ("hubspot_owner_id", "Contact owner"),
            # A contact converts when it becomes an opportunity (or, skipping that, a customer).
            "converted_at": (
                "hs_lifecyclestage_opportunity_date",
                "Became an Opportunity Date",
                "hs_lifecyclestage_customer_date",
                "Became a Customer Date",
            ),
            "converted_deal_id": ("Associated Deal IDs",),
            "converted_account_id": ("associatedcompanyid", "Associated Company IDs", "Associated Company IDs (Primary)"),
        },
    ),
    "activities": FileMapping(
        entity="activities",
        source_system="hubspot",
        kind="HubSpot activities export",
        columns={
            "activity_id": (*_HUBSPOT_ID, "Activity ID"),
            "type": ("hs_engagement_type", "Activity type", "Engagement type", "hs_task_type", "Task type"),
            "status": ("hs_task_status", "Task status", "Status"),
            "occurred_at": ("hs_timestamp", "Activity date", "Due date", "createdate", "Create Date"),
            "owner_id": ("hubspot_owner_id", "Activity assigned to", "Assigned to"),
            "deal_id": ("Associated Deal IDs",),
            "contact_id": ("Associated Contact IDs",),
            "account_id": ("Associated Company IDs", "Associated Company IDs (Primary)"),
            "duration_ms": ("hs_call_duration", "hs_meeting_duration"),
            "duration_hms": ("Call duration (HH:mm:ss)", "Call duration", "Meeting duration (HH:mm:ss)"),
        },
    ),
    "tickets": FileMapping(
        entity="tickets",
        source_system="hubspot",
        kind="HubSpot tickets export",
        columns={
            "ticket_id": (*_HUBSPOT_ID, "Ticket ID"),
            "status": ("hs_pipeline_stage", "Ticket status"),
            "priority": ("hs_ticket_priority", "Priority"),
            "channel": ("source_type", "Source"),
            "created_at": ("createdate", "Create date"),
            "closed_at": ("closed_date", "Close date"),
            "first_response_at": ("first_agent_reply_date", "First agent reply date"),
            "first_response_ms": ("time_to_first_agent_reply", "Time to first agent reply"),
            "owner_id": ("hubspot_owner_id", "Ticket owner"),
            "account_id": ("associatedcompanyid", "Associated Company IDs", "Associated Company IDs (Primary)"),
            "account_name": ("Associated Company", "Associated Company (Primary)"),
        },
        # The default support pipeline's stages, as internal ids or labels. Other pipelines' stages are open or
        # closed by whether the ticket has a close date (HubSpot sets closed_date when a ticket enters a closed
        # stage and clears it when it is reopened); a mapping file's `stages` can say it outright.
        stages={
            "1": "open", "2": "open", "3": "open", "4": "closed",
            "new": "open", "waiting on contact": "open", "waiting on us": "open", "closed": "closed",
        },
        stages_case_insensitive=True,
        stage_fallback=True,
    ),
}
_HUBSPOT_ACTIVITY_WORDS = ("call", "email", "meeting", "task", "note")


def detect_hubspot(header: list[str], stem: str) -> FileMapping | None:
    names = {norm_name(h) for h in header}
    has_id = bool(names & {"hs_object_id", "record id", "deal id", "contact id", "activity id", "ticket id"})
    if not has_id:
        return None
    if names & {"dealstage", "deal stage", "dealname", "deal name"}:
        return HUBSPOT_EXPORTS["deals"]
    # "Ticket status" is HubSpot's label of hs_pipeline_stage; helpdesks (Freshdesk, Zendesk) also write a
    # "Ticket ID", but call the status "Status".
    if names & {"hs_pipeline_stage", "ticket status"}:
        return HUBSPOT_EXPORTS["tickets"]
    if names & {"lifecyclestage", "lifecycle stage", "contact id"}:
        return HUBSPOT_EXPORTS["leads"]
    if names & {"hs_timestamp", "activity date", "due date", "hs_engagement_type", "activity type"}:
        mapping = HUBSPOT_EXPORTS["activities"]
        # Per-type exports (calls, notes, ...) carry no type column; the file name says it.
        word = next((w for w in _HUBSPOT_ACTIVITY_WORDS if w in stem.lower()), None)
        return replace(mapping, defaults={"subtype": word}) if word else mapping
    return None


# dealtype's standard values (internal names and labels); `deal_types` in the assumptions adds to and
# overrides these.
DEAL_TYPES = {
    "newbusiness": "new_business",
    "New Business": "new_business",
    "existingbusiness": "expansion",
    "Existing Business": "expansion",
}

"""The canonical fields each source maps its inputs to, before typing.

A source's job ends at these fields (text, as the input wrote them); `staging/` types them, checks
them and writes `crm.*`. Some fields are inputs to a rule rather than columns of `crm.*`: `what_id` and
`who_id` (Salesforce polymorphic ids, typed by key prefix), `duration_seconds`/`duration_ms`/`duration_hms` (HH:MM:SS),
`subtype`, `account_name`, `account_external_id` and `is_deleted`.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["id", "text", "bool", "number", "timestamp"]
ENTITIES = ("deals", "leads", "activities", "spend", "tickets")

FIELDS: dict[str, dict[str, Kind]] = {
    "deals": {
        "deal_id": "id",
        "account_id": "id",
        "account_external_id": "text",
        "account_name": "text",
        "owner_id": "id",
        "team": "text",
        "name": "text",
        "stage": "text",
        "is_closed": "bool",
        "is_won": "bool",
        "amount": "number",
        "currency": "text",
        "deal_type": "text",
        "lead_source": "text",
        "lead_id": "id",
        "created_at": "timestamp",
        "closed_at": "timestamp",
        "is_deleted": "bool",
    },
    "leads": {
        "lead_id": "id",
        "owner_id": "id",
        "team": "text",
        "lead_source": "text",
        "status": "text",
        "created_at": "timestamp",
        "is_converted": "bool",
        "converted_at": "timestamp",
        "converted_deal_id": "id",
        "converted_account_id": "id",
        "is_deleted": "bool",
    },
    "activities": {
        "activity_id": "id",
        "type": "text",
        "subtype": "text",
        "status": "text",
        "is_closed": "bool",
        "occurred_at": "timestamp",
        "owner_id": "id",
        "deal_id": "id",
        "lead_id": "id",
        "contact_id": "id",
        "account_id": "id",
        "what_id": "id",
        "who_id": "id",
        "duration_minutes": "number",
        "duration_seconds": "number",
        "duration_ms": "number",
        "duration_hms": "text",
        "is_deleted": "bool",
    },
    "spend": {
        "spend_id": "id",
        "month": "timestamp",
        "category": "text",
        "channel": "text",
        "amount": "number",
        "currency": "text",
        "is_deleted": "bool",
    },
    "tickets": {
        "ticket_id": "id",
        "account_id": "id",
        "account_external_id": "text",
        "account_name": "text",
        "owner_id": "id",
        "team": "text",
        "status": "text",
        "is_closed": "bool",
        "priority": "text",
        "channel": "text",
        "created_at": "timestamp",
        "first_response_at": "timestamp",
        # HubSpot's time_to_first_agent_reply (milliseconds after created_at), where no reply date is given.
        "first_response_ms": "number",
        "closed_at": "timestamp",
        "csat_score": "number",
        "csat_scale_max": "number",
        "is_deleted": "bool",
    },
}

# Every entity may also say which system a row comes from (a canonical file holding Salesforce ids).
COMMON_FIELDS: dict[str, Kind] = {"source_system": "text"}

ID_FIELD = {
    "deals": "deal_id", "leads": "lead_id", "activities": "activity_id", "spend": "spend_id", "tickets": "ticket_id",
}
MONTH_FIELD = {
    "deals": "created_at", "leads": "created_at", "activities": "occurred_at", "spend": "month", "tickets": "created_at",
}

# What a file must give (a column, a constant or, for the won state, a `stages` map), per CONTRACT.md.
REQUIRED = {
    "deals": ("deal_id", "created_at"),
    "leads": ("lead_id", "created_at"),
    "activities": ("activity_id", "occurred_at"),
    "spend": ("month", "amount"),
    "tickets": ("ticket_id", "created_at"),
}

# The field a `stages` map reads, per entity that has one: a deal's stage (won, lost, open), a ticket's status
# (open, closed).
STAGE_FIELD = {"deals": "stage", "tickets": "status"}
STAGE_CLASSES = {"deals": ("won", "lost", "open"), "tickets": ("open", "closed")}

# Association columns in exports may list several ids ("111;222"); the first one is used.
LIST_VALUED = {"account_id", "lead_id", "deal_id", "contact_id", "converted_deal_id", "converted_account_id"}


def fields_of(entity: str) -> dict[str, Kind]:
    return {**FIELDS[entity], **COMMON_FIELDS}

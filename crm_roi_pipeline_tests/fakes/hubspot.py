"""A fake HubSpot portal (CRM v3/v4 API) over real HTTP, for tests that drive the real hubspot-api-client.

`FakeHubSpot` starts a pytest-httpserver (werkzeug) server on 127.0.0.1 -- plain HTTP by default, HTTPS with a
trustme certificate when given a CA -- and answers, with HubSpot's documented wire format:

* ``POST /crm/v3/objects/{type}/search`` -- filterGroups (OR of ANDed filters; EQ, NEQ, LT, LTE, GT, GTE, BETWEEN,
  IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN), one sort, properties,
  limit <= 200, offset ``after`` below 10,000, a per-token rate limit (429 + Retry-After);
* ``GET /crm/v3/objects/{type}[/{id}]`` -- the list (and read) endpoint, ``archived=true`` for archived records;
* ``POST /crm/v3/objects/{type}/batch/read`` -- 200, or 207 with errors when some ids are unknown;
* ``GET /crm/v4/objects/{type}/{id}/associations/{toType}`` and ``POST /crm/v4/associations/{from}/{to}/batch/read``;
* ``GET /crm/v3/pipelines/{type}[/{pipelineId}[/stages]]``, ``GET /crm/v3/properties/{type}[/{name}]``,
  ``GET /crm/v3/owners[/{id}]``, ``GET /account-info/v3/details`` and ``GET /oauth/v1/access-tokens/{token}``.

Types: contacts, companies, deals, calls, emails, meetings, notes, tasks, tickets and feedback_submissions (or their
ids 0-1, 0-2, 0-3, 0-48, ..., 0-5, 0-19). Tickets need the ``tickets`` scope and have ticket pipelines (the default
support pipeline "0" with stages "1" New, "2" Waiting on contact, "3" Waiting on us, "4" Closed, whose metadata
``ticketState`` is OPEN or CLOSED); feedback submissions (survey responses: ``hs_survey_type`` CSAT / NPS / CES,
``hs_value``) need ``crm.objects.feedback_submissions.read``, as do their associations with tickets.
Property values are stored and returned as HubSpot's strings; filters compare them by the property's type
(datetime values may be sent as epoch milliseconds or ISO 8601). Each API needs a Bearer token that carries the
documented scope (401 INVALID_AUTHENTICATION / 403 MISSING_SCOPES otherwise).

Nothing here patches the client: point it at the fake with
``HubSpot(access_token=fake.token, host=fake.url)`` (every generated API's Configuration gets ``host``), or
``fake.client()``. With TLS, also pass ``ssl_ca_cert=fake.ca_bundle``.

Use the fixtures at the bottom (import them into a test module or conftest): ``fake_hubspot`` and
``make_fake_hubspot``.
"""

from __future__ import annotations

import collections
import fnmatch
import functools
import itertools
import json
import math
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from werkzeug.wrappers import Request, Response

from crm_roi_pipeline_tests.fakes.server import FakeServer

UTC = timezone.utc

#: Kinds accepted by :meth:`FakeHubSpot.fail_next`. "get" is the single-record read, "batch" the object batch
#: read, "associations" both v4 association reads, "account" account-info and access-token info, "any" every
#: authenticated API request.
FAILURE_KINDS = ("search", "list", "get", "batch", "associations", "pipelines", "properties", "owners", "account",
                 "any")

DEFAULT_CLOCK = datetime(2024, 7, 1, 9, 0, 0, tzinfo=UTC)

SEARCH_MAX_LIMIT = 200          # largest search page
SEARCH_DEFAULT_LIMIT = 10
SEARCH_MAX_RESULTS = 10_000     # the search endpoints page through at most this many results of a query
MAX_FILTER_GROUPS = 5           # search filter limits (HubSpot changelog, August 2024)
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS = 25
LIST_MAX_LIMIT = 100
LIST_DEFAULT_LIMIT = 10
BATCH_MAX_INPUTS = 100
ASSOCIATIONS_BATCH_MAX_INPUTS = 1000
ASSOCIATIONS_MAX_LIMIT = 500
OWNERS_MAX_LIMIT = 500
OWNERS_DEFAULT_LIMIT = 100
TOKEN_LIFETIME = 1800           # seconds, what access-token info reports as expires_in

OBJECT_TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-48": "calls", "0-49": "emails",
                   "0-47": "meetings", "0-46": "notes", "0-27": "tasks", "0-5": "tickets",
                   "0-19": "feedback_submissions"}
OBJECT_TYPES = tuple(OBJECT_TYPE_IDS.values())
ENGAGEMENT_TYPES = ("calls", "emails", "meetings", "notes", "tasks")
_SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal", "calls": "call", "emails": "email",
             "meetings": "meeting", "notes": "note", "tasks": "task", "tickets": "ticket",
             "feedback_submissions": "feedback_submission"}
FEEDBACK_SCOPE = "crm.objects.feedback_submissions.read"
# Survey responses keep their creation time in hs_createdate, as engagements do.
_HS_CREATED_TYPES = (*ENGAGEMENT_TYPES, "feedback_submissions")

#: The property holding the creation time, and the one holding the last modification time, per object type, as
#: HubSpot names them: engagements use hs_createdate, contacts lastmodifieddate (contacts also keep
#: hs_lastmodifieddate in step with it here).
CREATED_PROPERTY = {t: ("hs_createdate" if t in _HS_CREATED_TYPES else "createdate") for t in OBJECT_TYPES}
MODIFIED_PROPERTY = {t: ("lastmodifieddate" if t == "contacts" else "hs_lastmodifieddate") for t in OBJECT_TYPES}
#: Properties returned when a request names none.
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
              "pipeline"),
    **{t: ("hs_createdate", "hs_lastmodifieddate", "hs_object_id") for t in ENGAGEMENT_TYPES},
    "tickets": ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline", "hs_pipeline_stage",
                "hs_ticket_category", "hs_ticket_priority", "subject"),
    "feedback_submissions": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}
#: Scope each object type's records need (engagements are covered by the contacts scope).
READ_SCOPES = {"contacts": "crm.objects.contacts.read", "companies": "crm.objects.companies.read",
               "deals": "crm.objects.deals.read", **{t: "crm.objects.contacts.read" for t in ENGAGEMENT_TYPES},
               # Tickets still use the legacy `tickets` scope for reading and their schema.
               "tickets": "tickets", "feedback_submissions": FEEDBACK_SCOPE}
SCHEMA_SCOPES = {"contacts": "crm.schemas.contacts.read", "companies": "crm.schemas.companies.read",
                 "deals": "crm.schemas.deals.read", **{t: "crm.objects.contacts.read" for t in ENGAGEMENT_TYPES},
                 "tickets": "tickets", "feedback_submissions": FEEDBACK_SCOPE}
#: Types whose association reads need the read scope of both ends (the older types keep the from-type's only).
BOTH_ENDS_SCOPED = ("tickets", "feedback_submissions")
OWNERS_SCOPE = "crm.objects.owners.read"
DEFAULT_SCOPES = tuple(sorted({"oauth", OWNERS_SCOPE, *READ_SCOPES.values(), *SCHEMA_SCOPES.values()}))

# (from, to) -> HUBSPOT_DEFINED association type id of the unlabeled association; the reverse pair has its own id.
ASSOCIATION_TYPE_IDS = {
    ("contacts", "companies"): 279, ("companies", "contacts"): 280,
    ("deals", "contacts"): 3, ("contacts", "deals"): 4,
    ("deals", "companies"): 341, ("companies", "deals"): 342,
    ("calls", "contacts"): 194, ("contacts", "calls"): 193, ("calls", "companies"): 182,
    ("companies", "calls"): 181, ("calls", "deals"): 206, ("deals", "calls"): 205,
    ("emails", "contacts"): 198, ("contacts", "emails"): 197, ("emails", "companies"): 186,
    ("companies", "emails"): 185, ("emails", "deals"): 210, ("deals", "emails"): 209,
    ("meetings", "contacts"): 200, ("contacts", "meetings"): 199, ("meetings", "companies"): 188,
    ("companies", "meetings"): 187, ("meetings", "deals"): 212, ("deals", "meetings"): 211,
    ("notes", "contacts"): 202, ("contacts", "notes"): 201, ("notes", "companies"): 190,
    ("companies", "notes"): 189, ("notes", "deals"): 214, ("deals", "notes"): 213,
    ("tasks", "contacts"): 204, ("contacts", "tasks"): 203, ("tasks", "companies"): 192,
    ("companies", "tasks"): 191, ("tasks", "deals"): 216, ("deals", "tasks"): 215,
    ("tickets", "contacts"): 16, ("contacts", "tickets"): 15, ("tickets", "companies"): 339,
    ("companies", "tickets"): 340, ("tickets", "deals"): 28, ("deals", "tickets"): 27,
    # HubSpot's list of default ids has no row for survey responses; these are the fake's own.
    ("feedback_submissions", "tickets"): 1180, ("tickets", "feedback_submissions"): 1181,
    ("feedback_submissions", "contacts"): 1182, ("contacts", "feedback_submissions"): 1183,
}
# The "Primary" company of a contact, deal or ticket, and the reverse.
PRIMARY_ASSOCIATION_TYPE_IDS = {("contacts", "companies"): 1, ("companies", "contacts"): 2,
                                ("deals", "companies"): 5, ("companies", "deals"): 6,
                                ("tickets", "companies"): 26, ("companies", "tickets"): 25}

_MESSAGES = {
    401: ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
          "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"),
    403: ("This app hasn't been granted all required scopes to make this call. Read more about required scopes here: "
          "https://developers.hubspot.com/scopes."),
    429: "You have reached your secondly limit.",
}


# ------------------------------------------------------------------------------------ value coding


def _utc(value: datetime) -> datetime:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _iso(value: datetime, millis: bool = True) -> str:
    """HubSpot's timestamp form: 2024-01-15T09:30:00.000Z (or without the milliseconds)."""
    value = _utc(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if millis or value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"


def _epoch_ms(value: datetime) -> int:
    return int(round(_utc(value).timestamp() * 1000))


_EPOCH_RE = re.compile(r"-?\d{9,}")


def parse_timestamp(text: Any) -> datetime:
    """A HubSpot datetime or date value: epoch milliseconds ("1705311000000"), an ISO 8601 date ("2024-01-15")
    or datetime ("2024-01-15T09:30:00Z", ".000Z", "+01:00"). Naive values are UTC. Raises ValueError."""
    if isinstance(text, datetime):
        return _utc(text)
    if isinstance(text, date):
        return datetime(text.year, text.month, text.day, tzinfo=UTC)
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return datetime.fromtimestamp(text / 1000, tz=UTC)
    s = str(text).strip()
    if _EPOCH_RE.fullmatch(s):
        return datetime.fromtimestamp(int(s) / 1000, tz=UTC)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        return datetime.fromisoformat(s).replace(tzinfo=UTC)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?", s):
        raise ValueError(f"not a HubSpot date or datetime: {text!r}")
    s = re.sub(r"Z$", "+00:00", s)
    s = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", s)
    m = re.search(r"\.(\d+)", s)
    if m and len(m.group(1)) > 6:  # fromisoformat takes at most microseconds
        s = s.replace(m.group(0), "." + m.group(1)[:6])
    return _utc(datetime.fromisoformat(s))


@functools.lru_cache(maxsize=200_000)
def _timestamp_ms(text: str) -> int:
    """parse_timestamp, remembered: a search compares every record's dates, and big portals page many times."""
    return _epoch_ms(parse_timestamp(text))


def _number_text(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a number: {value!r}")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return str(value)
    text = str(value).strip()
    try:
        Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    return text


# ------------------------------------------------------------------------------------------ schema

PROPERTY_TYPES = ("string", "number", "date", "datetime", "enumeration", "bool")
_FIELD_TYPES = {"string": "text", "number": "number", "date": "date", "datetime": "date", "enumeration": "select",
                "bool": "booleancheckbox"}


@dataclass
class PropertyDef:
    name: str
    type: str
    label: str
    group_name: str
    field_type: str = ""
    options: list[dict] = field(default_factory=list)
    description: str = ""
    hubspot_defined: bool = True
    calculated: bool = False
    hidden: bool = False
    read_only: bool = False
    display_order: int = -1
    created: datetime = DEFAULT_CLOCK
    updated: datetime = DEFAULT_CLOCK

    def __post_init__(self) -> None:
        if self.type not in PROPERTY_TYPES:
            raise ValueError(f"unknown property type {self.type!r}; one of {PROPERTY_TYPES}")
        self.field_type = self.field_type or _FIELD_TYPES[self.type]

    def encode(self, value: Any) -> str | None:
        """A Python value (or a HubSpot string) -> the string HubSpot stores and returns. Datetime strings are kept
        as given ("...T09:30:00Z" or "...T09:30:00.000Z"); datetime, date and epoch-ms values become
        "2024-01-15T09:30:00.000Z"."""
        if value is None:
            return None
        if isinstance(value, str) and value == "":
            return ""
        t = self.type
        if t == "datetime":
            if isinstance(value, str) and not _EPOCH_RE.fullmatch(value.strip()):
                parse_timestamp(value)  # validate; keep the caller's spelling (".000Z" or not)
                return value.strip()
            return _iso(parse_timestamp(value))
        if t == "date":
            if isinstance(value, datetime):
                return _utc(value).date().isoformat()
            if isinstance(value, date):
                return value.isoformat()
            return parse_timestamp(value).date().isoformat()
        if t == "number":
            return _number_text(value)
        if t == "bool":
            if isinstance(value, bool):
                return "true" if value else "false"
            text = str(value).strip().lower()
            if text not in ("true", "false"):
                raise ValueError(f"{self.name}: not a boolean: {value!r}")
            return text
        return str(value)

    def comparable(self, text: Any) -> Any:
        """A stored value or a filter value -> something ordered by this property's type. Raises ValueError."""
        t = self.type
        if t in ("datetime", "date"):
            return _timestamp_ms(text if isinstance(text, str) else str(text)) if not isinstance(text, datetime) \
                else _epoch_ms(text)
        if t == "number":
            try:
                return Decimal(str(text).strip())
            except InvalidOperation:
                raise ValueError(f"not a number: {text!r}") from None
        if t == "bool":
            value = str(text).strip().lower()
            if value not in ("true", "false"):
                raise ValueError(f"not a boolean: {text!r}")
            return value == "true"
        return str(text).lower()

    def to_json(self) -> dict:
        body: dict[str, Any] = {
            "updatedAt": _iso(self.updated), "createdAt": _iso(self.created), "name": self.name, "label": self.label,
            "type": self.type, "fieldType": self.field_type, "description": self.description,
            "groupName": self.group_name, "options": [dict(o) for o in self.options],
            "displayOrder": self.display_order, "calculated": self.calculated, "externalOptions": False,
            "hasUniqueValue": self.name == "hs_object_id", "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {"archivable": not self.hubspot_defined,
                                     "readOnlyDefinition": self.hubspot_defined,
                                     "readOnlyValue": self.read_only or self.calculated},
            "formField": self.type != "datetime" and not self.calculated,
            "archived": False,
        }
        if self.name in ("amount", "amount_in_home_currency", "annualrevenue"):
            body["showCurrencySymbol"] = True
        return body


def _options(options: Any) -> list[dict]:
    """Options given as values, (value, label) pairs or dicts -> HubSpot's option dicts."""
    out = []
    for order, option in enumerate(options or ()):
        if isinstance(option, str):
            option = {"value": option, "label": option}
        elif isinstance(option, (tuple, list)):
            option = {"value": option[0], "label": option[1]}
        else:
            option = dict(option)
        out.append({"label": str(option.get("label", option["value"])), "value": str(option["value"]),
                    "description": option.get("description", ""),
                    "displayOrder": int(option.get("displayOrder", option.get("display_order", order))),
                    "hidden": bool(option.get("hidden", False))})
    return out


LIFECYCLE_STAGES = (("subscriber", "Subscriber"), ("lead", "Lead"),
                    ("marketingqualifiedlead", "Marketing Qualified Lead"),
                    ("salesqualifiedlead", "Sales Qualified Lead"), ("opportunity", "Opportunity"),
                    ("customer", "Customer"), ("evangelist", "Evangelist"), ("other", "Other"))
ANALYTICS_SOURCES = (("ORGANIC_SEARCH", "Organic Search"), ("PAID_SEARCH", "Paid Search"),
                     ("EMAIL_MARKETING", "Email Marketing"), ("SOCIAL_MEDIA", "Organic Social"),
                     ("REFERRALS", "Referrals"), ("OTHER_CAMPAIGNS", "Other Campaigns"),
                     ("DIRECT_TRAFFIC", "Direct Traffic"), ("OFFLINE", "Offline Sources"),
                     ("PAID_SOCIAL", "Paid Social"))
DEAL_TYPES = (("newbusiness", "New Business"), ("existingbusiness", "Existing Business"))
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF")
#: The default support pipeline "0": (id, label, ticketState).
DEFAULT_TICKET_STAGES = (("1", "New", "OPEN"), ("2", "Waiting on contact", "OPEN"), ("3", "Waiting on us", "OPEN"),
                         ("4", "Closed", "CLOSED"))
TICKET_PRIORITIES = (("LOW", "Low"), ("MEDIUM", "Medium"), ("HIGH", "High"), ("URGENT", "Urgent"))
TICKET_SOURCES = (("EMAIL", "Email"), ("CHAT", "Chat"), ("PHONE", "Phone"), ("FORM", "Form"))
SURVEY_TYPES = ("NPS", "CSAT", "CES", "CUSTOM", "KNOWLEDGE")
DEFAULT_DEAL_STAGES = (
    ("appointmentscheduled", "Appointment Scheduled", 0.2, False),
    ("qualifiedtobuy", "Qualified To Buy", 0.4, False),
    ("presentationscheduled", "Presentation Scheduled", 0.6, False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", 0.8, False),
    ("contractsent", "Contract Sent", 0.9, False),
    ("closedwon", "Closed Won", 1.0, True),
    ("closedlost", "Closed Lost", 0.0, True),
)


def _standard_properties(clock: datetime) -> dict[str, dict[str, PropertyDef]]:
    """Object type -> {name: PropertyDef}; a fresh copy for each fake."""

    def p(name: str, type_: str, label: str, options: Any = (), **kw: Any) -> PropertyDef:
        return PropertyDef(name, type_, label, "", options=_options(options), created=clock, updated=clock, **kw)

    def system(obj: str) -> list[PropertyDef]:
        props = [p("hs_object_id", "number", "Record ID", read_only=True),
                 p(CREATED_PROPERTY[obj], "datetime", "Create Date", read_only=True),
                 p(MODIFIED_PROPERTY[obj], "datetime", "Last Modified Date", read_only=True)]
        if obj != "feedback_submissions":  # a survey response has no owner
            props.append(p("hubspot_owner_id", "enumeration", f"{_SINGULAR[obj].title()} owner"))
        if obj == "contacts":
            props.append(p("hs_lastmodifieddate", "datetime", "Object last modified date/time", read_only=True))
        return props

    engagement = [p("hs_timestamp", "datetime", "Activity date")]
    catalogue: dict[str, list[PropertyDef]] = {
        "contacts": [
            p("email", "string", "Email"), p("firstname", "string", "First Name"),
            p("lastname", "string", "Last Name"), p("phone", "string", "Phone Number"),
            p("company", "string", "Company Name"), p("jobtitle", "string", "Job Title"),
            p("lifecyclestage", "enumeration", "Lifecycle Stage", LIFECYCLE_STAGES, field_type="radio"),
            p("hs_lead_status", "enumeration", "Lead Status", (
                "NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED",
                "BAD_TIMING"), field_type="radio"),
            p("hs_analytics_source", "enumeration", "Original Traffic Source", ANALYTICS_SOURCES, read_only=True),
            *[p(f"hs_lifecyclestage_{value}_date", "datetime", f"Became a {label} Date", calculated=True)
              for value, label in LIFECYCLE_STAGES],
        ],
        "companies": [
            p("name", "string", "Company name"), p("domain", "string", "Company Domain Name"),
            p("industry", "enumeration", "Industry"), p("annualrevenue", "number", "Annual Revenue"),
        ],
        "deals": [
            p("dealname", "string", "Deal Name"), p("amount", "number", "Amount"),
            p("amount_in_home_currency", "number", "Amount in company currency", calculated=True),
            p("closedate", "datetime", "Close Date"),
            p("dealstage", "enumeration", "Deal Stage", field_type="radio"),
            p("pipeline", "enumeration", "Pipeline"),
            p("dealtype", "enumeration", "Deal Type", DEAL_TYPES, field_type="radio"),
            p("deal_currency_code", "enumeration", "Currency", CURRENCIES),
            p("hs_analytics_source", "enumeration", "Original Traffic Source", ANALYTICS_SOURCES, read_only=True),
            p("description", "string", "Deal Description", field_type="textarea"),
            p("closed_lost_reason", "string", "Closed Lost Reason", field_type="textarea"),
            p("closed_won_reason", "string", "Closed Won Reason", field_type="textarea"),
            p("hs_is_closed", "bool", "Is Deal Closed?", calculated=True),
            p("hs_is_closed_won", "bool", "Is Closed Won", calculated=True),
            p("hs_deal_stage_probability", "number", "Deal probability", calculated=True),
        ],
        "calls": [*engagement, p("hs_call_title", "string", "Call Title"), p("hs_call_body", "string", "Call notes"),
                  p("hs_call_duration", "number", "Call duration"),
                  p("hs_call_direction", "enumeration", "Call direction", ("INBOUND", "OUTBOUND")),
                  p("hs_call_disposition", "string", "Call outcome"),
                  p("hs_call_status", "enumeration", "Call status", (
                      "BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED", "IN_PROGRESS",
                      "NO_ANSWER", "QUEUED", "RINGING"))],
        "emails": [*engagement, p("hs_email_subject", "string", "Email subject"),
                   p("hs_email_text", "string", "Email body"),
                   p("hs_email_direction", "enumeration", "Email direction",
                     ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL")),
                   p("hs_email_status", "enumeration", "Email send status",
                     ("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"))],
        "meetings": [*engagement, p("hs_meeting_title", "string", "Meeting name"),
                     p("hs_meeting_body", "string", "Meeting description"),
                     p("hs_meeting_start_time", "datetime", "Meeting start time"),
                     p("hs_meeting_end_time", "datetime", "Meeting end time"),
                     p("hs_meeting_outcome", "enumeration", "Meeting outcome",
                       ("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"))],
        "notes": [*engagement, p("hs_note_body", "string", "Note body")],
        "tasks": [*engagement, p("hs_task_subject", "string", "Task Title"), p("hs_task_body", "string", "Notes"),
                  p("hs_task_status", "enumeration", "Task Status",
                    ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")),
                  p("hs_task_priority", "enumeration", "Priority", ("LOW", "MEDIUM", "HIGH")),
                  p("hs_task_type", "enumeration", "Task Type", ("EMAIL", "CALL", "TODO")),
                  p("hs_task_completion_date", "datetime", "Completed at", calculated=True)],
        "tickets": [
            p("subject", "string", "Ticket name"), p("content", "string", "Ticket description", field_type="textarea"),
            p("hs_pipeline", "enumeration", "Pipeline"),
            p("hs_pipeline_stage", "enumeration", "Ticket status", field_type="radio"),
            p("hs_ticket_priority", "enumeration", "Priority", TICKET_PRIORITIES),
            p("hs_ticket_category", "enumeration", "Category",
              ("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY")),
            p("source_type", "enumeration", "Source", TICKET_SOURCES),
            p("closed_date", "datetime", "Close date"),
            p("first_agent_reply_date", "datetime", "First agent email response date", calculated=True),
            p("time_to_first_agent_reply", "number", "Time to first agent email reply", calculated=True),
            p("time_to_close", "number", "Time to close", calculated=True),
        ],
        "feedback_submissions": [
            p("hs_survey_id", "string", "Survey id", read_only=True),
            p("hs_survey_name", "string", "Survey name", read_only=True),
            p("hs_survey_type", "enumeration", "Survey type", SURVEY_TYPES, read_only=True),
            p("hs_survey_channel", "enumeration", "Survey channel", ("EMAIL", "WEB", "CHAT"), read_only=True),
            p("hs_value", "number", "Response value", read_only=True),
            p("hs_response_group", "enumeration", "Response group", ("PROMOTER", "PASSIVE", "DETRACTOR"),
              read_only=True),
            p("hs_content", "string", "Response", read_only=True),
            p("hs_sentiment", "enumeration", "Sentiment", ("POSITIVE", "NEUTRAL", "NEGATIVE"), read_only=True),
            p("hs_submission_timestamp", "datetime", "Submitted at", read_only=True),
        ],
    }
    out = {}
    for obj, props in catalogue.items():
        group = f"{_SINGULAR[obj]}information"
        defs = {}
        for order, prop in enumerate(system(obj) + props):
            prop.group_name, prop.display_order = group, order
            defs[prop.name] = prop
        out[obj] = defs
    return out


# ------------------------------------------------------------------------------------------ records


@dataclass
class _Record:
    id: str
    properties: dict[str, str | None]
    created: datetime
    updated: datetime
    archived: bool = False
    archived_at: datetime | None = None
    #: name -> [(value, timestamp)], newest first (propertiesWithHistory)
    history: dict[str, list[tuple[str | None, datetime]]] = field(default_factory=dict)


@dataclass
class _Owner:
    id: str
    email: str
    first_name: str
    last_name: str
    user_id: int
    teams: list[dict]
    created: datetime
    updated: datetime
    archived: bool = False
    type: str = "PERSON"

    def to_json(self) -> dict:
        return {"id": self.id, "email": self.email, "type": self.type, "firstName": self.first_name,
                "lastName": self.last_name, "userId": self.user_id, "userIdIncludingInactive": self.user_id,
                "createdAt": _iso(self.created), "updatedAt": _iso(self.updated), "archived": self.archived,
                "teams": [dict(t) for t in self.teams]}


class ApiError(Exception):
    """Raised inside a handler: becomes a HubSpot error response."""

    def __init__(self, status: int, category: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.category, self.message, self.extra = status, category, message, extra


def _validation(message: str, **extra: Any) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, **extra)



# --------------------------------------------------------------------------------------------- fake


class FakeHubSpot(FakeServer):
    """A started fake portal. See the module docstring; all public methods are thread-safe."""

    def __init__(self, ca: Any = None, *, search_rps: float | None = 4, clock: datetime | None = None,
                 portal_id: int = 24242424, time_zone: str = "US/Eastern", company_currency: str = "USD",
                 scopes: tuple[str, ...] | list[str] | None = None):
        """ca: a trustme.CA to serve HTTPS with a certificate it issues (None: plain HTTP).
        search_rps: search requests allowed per second per token (None: unlimited)."""
        self._lock = threading.RLock()
        self.search_rps = search_rps
        self._clock = _utc(clock) if clock else DEFAULT_CLOCK
        self.portal_id = portal_id
        self.time_zone = time_zone
        self.company_currency = company_currency
        self.app_id = 1234567
        self.user_id = 7654321

        #: every request received: (method, path with its query string, JSON body or None)
        self.requests: list[tuple[str, str, Any]] = []
        #: exceptions raised inside the fake while serving (bugs of the fake); the fixtures fail on them
        self.server_errors: list[str] = []

        self._properties = _standard_properties(self._clock)
        self._records: dict[str, dict[str, _Record]] = {t: {} for t in OBJECT_TYPES}
        self._ids = itertools.count(1001)
        self._assoc: dict[tuple[str, str, str], dict[str, list[dict]]] = collections.defaultdict(dict)
        self._pipelines: dict[str, list[dict]] = collections.defaultdict(list)
        self._pipeline_ids = itertools.count(15_000_001)
        self._owners: dict[str, _Owner] = {}
        self._owner_ids = itertools.count(100_000_001)
        self._user_ids = itertools.count(5_000_001)
        self._team_ids: dict[str, str] = {}
        self._failures: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._tokens: dict[str, set[str]] = {}
        self._token_issued: dict[str, datetime] = {}
        self._search_times: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self.token = self.issue_token(scopes)
        self.add_pipeline("Sales Pipeline", DEFAULT_DEAL_STAGES, pipeline_id="default", display_order=0)
        self.add_pipeline("Support Pipeline", DEFAULT_TICKET_STAGES, pipeline_id="0", display_order=0,
                          object_type="tickets")

        self._serve(ca, "fake-hubspot-")

    # ------------------------------------------------------------------------- client helpers

    def client(self, token: str | None = None, **kwargs: Any):
        """A real hubspot.HubSpot pointed at the fake: HubSpot(access_token=..., host=fake.url[, ssl_ca_cert=...]).
        Extra kwargs (retry=urllib3 Retry, ...) are passed on; HubSpot sets each on every API's Configuration."""
        from hubspot import HubSpot

        kwargs.setdefault("host", self.url)
        if self.ca_bundle:
            kwargs.setdefault("ssl_ca_cert", self.ca_bundle)
        return HubSpot(access_token=token or self.token, **kwargs)

    # ------------------------------------------------------------------------------------ clock

    @property
    def clock(self) -> datetime:
        return self._clock

    @clock.setter
    def clock(self, value: datetime) -> None:
        with self._lock:
            self._clock = _utc(value)

    def tick(self, seconds: float = 0, **kwargs: float) -> datetime:
        """Advance the fake portal time by timedelta(seconds=seconds, **kwargs); returns the new time. (The search
        rate limit runs on real monotonic time, not on this clock.)"""
        with self._lock:
            self._clock = _utc(self._clock + timedelta(seconds=seconds, **kwargs))
            return self._clock

    # ----------------------------------------------------------------------------------- tokens

    def issue_token(self, scopes: tuple[str, ...] | list[str] | None = None) -> str:
        """A new private-app style access token with these scopes (default: DEFAULT_SCOPES)."""
        with self._lock:
            token = f"pat-na1-{uuid.uuid4()}"
            self._tokens[token] = set(DEFAULT_SCOPES if scopes is None else scopes)
            self._token_issued[token] = self._clock
            return token

    def revoke_scope(self, scope: str, token: str | None = None) -> None:
        """The token (default: fake.token) loses a scope: calls that need it get 403 MISSING_SCOPES."""
        with self._lock:
            self._tokens[token or self.token].discard(scope)

    def grant_scope(self, scope: str, token: str | None = None) -> None:
        with self._lock:
            self._tokens[token or self.token].add(scope)

    def scopes(self, token: str | None = None) -> set[str]:
        with self._lock:
            return set(self._tokens[token or self.token])

    def expire_token(self, token: str | None = None) -> None:
        """The token (default: fake.token) stops working: 401 INVALID_AUTHENTICATION."""
        with self._lock:
            self._tokens.pop(token or self.token, None)

    # ------------------------------------------------------------------------------ object data

    @staticmethod
    def _type(object_type: str) -> str:
        name = OBJECT_TYPE_IDS.get(object_type, object_type.lower())
        if name not in OBJECT_TYPES:
            raise KeyError(f"FakeHubSpot has no object type {object_type!r}; known: {', '.join(OBJECT_TYPES)}")
        return name

    def _prop(self, obj: str, name: str) -> PropertyDef:
        try:
            return self._properties[obj][name]
        except KeyError:
            raise KeyError(f"{obj} has no property {name!r} in this fake portal (add_property to define it)") from None

    def _find(self, object_type: str, record_id: Any) -> tuple[str, _Record]:
        obj = self._type(object_type)
        rec = self._records[obj].get(str(record_id))
        if rec is None:
            raise KeyError(f"no {obj} record with id {record_id}")
        return obj, rec

    def _set(self, obj: str, rec: _Record, name: str, value: str | None, at: datetime) -> None:
        if name != "hs_object_id" and rec.properties.get(name) == value and name in rec.history:
            return
        rec.properties[name] = value
        rec.history.setdefault(name, []).insert(0, (value, at))

    def add(self, object_type: str, **properties: Any) -> dict:
        """Add a record. Values may be Python objects (datetime, date, Decimal, float, bool) or HubSpot strings.
        Filled unless given: id and hs_object_id (numeric strings; pass hs_object_id to choose), the creation
        property (createdate, or hs_createdate for engagements) from the clock, the modification property
        (hs_lastmodifieddate; lastmodifieddate for contacts) from the creation time. Deals get pipeline,
        hs_is_closed, hs_is_closed_won and hs_deal_stage_probability from their dealstage; tickets get hs_pipeline
        from their hs_pipeline_stage, and closed_date (the creation or modification time) when that stage's
        ticketState is CLOSED; contacts get hs_lifecyclestage_<stage>_date for their lifecyclestage. Unknown
        properties raise KeyError.
        Returns the record as the API shows it, with every stored property."""
        with self._lock:
            obj = self._type(object_type)
            values = self._encode(obj, properties)
            rid = values.pop("hs_object_id", None)
            if rid is None:
                rid = str(next(self._ids))
                while rid in self._records[obj]:
                    rid = str(next(self._ids))
            if not re.fullmatch(r"\d+", rid):
                raise ValueError(f"hs_object_id must be numeric, not {rid!r}")
            if rid in self._records[obj]:
                raise ValueError(f"duplicate {obj} id {rid}")
            created_prop, modified_prop = CREATED_PROPERTY[obj], MODIFIED_PROPERTY[obj]
            created = parse_timestamp(values[created_prop]) if values.get(created_prop) else self._clock
            modified = parse_timestamp(values[modified_prop]) if values.get(modified_prop) else created
            rec = _Record(rid, {}, created, modified)
            values.setdefault(created_prop, _iso(created))
            values[modified_prop] = values.get(modified_prop) or _iso(modified)
            if obj == "contacts":
                values["hs_lastmodifieddate"] = values[modified_prop]
            self._derive(obj, values, set(properties), created)
            self._set(obj, rec, "hs_object_id", rid, created)
            for name, value in values.items():
                self._set(obj, rec, name, value, created)
            self._records[obj][rid] = rec
            return self._full_json(obj, rec)

    def _encode(self, obj: str, properties: dict) -> dict[str, str | None]:
        values = {name: self._prop(obj, name).encode(value) for name, value in properties.items()}
        if obj == "contacts" and values.get("hs_lastmodifieddate") and not values.get("lastmodifieddate"):
            values["lastmodifieddate"] = values["hs_lastmodifieddate"]  # the two stay in step
        return values

    def _derive(self, obj: str, values: dict, given: set[str], at: datetime,
                current_pipeline: str | None = None) -> None:
        if obj == "deals" and values.get("dealstage"):
            stage_id = values["dealstage"]
            pipeline_id = values.get("pipeline")
            if pipeline_id is None and current_pipeline:
                found = self._stage(current_pipeline, stage_id) or self._stage(None, stage_id)
            else:
                found = self._stage(pipeline_id, stage_id)
            if found is not None:
                pipeline, stage = found
                closed = stage["metadata"].get("isClosed") == "true"
                probability = stage["metadata"].get("probability")
                if "pipeline" not in given:
                    values["pipeline"] = pipeline["id"]
                if "hs_is_closed" not in given:
                    values["hs_is_closed"] = "true" if closed else "false"
                if "hs_is_closed_won" not in given:
                    won = closed and probability is not None and float(probability) >= 1.0
                    values["hs_is_closed_won"] = "true" if won else "false"
                if "hs_deal_stage_probability" not in given and probability is not None:
                    values["hs_deal_stage_probability"] = probability
        if obj == "tickets" and values.get("hs_pipeline_stage"):
            stage_id = values["hs_pipeline_stage"]
            pipeline_id = values.get("hs_pipeline")
            if pipeline_id is None and current_pipeline:
                found = self._stage(current_pipeline, stage_id, "tickets") or self._stage(None, stage_id, "tickets")
            else:
                found = self._stage(pipeline_id, stage_id, "tickets")
            if found is not None:
                pipeline, stage = found
                if "hs_pipeline" not in given:
                    values["hs_pipeline"] = pipeline["id"]
                # HubSpot stamps closed_date when a ticket enters a closed stage (unless the caller sets it).
                if stage["metadata"].get("ticketState") == "CLOSED" and "closed_date" not in given:
                    values["closed_date"] = _iso(at)
        if obj == "contacts" and values.get("lifecyclestage"):
            name = f"hs_lifecyclestage_{values['lifecyclestage']}_date"
            if name in self._properties["contacts"] and name not in given:
                values[name] = _iso(at)

    def _stage(self, pipeline_id: str | None, stage_id: str, object_type: str = "deals") -> tuple[dict, dict] | None:
        pipelines = self._pipelines.get(object_type, [])
        default = "0" if object_type == "tickets" else "default"
        ordered = sorted(pipelines, key=lambda p: (p["id"] != (pipeline_id or default), p["displayOrder"]))
        for pipeline in ordered:
            if pipeline_id and pipeline["id"] != pipeline_id:
                continue
            for stage in pipeline["stages"]:
                if stage["id"] == stage_id:
                    return pipeline, stage
        return None

    def add_many(self, object_type: str, rows: list[dict]) -> list[dict]:
        """add() for each dict of properties; returns the added records."""
        return [self.add(object_type, **row) for row in rows]

    def update(self, object_type: str, record_id: Any, **properties: Any) -> dict:
        """Change properties; the modification property (and updatedAt) becomes the fake clock unless given.
        Derived deal/contact properties follow dealstage / lifecyclestage as in add()."""
        with self._lock:
            obj, rec = self._find(object_type, record_id)
            values = self._encode(obj, properties)
            if "hs_object_id" in values:
                raise ValueError("hs_object_id cannot be updated")
            modified_prop = MODIFIED_PROPERTY[obj]
            modified = parse_timestamp(values[modified_prop]) if values.get(modified_prop) else self._clock
            values[modified_prop] = values.get(modified_prop) or _iso(modified)
            if obj == "contacts":
                values["hs_lastmodifieddate"] = values[modified_prop]
            self._derive(obj, values, set(properties), modified,
                         rec.properties.get("hs_pipeline" if obj == "tickets" else "pipeline"))
            if CREATED_PROPERTY[obj] in values and values[CREATED_PROPERTY[obj]]:
                rec.created = parse_timestamp(values[CREATED_PROPERTY[obj]])
            for name, value in values.items():
                self._set(obj, rec, name, value, modified)
            rec.updated = modified
            return self._full_json(obj, rec)

    def archive(self, object_type: str, record_id: Any) -> None:
        """Archive (HubSpot's delete): gone from search, list and batch read; listed with archived=true, with
        archivedAt (and updatedAt) the fake clock."""
        with self._lock:
            _, rec = self._find(object_type, record_id)
            rec.archived, rec.archived_at, rec.updated = True, self._clock, self._clock

    def restore(self, object_type: str, record_id: Any) -> None:
        with self._lock:
            _, rec = self._find(object_type, record_id)
            rec.archived, rec.archived_at, rec.updated = False, None, self._clock

    def get(self, object_type: str, record_id: Any) -> dict:
        """The record as the API shows it, with every stored property (archived ones too)."""
        with self._lock:
            obj, rec = self._find(object_type, record_id)
            return self._full_json(obj, rec)

    def records(self, object_type: str) -> list[dict]:
        """All stored records of a type, archived ones included, by id."""
        with self._lock:
            obj = self._type(object_type)
            return [self._full_json(obj, r) for r in sorted(self._records[obj].values(), key=lambda r: int(r.id))]

    def _full_json(self, obj: str, rec: _Record) -> dict:
        return self._record_json(obj, rec, sorted(rec.properties))

    # --------------------------------------------------------------------------------- properties

    def add_property(self, object_type: str, name: str, type: str = "string", *, label: str | None = None,
                     field_type: str | None = None, options: Any = (), group_name: str | None = None,
                     description: str = "") -> dict:
        """Define a custom property (hubspotDefined false), e.g. add_property("deals", "segment", "enumeration",
        options=["SMB", "Enterprise"]). Returns its definition as the Properties API shows it."""
        with self._lock:
            obj = self._type(object_type)
            if name in self._properties[obj]:
                raise ValueError(f"{obj}.{name} already exists")
            prop = PropertyDef(name, type, label or name.replace("_", " ").title(),
                               group_name or f"{_SINGULAR[obj]}information", field_type=field_type or "",
                               options=_options(options), description=description, hubspot_defined=False,
                               display_order=-1, created=self._clock, updated=self._clock)
            self._properties[obj][name] = prop
            return prop.to_json()

    def set_property_options(self, object_type: str, name: str, options: Any) -> None:
        """Replace a property's options: values, (value, label) pairs or dicts with label, value and optionally
        displayOrder, hidden, description -- e.g. custom lifecycle stages
        set_property_options("contacts", "lifecyclestage", [("lead", "Lead"), ("1234567", "Trial")])."""
        with self._lock:
            prop = self._prop(self._type(object_type), name)
            prop.options = _options(options)
            prop.updated = self._clock

    def property_definition(self, object_type: str, name: str) -> dict:
        with self._lock:
            return self._prop(self._type(object_type), name).to_json()

    # ---------------------------------------------------------------------------------- pipelines

    def add_pipeline(self, label: str, stages: Any, *, pipeline_id: str | None = None, object_type: str = "deals",
                     display_order: int | None = None) -> dict:
        """Add a pipeline. stages: (id, label, probability, closed) tuples or dicts with label and optionally id,
        probability, closed / isClosed, metadata; ids default to numeric strings (as HubSpot gives custom
        pipelines), as does pipeline_id. Deal pipelines also become options of the pipeline and dealstage
        properties. Ticket pipelines (object_type="tickets") take (id, label, ticketState) tuples or dicts with
        ticketState "OPEN" / "CLOSED" (or closed), which becomes the stage's metadata as HubSpot shows it, and
        become options of hs_pipeline and hs_pipeline_stage. Returns the pipeline as the Pipelines API shows it."""
        with self._lock:
            pipelines = self._pipelines[object_type]
            pid = pipeline_id or str(next(self._pipeline_ids))
            if any(p["id"] == pid for p in pipelines):
                raise ValueError(f"duplicate pipeline id {pid}")
            now = _iso(self._clock)
            out_stages = []
            for order, spec in enumerate(stages):
                if isinstance(spec, (tuple, list)):
                    names = ("id", "label", "ticketState") if object_type == "tickets" else \
                        ("id", "label", "probability", "closed")
                    spec = dict(zip(names, spec))
                spec = dict(spec)
                metadata = {k: str(v) for k, v in (spec.get("metadata") or {}).items()}
                closed = spec.get("closed", spec.get("isClosed"))
                if object_type == "tickets":
                    # A ticket stage says whether it is closed by ticketState alone (HubSpot's documented shape).
                    state = spec.get("ticketState") or ("CLOSED" if str(closed).lower() == "true" else "OPEN")
                    metadata.setdefault("ticketState", str(state).upper())
                elif closed is not None or object_type == "deals":
                    metadata.setdefault("isClosed", "true" if str(closed).lower() == "true" else "false")
                if spec.get("probability") is not None:
                    metadata["probability"] = str(float(spec["probability"]))
                out_stages.append({
                    "label": spec["label"], "displayOrder": int(spec.get("displayOrder", order)),
                    "metadata": metadata, "id": str(spec.get("id") or next(self._pipeline_ids)),
                    "createdAt": now, "updatedAt": now, "archived": False,
                    "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                })
            pipeline = {"label": label, "displayOrder": len(pipelines) if display_order is None else display_order,
                        "id": pid, "stages": out_stages, "createdAt": now, "updatedAt": now, "archived": False}
            pipelines.append(pipeline)
            if object_type == "deals":
                self._sync_deal_options()
            if object_type == "tickets":
                self._sync_ticket_options()
            return json.loads(json.dumps(pipeline))

    def _sync_deal_options(self) -> None:
        pipelines = sorted(self._pipelines["deals"], key=lambda p: p["displayOrder"])
        props = self._properties["deals"]
        props["pipeline"].options = _options([(p["id"], p["label"]) for p in pipelines])
        props["dealstage"].options = _options(
            [{"value": s["id"], "label": s["label"], "description": f"{p['label']}"}
             for p in pipelines for s in sorted(p["stages"], key=lambda s: s["displayOrder"])])

    def _sync_ticket_options(self) -> None:
        pipelines = sorted(self._pipelines["tickets"], key=lambda p: p["displayOrder"])
        props = self._properties["tickets"]
        props["hs_pipeline"].options = _options([(p["id"], p["label"]) for p in pipelines])
        props["hs_pipeline_stage"].options = _options(
            [{"value": s["id"], "label": s["label"], "description": f"{p['label']}"}
             for p in pipelines for s in sorted(p["stages"], key=lambda s: s["displayOrder"])])

    def pipelines(self, object_type: str = "deals") -> list[dict]:
        with self._lock:
            return json.loads(json.dumps(self._pipelines.get(object_type, [])))

    # ------------------------------------------------------------------------------------- owners

    def add_owner(self, email: str, first_name: str = "", last_name: str = "", *, teams: Any = (),
                  user_id: int | None = None, owner_id: str | None = None, archived: bool = False) -> dict:
        """Add an owner (a HubSpot user). teams: names or dicts {"name", "id"?, "primary"?}; the first team is
        primary unless one says otherwise. Owners become options of every hubspot_owner_id property. Returns the
        owner as the Owners API shows it."""
        with self._lock:
            oid = str(owner_id or next(self._owner_ids))
            if oid in self._owners:
                raise ValueError(f"duplicate owner id {oid}")
            out_teams = []
            for spec in teams:
                spec = {"name": spec} if isinstance(spec, str) else dict(spec)
                team_id = spec.get("id") or self._team_ids.setdefault(spec["name"], str(1000 + len(self._team_ids)))
                team_id = str(team_id)
                out_teams.append({"id": team_id, "name": spec["name"], "primary": spec.get("primary")})
            if out_teams and not any(t["primary"] for t in out_teams):
                out_teams[0]["primary"] = True
            for team in out_teams:
                team["primary"] = bool(team["primary"])
            owner = _Owner(oid, email, first_name, last_name, user_id or next(self._user_ids), out_teams,
                           self._clock, self._clock, archived)
            self._owners[oid] = owner
            self._sync_owner_options()
            return owner.to_json()

    def archive_owner(self, owner_id: str) -> None:
        with self._lock:
            owner = self._owners[str(owner_id)]
            owner.archived, owner.updated = True, self._clock
            self._sync_owner_options()

    def _sync_owner_options(self) -> None:
        active = [o for o in self._owners.values() if not o.archived]
        options = [(o.id, f"{o.first_name} {o.last_name}".strip() or o.email) for o in active]
        for props in self._properties.values():
            if "hubspot_owner_id" in props:
                props["hubspot_owner_id"].options = _options(options)

    # ------------------------------------------------------------------------------- associations

    def associate(self, from_type: str, from_id: Any, to_type: str, to_id: Any, *, types: list[dict] | None = None,
                  reverse_types: list[dict] | None = None, primary: bool = False) -> None:
        """Associate two records, both ways. Default association types: HubSpot's unlabeled HUBSPOT_DEFINED type
        for the pair (deal->contact 3, contact->deal 4, ...), plus the "Primary" one for a company of a deal or
        contact when primary=True. types / reverse_types: [{"category", "typeId", "label"}] to choose."""
        with self._lock:
            a, rec_a = self._find(from_type, from_id)
            b, rec_b = self._find(to_type, to_id)
            forward = self._assoc_types(a, b, types, primary)
            backward = self._assoc_types(b, a, reverse_types, primary) if reverse_types or (b, a) in \
                ASSOCIATION_TYPE_IDS else forward
            self._link(a, rec_a.id, b, rec_b.id, forward)
            self._link(b, rec_b.id, a, rec_a.id, backward)

    @staticmethod
    def _assoc_types(a: str, b: str, types: list[dict] | None, primary: bool) -> list[dict]:
        if types:
            return [{"category": t.get("category", "USER_DEFINED"), "typeId": int(t["typeId"]),
                     "label": t.get("label")} for t in types]
        if (a, b) not in ASSOCIATION_TYPE_IDS:
            raise ValueError(f"no default association type from {a} to {b}; pass types=[...]")
        out = [{"category": "HUBSPOT_DEFINED", "typeId": ASSOCIATION_TYPE_IDS[(a, b)], "label": None}]
        if primary and (a, b) in PRIMARY_ASSOCIATION_TYPE_IDS:
            out.insert(0, {"category": "HUBSPOT_DEFINED", "typeId": PRIMARY_ASSOCIATION_TYPE_IDS[(a, b)],
                           "label": "Primary"})
        return out

    def _link(self, a: str, a_id: str, b: str, b_id: str, types: list[dict]) -> None:
        existing = self._assoc[(a, a_id, b)].setdefault(b_id, [])
        for t in types:
            if t not in existing:
                existing.append(dict(t))

    def disassociate(self, from_type: str, from_id: Any, to_type: str, to_id: Any) -> None:
        with self._lock:
            a, b = self._type(from_type), self._type(to_type)
            self._assoc[(a, str(from_id), b)].pop(str(to_id), None)
            self._assoc[(b, str(to_id), a)].pop(str(from_id), None)

    def associations(self, from_type: str, from_id: Any, to_type: str) -> dict[str, list[dict]]:
        """to_id -> association types, archived records included."""
        with self._lock:
            links = self._assoc.get((self._type(from_type), str(from_id), self._type(to_type)), {})
            return json.loads(json.dumps(links))

    # ----------------------------------------------------------------------------------- faults

    def fail_next(self, kind: str, status: int, body: Any = None, *, times: int = 1,
                  headers: dict[str, str] | None = None) -> None:
        """The next `times` authenticated requests of `kind` get this status and body, then normal service
        resumes. kind: one of FAILURE_KINDS. body: a JSON-able value (sent as JSON), a str (sent as text/html,
        e.g. a 502 page), bytes, or None (empty body)."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"kind must be one of {FAILURE_KINDS}")
        with self._lock:
            for _ in range(times):
                self._failures[kind].append((status, body, dict(headers or {})))

    def fail_next_rate_limit(self, kind: str = "any", *, policy: str = "SECONDLY", retry_after: int | None = 1,
                             times: int = 1) -> None:
        """Shorthand: the next `times` requests of `kind` get HubSpot's 429 RATE_LIMIT body for the policy
        (SECONDLY, TEN_SECONDLY_ROLLING, DAILY), with Retry-After unless retry_after is None."""
        messages = {"SECONDLY": _MESSAGES[429], "DAILY": "You have reached your daily limit.",
                    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit."}
        message = messages.get(policy, _MESSAGES[429])
        body = {"status": "error", "message": message, "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                "policyName": policy, "category": "RATE_LIMITS"}
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.fail_next(kind, 429, body, times=times, headers=headers)

    # ---------------------------------------------------------------------------------- serving

    def _handle(self, request: Request) -> Response:
        with self._lock:
            raw = request.get_data()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            path = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
            self.requests.append((request.method, path, body))
            try:
                return self._route(request, body)
            except ApiError as exc:
                return self._error(exc.status, exc.category, exc.message, **exc.extra)
            except Exception:  # noqa: BLE001 - a crash of the fake must reach the test, not just a 500
                text = traceback.format_exc()
                self.server_errors.append(text)
                return self._error(500, "INTERNAL_ERROR", text)

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(body), status=status, headers=headers or {},
                        content_type="application/json;charset=utf-8")

    def _error(self, status: int, category: str, message: str, headers: dict | None = None, **extra: Any) -> Response:
        body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), **extra,
                "category": category}
        return self._json(status, body, headers)

    def _failure_response(self, status: int, body: Any, headers: dict[str, str]) -> Response:
        if body is None:
            return Response(b"", status=status, headers=headers)
        if isinstance(body, bytes):
            return Response(body, status=status, headers=headers, content_type="application/octet-stream")
        if isinstance(body, str):
            return Response(body, status=status, headers=headers, content_type="text/html;charset=utf-8")
        return self._json(status, body, headers)

    def _route(self, request: Request, body: Any) -> Response:
        method, parts = request.method, [p for p in request.path.split("/") if p]
        m = re.fullmatch(r"/oauth/v1/access-tokens/([^/]+)", request.path)
        if m:  # the token is the credential here: no Authorization header needed
            return self._after_failures(("account",), lambda: self._token_info(m.group(1)))
        token = self._authenticate(request)
        route = self._match(method, parts)
        if route is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"No route for {method} {request.path}")
        kind, scope, handler = route
        # A route needs one scope, or (associations of tickets and survey responses) a tuple of them.
        needed = (scope,) if isinstance(scope, str) else tuple(scope or ())
        missing = [s for s in needed if s not in self._tokens[token]]
        if missing:
            raise ApiError(403, "MISSING_SCOPES", _MESSAGES[403],
                           errors=[{"message": "One or more of the following scopes are required.",
                                    "context": {"requiredGranularScopes": missing}}],
                           links={"scopes": "https://developers.hubspot.com/scopes"})
        failure = self._take_failure(kind, "any")
        if failure:
            return self._failure_response(*failure)
        if kind == "search":
            self._rate_limit(token)
        return handler(request, body)

    def _after_failures(self, kinds: tuple[str, ...], handler) -> Response:
        failure = self._take_failure(*kinds, "any")
        return self._failure_response(*failure) if failure else handler()

    def _take_failure(self, *kinds: str) -> tuple | None:
        for kind in kinds:
            if self._failures[kind]:
                return self._failures[kind].popleft()
        return None

    def _authenticate(self, request: Request) -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or token not in self._tokens:
            raise ApiError(401, "INVALID_AUTHENTICATION", _MESSAGES[401])
        return token

    def _rate_limit(self, token: str) -> None:
        if not self.search_rps:
            return
        now = time.monotonic()
        window = self._search_times[token]
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.search_rps:
            wait = window[0] + 1.0 - now
            raise ApiError(429, "RATE_LIMITS", _MESSAGES[429], errorType="RATE_LIMIT", policyName="SECONDLY",
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})
        window.append(now)

    def _obj_from_path(self, name: str) -> str:
        obj = OBJECT_TYPE_IDS.get(name, name.lower())
        if obj not in OBJECT_TYPES:
            raise _validation(f"Unable to infer object type from: {name}")
        return obj

    @staticmethod
    def _assoc_scope(a: str, b: str) -> str | tuple[str, ...]:
        """The scope(s) reading a's associations with b needs: both ends' read scopes where tickets or survey
        responses are involved (a token without the feedback scope cannot see a ticket's survey responses)."""
        if a in BOTH_ENDS_SCOPED or b in BOTH_ENDS_SCOPED:
            return tuple(dict.fromkeys((READ_SCOPES[a], READ_SCOPES[b])))
        return READ_SCOPES[a]

    def _match(self, method: str, parts: list[str]):
        """(failure kind, required scope, handler(request, body)) for a route, or None."""
        p = parts
        if p[:3] == ["crm", "v3", "objects"] and len(p) >= 4:
            obj = self._obj_from_path(p[3])
            scope = READ_SCOPES[obj]
            if len(p) == 4 and method == "GET":
                return "list", scope, lambda r, b: self._list(r, obj)
            if len(p) == 5 and p[4] == "search" and method == "POST":
                return "search", scope, lambda r, b: self._search(obj, b)
            if len(p) == 6 and p[4:] == ["batch", "read"] and method == "POST":
                return "batch", scope, lambda r, b: self._batch_read(r, obj, b)
            if len(p) == 5 and method == "GET":
                return "get", scope, lambda r, b: self._read(r, obj, p[4])
            return None
        if p[:3] == ["crm", "v4", "objects"] and len(p) == 7 and p[5] == "associations" and method == "GET":
            a, b_ = self._obj_from_path(p[3]), self._obj_from_path(p[6])
            return "associations", self._assoc_scope(a, b_), lambda r, b: self._assoc_page(r, a, p[4], b_)
        if p[:3] == ["crm", "v4", "associations"] and len(p) == 7 and p[5:] == ["batch", "read"] and method == "POST":
            a, b_ = self._obj_from_path(p[3]), self._obj_from_path(p[4])
            return "associations", self._assoc_scope(a, b_), lambda r, b: self._assoc_batch(a, b_, b)
        if p[:3] == ["crm", "v3", "pipelines"] and 4 <= len(p) <= 6 and method == "GET":
            obj = p[3].lower()
            scope = READ_SCOPES.get(OBJECT_TYPE_IDS.get(obj, obj))
            return "pipelines", scope, lambda r, b: self._pipelines_get(OBJECT_TYPE_IDS.get(obj, obj), p[4:])
        if p[:3] == ["crm", "v3", "properties"] and len(p) in (4, 5) and method == "GET":
            obj = self._obj_from_path(p[3])
            return "properties", SCHEMA_SCOPES[obj], lambda r, b: self._properties_get(r, obj, p[4:])
        if p[:3] == ["crm", "v3", "owners"] and len(p) in (3, 4) and method == "GET":
            return "owners", OWNERS_SCOPE, lambda r, b: self._owners_get(r, p[3:])
        if p == ["account-info", "v3", "details"] and method == "GET":
            return "account", None, lambda r, b: self._json(200, self._account())
        return None

    # ------------------------------------------------------------------------------ JSON shapes

    def _record_json(self, obj: str, rec: _Record, names: list[str] | None,
                     with_history: list[str] | None = None) -> dict:
        out: dict[str, Any] = {"id": rec.id, "properties": {}, "createdAt": _iso(rec.created),
                               "updatedAt": _iso(rec.updated), "archived": rec.archived}
        known = self._properties[obj]
        for name in names or ():
            if name in known or name in rec.properties:
                out["properties"][name] = rec.properties.get(name)
        if with_history:
            out["propertiesWithHistory"] = {
                name: [{"value": "" if v is None else v, "timestamp": _iso(ts), "sourceType": "API",
                        "sourceId": None, "sourceLabel": None, "updatedByUserId": None}
                       for v, ts in rec.history.get(name, [])]
                for name in with_history if name in known}
        if rec.archived:
            out["archivedAt"] = _iso(rec.archived_at or rec.updated)
        return out

    def _wanted(self, obj: str, requested: list[str] | None) -> list[str]:
        if not requested:
            return list(DEFAULT_PROPERTIES[obj])
        names = list(dict.fromkeys(requested))
        for name in ("hs_object_id", CREATED_PROPERTY[obj], MODIFIED_PROPERTY[obj]):
            if name not in names:
                names.append(name)
        return names

    @staticmethod
    def _multi(request: Request, name: str) -> list[str]:
        """A list query parameter, sent repeated (properties=a&properties=b) or comma separated."""
        return [v.strip() for raw in request.args.getlist(name) for v in raw.split(",") if v.strip()]

    @staticmethod
    def _flag(request: Request, name: str) -> bool:
        value = (request.args.get(name) or "false").strip().lower()
        if value not in ("true", "false"):
            raise _validation(f"Invalid value for {name}: {value}")
        return value == "true"

    @staticmethod
    def _int(value: Any, name: str, default: int, maximum: int | None, minimum: int = 1) -> int:
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise _validation(f"{name} must be an integer, got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            raise _validation(f"{name} must be between {minimum} and {maximum}, got {number}")
        return number

    def _paging_link(self, path: str, after: str, request: Request | None = None) -> dict:
        query = f"after={quote(after)}"
        if request is not None and request.args.get("limit"):
            query += f"&limit={quote(request.args['limit'])}"
        return {"next": {"after": after, "link": f"{self.url}{path}?{query}"}}

    # ------------------------------------------------------------------------------------ objects

    def _list(self, request: Request, obj: str) -> Response:
        limit = self._int(request.args.get("limit"), "limit", LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT)
        after = request.args.get("after")
        if after and not re.fullmatch(r"\d+", after):
            raise _validation(f"Invalid after: {after}")
        archived = self._flag(request, "archived")
        names = self._wanted(obj, self._multi(request, "properties"))
        history = self._multi(request, "propertiesWithHistory")
        assoc_types = [self._obj_from_path(t) for t in self._multi(request, "associations")]
        rows = sorted((r for r in self._records[obj].values() if r.archived == archived and
                       (not after or int(r.id) >= int(after))), key=lambda r: int(r.id))
        page = rows[:limit]
        results = []
        for rec in page:
            item = self._record_json(obj, rec, names, history)
            if assoc_types:
                item["associations"] = self._v3_associations(obj, rec.id, assoc_types)
            results.append(item)
        out: dict[str, Any] = {"results": results}
        if len(rows) > limit:
            out["paging"] = self._paging_link(request.path, str(int(page[-1].id) + 1), request)
        return self._json(200, out)

    def _v3_associations(self, obj: str, rid: str, to_types: list[str]) -> dict:
        out = {}
        for to in to_types:
            linked = self._live_links(obj, rid, to)
            if linked:
                out[to] = {"results": [{"id": tid, "type": f"{_SINGULAR[obj]}_to_{_SINGULAR[to]}"} for tid in linked]}
        return out

    def _read(self, request: Request, obj: str, rid: str) -> Response:
        archived = self._flag(request, "archived")
        rec = self._records[obj].get(rid)
        if rec is None or rec.archived != archived:
            raise ApiError(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.",
                           context={"id": [rid]})
        names = self._wanted(obj, self._multi(request, "properties"))
        item = self._record_json(obj, rec, names, self._multi(request, "propertiesWithHistory"))
        assoc_types = [self._obj_from_path(t) for t in self._multi(request, "associations")]
        if assoc_types:
            item["associations"] = self._v3_associations(obj, rec.id, assoc_types)
        return self._json(200, item)

    def _batch_read(self, request: Request, obj: str, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise _validation("Invalid input JSON: inputs is required")
        inputs = body["inputs"]
        if len(inputs) > BATCH_MAX_INPUTS:
            raise _validation(f"Batch input limit exceeded: {len(inputs)} inputs given, at most {BATCH_MAX_INPUTS}")
        archived = self._flag(request, "archived")
        id_property = body.get("idProperty")
        if id_property and id_property not in self._properties[obj]:
            raise _validation(f"Unknown idProperty {id_property!r} of {obj}")
        names = self._wanted(obj, body.get("properties"))
        history = body.get("propertiesWithHistory") or []
        started = self._clock
        results, missing = [], []
        for item in inputs:
            key = str((item or {}).get("id", ""))
            if id_property and id_property != "hs_object_id":
                rec = next((r for r in self._records[obj].values()
                            if r.properties.get(id_property) == key and r.archived == archived), None)
            else:
                rec = self._records[obj].get(key)
                rec = rec if rec is not None and rec.archived == archived else None
            if rec is None:
                missing.append(key)
            elif not any(r["id"] == rec.id for r in results):
                results.append(self._record_json(obj, rec, names, history))
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": _iso(started),
                               "completedAt": _iso(self._clock)}
        if not missing:
            return self._json(200, out)
        out["numErrors"] = 1
        out["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                          "message": f"Could not get some {_SINGULAR[obj].upper()} objects, they may be deleted or "
                                     "not exist. Check that ids are valid.",
                          "context": {"ids": missing}, "errors": [], "links": {}}]
        return self._json(207, out)

    # ------------------------------------------------------------------------------------- search

    def _search(self, obj: str, body: Any) -> Response:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise _validation("Invalid input JSON on line 1")
        limit = self._int(body.get("limit"), "limit", SEARCH_DEFAULT_LIMIT, None, minimum=0)
        if limit > SEARCH_MAX_LIMIT:
            raise _validation(f"The maximum limit is {SEARCH_MAX_LIMIT}. Requested limit: {limit}")
        after_raw = body.get("after")
        if after_raw in (None, ""):
            after = 0
        elif re.fullmatch(r"\d+", str(after_raw)):
            after = int(after_raw)
        else:
            raise _validation(f"Invalid after value: {after_raw}; the search endpoints page by numeric offset")
        if after >= SEARCH_MAX_RESULTS:
            raise _validation(
                f"The search endpoints are limited to {SEARCH_MAX_RESULTS} total results for any given query; "
                f"after={after} pages beyond the {SEARCH_MAX_RESULTS}th result. Narrow the query instead.")
        groups = self._filter_groups(obj, body.get("filterGroups") or [])
        sort = self._sort(obj, body.get("sorts") or [])
        query = str(body.get("query") or "").strip().lower()
        names = self._wanted(obj, body.get("properties"))

        matched = [r for r in self._records[obj].values()
                   if not r.archived and (not groups or any(all(f(r) for f in g) for g in groups))
                   and (not query or self._matches_query(obj, r, query))]
        matched.sort(key=lambda r: int(r.id))
        if sort is not None:
            prop, descending = sort
            present = [r for r in matched if r.properties.get(prop.name) not in (None, "")]
            absent = [r for r in matched if r.properties.get(prop.name) in (None, "")]
            present.sort(key=lambda r: prop.comparable(r.properties[prop.name]), reverse=descending)
            matched = present + absent
        end = min(after + limit, SEARCH_MAX_RESULTS) if limit else after
        out: dict[str, Any] = {"total": len(matched),
                               "results": [self._record_json(obj, r, names) for r in matched[after:end]]}
        if limit and end < len(matched):
            out["paging"] = {"next": {"after": str(end),
                                      "link": f"{self.url}/crm/v3/objects/{obj}/search?after={end}"}}
        return self._json(200, out)

    def _matches_query(self, obj: str, rec: _Record, query: str) -> bool:
        words = []
        for name, prop in self._properties[obj].items():
            value = rec.properties.get(name)
            if prop.type == "string" and value:
                words.extend(w.lower() for w in re.split(r"[\s@.,;:/\-_]+", value) if w)
                words.append(value.lower())
        return all(any(w.startswith(token) for w in words) for token in query.split())

    def _sort(self, obj: str, sorts: Any) -> tuple[PropertyDef, bool] | None:
        if not isinstance(sorts, list):
            raise _validation("sorts must be a list")
        if not sorts:
            return None
        if len(sorts) > 1:
            raise _validation("Only one sort is supported per search request")
        spec = sorts[0]
        if isinstance(spec, str):
            name, descending = spec.lstrip("-"), spec.startswith("-")
        elif isinstance(spec, dict):
            name = spec.get("propertyName")
            direction = str(spec.get("direction", "ASCENDING")).upper()
            if direction not in ("ASCENDING", "DESCENDING"):
                raise _validation(f"Invalid sort direction: {direction}")
            descending = direction == "DESCENDING"
        else:
            raise _validation(f"Invalid sort: {spec!r}")
        prop = self._properties[obj].get(name or "")
        if prop is None:
            raise _validation(f"Cannot sort by unknown property {name!r} of {obj}")
        return prop, descending

    def _filter_groups(self, obj: str, groups: Any) -> list[list]:
        if not isinstance(groups, list):
            raise _validation("filterGroups must be a list")
        if len(groups) > MAX_FILTER_GROUPS:
            raise _validation(f"Too many filter groups: {len(groups)}; at most {MAX_FILTER_GROUPS} are allowed")
        total = 0
        out = []
        for group in groups:
            filters = (group or {}).get("filters") or []
            if len(filters) > MAX_FILTERS_PER_GROUP:
                raise _validation(f"Too many filters in a group: {len(filters)}; at most {MAX_FILTERS_PER_GROUP}")
            total += len(filters)
            out.append([self._filter(obj, f) for f in filters])
        if total > MAX_FILTERS:
            raise _validation(f"Too many filters: {total}; at most {MAX_FILTERS} in all groups together")
        return [g for g in out if g] if any(out) else []

    def _filter(self, obj: str, spec: Any):
        if not isinstance(spec, dict):
            raise _validation(f"Invalid filter: {spec!r}")
        name, op = spec.get("propertyName"), str(spec.get("operator") or "EQ").upper()
        prop = self._properties[obj].get(name or "")
        if prop is None:
            raise _validation(f"Unable to filter by unknown property {name!r} of {obj}", subCategory="INVALID_FILTER")

        def present(rec: _Record) -> str | None:
            value = rec.properties.get(prop.name)
            return None if value in (None, "") else value

        def typed(value: Any, what: str = "value") -> Any:
            if value is None:
                raise _validation(f"Filter on {name} with operator {op} needs a {what}")
            try:
                return prop.comparable(value)
            except ValueError:
                raise _validation(f"Invalid {what} {value!r} for property {name} of type {prop.type}",
                                  subCategory="INVALID_FILTER") from None

        if op == "HAS_PROPERTY":
            return lambda r: present(r) is not None
        if op == "NOT_HAS_PROPERTY":
            return lambda r: present(r) is None
        if op in ("IN", "NOT_IN"):
            values = spec.get("values")
            if not isinstance(values, list):
                raise _validation(f"Operator {op} needs values, a list")
            wanted = {typed(v) for v in values}
            if op == "IN":
                return lambda r: present(r) is not None and prop.comparable(present(r)) in wanted
            return lambda r: present(r) is None or prop.comparable(present(r)) not in wanted
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token = str(spec.get("value") or "").lower()

            def contains(rec: _Record) -> bool:
                value = present(rec)
                if value is None:
                    return False
                words = [w for w in re.split(r"[\s@.,;:/\-_]+", value.lower()) if w] + [value.lower()]
                return any(fnmatch.fnmatchcase(w, token) for w in words)

            return contains if op == "CONTAINS_TOKEN" else (lambda r: not contains(r))
        if op == "BETWEEN":
            lo, hi = typed(spec.get("value")), typed(spec.get("highValue"), "highValue")
            return lambda r: present(r) is not None and lo <= prop.comparable(present(r)) <= hi
        compare = {"EQ": lambda a, b: a == b, "NEQ": lambda a, b: a != b, "LT": lambda a, b: a < b,
                   "LTE": lambda a, b: a <= b, "GT": lambda a, b: a > b, "GTE": lambda a, b: a >= b}.get(op)
        if compare is None:
            raise _validation(f"Unknown operator {op}")
        target = typed(spec.get("value"))
        if op == "NEQ":
            return lambda r: present(r) is None or prop.comparable(present(r)) != target
        return lambda r: present(r) is not None and compare(prop.comparable(present(r)), target)

    # ------------------------------------------------------------------------------- associations

    def _live_links(self, a: str, a_id: str, b: str) -> dict[str, list[dict]]:
        """to_id -> types, for unarchived records on both ends, by numeric id."""
        source = self._records[a].get(a_id)
        if source is None or source.archived:
            return {}
        links = self._assoc.get((a, a_id, b), {})
        live = {tid: types for tid, types in links.items()
                if tid in self._records[b] and not self._records[b][tid].archived}
        return dict(sorted(live.items(), key=lambda kv: int(kv[0])))

    @staticmethod
    def _to_json(to_id: str, types: list[dict]) -> dict:
        return {"toObjectId": int(to_id), "associationTypes": [dict(t) for t in types]}

    def _assoc_page(self, request: Request, a: str, a_id: str, b: str) -> Response:
        limit = self._int(request.args.get("limit"), "limit", ASSOCIATIONS_MAX_LIMIT, ASSOCIATIONS_MAX_LIMIT)
        after = request.args.get("after")
        if after and not re.fullmatch(r"\d+", after):
            raise _validation(f"Invalid after: {after}")
        rows = [(tid, types) for tid, types in self._live_links(a, a_id, b).items()
                if not after or int(tid) >= int(after)]
        out: dict[str, Any] = {"results": [self._to_json(tid, types) for tid, types in rows[:limit]]}
        if len(rows) > limit:
            out["paging"] = self._paging_link(request.path, str(int(rows[limit - 1][0]) + 1), request)
        return self._json(200, out)

    def _assoc_batch(self, a: str, b: str, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise _validation("Invalid input JSON: inputs is required")
        inputs = body["inputs"]
        if len(inputs) > ASSOCIATIONS_BATCH_MAX_INPUTS:
            raise _validation(f"Batch input limit exceeded: {len(inputs)} inputs given, at most "
                              f"{ASSOCIATIONS_BATCH_MAX_INPUTS}")
        started = self._clock
        results, errors = [], []
        for item in inputs:
            key = str((item or {}).get("id", ""))
            links = self._live_links(a, key, b)
            if links:
                results.append({"from": {"id": key}, "to": [self._to_json(t, ty) for t, ty in links.items()]})
            else:
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                               "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                               "context": {"fromObjectId": [key]}, "errors": [], "links": {},
                               "message": f"No {_SINGULAR[b]} is associated with {_SINGULAR[a]} {key}."})
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": _iso(started),
                               "completedAt": _iso(self._clock)}
        if not errors:
            return self._json(200, out)
        out["numErrors"], out["errors"] = len(errors), errors
        return self._json(207, out)

    # ------------------------------------------------------------------------ pipelines, properties

    def _pipelines_get(self, obj: str, rest: list[str]) -> Response:
        pipelines = self._pipelines.get(obj)
        if not pipelines:
            raise _validation(f"Unable to infer object type from: {obj}" if obj not in OBJECT_TYPES
                              else f"Object type {obj} does not have pipelines")
        ordered = sorted(pipelines, key=lambda p: p["displayOrder"])
        if not rest:
            return self._json(200, {"results": ordered})
        pipeline = next((p for p in ordered if p["id"] == rest[0]), None)
        if pipeline is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to find pipeline with id {rest[0]}")
        if len(rest) == 1:
            return self._json(200, pipeline)
        if rest[1] == "stages":
            return self._json(200, {"results": pipeline["stages"]})
        raise ApiError(404, "OBJECT_NOT_FOUND", "Not found")

    def _properties_get(self, request: Request, obj: str, rest: list[str]) -> Response:
        props = self._properties[obj]
        if not rest:
            if self._flag(request, "archived"):
                return self._json(200, {"results": []})
            return self._json(200, {"results": [p.to_json() for p in props.values()]})
        prop = props.get(rest[0])
        if prop is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to find property {rest[0]} of {obj}",
                           context={"propertyName": [rest[0]]})
        return self._json(200, prop.to_json())

    # ------------------------------------------------------------------------------------ owners

    def _owners_get(self, request: Request, rest: list[str]) -> Response:
        archived = self._flag(request, "archived")
        if rest:
            owner = self._owners.get(rest[0])
            if owner is None or owner.archived != archived:
                raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to find owner {rest[0]}")
            return self._json(200, owner.to_json())
        limit = self._int(request.args.get("limit"), "limit", OWNERS_DEFAULT_LIMIT, OWNERS_MAX_LIMIT)
        after = request.args.get("after")
        if after and not re.fullmatch(r"\d+", after):
            raise _validation(f"Invalid after: {after}")
        email = (request.args.get("email") or "").lower()
        rows = sorted((o for o in self._owners.values() if o.archived == archived
                       and (not email or o.email.lower() == email)
                       and (not after or int(o.id) >= int(after))), key=lambda o: int(o.id))
        out: dict[str, Any] = {"results": [o.to_json() for o in rows[:limit]]}
        if len(rows) > limit:
            out["paging"] = self._paging_link(request.path, str(int(rows[limit - 1].id) + 1), request)
        return self._json(200, out)

    # ----------------------------------------------------------------------------------- account

    def _account(self) -> dict:
        offset = {"US/Eastern": -5, "US/Central": -6, "US/Mountain": -7, "US/Pacific": -8, "UTC": 0,
                  "Europe/London": 0, "Europe/Berlin": 1, "Europe/Paris": 1}.get(self.time_zone, 0)
        return {"portalId": self.portal_id, "accountType": "STANDARD", "timeZone": self.time_zone,
                "companyCurrency": self.company_currency, "additionalCurrencies": [],
                "utcOffset": f"{'-' if offset < 0 else '+'}{abs(offset):02d}:00",
                "utcOffsetMilliseconds": offset * 3_600_000, "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1"}

    def _token_info(self, token: str) -> Response:
        if token not in self._tokens:
            raise ApiError(404, "OBJECT_NOT_FOUND", "Token not found")
        left = TOKEN_LIFETIME - int((self._clock - self._token_issued[token]).total_seconds())
        return self._json(200, {"token": token, "user": "integration@crm-roi.example.com",
                                "hub_domain": "crm-roi.example.com", "scopes": sorted(self._tokens[token]),
                                "hub_id": self.portal_id, "app_id": self.app_id, "expires_in": max(0, left),
                                "user_id": self.user_id, "token_type": "access"})


# -------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def fake_hubspot(request: pytest.FixtureRequest) -> Iterator[FakeHubSpot]:
    """A started FakeHubSpot (plain HTTP), stopped after the test. Options through indirect parametrization:
    ``@pytest.mark.parametrize("fake_hubspot", [{"search_rps": None}], indirect=True)``."""
    fake = FakeHubSpot(**(getattr(request, "param", None) or {}))
    try:
        yield fake
    finally:
        fake.stop()
    fake.check()


@pytest.fixture
def make_fake_hubspot() -> Iterator[Any]:
    """A factory: make_fake_hubspot(search_rps=None, ca=trustme.CA(), clock=...) -> a started fake, all stopped
    after the test."""
    fakes: list[FakeHubSpot] = []

    def make(ca: Any = None, **kwargs: Any) -> FakeHubSpot:
        fake = FakeHubSpot(ca, **kwargs)
        fakes.append(fake)
        return fake

    try:
        yield make
    finally:
        for fake in fakes:
            fake.stop()
    for fake in fakes:
        fake.check()

"""A fake Salesforce org over HTTPS, for tests that drive the real simple-salesforce client.

`FakeSalesforce` starts a pytest-httpserver (werkzeug) server on 127.0.0.1 with a TLS certificate issued by a
trustme CA and answers, with the documented wire format, the requests the project's Salesforce source makes:

* ``POST /services/oauth2/token`` -- OAuth username-password and client-credentials flows;
* ``GET /services/data/vXX.X/sobjects[/{Object}/describe|/{Object}/{Id}]`` -- global and object describe;
* ``GET /services/data/vXX.X/query|queryAll?q=SOQL`` and the ``nextRecordsUrl`` pages of either;
* ``POST|GET|PATCH|DELETE /services/data/vXX.X/jobs/query[/{id}[/results]]`` -- Bulk API 2.0 query jobs;
* ``GET /services/data/vXX.X/limits``.

SOQL is tokenized and parsed (not pattern-matched) and evaluated against in-memory records, including
child-to-parent relationship paths (``Account.Name``, ``Owner.UserRole.Name``), type checks of filter literals
and the error codes Salesforce returns (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE, ...). Every response under
/services/data carries ``Sforce-Limit-Info: api-usage=<used>/<limit>``.

Nothing here patches the client: tests point simple-salesforce at ``fake.url`` and trust ``fake.ca_bundle``
(``REQUESTS_CA_BUNDLE`` or a ``requests.Session`` with ``verify=fake.ca_bundle``).

Use the fixtures at the bottom (import them into a test module or conftest):
``salesforce_ca`` (session scope), ``fake_salesforce`` and ``make_fake_salesforce``.
"""

from __future__ import annotations

import base64
import collections
import csv
import functools
import hashlib
import hmac
import io
import itertools
import json
import re
import secrets
import threading
import traceback
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator

import pytest
import trustme
from werkzeug.wrappers import Request, Response

from crm_roi_pipeline_tests.fakes.server import FakeServer

UTC = timezone.utc

#: Kinds accepted by :meth:`FakeSalesforce.fail_next`. "bulk" matches any Bulk 2.0 request; the
#: "bulk_create"/"bulk_poll"/"bulk_results" kinds match one step only; "any" matches any /services/data request.
FAILURE_KINDS = ("token", "query", "describe", "bulk", "bulk_create", "bulk_poll", "bulk_results", "any")

DEFAULT_CLOCK = datetime(2024, 7, 1, 9, 0, 0, tzinfo=UTC)
MIN_API_VERSION, MAX_API_VERSION = 20.0, 66.0
BULK_DEFAULT_PAGE = 50000
QUERY_LOCATOR_TIMEOUT = timedelta(minutes=15)

# --------------------------------------------------------------------------------------------- ids


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def to_18(id15: str) -> str:
    """The case-safe 18-character form of a 15-character Salesforce id (the documented checksum suffix)."""
    if len(id15) == 18:
        return id15
    suffix = ""
    for chunk in range(3):
        flags = 0
        for bit in range(5):
            char = id15[chunk * 5 + bit]
            if "A" <= char <= "Z":
                flags |= 1 << bit
        suffix += _SUFFIX_CHARS[flags]
    return id15 + suffix


def _base62(number: int, width: int) -> str:
    out = ""
    while number:
        number, rem = divmod(number, 62)
        out = _BASE62[rem] + out
    return out.rjust(width, "0")


# ------------------------------------------------------------------------------------------ schema


@dataclass
class FieldDef:
    name: str
    type: str
    label: str
    nillable: bool = True
    custom: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist_values: tuple[str, ...] = ()
    length: int = 0
    precision: int = 0
    scale: int = 0

    @property
    def polymorphic(self) -> bool:
        return len(self.reference_to) > 1

    def describe(self) -> dict:
        system = self.name in ("Id", "CreatedDate", "SystemModstamp", "IsDeleted", "IsClosed", "IsWon", "IsArchived")
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "nillable": self.nillable,
            "custom": self.custom,
            "length": self.length,
            "byteLength": self.length * 3,
            "precision": self.precision,
            "scale": self.scale,
            "digits": 9 if self.type == "int" else 0,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "polymorphicForeignKey": self.polymorphic,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                for v in self.picklist_values
            ],
            "calculated": False,
            "createable": not system,
            "updateable": not system,
            "defaultedOnCreate": system or self.type == "boolean",
            "filterable": True,
            "sortable": self.type != "textarea",
            "groupable": self.type not in ("datetime", "currency", "double", "percent", "textarea"),
            "externalId": False,
            "unique": False,
            "idLookup": self.type == "id",
            "nameField": self.name == "Name",
        }


_SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "picklist": "xsd:string",
    "multipicklist": "xsd:string", "textarea": "xsd:string", "email": "xsd:string", "phone": "xsd:string",
    "url": "xsd:string", "boolean": "xsd:boolean", "currency": "xsd:double", "double": "xsd:double",
    "percent": "xsd:double", "int": "xsd:int", "date": "xsd:date", "datetime": "xsd:dateTime",
}
_NUMERIC = {"currency", "double", "percent", "int"}
_TEXT = {"string", "picklist", "multipicklist", "textarea", "email", "phone", "url", "combobox"}
_IDS = {"id", "reference"}
FIELD_TYPES = tuple(_SOAP_TYPES)


def _f(name: str, type_: str, label: str, nillable: bool = True, **kw: Any) -> FieldDef:
    if type_ in ("string", "textarea") and "length" not in kw:
        kw["length"] = 255
    if type_ in _IDS:
        kw.setdefault("length", 18)
    if type_ in ("currency", "double", "percent") and "precision" not in kw:
        kw["precision"], kw["scale"] = 18, 2
    if type_ == "picklist":
        kw.setdefault("length", 255)
    return FieldDef(name, type_, label, nillable, **kw)


def _ref(name: str, label: str, targets: tuple[str, ...], rel: str, nillable: bool = True) -> FieldDef:
    return _f(name, "reference", label, nillable, reference_to=targets, relationship_name=rel)


def _system() -> list[FieldDef]:
    return [
        _f("CreatedDate", "datetime", "Created Date", False),
        _f("SystemModstamp", "datetime", "System Modstamp", False),
        _f("IsDeleted", "boolean", "Deleted", False),
    ]


_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
           "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost")
_LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
_CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF")
_WHAT = ("Account", "Opportunity", "Campaign", "Case", "Contract", "Order", "Quote")
_WHO = ("Contact", "Lead")


def _standard_objects() -> dict[str, dict]:
    """Object name -> {label, plural, prefix, fields}; a fresh copy for each fake."""
    objects = {
        "Opportunity": ("Opportunity", "Opportunities", "006", [
            _f("Id", "id", "Opportunity ID", False),
            _ref("AccountId", "Account ID", ("Account",), "Account"),
            _f("Name", "string", "Name", False, length=120),
            _f("StageName", "picklist", "Stage", False, picklist_values=_STAGES),
            _f("IsClosed", "boolean", "Closed", False),
            _f("IsWon", "boolean", "Won", False),
            _f("Amount", "currency", "Amount"),
            _f("CloseDate", "date", "Close Date", False),
            _f("Type", "picklist", "Opportunity Type", picklist_values=(
                "Existing Customer - Upgrade", "Existing Customer - Replacement", "Existing Customer - Downgrade",
                "New Customer")),
            _f("LeadSource", "picklist", "Lead Source", picklist_values=_LEAD_SOURCES),
            _ref("OwnerId", "Owner ID", ("User",), "Owner", nillable=False),
            _f("CreatedDate", "datetime", "Created Date", False),
            _f("CurrencyIsoCode", "picklist", "Opportunity Currency", picklist_values=_CURRENCIES, length=3),
            _f("SystemModstamp", "datetime", "System Modstamp", False),
            _f("IsDeleted", "boolean", "Deleted", False),
        ]),
        "Lead": ("Lead", "Leads", "00Q", [
            _f("Id", "id", "Lead ID", False),
            _ref("OwnerId", "Owner ID", ("Group", "User"), "Owner", nillable=False),
            _f("LeadSource", "picklist", "Lead Source", picklist_values=_LEAD_SOURCES),
            _f("Status", "picklist", "Status", False, picklist_values=(
                "Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")),
            _f("Company", "string", "Company", False),
            _f("CreatedDate", "datetime", "Created Date", False),
            _f("IsConverted", "boolean", "Converted", False),
            _f("ConvertedDate", "date", "Converted Date"),
            _ref("ConvertedOpportunityId", "Converted Opportunity ID", ("Opportunity",), "ConvertedOpportunity"),
            _ref("ConvertedAccountId", "Converted Account ID", ("Account",), "ConvertedAccount"),
            _f("SystemModstamp", "datetime", "System Modstamp", False),
            _f("IsDeleted", "boolean", "Deleted", False),
        ]),
        "Task": ("Task", "Tasks", "00T", [
            _f("Id", "id", "Activity ID", False),
            _f("TaskSubtype", "picklist", "Task Subtype", picklist_values=(
                "Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")),
            _f("Type", "picklist", "Type", picklist_values=("Call", "Email", "Meeting", "Other")),
            _f("Status", "picklist", "Status", False, picklist_values=(
                "Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")),
            _f("IsClosed", "boolean", "Closed", False),
            _f("ActivityDate", "date", "Due Date Only"),
            _f("CompletedDateTime", "datetime", "Completed Date/Time"),
            _f("CreatedDate", "datetime", "Created Date", False),
            _ref("OwnerId", "Assigned To ID", ("Group", "User"), "Owner", nillable=False),
            _ref("WhatId", "Related To ID", _WHAT, "What"),
            _ref("WhoId", "Name ID", _WHO, "Who"),
            _ref("AccountId", "Account ID", ("Account",), "Account"),
            _f("CallDurationInSeconds", "int", "Call Duration", precision=0),
            _f("SystemModstamp", "datetime", "System Modstamp", False),
            _f("IsDeleted", "boolean", "Deleted", False),
            _f("IsArchived", "boolean", "Archived", False),
        ]),
        "Event": ("Event", "Events", "00U", [
            _f("Id", "id", "Activity ID", False),
            _f("EventSubtype", "picklist", "Event Subtype", picklist_values=("Event",)),
            _f("Type", "picklist", "Type", picklist_values=("Call", "Email", "Meeting", "Other")),
            _f("ActivityDateTime", "datetime", "Due Date Time"),
            _f("ActivityDate", "date", "Due Date Only"),
            _f("DurationInMinutes", "int", "Duration"),
            _ref("OwnerId", "Assigned To ID", ("Calendar", "User"), "Owner", nillable=False),
            _ref("WhatId", "Related To ID", _WHAT, "What"),
            _ref("WhoId", "Name ID", _WHO, "Who"),
            _ref("AccountId", "Account ID", ("Account",), "Account"),
            _f("CreatedDate", "datetime", "Created Date", False),
            _f("SystemModstamp", "datetime", "System Modstamp", False),
            _f("IsDeleted", "boolean", "Deleted", False),
        ]),
        "Campaign": ("Campaign", "Campaigns", "701", [
            _f("Id", "id", "Campaign ID", False),
            _f("Name", "string", "Name", False, length=80),
            _f("Type", "picklist", "Type", picklist_values=(
                "Advertisement", "Email", "Telemarketing", "Banner Ads", "Seminar / Conference", "Public Relations",
                "Partners", "Referral Program", "Webinar", "Trade Show", "Direct Mail", "Other")),
            _f("StartDate", "date", "Start Date"),
            _f("ActualCost", "currency", "Actual Cost in Campaign"),
            *_system(),
        ]),
        # Service Cloud: cases, and the milestones of entitlement management (an org without it has no
        # CaseMilestone or MilestoneType: `remove_object`). Key prefixes as Salesforce's: 500 Case, 557 MilestoneType.
        "Case": ("Case", "Cases", "500", [
            _f("Id", "id", "Case ID", False),
            _f("CaseNumber", "string", "Case Number", False, length=30),
            _ref("AccountId", "Account ID", ("Account",), "Account"),
            _ref("OwnerId", "Owner ID", ("Group", "User"), "Owner", nillable=False),
            _f("Status", "picklist", "Status", picklist_values=("New", "Working", "Escalated", "Closed")),
            _f("IsClosed", "boolean", "Closed", False),
            _f("Priority", "picklist", "Priority", picklist_values=("High", "Medium", "Low")),
            _f("Origin", "picklist", "Case Origin", picklist_values=("Phone", "Email", "Web")),
            _f("ClosedDate", "datetime", "Closed Date"),
            *_system(),
        ]),
        "CaseMilestone": ("Case Milestone", "Case Milestones", "5Uh", [
            _f("Id", "id", "Case Milestone ID", False),
            _ref("CaseId", "Case", ("Case",), "Case", nillable=False),
            _ref("MilestoneTypeId", "Milestone", ("MilestoneType",), "MilestoneType"),
            _f("StartDate", "datetime", "Start Date"),
            _f("TargetDate", "datetime", "Target Date", False),
            _f("CompletionDate", "datetime", "Completion Date"),
            _f("IsCompleted", "boolean", "Completed", False),
            *_system(),
        ]),
        "MilestoneType": ("Milestone", "Milestones", "557", [
            _f("Id", "id", "Milestone ID", False),
            _f("Name", "string", "Name", False, length=80),
            *_system(),
        ]),
        "Account": ("Account", "Accounts", "001", [
            _f("Id", "id", "Account ID", False),
            _f("Name", "string", "Account Name", False),
            *_system(),
        ]),
        "User": ("User", "Users", "005", [
            _f("Id", "id", "User ID", False),
            _f("Name", "string", "Full Name", False, length=121),
            _ref("UserRoleId", "Role ID", ("UserRole",), "UserRole"),
            _f("Department", "string", "Department", length=80),
            *_system(),
        ]),
        "UserRole": ("Role", "Roles", "00E", [
            _f("Id", "id", "Role ID", False),
            _f("Name", "string", "Name", False, length=80),
        ]),
        "DatedConversionRate": ("Dated Exchange Rate", "Dated Exchange Rates", "04w", [
            _f("Id", "id", "Dated Exchange Rate ID", False),
            _f("IsoCode", "picklist", "ISO Code", False, picklist_values=_CURRENCIES, length=3),
            _f("ConversionRate", "double", "Conversion Rate", False, precision=15, scale=6),
            _f("StartDate", "date", "Start Date", False),
            _f("NextStartDate", "date", "Next Start Date"),
        ]),
        "CurrencyType": ("Currency", "Currencies", "02u", [
            _f("Id", "id", "Currency ID", False),
            _f("IsoCode", "picklist", "Currency ISO Code", False, picklist_values=_CURRENCIES, length=3),
            _f("ConversionRate", "double", "Conversion Rate", False, precision=15, scale=6),
            _f("IsCorporate", "boolean", "Corporate Currency", False),
            _f("IsActive", "boolean", "Active", False),
        ]),
    }
    return {
        name: {"label": label, "plural": plural, "prefix": prefix, "fields": {f.name: f for f in fields}}
        for name, (label, plural, prefix, fields) in objects.items()
    }


# Polymorphic relationships (Lead.Owner, Task.What, ...) resolve to the "Name" object, as in Salesforce: the
# nested record's attributes.type is "Name" and only these fields can be selected through it.
_NAME_OBJECT_FIELDS = {
    f.name: f for f in (
        _f("Id", "id", "ID", False),
        _f("Name", "string", "Name"),
        _f("Type", "picklist", "Object Type"),
        _ref("UserRoleId", "Role ID", ("UserRole",), "UserRole"),
    )
}

# ------------------------------------------------------------------------------------ value coding


def _utc(value: datetime) -> datetime:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _parse_datetime_text(text: str) -> datetime:
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    norm = re.sub(r"Z$", "+00:00", text)
    norm = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", norm)
    return _utc(datetime.fromisoformat(norm))


def _coerce(fd: FieldDef, value: Any) -> Any:
    """A Python value given to add()/update() -> the stored value for the field's type."""
    if value is None:
        return None
    t = fd.type
    if t == "datetime":
        if isinstance(value, datetime):
            return _utc(value)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        return _parse_datetime_text(str(value))
    if t == "date":
        if isinstance(value, datetime):
            return _utc(value).date()
        if isinstance(value, date):
            return value
        return date.fromisoformat(str(value).strip()[:10])
    if t == "boolean":
        if isinstance(value, str):
            if value.lower() not in ("true", "false"):
                raise ValueError(f"{fd.name}: not a boolean: {value!r}")
            return value.lower() == "true"
        return bool(value)
    if t == "int":
        return int(value)
    if t in _NUMERIC:
        return float(Decimal(str(value)))
    if t in _IDS:
        text = str(value)
        if not _ID_RE.fullmatch(text):
            raise ValueError(f"{fd.name}: not a Salesforce id: {value!r}")
        return to_18(text)
    return str(value)


def _json_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def _csv_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _json_value(fd: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    if fd.type == "datetime":
        return _json_datetime(value)
    if fd.type == "date":
        return value.isoformat()
    if fd.type == "int":
        return int(value)
    if fd.type in _NUMERIC:
        return float(value)
    return value


def _csv_value(fd: FieldDef, value: Any) -> str:
    if value is None:
        return ""
    if fd.type == "datetime":
        return _csv_datetime(value)
    if fd.type == "date":
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else f"{value:.1f}"
    return str(value)


# -------------------------------------------------------------------------------------------- SOQL


class SoqlError(Exception):
    """A SOQL problem reported as HTTP 400 [{"message", "errorCode"}]."""

    def __init__(self, code: str, text: str, pos: int | None = None):
        super().__init__(text)
        self.code, self.text, self.pos = code, text, pos

    def message(self, soql: str) -> str:
        """Salesforce echoes the offending line with a caret: '\\n<line>\\n   ^\\nERROR at Row:r:Column:c\\n<text>'."""
        if self.pos is None:
            return self.text
        before = soql[: self.pos]
        row = before.count("\n") + 1
        line_start = before.rfind("\n") + 1
        col = self.pos - line_start + 1
        line_end = soql.find("\n", self.pos)
        line = soql[line_start: line_end if line_end >= 0 else len(soql)]
        return f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{self.text}"


@dataclass
class Tok:
    kind: str  # ident, string, number, date, datetime, op, punct, eof
    value: Any
    pos: int
    raw: str = ""

    def kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.value.upper() in words


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\dT])
  | (?P<number>[+-]?\d+(?:\.\d+)?)(?![\w.])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\",
            "%": "%", "_": "_"}


def tokenize(soql: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    while i < len(soql):
        if soql[i] == "'":
            start, i, out = i, i + 1, []
            while True:
                if i >= len(soql):
                    raise SoqlError("MALFORMED_QUERY", "unexpected end of query: unterminated string literal", start)
                ch = soql[i]
                if ch == "\\":
                    if i + 1 >= len(soql) or soql[i + 1] not in _ESCAPES:
                        raise SoqlError("MALFORMED_QUERY", "Invalid string literal: bad escape sequence", i)
                    out.append(_ESCAPES[soql[i + 1]])
                    i += 2
                    continue
                if ch == "'":
                    i += 1
                    break
                out.append(ch)
                i += 1
            toks.append(Tok("string", "".join(out), start, soql[start + 1: i - 1]))
            continue
        m = _TOKEN_RE.match(soql, i)
        if not m:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{soql[i]}'", i)
        kind = m.lastgroup
        text = m.group()
        if kind == "datetime":
            toks.append(Tok("datetime", _parse_datetime_text(text), i, text))
        elif kind == "date":
            try:
                toks.append(Tok("date", date.fromisoformat(text), i, text))
            except ValueError:
                raise SoqlError("MALFORMED_QUERY", f"invalid date: {text}", i) from None
        elif kind == "number":
            toks.append(Tok("number", float(text), i, text))
        elif kind in ("ident", "op", "punct"):
            toks.append(Tok(kind, text, i, text))
        i = m.end()
    toks.append(Tok("eof", None, len(soql), ""))
    return toks


# AST ------------------------------------------------------------------------------------------------


@dataclass
class Lit:
    kind: str  # string, number, date, datetime, bool, null
    value: Any
    pos: int
    raw: str = ""


@dataclass
class Path:
    text: str
    pos: int
    resolved: Resolved | None = None


@dataclass
class Cmp:
    path: Path
    op: str
    lit: Lit
    value: Any = None


@dataclass
class InList:
    path: Path
    negate: bool
    lits: list[Lit]
    values: list[Any] = field(default_factory=list)


@dataclass
class Like:
    path: Path
    lit: Lit
    regex: re.Pattern | None = None


@dataclass
class BoolOp:
    op: str  # AND / OR
    items: list


@dataclass
class Not:
    item: Any


@dataclass
class Order:
    path: Path
    desc: bool
    nulls_first: bool


@dataclass
class ParsedQuery:
    soql: str
    fields: list[Path]
    count: str | None  # None, "COUNT()" or "COUNT(field)"
    count_path: Path | None
    sobject: str
    sobject_pos: int
    where: Any
    order: list[Order]
    limit: int | None
    offset: int | None


_RESERVED = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC", "NULLS",
             "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE", "GROUP", "HAVING", "INCLUDES", "EXCLUDES", "WITH"}


class Parser:
    """SELECT <fields | COUNT() | COUNT(field)> FROM <object> [WHERE <condition>]
    [ORDER BY <field> [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]."""

    def __init__(self, soql: str):
        self.soql = soql
        self.toks = tokenize(soql)
        self.i = 0

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok: Tok | None = None) -> SoqlError:
        tok = tok or self.tok
        if tok.kind == "eof":
            return SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>", tok.pos)
        return SoqlError("MALFORMED_QUERY", f"unexpected token: {tok.raw or tok.value}", tok.pos)

    def expect_kw(self, word: str) -> Tok:
        if not self.tok.kw(word):
            raise self.fail()
        return self.next()

    def expect_punct(self, char: str) -> Tok:
        if not (self.tok.kind == "punct" and self.tok.value == char):
            raise self.fail()
        return self.next()

    def path(self) -> Path:
        tok = self.tok
        if tok.kind != "ident" or tok.value.upper() in _RESERVED:
            raise self.fail()
        self.next()
        return Path(tok.value, tok.pos)

    def parse(self) -> ParsedQuery:
        self.expect_kw("SELECT")
        fields: list[Path] = []
        count = None
        count_path = None
        while True:
            if self.tok.kw("COUNT") and self.toks[self.i + 1].kind == "punct" and self.toks[self.i + 1].value == "(":
                if count or fields:
                    raise self.fail()
                self.next()
                self.next()
                if self.tok.kind == "punct" and self.tok.value == ")":
                    count = "COUNT()"
                else:
                    count_path = self.path()
                    count = "COUNT(field)"
                self.expect_punct(")")
            else:
                if count:
                    raise self.fail()
                fields.append(self.path())
            if self.tok.kind == "punct" and self.tok.value == ",":
                self.next()
                continue
            break
        self.expect_kw("FROM")
        obj_tok = self.tok
        if obj_tok.kind != "ident" or "." in obj_tok.value or obj_tok.value.upper() in _RESERVED:
            raise self.fail()
        self.next()
        where = None
        order: list[Order] = []
        limit = offset = None
        if self.tok.kw("WHERE"):
            self.next()
            where = self.condition()
        if self.tok.kw("ORDER"):
            self.next()
            self.expect_kw("BY")
            while True:
                path = self.path()
                desc = False
                if self.tok.kw("ASC", "DESC"):
                    desc = self.next().value.upper() == "DESC"
                nulls_first = not desc
                if self.tok.kw("NULLS"):
                    self.next()
                    if not self.tok.kw("FIRST", "LAST"):
                        raise self.fail()
                    nulls_first = self.next().value.upper() == "FIRST"
                order.append(Order(path, desc, nulls_first))
                if self.tok.kind == "punct" and self.tok.value == ",":
                    self.next()
                    continue
                break
        if self.tok.kw("LIMIT"):
            self.next()
            limit = self.integer()
        if self.tok.kw("OFFSET"):
            self.next()
            offset = self.integer()
        if self.tok.kind != "eof":
            raise self.fail()
        return ParsedQuery(self.soql, fields, count, count_path, obj_tok.value, obj_tok.pos, where, order, limit,
                           offset)

    def integer(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not re.fullmatch(r"\d+", tok.raw):
            raise self.fail()
        self.next()
        return int(tok.raw)

    def condition(self) -> Any:
        items = [self.unary()]
        connective = None
        while self.tok.kw("AND", "OR"):
            word = self.tok.value.upper()
            if connective and word != connective:
                # Salesforce refuses AND and OR mixed at one level without parentheses.
                raise self.fail()
            connective = word
            self.next()
            items.append(self.unary())
        return items[0] if len(items) == 1 else BoolOp(connective, items)

    def unary(self) -> Any:
        if self.tok.kw("NOT"):
            self.next()
            return Not(self.unary())
        if self.tok.kind == "punct" and self.tok.value == "(":
            self.next()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Any:
        path = self.path()
        tok = self.tok
        if tok.kind == "op":
            self.next()
            op = "!=" if tok.value == "<>" else tok.value
            return Cmp(path, op, self.literal())
        if tok.kw("LIKE"):
            self.next()
            lit = self.literal()
            return Like(path, lit)
        negate = False
        if tok.kw("NOT"):
            self.next()
            negate = True
            if not self.tok.kw("IN"):
                raise self.fail()
        if self.tok.kw("IN"):
            self.next()
            self.expect_punct("(")
            lits = [self.literal()]
            while self.tok.kind == "punct" and self.tok.value == ",":
                self.next()
                lits.append(self.literal())
            self.expect_punct(")")
            return InList(path, negate, lits)
        raise self.fail()

    def literal(self) -> Lit:
        tok = self.tok
        if tok.kind in ("string", "number", "date", "datetime"):
            self.next()
            return Lit(tok.kind, tok.value, tok.pos, tok.raw)
        if tok.kw("TRUE", "FALSE"):
            self.next()
            return Lit("bool", tok.value.upper() == "TRUE", tok.pos, tok.raw)
        if tok.kw("NULL"):
            self.next()
            return Lit("null", None, tok.pos, tok.raw)
        raise self.fail()


@dataclass
class Resolved:
    """A field path resolved against the schema: the relationship fields walked, then the final field."""

    rels: list[FieldDef]
    final: FieldDef
    final_on_name_object: bool
    names: list[str]  # canonical: relationship names then the field name

    @property
    def key(self) -> str:
        return ".".join(self.names)


def _type_word(fd: FieldDef) -> str:
    return {"datetime": "dateTime", "date": "date", "boolean": "boolean", "int": "int"}.get(
        fd.type, "double" if fd.type in _NUMERIC else "string")


# ---------------------------------------------------------------------------------------- the fake


@dataclass
class BulkJob:
    id: str
    operation: str
    object: str
    query: str
    parsed: ParsedQuery
    column_delimiter: str
    line_ending: str
    api_version: str
    created: datetime
    state: str = "UploadComplete"
    polls: int = 0
    fail_message: str | None = None
    error_message: str | None = None
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    #: every state a client saw, in order (create's UploadComplete, then one per poll)
    states_seen: list[str] = field(default_factory=list)


@dataclass
class _Cursor:
    records: list[dict]
    page: int
    last_used: datetime


_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}



class FakeSalesforce(FakeServer):
    """A started fake org. See the module docstring; all public methods are thread-safe."""

    def __init__(self, ca: trustme.CA, *, page_size: int = 2000, bulk_polls_before_complete: int = 1,
                 api_limit: int = 15000, clock: datetime | None = None):
        self._lock = threading.RLock()
        self.page_size = page_size
        self.bulk_polls_before_complete = bulk_polls_before_complete
        self.api_limit = api_limit
        #: API requests counted so far (what Sforce-Limit-Info reports); tests may set it, e.g. near api_limit
        self.api_used = 0
        self._clock = _utc(clock) if clock else DEFAULT_CLOCK
        self._seq = itertools.count(1)

        self.consumer_key = "3MVG9fake" + secrets.token_hex(20)
        self.consumer_secret = secrets.token_hex(16).upper()
        self.username = "integration@crm-roi.example.com"
        self.password = "Correct-Horse-1"
        self.security_token = "TOKEN" + secrets.token_hex(6).upper()
        #: whether the connected app has a "run as" user for the client-credentials flow
        self.client_credentials_enabled = True
        self.org_id = to_18("00D" + "Dn000" + _base62(4242, 7))
        self.user_id = to_18("005" + "Dn000" + _base62(4243, 7))

        self.requests: list[tuple[str, str]] = []
        #: every SOQL string received (REST query/queryAll and Bulk 2.0 jobs), in order
        self.queries: list[str] = []
        #: exceptions raised inside the fake while serving (bugs of the fake); the fixture fails on them
        self.server_errors: list[str] = []
        self.jobs: dict[str, BulkJob] = {}

        self._schema = _standard_objects()
        self._removed: dict[str, set[str]] = collections.defaultdict(set)
        self._records: dict[str, dict[str, dict]] = {name: {} for name in self._schema}
        self._by_id: dict[str, tuple[str, dict]] = {}
        self._deleted: set[str] = set()
        self._failures: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._failing_jobs: collections.deque[str] = collections.deque()
        self._cursors: dict[str, _Cursor] = {}
        self._tokens: set[str] = set()
        self.access_token = self._issue_token()

        self._serve(ca, "fake-salesforce-")

    # ------------------------------------------------------------------------- client helpers

    def session(self):
        """A requests.Session that trusts the fake's CA, whatever the environment says.

        trust_env is off because requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override ``session.verify``
        (psf/requests#3829, #4726); with it off, the session also ignores proxy variables, right for 127.0.0.1."""
        import requests

        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca_bundle
        return session

    def client(self, version: str = "59.0", **kwargs: Any):
        """A real simple_salesforce.Salesforce on the current access token, with session() as its session."""
        from simple_salesforce import Salesforce

        kwargs.setdefault("session", self.session())
        return Salesforce(instance_url=self.url, session_id=self.access_token, version=version, **kwargs)

    # ------------------------------------------------------------------------------------ clock

    @property
    def clock(self) -> datetime:
        return self._clock

    @clock.setter
    def clock(self, value: datetime) -> None:
        with self._lock:
            self._clock = _utc(value)

    def tick(self, seconds: float = 0, **kwargs: float) -> datetime:
        """Advance the fake server time by timedelta(seconds=seconds, **kwargs); returns the new time."""
        with self._lock:
            self._clock = _utc(self._clock + timedelta(seconds=seconds, **kwargs))
            return self._clock

    # ------------------------------------------------------------------------------------- data

    def _object(self, sobject: str) -> str:
        for name in self._schema:
            if name.lower() == sobject.lower():
                return name
        raise KeyError(f"FakeSalesforce has no object {sobject!r}; known: {', '.join(self._schema)}")

    def _fields(self, obj: str) -> dict[str, FieldDef]:
        """The fields the org has now (removed fields excluded), by canonical name."""
        if obj == "Name":
            return _NAME_OBJECT_FIELDS
        removed = self._removed[obj]
        return {n: f for n, f in self._schema[obj]["fields"].items() if n not in removed}

    def _field(self, obj: str, name: str) -> FieldDef:
        for fname, fd in self._fields(obj).items():
            if fname.lower() == name.lower():
                return fd
        raise KeyError(f"{obj} has no field {name!r} in this fake org")

    def _new_id(self, obj: str) -> str:
        prefix = self._schema[obj]["prefix"]
        return to_18(prefix + "Dn000" + _base62(next(self._seq), 7))

    def add(self, sobject: str, **fields: Any) -> dict:
        """Add a record. Id (right key prefix, 18 chars), CreatedDate (the clock), SystemModstamp (CreatedDate),
        IsDeleted (False) and other booleans (False; IsClosed/IsWon derived from StageName or Status) are filled
        unless given. Values may be Python objects or Salesforce-formatted strings. Returns a copy."""
        with self._lock:
            obj = self._object(sobject)
            fdefs = self._fields(obj)
            rec: dict[str, Any] = {name: None for name in fdefs}
            given = set()
            for key, value in fields.items():
                fd = self._field(obj, key)
                rec[fd.name] = _coerce(fd, value)
                given.add(fd.name)
            if "Id" in fdefs and rec["Id"] is None:
                rec["Id"] = self._new_id(obj)
            if rec.get("Id") in self._by_id:
                raise ValueError(f"duplicate Id {rec['Id']}")
            if "CreatedDate" in fdefs and rec["CreatedDate"] is None:
                rec["CreatedDate"] = self._clock
            if "SystemModstamp" in fdefs and rec["SystemModstamp"] is None:
                rec["SystemModstamp"] = rec.get("CreatedDate") or self._clock
            if obj == "Opportunity" and "CurrencyIsoCode" in fdefs and rec["CurrencyIsoCode"] is None:
                rec["CurrencyIsoCode"] = "USD"
            self._derive(obj, rec, given)
            for name, fd in fdefs.items():
                if fd.type == "boolean" and rec[name] is None:
                    rec[name] = False
            self._records[obj][rec["Id"]] = rec
            self._by_id[rec["Id"]] = (obj, rec)
            if rec.get("IsDeleted"):
                self._deleted.add(rec["Id"])
            return dict(rec)

    @staticmethod
    def _derive(obj: str, rec: dict, given: set[str]) -> None:
        if obj == "Opportunity" and rec.get("StageName") is not None:
            stage = rec["StageName"]
            if "IsClosed" not in given:
                rec["IsClosed"] = stage.startswith("Closed")
            if "IsWon" not in given:
                rec["IsWon"] = stage == "Closed Won"
        if obj == "Task" and rec.get("Status") is not None and "IsClosed" not in given:
            rec["IsClosed"] = rec["Status"] == "Completed"
        if obj == "Lead" and "IsConverted" not in given and rec.get("ConvertedDate") is not None:
            rec["IsConverted"] = True
        if obj == "Case" and rec.get("Status") is not None and "IsClosed" not in given:
            rec["IsClosed"] = rec["Status"] == "Closed"
        if obj == "CaseMilestone" and "IsCompleted" not in given:
            rec["IsCompleted"] = rec.get("CompletionDate") is not None
        if obj == "CaseMilestone" and rec.get("TargetDate") is None:
            rec["TargetDate"] = rec.get("StartDate") or rec.get("CreatedDate")

    def _find(self, sobject: str, record_id: str) -> tuple[str, dict]:
        obj = self._object(sobject)
        rid = to_18(record_id)
        if rid not in self._records[obj]:
            raise KeyError(f"no {obj} with Id {record_id}")
        return obj, self._records[obj][rid]

    def get(self, sobject: str, record_id: str) -> dict:
        """A copy of a stored record (Python values)."""
        with self._lock:
            return dict(self._find(sobject, record_id)[1])

    def records(self, sobject: str) -> list[dict]:
        """Copies of all stored records of an object, deleted ones included, in insertion order."""
        with self._lock:
            return [dict(r) for r in self._records[self._object(sobject)].values()]

    def update(self, sobject: str, record_id: str, **fields: Any) -> None:
        """Change fields; SystemModstamp becomes the fake clock (unless given)."""
        with self._lock:
            obj, rec = self._find(sobject, record_id)
            given = set()
            for key, value in fields.items():
                fd = self._field(obj, key)
                if fd.name == "Id":
                    raise ValueError("Id cannot be updated")
                rec[fd.name] = _coerce(fd, value)
                given.add(fd.name)
            if "SystemModstamp" in rec and "SystemModstamp" not in given:
                rec["SystemModstamp"] = self._clock
            if "StageName" in given or "Status" in given:
                self._derive(obj, rec, given)

    def delete(self, sobject: str, record_id: str) -> None:
        """Soft delete: IsDeleted True, SystemModstamp the clock; hidden from query, visible to queryAll."""
        with self._lock:
            obj, rec = self._find(sobject, record_id)
            if "IsDeleted" in rec:
                rec["IsDeleted"] = True
            if "SystemModstamp" in rec:
                rec["SystemModstamp"] = self._clock
            self._deleted.add(rec["Id"])

    def undelete(self, sobject: str, record_id: str) -> None:
        with self._lock:
            obj, rec = self._find(sobject, record_id)
            if "IsDeleted" in rec:
                rec["IsDeleted"] = False
            if "SystemModstamp" in rec:
                rec["SystemModstamp"] = self._clock
            self._deleted.discard(rec["Id"])

    def add_field(self, sobject: str, name: str, type: str, *, label: str | None = None, nillable: bool = True,
                  picklist_values: tuple[str, ...] | list[str] = (), reference_to: str | tuple[str, ...] = (),
                  relationship_name: str | None = None) -> None:
        """Add a (custom) field to an object, e.g. add_field("Opportunity", "Segment__c", "picklist",
        picklist_values=["SMB", "Enterprise"]). A name ending in __c is reported as custom. Also re-adds a field
        removed with remove_field. Existing records get null (False for booleans)."""
        with self._lock:
            obj = self._object(sobject)
            if type not in FIELD_TYPES:
                raise ValueError(f"unknown field type {type!r}; one of {FIELD_TYPES}")
            existing = self._schema[obj]["fields"]
            for fname in existing:
                if fname.lower() == name.lower():
                    if fname in self._removed[obj]:
                        self._removed[obj].discard(fname)
                        return
                    raise ValueError(f"{obj}.{fname} already exists")
            targets = (reference_to,) if isinstance(reference_to, str) else tuple(reference_to)
            if type == "reference" and not targets:
                raise ValueError("a reference field needs reference_to")
            if type == "reference" and relationship_name is None:
                relationship_name = name[:-3] + "__r" if name.endswith("__c") else name.removesuffix("Id")
            fd = _f(name, type, label or name.removesuffix("__c").replace("_", " "), nillable,
                    custom=name.endswith("__c"), picklist_values=tuple(picklist_values), reference_to=targets,
                    relationship_name=relationship_name if type == "reference" else None)
            existing[name] = fd
            for rec in self._records[obj].values():
                rec[name] = False if type == "boolean" else None

    def remove_object(self, sobject: str) -> None:
        """The org lacks this object (say CaseMilestone without entitlement management): describe answers 404
        NOT_FOUND and SOQL naming it 400 INVALID_TYPE."""
        with self._lock:
            obj = self._object(sobject)
            del self._schema[obj]

    def remove_field(self, sobject: str, field: str) -> None:
        """The org lacks this field: describe omits it and SOQL naming it gets 400 INVALID_FIELD."""
        with self._lock:
            obj = self._object(sobject)
            self._removed[obj].add(self._field(obj, field).name)

    # ----------------------------------------------------------------------------------- faults

    def fail_next(self, kind: str, status: int, body: Any = None, *, times: int = 1,
                  headers: dict[str, str] | None = None) -> None:
        """The next `times` requests of `kind` get this status and body, then normal service resumes.

        kind: "token", "query" (query, queryAll and their next pages), "describe", "bulk" (any Bulk 2.0 call),
        "bulk_create", "bulk_poll", "bulk_results" or "any" (any /services/data request). body: a JSON-able value
        (sent as JSON), a str (sent as text/html, e.g. a 503 page), bytes, or None (empty body)."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"kind must be one of {FAILURE_KINDS}")
        with self._lock:
            for _ in range(times):
                self._failures[kind].append((status, body, headers or {}))

    def fail_next_request_limit(self, kind: str = "any") -> None:
        """Shorthand: the next request of `kind` gets 403 REQUEST_LIMIT_EXCEEDED, as Salesforce sends it."""
        self.fail_next(kind, 403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}])

    def expire_session(self) -> None:
        """Every access token issued so far becomes invalid (401 INVALID_SESSION_ID); a new token request
        issues a new valid one."""
        with self._lock:
            self._tokens.clear()

    def fail_next_bulk_job(self, message: str = "InvalidBatch : Failed to process query: "
                                                 "UNKNOWN_EXCEPTION: An unexpected error occurred.") -> None:
        """The next Bulk 2.0 query job created ends in state "Failed" with this errorMessage."""
        with self._lock:
            self._failing_jobs.append(message)

    # ----------------------------------------------------------------------------------- tokens

    def _issue_token(self) -> str:
        token = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(72)}"
        self._tokens.add(token)
        self.access_token = token
        return token

    # ---------------------------------------------------------------------------------- serving

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self.requests.append((request.method, request.path))
            try:
                return self._route(request)
            except Exception:  # noqa: BLE001 - a crash of the fake must reach the test, not just a 500
                text = traceback.format_exc()
                self.server_errors.append(text)
                return self._json(500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": text}])

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(body), status=status, headers=headers or {},
                        content_type="application/json;charset=UTF-8")

    def _failure_response(self, status: int, body: Any, headers: dict[str, str]) -> Response:
        if body is None:
            return Response(b"", status=status, headers=headers)
        if isinstance(body, bytes):
            return Response(body, status=status, headers=headers, content_type="application/octet-stream")
        if isinstance(body, str):
            return Response(body, status=status, headers=headers, content_type="text/html;charset=UTF-8")
        return self._json(status, body, headers)

    def _take_failure(self, *kinds: str) -> tuple | None:
        for kind in kinds:
            if self._failures[kind]:
                return self._failures[kind].popleft()
        return None

    def _route(self, request: Request) -> Response:
        path = request.path
        if path.rstrip("/") == "/services/oauth2/token":
            if request.method != "POST":
                return self._json(405, {"error": "invalid_request", "error_description": "must use HTTP POST"})
            failure = self._take_failure("token")
            if failure:
                return self._failure_response(*failure)
            return self._token(request)
        if path.rstrip("/") == "/services/data":
            return self._json(200, [{"label": f"v{v}", "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                                    for v in range(int(MIN_API_VERSION), int(MAX_API_VERSION) + 1)])
        m = re.fullmatch(r"/services/data/v(\d+\.\d)(?:/(.*))?", path)
        if not m:
            return self._json(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        version, rest = m.group(1), (m.group(2) or "").strip("/")
        if not MIN_API_VERSION <= float(version) <= MAX_API_VERSION:
            return self._json(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])

        if not self._authorized(request):
            return self._json(401, [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}])
        self.api_used += 1
        limit_header = {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_limit}"}
        if self.api_used > self.api_limit:
            return self._json(403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED",
                                     "message": "TotalRequests Limit exceeded."}], limit_header)

        parts = rest.split("/") if rest else []
        kinds = self._kinds(request.method, parts)
        failure = self._take_failure(*kinds, "any")
        if failure:
            status, body, headers = failure
            return self._failure_response(status, body, {**limit_header, **headers})
        response = self._api(request, version, parts)
        response.headers.update(limit_header)
        return response

    @staticmethod
    def _kinds(method: str, parts: list[str]) -> tuple[str, ...]:
        if parts[:1] in (["query"], ["queryAll"]):
            return ("query",)
        if parts[:1] == ["sobjects"] and (len(parts) == 1 or parts[-1] == "describe"):
            return ("describe",)
        if parts[:1] == ["jobs"]:
            if method == "POST":
                return ("bulk_create", "bulk")
            if parts[-1] == "results":
                return ("bulk_results", "bulk")
            return ("bulk_poll", "bulk")
        return ()

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() in ("bearer", "oauth") and token.strip() in self._tokens

    def _api(self, request: Request, version: str, parts: list[str]) -> Response:
        method = request.method
        not_found = self._json(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])

        def only(*allowed: str) -> Response | None:
            if method in allowed:
                return None
            return self._json(405, [{"errorCode": "METHOD_NOT_ALLOWED",
                                     "message": f"HTTP Method '{method}' not allowed. Allowed are "
                                                f"{','.join(allowed)}"}])

        head = parts[0] if parts else ""
        refused = only("GET") if head != "jobs" else None
        if refused is not None:
            return refused
        if not parts:
            return self._json(200, {
                "sobjects": f"/services/data/v{version}/sobjects", "query": f"/services/data/v{version}/query",
                "queryAll": f"/services/data/v{version}/queryAll", "limits": f"/services/data/v{version}/limits",
                "jobs": f"/services/data/v{version}/jobs"})
        if head == "limits" and len(parts) == 1:
            return self._json(200, {
                "DailyApiRequests": {"Max": self.api_limit, "Remaining": max(self.api_limit - self.api_used, 0)},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - len(self.jobs)},
            })
        if head == "sobjects":
            if len(parts) == 1:
                return self._global_describe(version)
            try:
                obj = self._object(parts[1])
            except KeyError:
                return not_found
            if len(parts) == 3 and parts[2] == "describe":
                return self._json(200, self._describe(obj, version))
            if len(parts) == 3:
                return self._retrieve(obj, parts[2], version)
            return not_found
        if head in ("query", "queryAll"):
            if len(parts) == 1:
                return self._query(request, version, include_deleted=head == "queryAll")
            if len(parts) == 2:
                return self._query_more(request, version, parts[1])
            return not_found
        if head == "jobs" and len(parts) >= 2 and parts[1] == "query":
            return self._bulk(request, version, parts[2:])
        return not_found

    # ------------------------------------------------------------------------------------ OAuth

    def _token(self, request: Request) -> Response:
        form = request.form
        grant = form.get("grant_type")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip()).decode()
                client_id, _, client_secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                pass

        def error(code: str, description: str) -> Response:
            return self._json(400, {"error": code, "error_description": description})

        if grant not in ("password", "client_credentials"):
            return error("unsupported_grant_type", "grant type not supported")
        if client_id != self.consumer_key:
            return error("invalid_client_id", "client identifier invalid")
        if client_secret != self.consumer_secret:
            return error("invalid_client", "invalid client credentials")
        if grant == "password":
            if form.get("username") != self.username or form.get("password") != self.password + self.security_token:
                return error("invalid_grant", "authentication failure")
        elif not self.client_credentials_enabled:
            return error("invalid_grant", "no client credentials user enabled")
        token = self._issue_token()
        issued_at = str(int(self._clock.timestamp() * 1000))
        identity = f"{self.url}/id/{self.org_id}/{self.user_id}"
        signature = base64.b64encode(hmac.new(self.consumer_secret.encode(), (identity + issued_at).encode(),
                                              hashlib.sha256).digest()).decode()
        body = {"access_token": token, "instance_url": self.url, "id": identity, "token_type": "Bearer",
                "issued_at": issued_at, "signature": signature}
        if grant == "client_credentials":
            body["scope"] = "api"
        return self._json(200, body)

    # --------------------------------------------------------------------------------- describe

    def _global_describe(self, version: str) -> Response:
        sobjects = []
        for name, meta in self._schema.items():
            sobjects.append({
                "name": name, "label": meta["label"], "labelPlural": meta["plural"], "keyPrefix": meta["prefix"],
                "custom": False, "queryable": True, "retrieveable": True, "createable": True, "updateable": True,
                "deletable": True, "urls": self._urls(name, version)})
        return self._json(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})

    @staticmethod
    def _urls(obj: str, version: str) -> dict:
        base = f"/services/data/v{version}/sobjects/{obj}"
        return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}

    def _describe(self, obj: str, version: str) -> dict:
        meta = self._schema[obj]
        return {
            "name": obj, "label": meta["label"], "labelPlural": meta["plural"], "keyPrefix": meta["prefix"],
            "custom": False, "queryable": True, "retrieveable": True, "searchable": True, "createable": True,
            "updateable": True, "deletable": True, "replicateable": True, "layoutable": True,
            "fields": [fd.describe() for fd in self._fields(obj).values()],
            "childRelationships": [], "recordTypeInfos": [], "urls": self._urls(obj, version),
        }

    def _retrieve(self, obj: str, record_id: str, version: str) -> Response:
        if not _ID_RE.fullmatch(record_id):
            return self._json(404, [{"errorCode": "NOT_FOUND", "message": "Provided external ID field does not "
                                                                          "exist or is not accessible: " + record_id}])
        rec = self._records[obj].get(to_18(record_id))
        if rec is None or rec["Id"] in self._deleted:
            return self._json(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        out: dict[str, Any] = {"attributes": {"type": obj, "url": f"/services/data/v{version}/sobjects/{obj}/{rec['Id']}"}}
        for name, fd in self._fields(obj).items():
            out[name] = _json_value(fd, rec.get(name))
        return self._json(200, out)

    # ------------------------------------------------------------------------------------- SOQL

    def _resolve(self, obj: str, path: Path) -> Resolved:
        parts = path.text.split(".")
        cur = obj
        rels: list[FieldDef] = []
        names: list[str] = []
        for index, part in enumerate(parts):
            fields = self._fields(cur)
            if index == len(parts) - 1:
                match = next((fd for name, fd in fields.items() if name.lower() == part.lower()), None)
                if match is None:
                    entity = cur if cur != "Name" else "Name"
                    raise SoqlError(
                        "INVALID_FIELD",
                        f"No such column '{part}' on entity '{entity}'. If you are attempting to use a custom field, "
                        "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
                        "describe call for the appropriate names.", path.pos)
                names.append(match.name)
                path.resolved = Resolved(rels, match, cur == "Name", names)
                return path.resolved
            rel = next((fd for fd in fields.values()
                        if fd.relationship_name and fd.relationship_name.lower() == part.lower()), None)
            if rel is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{part}' in field path. If you are attempting to use a custom "
                    "relationship, be sure to append the '__r' after the custom relationship name. Please reference "
                    "your WSDL or the describe call for the appropriate names.", path.pos)
            rels.append(rel)
            names.append(rel.relationship_name)
            cur = "Name" if rel.polymorphic else rel.reference_to[0]
            if cur != "Name" and cur not in self._schema:
                raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{part}' in field path.", path.pos)
        raise AssertionError("unreachable")

    def _bind(self, fd: FieldDef, lit: Lit) -> Any:
        if lit.kind == "null":
            return None
        t = fd.type
        expected = {"datetime": "datetime", "date": "date", "boolean": "bool"}.get(
            t, "number" if t in _NUMERIC else "string")
        if lit.kind != expected:
            quotes = "should be enclosed in quotes" if expected == "string" else "should not be enclosed in quotes"
            raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{fd.name}' must be of type "
                                             f"{_type_word(fd)} and {quotes}", lit.pos)
        if t in _IDS:
            if lit.value == "":
                return ""
            if not _ID_RE.fullmatch(lit.value):
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}", lit.pos)
            return to_18(lit.value)
        return lit.value

    def _prepare(self, node: Any, obj: str) -> None:
        if isinstance(node, BoolOp):
            for item in node.items:
                self._prepare(item, obj)
        elif isinstance(node, Not):
            self._prepare(node.item, obj)
        elif isinstance(node, Cmp):
            fd = self._resolve(obj, node.path).final
            node.value = self._bind(fd, node.lit)
            if node.value is None and node.op not in ("=", "!="):
                raise SoqlError("MALFORMED_QUERY", f"invalid operator on null: {node.op}", node.lit.pos)
        elif isinstance(node, InList):
            fd = self._resolve(obj, node.path).final
            node.values = [self._bind(fd, lit) for lit in node.lits]
        elif isinstance(node, Like):
            fd = self._resolve(obj, node.path).final
            if fd.type not in _TEXT or node.lit.kind != "string":
                raise SoqlError("INVALID_FIELD", f"invalid operator on {fd.name}: LIKE", node.path.pos)
            pattern = ""
            raw = node.lit.raw
            i = 0
            while i < len(raw):
                ch = raw[i]
                if ch == "\\" and i + 1 < len(raw):
                    pattern += re.escape(_ESCAPES.get(raw[i + 1], raw[i + 1]))
                    i += 2
                    continue
                pattern += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
                i += 1
            node.regex = re.compile(pattern, re.IGNORECASE | re.DOTALL)

    def _plan(self, soql: str) -> ParsedQuery:
        parsed = Parser(soql).parse()
        try:
            obj = self._object(parsed.sobject)
        except KeyError:
            raise SoqlError(
                "INVALID_TYPE",
                f"sObject type '{parsed.sobject}' is not supported. If you are attempting to use a custom object, "
                "be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call "
                "for the appropriate names.", parsed.sobject_pos) from None
        parsed.sobject = obj
        for path in parsed.fields:
            self._resolve(obj, path)
        if parsed.count_path:
            self._resolve(obj, parsed.count_path)
        if parsed.where is not None:
            self._prepare(parsed.where, obj)
        for order in parsed.order:
            self._resolve(obj, order.path)
        return parsed

    def _value(self, obj: str, rec: dict, resolved: Resolved) -> Any:
        cur_obj, cur = obj, rec
        for rel in resolved.rels:
            target = self._by_id.get(cur.get(rel.name)) if cur.get(rel.name) else None
            if target is None:
                return None
            cur_obj, cur = target
        if resolved.final_on_name_object and resolved.final.name == "Type":
            return cur_obj
        return cur.get(resolved.final.name)

    @staticmethod
    def _norm(fd: FieldDef, value: Any) -> Any:
        if value is None:
            return None
        if fd.type in _TEXT:
            return value.casefold()
        if fd.type in _NUMERIC:
            return float(value)
        return value

    def _matches(self, node: Any, obj: str, rec: dict) -> bool:
        if node is None:
            return True
        if isinstance(node, BoolOp):
            results = (self._matches(item, obj, rec) for item in node.items)
            return all(results) if node.op == "AND" else any(results)
        if isinstance(node, Not):
            return not self._matches(node.item, obj, rec)
        resolved = node.path.resolved
        fd = resolved.final
        value = self._norm(fd, self._value(obj, rec, resolved))
        if isinstance(node, Like):
            return value is not None and node.regex.fullmatch(self._value(obj, rec, resolved)) is not None
        if isinstance(node, InList):
            found = value in [self._norm(fd, v) for v in node.values]
            return not found if node.negate else found
        lit = self._norm(fd, node.value)
        if node.op == "=":
            return value == lit
        if node.op == "!=":
            return value != lit
        if value is None:
            return False
        return {"<": value < lit, "<=": value <= lit, ">": value > lit, ">=": value >= lit}[node.op]

    def _execute(self, parsed: ParsedQuery, include_deleted: bool) -> list[dict]:
        obj = parsed.sobject
        rows = [rec for rid, rec in self._records[obj].items()
                if (include_deleted or rid not in self._deleted) and self._matches(parsed.where, obj, rec)]
        if parsed.order:
            def compare(a: dict, b: dict) -> int:
                for order in parsed.order:
                    fd = order.path.resolved.final
                    va = self._norm(fd, self._value(obj, a, order.path.resolved))
                    vb = self._norm(fd, self._value(obj, b, order.path.resolved))
                    if va == vb:
                        continue
                    if va is None:
                        return -1 if order.nulls_first else 1
                    if vb is None:
                        return 1 if order.nulls_first else -1
                    result = (va > vb) - (va < vb)
                    return -result if order.desc else result
                return 0

            rows.sort(key=functools.cmp_to_key(compare))
        if parsed.offset:
            rows = rows[parsed.offset:]
        if parsed.limit is not None:
            rows = rows[: parsed.limit]
        return rows

    def _json_record(self, obj: str, rec: dict, paths: list[Path], version: str) -> dict:
        """One REST query record: attributes, then the selected fields; relationship paths nest as
        {"Account": {"attributes": {...}, "Name": ...}} or "Account": null."""
        out: dict[str, Any] = {"attributes": {"type": obj,
                                              "url": f"/services/data/v{version}/sobjects/{obj}/{rec['Id']}"}}
        targets: dict[tuple[str, ...], tuple[str, dict] | None] = {}
        for path in paths:
            resolved = path.resolved
            container: dict | None = out
            cur_obj, cur = obj, rec
            chain: tuple[str, ...] = ()
            for rel in resolved.rels:
                chain += (rel.relationship_name,)
                if chain not in targets:
                    ref = cur.get(rel.name)
                    target = self._by_id.get(ref) if ref else None
                    targets[chain] = target
                    container[rel.relationship_name] = None if target is None else {"attributes": {
                        "type": "Name" if rel.polymorphic else target[0],
                        "url": f"/services/data/v{version}/sobjects/{target[0]}/{target[1]['Id']}"}}
                target = targets[chain]
                if target is None:
                    container = None
                    break
                container = container[rel.relationship_name]
                cur_obj, cur = target
            if container is not None:
                if resolved.final_on_name_object and resolved.final.name == "Type":
                    container[resolved.final.name] = cur_obj
                else:
                    container[resolved.final.name] = _json_value(resolved.final, cur.get(resolved.final.name))
        return out

    def _soql_error(self, exc: SoqlError, soql: str) -> Response:
        return self._json(400, [{"message": exc.message(soql), "errorCode": exc.code}])

    def _query(self, request: Request, version: str, include_deleted: bool) -> Response:
        soql = request.args.get("q")
        if not soql:
            return self._json(400, [{"errorCode": "MALFORMED_QUERY", "message": "A query string has to be specified"}])
        self.queries.append(soql)
        try:
            parsed = self._plan(soql)
        except SoqlError as exc:
            return self._soql_error(exc, soql)
        rows = self._execute(parsed, include_deleted)
        if parsed.count == "COUNT()":
            return self._json(200, {"totalSize": len(rows), "done": True, "records": []})
        if parsed.count == "COUNT(field)":
            resolved = parsed.count_path.resolved
            n = sum(1 for rec in rows if self._value(parsed.sobject, rec, resolved) is not None)
            return self._json(200, {"totalSize": 1, "done": True,
                                    "records": [{"attributes": {"type": "AggregateResult"}, "expr0": n}]})
        records = [self._json_record(parsed.sobject, rec, parsed.fields, version) for rec in rows]
        page = self.page_size
        options = request.headers.get("Sforce-Query-Options", "")
        m = re.search(r"batchSize=(\d+)", options)
        if m:
            page = min(page, max(200, min(int(m.group(1)), 2000)))
        if len(records) <= page:
            return self._json(200, {"totalSize": len(records), "done": True, "records": records})
        cursor_id = to_18("01g" + "Dn000" + _base62(next(self._seq), 7))
        self._cursors[cursor_id] = _Cursor(records, page, self._clock)
        return self._json(200, {"totalSize": len(records), "done": False,
                                "nextRecordsUrl": f"/services/data/v{version}/query/{cursor_id}-{page}",
                                "records": records[:page]})

    def _query_more(self, request: Request, version: str, locator: str) -> Response:
        invalid = self._json(400, [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}])
        m = re.fullmatch(r"([A-Za-z0-9]{15,18})-(\d+)", locator)
        if not m or m.group(1) not in self._cursors:
            return invalid
        cursor = self._cursors[m.group(1)]
        if self._clock - cursor.last_used > QUERY_LOCATOR_TIMEOUT:
            del self._cursors[m.group(1)]
            return invalid
        cursor.last_used = self._clock
        offset, page, total = int(m.group(2)), cursor.page, len(cursor.records)
        chunk = cursor.records[offset: offset + page]
        body: dict[str, Any] = {"totalSize": total, "done": offset + page >= total}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{m.group(1)}-{offset + page}"
        body["records"] = chunk
        return self._json(200, body)

    # ----------------------------------------------------------------------------------- Bulk 2.0

    def _job_info(self, job: BulkJob, full: bool) -> dict:
        info = {
            "id": job.id, "operation": job.operation, "object": job.object, "createdById": self.user_id,
            "createdDate": _json_datetime(job.created), "systemModstamp": _json_datetime(self._clock),
            "state": job.state, "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(job.api_version), "lineEnding": job.line_ending,
            "columnDelimiter": job.column_delimiter,
        }
        if full:
            info.update({"jobType": "V2Query", "numberRecordsProcessed": len(job.rows) if job.state == "JobComplete"
                         else 0, "retries": 0, "totalProcessingTime": 0, "isPkChunkingSupported": True})
            if job.state == "Failed":
                info["errorMessage"] = job.error_message
        return info

    def _bulk(self, request: Request, version: str, parts: list[str]) -> Response:
        method = request.method
        bad = functools.partial(self._json, 400)
        if not parts:
            if method == "GET":
                return self._json(200, {"done": True, "records": [self._job_info(j, False) for j in self.jobs.values()],
                                        "nextRecordsUrl": None})
            if method != "POST":
                return self._json(405, [{"errorCode": "METHOD_NOT_ALLOWED", "message": "Allowed are GET,POST"}])
            return self._bulk_create(request, version)
        job = self.jobs.get(parts[0])
        if job is None:
            return self._json(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        if len(parts) == 1:
            if method == "GET":
                return self._bulk_poll(job)
            if method == "DELETE":
                del self.jobs[job.id]
                return Response(b"", status=204)
            if method == "PATCH":
                body = json.loads(request.get_data() or b"{}")
                if body.get("state") != "Aborted":
                    return bad([{"errorCode": "INVALIDJOB", "message": "Invalid state: only Aborted is allowed"}])
                job.state = "Aborted"
                return self._json(200, self._job_info(job, False))
            return self._json(405, [{"errorCode": "METHOD_NOT_ALLOWED", "message": "Allowed are GET,PATCH,DELETE"}])
        if len(parts) == 2 and parts[1] == "results" and method == "GET":
            return self._bulk_results(request, job)
        return self._json(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])

    def _bulk_create(self, request: Request, version: str) -> Response:
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            return self._json(400, [{"errorCode": "JSON_PARSER_ERROR", "message": "Unexpected character"}])
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            return self._json(400, [{"errorCode": "INVALIDJOB", "message": f"Invalid operation: {operation}"}])
        if body.get("contentType", "CSV") != "CSV":
            return self._json(400, [{"errorCode": "INVALIDJOB", "message": "Only CSV content type is supported"}])
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in _DELIMITERS or line_ending not in _LINE_ENDINGS:
            return self._json(400, [{"errorCode": "INVALIDJOB", "message": "Invalid columnDelimiter or lineEnding"}])
        soql = body.get("query") or ""
        self.queries.append(soql)
        try:
            parsed = self._plan(soql)
        except SoqlError as exc:
            return self._soql_error(exc, soql)
        if parsed.count:
            return self._json(400, [{"errorCode": "INVALIDJOB",
                                     "message": "Aggregate queries are not supported by Bulk API 2.0"}])
        job_id = to_18("750" + "Dn000" + _base62(next(self._seq), 7))
        job = BulkJob(job_id, operation, parsed.sobject, soql, parsed, delimiter, line_ending, version, self._clock)
        if self._failing_jobs:
            job.fail_message = self._failing_jobs.popleft()
        job.states_seen.append(job.state)
        self.jobs[job_id] = job
        return self._json(200, self._job_info(job, False))

    def _bulk_poll(self, job: BulkJob) -> Response:
        if job.state in ("UploadComplete", "InProgress"):
            job.polls += 1
            if job.polls <= self.bulk_polls_before_complete:
                job.state = "InProgress"
            elif job.fail_message is not None:
                job.state, job.error_message = "Failed", job.fail_message
            else:
                rows = self._execute(job.parsed, include_deleted=job.operation == "queryAll")
                job.header = [p.resolved.key for p in job.parsed.fields]
                job.rows = [[_csv_value(p.resolved.final, self._value(job.object, rec, p.resolved))
                             for p in job.parsed.fields] for rec in rows]
                job.state = "JobComplete"
        job.states_seen.append(job.state)
        return self._json(200, self._job_info(job, True))

    def _bulk_results(self, request: Request, job: BulkJob) -> Response:
        if job.state != "JobComplete":
            return self._json(400, [{"errorCode": "INVALIDJOB",
                                     "message": f"InvalidJob : Job {job.id} is not in JobComplete state: {job.state}"}])
        locator = request.args.get("locator") or ""
        offset = 0
        if locator and locator != "null":
            try:
                offset = int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
            except ValueError:
                return self._json(400, [{"errorCode": "INVALIDLOCATOR", "message": f"Invalid locator: {locator}"}])
        try:
            max_records = int(request.args.get("maxRecords") or BULK_DEFAULT_PAGE)
        except ValueError:
            max_records = 0
        if max_records <= 0:
            return self._json(400, [{"errorCode": "INVALIDPARAMETER", "message": "maxRecords must be positive"}])
        chunk = job.rows[offset: offset + max_records]
        end = offset + len(chunk)
        next_locator = (base64.b64encode(str(end).encode()).decode().rstrip("=")
                        if end < len(job.rows) else "null")
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=_DELIMITERS[job.column_delimiter],
                            lineterminator=_LINE_ENDINGS[job.line_ending], quoting=csv.QUOTE_ALL)
        writer.writerow(job.header)
        writer.writerows(chunk)
        return Response(buffer.getvalue().encode("utf-8"), status=200, content_type="text/csv",
                        headers={"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(chunk))})


# -------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def salesforce_ca() -> trustme.CA:
    """One trustme CA for the whole session (each fake issues its own server certificate from it)."""
    return trustme.CA()


@pytest.fixture
def fake_salesforce(request: pytest.FixtureRequest, salesforce_ca: trustme.CA) -> Iterator[FakeSalesforce]:
    """A started FakeSalesforce, stopped after the test. Options through indirect parametrization:
    ``@pytest.mark.parametrize("fake_salesforce", [{"page_size": 2}], indirect=True)``."""
    fake = FakeSalesforce(salesforce_ca, **(getattr(request, "param", None) or {}))
    try:
        yield fake
    finally:
        fake.stop()
    fake.check()


@pytest.fixture
def make_fake_salesforce(salesforce_ca: trustme.CA) -> Iterator[Any]:
    """A factory: make_fake_salesforce(page_size=2, bulk_polls_before_complete=3) -> a started fake, all stopped
    after the test."""
    fakes: list[FakeSalesforce] = []

    def make(**kwargs: Any) -> FakeSalesforce:
        fake = FakeSalesforce(salesforce_ca, **kwargs)
        fakes.append(fake)
        return fake

    try:
        yield make
    finally:
        for fake in fakes:
            fake.stop()
    for fake in fakes:
        fake.check()

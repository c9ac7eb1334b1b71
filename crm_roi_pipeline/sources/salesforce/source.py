"""The `salesforce` source: Opportunity, Lead, Task, Event, Campaign and Case from a live org, month by month.

Each object is queried for the run's months (REST with nextRecordsUrl paging, or a Bulk API 2.0 job when the
count is large), written to CSV files exactly as a Data Loader export would be, and read by the same
built-in mapping as `Opportunity.csv` & co. Fields are checked against describe(): a standard field the org
lacks is skipped with a warning. A change sync brings records modified since the last sync (by
SystemModstamp) into their months, wherever those are, and removes deleted ones.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from crm_roi_pipeline.sources.base import MonthScope, Source, SourceLoad, prepare_lookups
from crm_roi_pipeline.sources.csv_reading import read_csv_sql, text_table
from crm_roi_pipeline.sources.mappings import FileMapping, resolve_columns
from crm_roi_pipeline.sources.raw_views import create_raw_view
from crm_roi_pipeline.errors import SettingsError
from crm_roi_pipeline.sources.salesforce.objects import SALESFORCE_OBJECTS, CaseSettings, case_mapping
from crm_roi_pipeline.sources.salesforce.client import (
    SalesforceClient,
    check_identifier,
    soql_date,
    soql_datetime,
)

OBJECTS = {
    "deals": ["Opportunity"], "leads": ["Lead"], "activities": ["Task", "Event"], "spend": ["Campaign"],
    "tickets": ["Case"],
}

# Which date puts a record in a month, per object: the partition field of its entity, as SOQL sees it.
# (field, is a date field) in order: a record falls in the month of the first of these that is set.
MONTH_FIELDS = {
    "Opportunity": [("CreatedDate", False)],
    "Lead": [("CreatedDate", False)],
    "Task": [("CompletedDateTime", False), ("ActivityDate", True), ("CreatedDate", False)],
    "Event": [("ActivityDateTime", False), ("ActivityDate", True)],
    "Campaign": [("StartDate", True)],
    "Case": [("CreatedDate", False)],
}
RELATIONSHIP_FIELDS = {"Opportunity": {"Account.Name": "AccountId"}, "Case": {"Account.Name": "AccountId"}}
REQUIRED_FIELDS = {"deal_id", "lead_id", "activity_id", "spend_id", "ticket_id", "created_at", "month"}
# Case ids per CaseMilestone query: 300 ids of 18 characters keep the SOQL far below its 100,000 characters.
CASE_IDS_PER_QUERY = 300


@dataclass
class SalesforceSettings:
    lead_source_field: str | None = None
    deal_type_field: str | None = None
    team_field: str | None = None
    bulk_threshold: int = 50_000
    case: CaseSettings = field(default_factory=CaseSettings)


@dataclass
class ObjectPull:
    sobject: str
    path: str  # REST or Bulk 2.0
    records: int
    files: list[Path] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)


class SalesforceSource(Source):
    name = "salesforce"
    syncs_changes = True

    def __init__(self, client_factory, settings: SalesforceSettings, workdir: Path):
        self._client_factory = client_factory
        self._client: SalesforceClient | None = None
        self.settings = settings
        self.workdir = workdir
        self.warnings: list[str] = []
        self._describes: dict[str, dict[str, dict]] = {}

    @property
    def client(self) -> SalesforceClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def check(self, entity: str) -> None:
        """Credentials present, and the org reachable and accepting them, before anything is written."""
        self.client

    # --- what to ask for ----------------------------------------------------------------------

    def _fields(self, sobject: str) -> dict[str, dict]:
        if sobject not in self._describes:
            self._describes[sobject] = self.client.describe_fields(sobject)
        return self._describes[sobject]

    def _mapping(self, sobject: str) -> FileMapping:
        """The export mapping, with custom fields from the settings tried before the standard ones."""
        mapping = case_mapping(self.settings.case) if sobject == "Case" else SALESFORCE_OBJECTS[sobject.lower()]
        custom = {"lead_source": self.settings.lead_source_field, "deal_type": self.settings.deal_type_field}
        overrides = {
            k: (check_identifier(v), *mapping.columns[k]) for k, v in custom.items() if v and k in mapping.columns
        }
        return replace(mapping, columns={**mapping.columns, **overrides}) if overrides else mapping

    def _select(self, sobject: str) -> tuple[list[str], FileMapping]:
        """The fields to query: the mapping's API-name columns that describe() lists, plus SystemModstamp.
        A canonical field none of whose API names the org has is skipped with a warning, unless the
        pipeline cannot do without it."""
        available = self._fields(sobject)
        mapping = self._mapping(sobject)
        csat = self.settings.case.csat_field
        if sobject == "Case" and csat and csat not in available:
            raise SettingsError(
                f"SALESFORCE_CSAT_FIELD is {csat!r}, but the org's Case has no such field (or the integration user "
                "cannot read it). Set it to the API name of the Case field holding the satisfaction score."
            )
        fields: list[str] = []
        for canonical, candidates in mapping.columns.items():
            api_names = [c for c in candidates if " " not in c]
            present = []
            for name in api_names:
                anchor = RELATIONSHIP_FIELDS.get(sobject, {}).get(name)
                if (anchor and anchor in available) or name in available:
                    present.append(name)
            fields += present
            direct = [n for n in api_names if "." not in n]
            if present or not direct:
                if self.settings_custom(canonical) and self.settings_custom(canonical) not in available:
                    self.warnings.append(f"{sobject}: the org has no {self.settings_custom(canonical)}; "
                                         f"{', '.join(n for n in direct[1:] if n in available) or 'nothing'} used instead")
                continue
            if canonical in REQUIRED_FIELDS:
                raise_missing(sobject, direct)
            self.warnings.append(f"{sobject}: the org has no {' or '.join(direct)}; {canonical} left empty")
        if "SystemModstamp" in available:
            fields.append("SystemModstamp")
        return list(dict.fromkeys(fields)), mapping

    def settings_custom(self, canonical: str) -> str | None:
        return {"lead_source": self.settings.lead_source_field, "deal_type": self.settings.deal_type_field}.get(canonical)

    def _month_where(self, sobject: str, first: dt.date, last_exclusive: dt.date) -> str:
        """Records whose partition date (the first set of the object's date fields) is in [first, last)."""
        available = self._fields(sobject)
        clauses, earlier_null = [], []
        for name, is_date in MONTH_FIELDS[sobject]:
            if name not in available:
                continue
            lo, hi = (soql_date(first), soql_date(last_exclusive)) if is_date else (soql_datetime(first), soql_datetime(last_exclusive))
            clauses.append("(" + " AND ".join([*earlier_null, f"{name} >= {lo}", f"{name} < {hi}"]) + ")")
            earlier_null.append(f"{name} = null")
        return " OR ".join(clauses) if len(clauses) == 1 else "(" + " OR ".join(clauses) + ")"

    # --- pulling ------------------------------------------------------------------------------

    def _pull(self, sobject: str, where: str, include_deleted: bool, folder: Path) -> ObjectPull:
        fields, _ = self._select(sobject)
        soql = f"SELECT {', '.join(fields)} FROM {sobject}" + (f" WHERE {where}" if where else "")
        count = self.client.count(where, sobject, include_deleted=include_deleted)
        if count > self.settings.bulk_threshold:
            rows, files = self.client.bulk_to_csv(sobject, soql, folder / sobject, include_deleted=include_deleted)
            return ObjectPull(sobject, "Bulk API 2.0", rows, files, fields)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{sobject}.csv"
        rows = self.client.rest_to_csv(soql, fields, path, include_deleted=include_deleted)
        return ObjectPull(sobject, "REST", rows, [path], fields)

    def _to_raw(self, conn: duckdb.DuckDBPyConnection, pulls: list[ObjectPull], raw_table: str) -> None:
        relations = []
        for order, pull in enumerate(pulls):
            if not pull.records:
                continue
            _, mapping = self._select(pull.sobject)
            label = Path(f"{pull.sobject} (Salesforce {pull.path})")
            resolved = resolve_columns(label, pull.fields, mapping, None)
            relations.append((resolved, text_table(conn, pull.files, f"{raw_table}_text_{order}"), order))
        if relations:
            create_raw_view(conn, raw_table, relations)

    def _lookups(self, conn: duckdb.DuckDBPyConnection, folder: Path, months: MonthScope) -> None:
        prepare_lookups(conn)
        users = self._fields("User")
        team_fields = [f for f in (self.settings.team_field, "UserRole.Name", "Department") if f]
        wanted = [f for f in team_fields if f in users or (f == "UserRole.Name" and "UserRoleId" in users)]
        if wanted:
            path = folder / "User.csv"
            self.client.rest_to_csv(f"SELECT Id, {', '.join(wanted)} FROM User", ["Id", *wanted], path)
            team = "coalesce(" + ", ".join(f"nullif(trim(\"{f}\"), '')" for f in wanted) + ")"
            conn.execute(
                f"INSERT INTO _owner_teams SELECT 'salesforce', \"Id\", {team} FROM {read_csv_sql([path])}"
            )
        self._fx(conn, folder, months)

    def _fx(self, conn: duckdb.DuckDBPyConnection, folder: Path, months: MonthScope) -> None:
        """Multi-currency orgs: dated rates (advanced currency management) else the static ones, as
        reporting-currency units per unit, for each month: rates are per corporate currency in Salesforce."""
        if "CurrencyIsoCode" not in self._fields("Opportunity"):
            return
        if self._fields("DatedConversionRate"):
            path = folder / "DatedConversionRate.csv"
            self.client.rest_to_csv("SELECT IsoCode, ConversionRate, StartDate, NextStartDate FROM DatedConversionRate",
                                    ["IsoCode", "ConversionRate", "StartDate", "NextStartDate"], path)
            rates = f"""SELECT "IsoCode" AS c, "ConversionRate"::DOUBLE AS r, "StartDate"::DATE AS s,
                               coalesce(nullif("NextStartDate", '')::DATE, DATE '9999-12-31') AS e
                        FROM {read_csv_sql([path])}"""
        else:
            path = folder / "CurrencyType.csv"
            self.client.rest_to_csv("SELECT IsoCode, ConversionRate FROM CurrencyType", ["IsoCode", "ConversionRate"], path)
            rates = f"""SELECT "IsoCode" AS c, "ConversionRate"::DOUBLE AS r, DATE '0001-01-01' AS s,
                               DATE '9999-12-31' AS e FROM {read_csv_sql([path])}"""
        # reporting per unit of X = rate(reporting) / rate(X), both against the corporate currency, on the
        # first day of each month.
        conn.execute(
            f"""INSERT INTO _fx_rates
                WITH rates AS ({rates}),
                months AS (SELECT unnest(generate_series(DATE '{months.history_start}', DATE '{months.last_partition}',
                                                          INTERVAL 1 MONTH))::DATE AS month),
                on_day AS (SELECT m.month, r.c, r.r FROM months m JOIN rates r ON m.month >= r.s AND m.month < r.e)
                SELECT x.month, x.c, rep.r / x.r
                FROM on_day x JOIN on_day rep ON rep.month = x.month AND rep.c = getvariable('reporting_currency')
                WHERE x.c <> getvariable('reporting_currency')"""
        )

    def load(self, conn: duckdb.DuckDBPyConnection, entity: str, raw_table: str, months: MonthScope,
             reporting_currency: str) -> SourceLoad:
        folder = Path(tempfile.mkdtemp(prefix=f"sf_{entity}_", dir=self.workdir))
        try:
            conn.execute("SET VARIABLE reporting_currency = ?", [reporting_currency])
            self._lookups(conn, folder, months)
            end = (months.last.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            pulls = []
            for sobject in OBJECTS[entity]:
                where = self._month_where(sobject, months.first, end)
                if sobject in ("Task", "Event"):
                    # queryAll: plain query hides activities archived after a year, which would make the
                    # pre-adoption past look quieter than it was. Deleted ones are still left out.
                    pulls.append(self._pull(sobject, f"{where} AND IsDeleted = false", True, folder))
                else:
                    pulls.append(self._pull(sobject, where, False, folder))
            if entity == "tickets":
                self._first_responses(conn, pulls, folder)
            self._to_raw(conn, pulls, raw_table)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return self._source_load(pulls)

    def load_changes(self, conn: duckdb.DuckDBPyConnection, entity: str, raw_table: str, since: dt.datetime) -> SourceLoad:
        """Every record of the entity's objects modified (or deleted) since `since`, whatever its month."""
        folder = Path(tempfile.mkdtemp(prefix=f"sf_{entity}_changes_", dir=self.workdir))
        try:
            pulls = [
                self._pull(sobject, f"SystemModstamp > {soql_datetime(since)}", True, folder)
                for sobject in OBJECTS[entity]
            ]
            if entity == "tickets":
                self._first_responses(conn, pulls, folder)
            self._to_raw(conn, pulls, raw_table)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return self._source_load(pulls)

    def _first_responses(self, conn: duckdb.DuckDBPyConnection, pulls: list[ObjectPull], folder: Path) -> None:
        """`_first_responses` for the pulled cases: the completion of each case's milestone of the type
        SALESFORCE_FIRST_RESPONSE_MILESTONE. An org without entitlements has no CaseMilestone: the first
        response stays empty, and the run's metadata says why."""
        files = [f for p in pulls if p.sobject == "Case" and p.records for f in p.files]
        if not files:
            return
        if not self._fields("CaseMilestone"):
            self.warnings.append(
                "Case: the org has no CaseMilestone (entitlement management is off, or the integration user cannot "
                "read it), so no case has a first response; the first-response figures are empty."
            )
            return
        ids = [row[0] for row in conn.execute(f'SELECT DISTINCT "Id" FROM {read_csv_sql(files)} ORDER BY 1').fetchall()
               if row[0] and row[0].isalnum()]
        name = self.settings.case.first_response_milestone.replace("\\", "\\\\").replace("'", "\\'")
        paths = []
        for start in range(0, len(ids), CASE_IDS_PER_QUERY):
            chunk = ", ".join(f"'{i}'" for i in ids[start : start + CASE_IDS_PER_QUERY])
            path = folder / f"CaseMilestone_{start // CASE_IDS_PER_QUERY}.csv"
            self.client.rest_to_csv(
                f"SELECT CaseId, CompletionDate FROM CaseMilestone WHERE CaseId IN ({chunk}) "
                f"AND MilestoneType.Name = '{name}' AND CompletionDate != null",
                ["CaseId", "CompletionDate"], path,
            )
            paths.append(path)
        conn.execute(
            f"""INSERT INTO _first_responses
                SELECT 'salesforce', "CaseId", min(crm_iso_ts("CompletionDate")) FROM {read_csv_sql(paths)}
                GROUP BY ALL"""
        )
        if ids and not conn.execute("SELECT count(*) FROM _first_responses").fetchone()[0]:
            self.warnings.append(
                f"Case: no case has a completed milestone named {self.settings.case.first_response_milestone!r} "
                "(SALESFORCE_FIRST_RESPONSE_MILESTONE), so no case has a first response. Set it to the org's "
                "first-response milestone."
            )

    def _source_load(self, pulls: list[ObjectPull]) -> SourceLoad:
        return SourceLoad(
            source=self.name,
            files=[(f"{p.sobject} (Salesforce {p.path})", f"{p.records:,} records") for p in pulls],
            loaded=any(p.records for p in pulls),
            notes=list(self.warnings),
        )

    def usage(self) -> dict[str, str | int]:
        if self._client is None:
            return {}
        out: dict[str, str | int] = {"salesforce_requests": self._client.requests}
        if self._client.api_usage:
            out["salesforce_api_usage"] = self._client.api_usage
        if self._client.retried:
            out["salesforce_retries"] = ", ".join(self._client.retried)
        return out


def raise_missing(sobject: str, fields: list[str]) -> None:
    from crm_roi_pipeline.errors import SettingsError

    raise SettingsError(
        f"The Salesforce org's {sobject} has no field {' or '.join(fields)}, which the pipeline needs. Check that "
        f"the integration user's profile can read it."
    )

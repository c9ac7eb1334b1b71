"""The `hubspot` source: deals, contacts (as leads) and engagements from a live portal, month by month.

Records come from the CRM search API per month window (split past 10,000 results), with stage ids resolved
through the Pipelines API to labels and to won / lost / open from each stage's metadata, lifecycle stages
through the Properties API, companies and deals through v4 associations, and owner teams from the Owners
API. They are written to CSV with HubSpot's internal property names, so the same mapping as a HubSpot
export reads them. A change sync on hs_lastmodifieddate brings modified records into their months and
removes archived ones.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import tempfile
from pathlib import Path

import duckdb

from crm_roi_pipeline.sources.base import MonthScope, Source, SourceLoad, prepare_lookups
from crm_roi_pipeline.sources.csv_reading import text_table
from crm_roi_pipeline.sources.hubspot.exports import HUBSPOT_EXPORTS
from crm_roi_pipeline.sources.mappings import resolve_columns
from crm_roi_pipeline.sources.raw_views import create_raw_view
from crm_roi_pipeline.sources.hubspot.client import HubSpotClient

ENGAGEMENTS = ("calls", "emails", "meetings", "tasks", "notes")
OBJECTS = {"deals": ("deals",), "leads": ("contacts",), "activities": ENGAGEMENTS, "spend": ()}
MONTH_PROPERTY = {"deals": "createdate", "contacts": "createdate", **{e: "hs_timestamp" for e in ENGAGEMENTS}}
PROPERTIES = {
    "deals": ["dealname", "amount", "dealstage", "pipeline", "closedate", "createdate", "dealtype",
              "hs_analytics_source", "hubspot_owner_id", "deal_currency_code", "hs_lastmodifieddate"],
    "contacts": ["createdate", "lifecyclestage", "hs_analytics_source", "hubspot_owner_id",
                 "hs_lifecyclestage_opportunity_date", "hs_lifecyclestage_customer_date", "lastmodifieddate"],
    "calls": ["hs_timestamp", "hubspot_owner_id", "hs_call_duration", "hs_lastmodifieddate"],
    "emails": ["hs_timestamp", "hubspot_owner_id", "hs_lastmodifieddate"],
    "meetings": ["hs_timestamp", "hubspot_owner_id", "hs_meeting_start_time", "hs_meeting_end_time", "hs_lastmodifieddate"],
    "tasks": ["hs_timestamp", "hubspot_owner_id", "hs_task_status", "hs_lastmodifieddate"],
    "notes": ["hs_timestamp", "hubspot_owner_id", "hs_lastmodifieddate"],
}
# Columns written per entity: HubSpot's internal names where they exist, export labels for associations.
COLUMNS = {
    "deals": ["hs_object_id", "dealname", "dealstage", "amount", "closedate", "createdate", "dealtype",
              "hs_analytics_source", "hubspot_owner_id", "deal_currency_code", "hs_is_closed_won", "hs_is_closed",
              "associatedcompanyid", "Associated Company", "archived"],
    "leads": ["hs_object_id", "createdate", "lifecyclestage", "hs_analytics_source", "hubspot_owner_id",
              "hs_lifecyclestage_opportunity_date", "hs_lifecyclestage_customer_date", "Associated Deal IDs",
              "associatedcompanyid", "archived"],
    "activities": ["hs_object_id", "hs_engagement_type", "hs_timestamp", "hubspot_owner_id", "hs_task_status",
                   "hs_call_duration", "hs_meeting_duration", "Associated Deal IDs", "Associated Contact IDs",
                   "Associated Company IDs", "archived"],
}


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


class HubSpotSource(Source):
    name = "hubspot"
    syncs_changes = True

    def __init__(self, client_factory, workdir: Path):
        self._client_factory = client_factory
        self._client: HubSpotClient | None = None
        self.workdir = workdir
        self._stages: dict | None = None

    @property
    def client(self) -> HubSpotClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def check(self, entity: str) -> None:
        """The token works and has the scopes, before anything is written: one cheap call per entity."""
        if entity == "deals":
            self._stage_map()
        elif entity == "leads":
            self.client.option_labels("contacts", "lifecyclestage")
        elif entity == "activities":
            self.client.owner_teams()

    def _stage_map(self) -> dict:
        if self._stages is None:
            self._stages = self.client.deal_stages()
        return self._stages

    # --- records to rows ----------------------------------------------------------------------

    def _rows(self, entity: str, object_type: str, records: list[dict], archived: set[str]) -> list[list[str]]:
        ids = [r["id"] for r in records]
        c = self.client
        if entity == "deals":
            stages = self._stage_map()
            companies = c.associations("deals", "companies", ids) if ids else {}
            names = c.names("companies", sorted({v[0] for v in companies.values() if v})) if companies else {}
            rows = []
            for r in records:
                p = r["properties"]
                label, state = stages.get(p.get("dealstage") or "", (p.get("dealstage"), None))
                company = (companies.get(r["id"]) or [None])[0]
                rows.append([r["id"], p.get("dealname"), label, p.get("amount"), p.get("closedate"), p.get("createdate"),
                             p.get("dealtype"), p.get("hs_analytics_source"), p.get("hubspot_owner_id"),
                             p.get("deal_currency_code"),
                             None if state is None else str(state == "won").lower(),
                             None if state is None else str(state != "open").lower(),
                             company, names.get(company) if company else None, str(r["id"] in archived).lower()])
            return rows
        if entity == "leads":
            stages = self._lifecycle_labels()
            deals = c.associations("contacts", "deals", ids) if ids else {}
            companies = c.associations("contacts", "companies", ids) if ids else {}
            rows = []
            for r in records:
                p = r["properties"]
                stage = p.get("lifecyclestage")
                rows.append([r["id"], p.get("createdate"), stages.get(stage, stage), p.get("hs_analytics_source"),
                             p.get("hubspot_owner_id"), p.get("hs_lifecyclestage_opportunity_date"),
                             p.get("hs_lifecyclestage_customer_date"), ";".join(deals.get(r["id"], [])),
                             (companies.get(r["id"]) or [None])[0], str(r["id"] in archived).lower()])
            return rows
        assoc = {to: (c.associations(object_type, to, ids) if ids else {}) for to in ("deals", "contacts", "companies")}
        rows = []
        for r in records:
            p = r["properties"]
            meeting_ms = None
            if p.get("hs_meeting_start_time") and p.get("hs_meeting_end_time"):
                start = dt.datetime.fromisoformat(p["hs_meeting_start_time"].replace("Z", "+00:00"))
                end = dt.datetime.fromisoformat(p["hs_meeting_end_time"].replace("Z", "+00:00"))
                meeting_ms = str(int((end - start).total_seconds() * 1000))
            rows.append([r["id"], object_type[:-1], p.get("hs_timestamp"), p.get("hubspot_owner_id"),
                         p.get("hs_task_status"), p.get("hs_call_duration"), meeting_ms,
                         *(";".join(assoc[to].get(r["id"], [])) for to in ("deals", "contacts", "companies")),
                         str(r["id"] in archived).lower()])
        return rows

    def _lifecycle_labels(self) -> dict[str, str]:
        if not hasattr(self, "_lifecycle"):
            self._lifecycle = self.client.option_labels("contacts", "lifecyclestage")
        return self._lifecycle

    def _write(self, entity: str, batches: list[tuple[str, list[dict], set[str]]], path: Path) -> int:
        count = 0
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS[entity])
            for object_type, records, archived in batches:
                # Associations are fetched per page of records, so memory holds one page at a time.
                for start in range(0, len(records), 1000):
                    for row in self._rows(entity, object_type, records[start : start + 1000], archived):
                        writer.writerow(["" if v is None else v for v in row])
                        count += 1
        return count

    def _to_raw(self, conn: duckdb.DuckDBPyConnection, entity: str, path: Path, raw_table: str) -> None:
        mapping = HUBSPOT_EXPORTS[entity]
        mapping = mapping.__class__(**{**mapping.__dict__, "columns": {**mapping.columns, "is_deleted": ("archived",)}})
        resolved = resolve_columns(Path("HubSpot API"), COLUMNS[entity], mapping, None)
        create_raw_view(conn, raw_table, [(resolved, text_table(conn, [path], f"{raw_table}_text_0"), 0)])

    def _lookups(self, conn: duckdb.DuckDBPyConnection) -> None:
        prepare_lookups(conn)
        teams = self.client.owner_teams()
        if teams:
            conn.executemany("INSERT INTO _owner_teams VALUES ('hubspot', ?, ?)", list(teams.items()))

    def _pull(self, entity: str, prop_for: dict[str, str], lo: dt.datetime, hi: dt.datetime, op_lo: str = "GTE"):
        batches = []
        for object_type in OBJECTS[entity]:
            prop = prop_for[object_type]
            records = list(self.client.search(object_type, prop, lo, hi, PROPERTIES[object_type], op_lo))
            batches.append((object_type, records, set()))
        return batches

    def load(self, conn: duckdb.DuckDBPyConnection, entity: str, raw_table: str, months: MonthScope,
             reporting_currency: str) -> SourceLoad:
        if not OBJECTS[entity]:
            return SourceLoad(source=self.name, notes=["HubSpot has no spend object; stage spend from a CSV file"])
        self._lookups(conn)
        batches = self._pull(entity, MONTH_PROPERTY, _at(months.first), _at(_next_month(months.last)))
        return self._finish(conn, entity, batches, raw_table)

    def load_changes(self, conn: duckdb.DuckDBPyConnection, entity: str, raw_table: str, since: dt.datetime) -> SourceLoad:
        """Records modified after `since` (any month), and those archived since, marked for removal."""
        if not OBJECTS[entity]:
            return SourceLoad(source=self.name)
        # Contacts keep their modification time in lastmodifieddate; every other object in hs_lastmodifieddate.
        changed_prop = {o: "lastmodifieddate" if o == "contacts" else "hs_lastmodifieddate" for o in OBJECTS[entity]}
        far = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(days=1)
        batches = self._pull(entity, changed_prop, since, far, op_lo="GT")
        for object_type in OBJECTS[entity]:
            gone = [a for a in self.client.archived(object_type)
                    if a["archived_at"] is None or a["archived_at"].replace(tzinfo=None) > since]
            if gone:
                # The id is what matters for removal; the month property is unknown once archived.
                records = [{"id": a["id"], "properties": {}} for a in gone]
                batches.append((object_type, records, {a["id"] for a in gone}))
        return self._finish(conn, entity, batches, raw_table)

    def _finish(self, conn, entity: str, batches, raw_table: str) -> SourceLoad:
        folder = Path(tempfile.mkdtemp(prefix=f"hs_{entity}_", dir=self.workdir))
        try:
            path = folder / f"{entity}.csv"
            count = self._write(entity, batches, path)
            if count:
                self._to_raw(conn, entity, path, raw_table)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return SourceLoad(
            source=self.name,
            files=[(f"{o} (HubSpot search API)", f"{len(r):,} records") for o, r, _ in batches],
            loaded=count > 0,
        )

    def usage(self) -> dict[str, int]:
        if self._client is None:
            return {}
        return {"hubspot_requests": self._client.requests, "hubspot_search_requests": self._client.searches,
                "hubspot_retries": self._client.retry_count[0]}

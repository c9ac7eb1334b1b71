"""The `hubspot` source: deals, contacts (as leads), engagements and tickets from a live portal, month by month.

Records come from the CRM search API per month window (split past 10,000 results), with stage ids resolved
through the Pipelines API to labels and to won / lost / open from each stage's metadata (tickets: open / closed
from `ticketState`), lifecycle stages through the Properties API, companies and deals through v4 associations,
owner teams from the Owners API, and a ticket's CSAT from the CSAT survey responses (feedback submissions)
associated with it. They are written to CSV with HubSpot's internal property names, so the same mapping as a
HubSpot export reads them. A change sync on hs_lastmodifieddate brings modified records into their months and
removes archived ones.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import duckdb

from crm_roi_pipeline.sources.base import MonthScope, Source, SourceLoad, prepare_lookups
from crm_roi_pipeline.sources.csv_reading import text_table
from crm_roi_pipeline.sources.hubspot.exports import HUBSPOT_EXPORTS
from crm_roi_pipeline.sources.mappings import resolve_columns
from crm_roi_pipeline.sources.raw_views import create_raw_view
from crm_roi_pipeline.sources.hubspot.client import FEEDBACK_SCOPE, HubSpotClient, MissingScopeError

ENGAGEMENTS = ("calls", "emails", "meetings", "tasks", "notes")
OBJECTS = {"deals": ("deals",), "leads": ("contacts",), "activities": ENGAGEMENTS, "spend": (), "tickets": ("tickets",)}
MONTH_PROPERTY = {"deals": "createdate", "contacts": "createdate", "tickets": "createdate",
                  **{e: "hs_timestamp" for e in ENGAGEMENTS}}
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
    "tickets": ["createdate", "closed_date", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority", "source_type",
                "hubspot_owner_id", "first_agent_reply_date", "time_to_first_agent_reply", "hs_lastmodifieddate"],
}
# A survey response's answer is hs_value; hs_response_value is read where a portal still fills only that.
FEEDBACK_PROPERTIES = ["hs_survey_type", "hs_value", "hs_response_value", "hs_submission_timestamp", "hs_createdate"]
# HubSpot's CSAT survey answers on a 0/1/2 scale (bad, neutral, good).
CSAT_SCALE_MAX = "2"
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
    # ticket_state: the stage resolved through the ticket pipelines to open / closed (the stage id itself when no
    # pipeline has it, which leaves the decision to the close date); csat_*: from the ticket's CSAT responses.
    "tickets": ["hs_object_id", "ticket_state", "hs_ticket_priority", "source_type", "createdate", "closed_date",
                "first_agent_reply_date", "time_to_first_agent_reply", "hubspot_owner_id", "associatedcompanyid",
                "Associated Company", "csat_score", "csat_scale_max", "archived"],
}


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def _moment(text: str | None) -> dt.datetime:
    """A HubSpot datetime value (ISO 8601 or epoch milliseconds) as an aware datetime; the earliest one when
    empty or unreadable, so that a response without a time loses to one with a time."""
    text = (text or "").strip()
    try:
        if text.isdigit():
            return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.timezone.utc)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.timezone.utc)


class HubSpotSource(Source):
    name = "hubspot"
    syncs_changes = True

    def __init__(self, client_factory, workdir: Path):
        self._client_factory = client_factory
        self._client: HubSpotClient | None = None
        self.workdir = workdir
        self._stages: dict | None = None
        self._ticket_stages: dict | None = None
        # Why CSAT is missing from this load (a note for the run's metadata), or None while it is readable.
        self._csat_unavailable: str | None = None

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
        elif entity == "tickets":
            # Needs the `tickets` scope; the feedback scope is optional (CSAT), so it is not checked here.
            self._ticket_stage_map()

    def _stage_map(self) -> dict:
        if self._stages is None:
            self._stages = self.client.deal_stages()
        return self._stages

    def _ticket_stage_map(self) -> dict:
        if self._ticket_stages is None:
            self._ticket_stages = self.client.ticket_stages()
        return self._ticket_stages

    @staticmethod
    def _no_csat(exc: MissingScopeError) -> str:
        # HubSpot's error category and the scope's name only: the body may quote more than a note should show.
        return (
            f"CSAT is null for HubSpot tickets: HubSpot refused to show survey responses (403 "
            f"{exc.category or 'forbidden'}); give the private app the scope {FEEDBACK_SCOPE} to load CSAT."
        )

    def _csat(self, ticket_ids: list[str]) -> dict[str, str]:
        """Ticket id -> the value of its newest CSAT survey response (HubSpot's 0/1/2 scale). Without the feedback
        scope HubSpot answers 403: tickets still load, without CSAT, and the load's notes say why."""
        if not ticket_ids or self._csat_unavailable is not None:
            return {}
        c = self.client
        try:
            links = c.associations("tickets", "feedback_submissions", ticket_ids)
            ids = sorted({s for found in links.values() for s in found})
            responses = c.read("feedback_submissions", ids, FEEDBACK_PROPERTIES) if ids else {}
        except MissingScopeError as exc:
            self._csat_unavailable = self._no_csat(exc)
            return {}
        out = {}
        for ticket, found in links.items():
            csat = [responses[s] for s in found if s in responses
                    and (responses[s].get("hs_survey_type") or "").upper() == "CSAT"
                    and (responses[s].get("hs_value") or responses[s].get("hs_response_value") or "") != ""]
            if csat:
                # A ticket surveyed twice (reopened and closed again) counts its latest answer.
                newest = max(csat, key=lambda p: _moment(p.get("hs_submission_timestamp") or p.get("hs_createdate")))
                out[ticket] = newest.get("hs_value") or newest.get("hs_response_value")
        return out

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
        if entity == "tickets":
            stages = self._ticket_stage_map()
            # An archived ticket is only removed: its associations and survey responses are not needed.
            live = [i for i in ids if i not in archived]
            companies = c.associations("tickets", "companies", live) if live else {}
            names = c.names("companies", sorted({v[0] for v in companies.values() if v})) if companies else {}
            csat = self._csat(live)
            rows = []
            for r in records:
                p = r["properties"]
                stage = p.get("hs_pipeline_stage")
                state = stages[stage][1] if stage in stages else stage
                company = (companies.get(r["id"]) or [None])[0]
                score = csat.get(r["id"])
                rows.append([r["id"], state, p.get("hs_ticket_priority"), p.get("source_type"), p.get("createdate"),
                             p.get("closed_date"), p.get("first_agent_reply_date"),
                             p.get("time_to_first_agent_reply"), p.get("hubspot_owner_id"), company,
                             names.get(company) if company else None, score,
                             CSAT_SCALE_MAX if score is not None else None, str(r["id"] in archived).lower()])
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
        if entity == "tickets":
            # The export's stage map knows only the default pipeline's stages; this file carries every ticket's
            # stage already resolved through its pipeline, so its status is read as that class. A stage no
            # pipeline lists stays unmapped (no error), and the close date decides, as for an export.
            mapping = replace(
                mapping,
                columns={**mapping.columns, "status": ("ticket_state",), "csat_score": ("csat_score",),
                         "csat_scale_max": ("csat_scale_max",)},
                stages={"open": "open", "closed": "closed"},
                stage_fallback=True,
            )
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
        if entity == "tickets":
            # Asked once up front, so that the run says CSAT is missing even when the months hold no ticket (the
            # change sync that follows in the same run relies on this answer; its notes are not shown).
            self._csat_unavailable = None
            try:
                self.client.probe("feedback_submissions")
            except MissingScopeError as exc:
                self._csat_unavailable = self._no_csat(exc)
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
            notes=[self._csat_unavailable] if self._csat_unavailable else [],
        )

    def usage(self) -> dict[str, int]:
        if self._client is None:
            return {}
        return {"hubspot_requests": self._client.requests, "hubspot_search_requests": self._client.searches,
                "hubspot_retries": self._client.retry_count[0]}

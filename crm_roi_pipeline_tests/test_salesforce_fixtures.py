"""The real Salesforce exports in fixtures/salesforce_exports/, staged by real Dagster runs into a real DuckDB.

Every expected value is read from the fixture files here, with Python's csv module and simple logic of this
file, or is a literal read off the file by eye (the comment says where). Nothing is copied from the output.
One staged project per fixture folder (module scope) keeps the file fast.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest

from crm_roi_pipeline_tests.conftest import FIXTURES, Project, failure_message, planned_events_as_ranges

WORKSHOP = FIXTURES / "data_cloud_workshop"
POWERBI = FIXTURES / "salesforce_in_powerbi"
MACROS = Path(__file__).resolve().parents[1] / "crm_roi_pipeline" / "staging" / "sql" / "macros.sql"


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def new_project(tmp_path_factory, name: str) -> Project:
    """conftest's `project`, module-scoped: one staged folder shared by the tests that only read it."""
    return Project(tmp_path_factory.mktemp(name))


def iso_utc(text: str) -> dt.datetime:
    """'2024-01-22T16:14:25.000+0000' -> naive UTC datetime."""
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(dt.timezone.utc).replace(tzinfo=None)


def day(text: str, fmt: str = "%Y-%m-%d") -> dt.datetime:
    return dt.datetime.strptime(text, fmt)


def simple_key(name: str) -> str:
    """An account name as a key, by this test's own rule: lower case, words only, trailing legal suffix dropped."""
    words = re.sub(r"[^0-9a-z]+", " ", name.lower()).split()
    while words and words[-1] in {"plc", "inc", "ltd", "llc", "corp", "gmbh"}:
        words.pop()
    return " ".join(words)


def materialization_metadata(result, entity: str) -> dict:
    events = result.asset_materializations_for_node(f"crm__{entity}")
    assert events, f"no materialization of crm/{entity}"
    return {k: getattr(v, "value", v) for k, v in events[0].metadata.items()}


# --- data_cloud_workshop ---------------------------------------------------------------------------

# By eye: Task ActivityDate (an open task's month) runs 2021-12-14 … 2024-01-06, Campaign StartDate 2023-02-27 …
# 2024-01-05, Opportunity and Lead CreatedDate are all 2024-01-22.
WORKSHOP_MONTHS = ("2021-12-01", "2024-01-01")


@pytest.fixture(scope="module")
def workshop(tmp_path_factory):
    project = new_project(tmp_path_factory, "workshop")
    project.copy_fixture("data_cloud_workshop")
    with planned_events_as_ranges():
        # The months the files' records fall in (WORKSHOP_MONTHS): each test checks every row of its file is
        # staged or rejected, so a narrower range would fail them. Dagster records a materialization per month
        # and entity; over 2015 … today the run took ~3 s longer.
        result = project.stage(*WORKSHOP_MONTHS, raise_on_error=False)
    assert result.success, failure_message(result)
    return project, result


def test_workshop_opportunities_every_row_staged_or_rejected(workshop):
    project, _ = workshop
    opps = read_rows(WORKSHOP / "Opportunity.csv")
    assert len(opps) == 50  # the README says Opportunity (50)
    staged = project.query("SELECT count(*) FROM crm.deals")[0][0]
    rejected = project.query("SELECT count(*) FROM crm.rejects WHERE entity = 'deals'")[0][0]
    assert staged + rejected == len(opps)
    assert staged == 50  # nothing in this file is unreadable: ids, dates and flags are all well formed
    ids = {r[0] for r in project.query("SELECT deal_id FROM crm.deals")}
    assert ids == {o["Id"] for o in opps}


def test_workshop_opportunity_fields(workshop):
    project, _ = workshop
    opps = {o["Id"]: o for o in read_rows(WORKSHOP / "Opportunity.csv")}
    rows = project.query(
        "SELECT deal_id, is_won, is_closed, closed_at, created_at, source_system, loaded_from, deal_type, "
        "crm_deal_type, stage, amount FROM crm.deals"
    )
    assert len(rows) == len(opps)
    open_ids = {i for i, o in opps.items() if o["IsClosed"] == ""}
    assert open_ids and len(open_ids) < len(opps)  # both kinds are in the file
    for deal_id, is_won, is_closed, closed_at, created_at, system, loaded_from, deal_type, crm_type, stage, amount in rows:
        o = opps[deal_id]
        assert is_won is (o["IsWon"] == "1"), deal_id
        assert is_closed is (o["IsClosed"] == "1"), deal_id
        if deal_id in open_ids:
            # An open opportunity's CloseDate is only the expected date.
            assert closed_at is None, deal_id
        else:
            assert closed_at == day(o["CloseDate"]), deal_id  # midnight UTC of CloseDate
        assert created_at == iso_utc(o["CreatedDate"])
        assert (system, loaded_from) == ("salesforce", "csv")
        assert o["Type"] == "" and deal_type is None and crm_type is None
        assert stage == o["StageName"]
        assert amount == pytest.approx(float(o["Amount"]))
    # One row read by eye: 006Ec00000AieKGIAZ, Closed Won, IsClosed 1, IsWon 1, CloseDate 2023-06-17,
    # CreatedDate 2024-01-22T16:14:25.000+0000.
    assert project.query(
        "SELECT is_won, is_closed, closed_at, created_at FROM crm.deals WHERE deal_id = '006Ec00000AieKGIAZ'"
    ) == [(True, True, dt.datetime(2023, 6, 17), dt.datetime(2024, 1, 22, 16, 14, 25))]
    # First data row, by eye: 006Ec00000AieKFIAZ, Qualification, IsClosed empty, CloseDate 2024-11-10.
    assert project.query(
        "SELECT is_won, is_closed, closed_at FROM crm.deals WHERE deal_id = '006Ec00000AieKFIAZ'"
    ) == [(False, False, None)]


def test_workshop_account_key_from_account_names(workshop):
    project, _ = workshop
    names = {a["Id"]: a["Name"] for a in read_rows(WORKSHOP / "Account.csv")}
    opps = {o["Id"]: o for o in read_rows(WORKSHOP / "Opportunity.csv")}
    keys = dict(project.query("SELECT deal_id, account_key FROM crm.deals"))
    for deal_id, o in opps.items():
        assert keys[deal_id] == simple_key(names[o["AccountId"]]), deal_id
    by_name = {names[o["AccountId"]]: keys[i] for i, o in opps.items()}
    # Checked by hand (Account.csv names of accounts that have opportunities):
    assert by_name["Hill Group"] == "hill group"
    assert by_name["Good PLC"] == "good"  # trailing legal suffix removed
    assert by_name["Bryan-Brown"] == "bryan brown"  # punctuation becomes a space
    assert by_name["Moody and Sons"] == "moody and sons"


@pytest.mark.parametrize(
    "name, key",
    [
        # Names from salesforce_in_powerbi/Account.csv, normalised by hand.
        ("United Oil & Gas Corp.", "united oil gas"),
        ("Grand Hotels & Resorts Ltd", "grand hotels resorts"),
        ("Pyramid Construction Inc.", "pyramid construction"),
        ("Dickenson plc", "dickenson"),
        ("Burlington Textiles Corp of America", "burlington textiles corp of america"),  # not trailing
        ("  Farmers Coop. of Florida ", "farmers coop of florida"),
        ("Good PLC", "good"),
    ],
)
def test_crm_account_key_macro(name, key):
    with duckdb.connect() as conn:
        conn.execute(MACROS.read_text())
        assert conn.execute("SELECT crm_account_key(?)", [name]).fetchone()[0] == key


def test_workshop_leads(workshop):
    project, _ = workshop
    leads = {r["Id"]: r for r in read_rows(WORKSHOP / "Lead.csv")}
    assert len(leads) == 60  # README: Lead (60)
    rows = project.query("SELECT lead_id, is_converted, created_at, source_system, loaded_from FROM crm.leads")
    assert project.query("SELECT count(*) FROM crm.rejects WHERE entity = 'leads'")[0][0] == 0
    assert {r[0] for r in rows} == set(leads)
    for lead_id, is_converted, created_at, system, loaded_from in rows:
        assert is_converted is (leads[lead_id]["IsConverted"] == "1")
        assert created_at == iso_utc(leads[lead_id]["CreatedDate"])
        assert (system, loaded_from) == ("salesforce", "csv")


def expected_task_links(task: dict[str, str]) -> dict[str, str | None]:
    who, what = task["WhoId"], task["WhatId"]
    return {
        "contact_id": who if who.startswith("003") else None,
        "lead_id": who if who.startswith("00Q") else None,
        "deal_id": what if what.startswith("006") else None,
        "account_id": task["AccountId"] or (what if what.startswith("001") else None),
    }


def test_workshop_tasks(workshop):
    project, _ = workshop
    tasks = {t["Id"]: t for t in read_rows(WORKSHOP / "Task.csv")}
    assert len(tasks) == 75  # README: Task (75)
    assert {t["Status"] for t in tasks.values()} == {"Not Started"}
    assert {t["IsClosed"] for t in tasks.values()} == {""}
    rows = project.query(
        "SELECT activity_id, status, type, contact_id, lead_id, deal_id, account_id, occurred_at, source_system "
        "FROM crm.activities"
    )
    assert {r[0] for r in rows} == set(tasks)
    for activity_id, status, type_, contact_id, lead_id, deal_id, account_id, occurred_at, system in rows:
        task = tasks[activity_id]
        assert status == "open", activity_id
        # No Type column and TaskSubtype 'Task' on every row: without a mapping override the type is task.
        assert task["TaskSubtype"] == "Task" and type_ == "task"
        links = expected_task_links(task)
        assert (contact_id, lead_id, deal_id, account_id) == (
            links["contact_id"], links["lead_id"], links["deal_id"], links["account_id"]
        ), activity_id
        # No CompletedDateTime column: an open task happens on its ActivityDate.
        assert occurred_at == day(task["ActivityDate"])
        assert system == "salesforce"
    counts = dict(
        zip(
            ("contact_id", "lead_id", "deal_id"),
            project.query("SELECT count(contact_id), count(lead_id), count(deal_id) FROM crm.activities")[0],
        )
    )
    assert counts["contact_id"] == sum(t["WhoId"].startswith("003") for t in tasks.values())
    assert counts["lead_id"] == sum(t["WhoId"].startswith("00Q") for t in tasks.values())
    assert counts["deal_id"] == sum(t["WhatId"].startswith("006") for t in tasks.values())
    assert counts["contact_id"] > 0 and counts["lead_id"] > 0


def test_workshop_campaigns_rejected_without_amount(workshop):
    project, _ = workshop
    campaigns = read_rows(WORKSHOP / "Campaign.csv")
    assert len(campaigns) == 8 and all(c["ActualCost"] == "" for c in campaigns)
    assert project.query("SELECT count(*) FROM crm.spend")[0][0] == 0
    rejects = project.query(
        "SELECT source_row, source_id, reason, source_file, source_system, partition_month "
        "FROM crm.rejects WHERE entity = 'spend' ORDER BY source_row"
    )
    assert len(rejects) == len(campaigns)
    for (row, source_id, reason, source_file, system, month), (n, campaign) in zip(
        rejects, enumerate(campaigns, start=1)
    ):
        assert row == n
        assert source_id == campaign["Id"]
        assert reason == "no amount"
        assert source_file == "Campaign.csv"
        assert system == "salesforce"
        assert month == day(campaign["StartDate"]).date().replace(day=1)


def test_workshop_campaign_members_are_not_an_input(workshop):
    project, result = workshop
    members = read_rows(WORKSHOP / "CampaignMember.csv")
    member_ids = {m["Id"] for m in members}
    assert len(members) == 68  # README: CampaignMember (68)
    assert project.query("SELECT count(*) FROM crm.rejects WHERE source_file = 'CampaignMember.csv'")[0][0] == 0
    for table, id_col in (("deals", "deal_id"), ("leads", "lead_id"), ("activities", "activity_id")):
        ids = {r[0] for r in project.query(f"SELECT {id_col} FROM crm.{table}")}
        assert not ids & member_ids, table
    # The run says which files it left out.
    assert "CampaignMember.csv" in materialization_metadata(result, "spend")["ignored_files"]


@pytest.fixture(scope="module")
def workshop_task_types(tmp_path_factory):
    project = new_project(tmp_path_factory, "workshop_types")
    project.copy_fixture("data_cloud_workshop")
    project.write("Task.mapping.yaml", "columns: {type: Type__c}\n")
    with planned_events_as_ranges():
        result = project.stage(*WORKSHOP_MONTHS, entities=["activities"], raise_on_error=False)
    assert result.success, failure_message(result)
    return project


def test_workshop_task_type_from_custom_field(workshop_task_types):
    project = workshop_task_types
    tasks = {t["Id"]: t for t in read_rows(WORKSHOP / "Task.csv")}
    # The org's custom Type__c values, and the class each one is: read from the file, classed by hand.
    classes = {"Call": "call", "Email": "email", "Meeting": "meeting", "Prep": "other", "Other": "other"}
    assert {t["Type__c"] for t in tasks.values()} == set(classes)
    types = dict(project.query("SELECT activity_id, type FROM crm.activities"))
    assert set(types) == set(tasks)
    for activity_id, task in tasks.items():
        assert types[activity_id] == classes[task["Type__c"]], activity_id
    # The override changes only the type: the links still come from the built-in mapping.
    assert project.query("SELECT count(contact_id) FROM crm.activities")[0][0] == sum(
        t["WhoId"].startswith("003") for t in tasks.values()
    )


# --- salesforce_in_powerbi -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def powerbi(tmp_path_factory):
    project = new_project(tmp_path_factory, "powerbi")
    project.copy_fixture("salesforce_in_powerbi")
    with planned_events_as_ranges():
        # Every opportunity was created, and every lead last modified, in February 2026 (by eye; the tests
        # below check every row is staged): that month alone, not 2015 … today.
        without_override = project.stage("2026-02-01", "2026-02-01", entities=["deals", "leads"], raise_on_error=False)
        project.write("Lead.mapping.yaml", "columns: {created_at: LastModifiedDate}\n")
        with_override = project.stage("2026-02-01", "2026-02-01", entities=["leads"], raise_on_error=False)
    return project, without_override, with_override


def test_powerbi_opportunities(powerbi):
    project, _, _ = powerbi
    opps = {o["Id"]: o for o in read_rows(POWERBI / "Opportunity.csv")}
    assert len(opps) == 36  # README: Opportunity (36)
    assert project.query("SELECT count(*) FROM crm.rejects WHERE entity = 'deals'")[0][0] == 0
    rows = project.query("SELECT deal_id, is_won, is_closed, closed_at, created_at, source_system, amount FROM crm.deals")
    assert len(rows) == 36
    assert {r[0] for r in rows} == set(opps)
    for deal_id, is_won, is_closed, closed_at, created_at, system, amount in rows:
        o = opps[deal_id]
        assert o["IsWon"] in ("TRUE", "FALSE") and o["IsClosed"] in ("TRUE", "FALSE")
        assert is_won is (o["IsWon"] == "TRUE"), deal_id
        assert is_closed is (o["IsClosed"] == "TRUE"), deal_id
        assert created_at == day(o["CreatedDate"], "%m/%d/%y"), deal_id
        if o["IsClosed"] == "TRUE":
            assert closed_at == day(o["CloseDate"], "%m/%d/%y"), deal_id
        else:
            assert closed_at is None, deal_id
        assert system == "salesforce"
        assert amount == (float(o["Amount"]) if o["Amount"] else None)
    # By eye: 006bm00000LKJNPAA5, Closed Won, CloseDate '02/03/24' (2024-02-03, not the year 2), CreatedDate
    # '02/23/26'; 006bm00000LKJNNAA5 is open (Qualification, IsClosed FALSE).
    assert project.query(
        "SELECT closed_at, created_at FROM crm.deals WHERE deal_id = '006bm00000LKJNPAA5'"
    ) == [(dt.datetime(2024, 2, 3), dt.datetime(2026, 2, 23))]
    assert project.query("SELECT closed_at FROM crm.deals WHERE deal_id = '006bm00000LKJNNAA5'") == [(None,)]


def test_powerbi_extra_columns_ignored(powerbi):
    project, _, _ = powerbi
    header = list(read_rows(POWERBI / "Opportunity.csv")[0])
    extras = ["Opportunity Lifecycle (Days)", "Opp Creation Date_Simulated", "Opp Close Date_Simulated"]
    assert header[-3:] == extras
    columns = {r[0] for r in project.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'crm' AND table_name = 'deals'"
    )}
    assert not columns & set(extras)
    # The simulated dates are not read as the real ones (by eye, first row: CreatedDate 02/23/26,
    # Opp Creation Date_Simulated 02/12/24).
    assert project.query("SELECT created_at FROM crm.deals WHERE deal_id = '006bm00000LKJNNAA5'") == [
        (dt.datetime(2026, 2, 23),)
    ]


def test_powerbi_closed_before_created_still_staged(powerbi):
    project, _, _ = powerbi
    opps = read_rows(POWERBI / "Opportunity.csv")
    expected = {
        o["Id"]
        for o in opps
        if o["IsClosed"] == "TRUE" and day(o["CloseDate"], "%m/%d/%y") < day(o["CreatedDate"], "%m/%d/%y")
    }
    # By eye: the 18 closed rows with CloseDate 02/03/24 (created 02/23/26), and 006bm00000LKgOnAAL,
    # closed 02/23/26 but created 02/24/26.
    assert len(expected) == 19 and "006bm00000LKgOnAAL" in expected
    staged = {r[0] for r in project.query("SELECT deal_id FROM crm.deals WHERE closed_at < created_at")}
    assert staged == expected


def test_powerbi_account_key(powerbi):
    project, _, _ = powerbi
    names = {a["Id"]: a["Name"] for a in read_rows(POWERBI / "Account.csv")}
    keys = dict(project.query("SELECT deal_id, account_key FROM crm.deals"))
    for o in read_rows(POWERBI / "Opportunity.csv"):
        assert keys[o["Id"]] == simple_key(names[o["AccountId"]]), o["Id"]
    # By eye: 006bm00000LKJNOAA5's account 001bm00001ZL8UEAA1 is 'United Oil & Gas Corp.'
    assert keys["006bm00000LKJNOAA5"] == "united oil gas"


def test_powerbi_leads_without_created_date_fail_with_the_fix(powerbi):
    _, without_override, _ = powerbi
    assert not without_override.success
    message = failure_message(without_override)
    assert "Lead.csv" in message
    assert "created_at" in message
    assert "CreatedDate" in message  # what it looked for
    assert "Lead.mapping.yaml" in message  # the fix: a mapping override
    # Deals are independent of the failed leads.
    assert without_override.asset_materializations_for_node("crm__deals")


def test_powerbi_leads_with_override(powerbi):
    project, _, with_override = powerbi
    assert with_override.success, failure_message(with_override)
    leads = {r["Id"]: r for r in read_rows(POWERBI / "Lead.csv")}
    assert len(leads) == 22  # README: Lead (22)
    assert project.query("SELECT count(*) FROM crm.rejects WHERE entity = 'leads'")[0][0] == 0
    rows = project.query(
        "SELECT lead_id, created_at, is_converted, converted_at, converted_deal_id FROM crm.leads"
    )
    assert {r[0] for r in rows} == set(leads)
    for lead_id, created_at, is_converted, converted_at, converted_deal_id in rows:
        lead = leads[lead_id]
        assert created_at == day(lead["LastModifiedDate"], "%m/%d/%y %I:%M %p"), lead_id
        assert is_converted is (lead["IsConverted"] == "TRUE")
        assert converted_at == (day(lead["ConvertedDate"], "%m/%d/%y") if lead["ConvertedDate"] else None)
        assert converted_deal_id == (lead["ConvertedOpportunityId"] or None)
    # By eye: 00Qbm00000Orxk5EAB, LastModifiedDate '02/24/26 02:18 AM'; 00Qbm00000Orxk6EAB '02/23/26 08:55 PM'.
    created = dict((r[0], r[1]) for r in rows)
    assert created["00Qbm00000Orxk5EAB"] == dt.datetime(2026, 2, 24, 2, 18)
    assert created["00Qbm00000Orxk6EAB"] == dt.datetime(2026, 2, 23, 20, 55)


def test_powerbi_converted_leads_point_at_staged_deals(powerbi):
    project, _, with_override = powerbi
    assert with_override.success
    converted = {r["Id"]: r["ConvertedOpportunityId"] for r in read_rows(POWERBI / "Lead.csv") if r["IsConverted"] == "TRUE"}
    assert len(converted) == 5  # README: five leads are converted
    opp_ids = {o["Id"] for o in read_rows(POWERBI / "Opportunity.csv")}
    assert set(converted.values()) <= opp_ids
    rows = project.query(
        "SELECT l.lead_id, l.converted_deal_id, d.deal_id FROM crm.leads AS l "
        "LEFT JOIN crm.deals AS d ON d.source_system = l.source_system AND d.deal_id = l.converted_deal_id "
        "WHERE l.is_converted"
    )
    assert {r[0]: r[1] for r in rows} == converted
    assert all(r[2] is not None for r in rows)

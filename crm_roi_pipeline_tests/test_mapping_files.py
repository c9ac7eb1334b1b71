"""Mapping files (`<stem>.mapping.yaml`), their errors, and the built-in Salesforce / HubSpot / fx handling,
on small hand-written CSVs staged by real Dagster runs into a real DuckDB file.

Expected values are computed here from the CSV text the test writes (csv module, simple logic of this
file) or are literals read off that text; nothing is copied from the pipeline's output.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
import yaml

from crm_roi_pipeline_tests.conftest import Project, failure_message


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\n"))))


def as_utc(text: str) -> dt.datetime:
    """An ISO date or datetime (with or without offset) as a naive UTC datetime."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def stage_ok(project: Project, entity: str, first: str, last: str):
    """Stage `entity` over the months its file's records fall in (the month of created_at, occurred_at, ...):
    Dagster records a materialization per month, so a run over 2015 … today cost ~0.6 s more than one over
    the test's few months; a row outside them would be missing from the expected set and fail the test."""
    result = project.stage(first, last, entities=[entity], raise_on_error=False)
    assert result.success, failure_message(result)
    return result


def stage_fails(project: Project, entity: str) -> str:
    result = project.stage(entities=[entity], raise_on_error=False)
    assert not result.success, "the asset should have failed"
    return failure_message(result)


# --- a custom spreadsheet, mapped exactly as CONTRACT.md shows --------------------------------------

PIPELINE_MAPPING = """\
entity: deals
columns:            # canonical field: column in the file
  deal_id: opportunity_id
  owner_id: sales_agent
  account_id: account
  stage: deal_stage
  created_at: engage_date
  closed_at: close_date
  amount: close_value
stages:             # stage value: won | lost | open  (unlisted values are an error)
  Won: won
  Lost: lost
  Engaging: open
  Prospecting: open
constants:          # canonical field: value for every row
  currency: USD
date_format: "%Y-%m-%d"   # optional, for ambiguous dates
"""

PIPELINE_CSV = """\
opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value
P1,Anna Lee,GTX Pro,Acme,Won,2023-01-05,2023-02-10,1200
P2,Bob Ray,GTX Pro,Betatech,Lost,2023-01-06,2023-03-01,0
P3,Anna Lee,MG Special,Gammacorp,Engaging,2023-02-01,2023-04-30,
P4,Bob Ray,MG Special,Deltaworks,Prospecting,2023-02-03,,
"""


def test_custom_spreadsheet_with_contract_mapping(project):
    project.write("pipeline.csv", PIPELINE_CSV)
    project.write("pipeline.mapping.yaml", PIPELINE_MAPPING)
    stage_ok(project, "deals", "2023-01-01", "2023-02-01")  # engage_date 2023-01-05 … 2023-02-03
    spec = yaml.safe_load(PIPELINE_MAPPING)
    cols, stages = spec["columns"], spec["stages"]
    expected = {}
    for r in rows_of(PIPELINE_CSV):
        state = stages[r[cols["stage"]]]
        expected[r[cols["deal_id"]]] = (
            r[cols["owner_id"]],
            r[cols["account_id"]],
            r[cols["stage"]],
            state == "won",
            state in ("won", "lost"),
            float(r[cols["amount"]]) if r[cols["amount"]] else None,
            "USD",
            as_utc(r[cols["created_at"]]),
            as_utc(r[cols["closed_at"]]) if state != "open" else None,  # NULL while open, even with a date
            "csv",
            "csv",
        )
    got = project.query(
        "SELECT deal_id, owner_id, account_id, stage, is_won, is_closed, amount, currency, created_at, closed_at, "
        "source_system, loaded_from FROM crm.deals"
    )
    assert {r[0]: tuple(r[1:]) for r in got} == expected
    assert project.query("SELECT count(*) FROM crm.rejects")[0][0] == 0


# --- mapping-file errors -----------------------------------------------------------------------------


def test_unlisted_stage_value_fails(project):
    project.write("pipeline.csv", PIPELINE_CSV + "P5,Bob Ray,GTX Pro,Epsilon,On Hold,2023-02-07,,\n")
    project.write("pipeline.mapping.yaml", PIPELINE_MAPPING)
    message = stage_fails(project, "deals")
    assert "pipeline.csv" in message
    assert "'On Hold'" in message
    assert "stages:" in message and "pipeline.mapping.yaml" in message


def test_mapped_column_missing_from_file_fails(project):
    project.write("pipeline.csv", PIPELINE_CSV.replace("close_value", "value"))
    project.write("pipeline.mapping.yaml", PIPELINE_MAPPING)
    message = stage_fails(project, "deals")
    assert "pipeline.csv" in message
    assert "'close_value'" in message and "amount" in message
    assert "pipeline.mapping.yaml" in message


@pytest.mark.parametrize(
    "old, new, field, where",
    [
        ("  amount: close_value\n", "  amount: close_value\n  revenue: close_value\n", "revenue", "columns"),
        ("  currency: USD\n", "  currency: USD\n  region: EMEA\n", "region", "constants"),
    ],
)
def test_unknown_canonical_field_fails(project, old, new, field, where):
    project.write("pipeline.csv", PIPELINE_CSV)
    project.write("pipeline.mapping.yaml", PIPELINE_MAPPING.replace(old, new))
    message = stage_fails(project, "deals")
    assert "pipeline.mapping.yaml" in message
    assert f"'{field}'" in message and where in message
    assert "deal_id" in message and "created_at" in message  # the fix lists the canonical fields


def test_unknown_top_level_key_fails(project):
    project.write("pipeline.csv", PIPELINE_CSV)
    project.write("pipeline.mapping.yaml", PIPELINE_MAPPING + 'delimiter: ";"\n')
    message = stage_fails(project, "deals")
    assert "pipeline.mapping.yaml" in message
    assert "'delimiter'" in message
    assert "entity" in message and "columns" in message  # the keys that are allowed


def test_mapping_without_entity_beside_unrecognised_csv_fails(project):
    project.write("pipeline.csv", PIPELINE_CSV)
    project.write("pipeline.mapping.yaml", PIPELINE_MAPPING.replace("entity: deals\n", ""))
    message = stage_fails(project, "deals")
    assert "pipeline.mapping.yaml" in message
    assert "entity" in message and "entity: deals" in message  # the fix


@pytest.mark.parametrize(
    "files, csv_name, override",
    [
        (
            {"my_leads.csv": "id,source\nL1,Web\n", "my_leads.mapping.yaml": "entity: leads\ncolumns: {lead_id: id, lead_source: source}\n"},
            "my_leads.csv",
            "my_leads.mapping.yaml",
        ),
        ({"leads.csv": "lead_id,lead_source,status\nL1,Web,New\n"}, "leads.csv", "leads.mapping.yaml"),
    ],
    ids=["mapped-spreadsheet", "canonical-file"],
)
def test_required_column_missing_fails(project, files, csv_name, override):
    for name, text in files.items():
        project.write(name, text)
    message = stage_fails(project, "leads")
    assert csv_name in message
    assert "created_at" in message
    assert override in message  # the fix: map a column to it there


DAY_FIRST_CSV = """\
deal_id,created_at,closed_at,is_won,is_closed,amount
D1,05/01/2024,10/02/2024,true,true,10
D2,13/01/2024,,false,false,20
"""
DAY_FIRST_MAPPING = (
    "entity: deals\n"
    "columns: {deal_id: deal_id, created_at: created_at, closed_at: closed_at, is_won: is_won, "
    "is_closed: is_closed, amount: amount}\n"
)


def test_day_first_date_without_date_format_fails(project):
    project.write("mydeals.csv", DAY_FIRST_CSV)
    project.write("mydeals.mapping.yaml", DAY_FIRST_MAPPING)
    message = stage_fails(project, "deals")
    assert "mydeals.csv" in message
    assert "'13/01/2024'" in message
    assert "date_format" in message and "mydeals.mapping.yaml" in message


def test_day_first_date_with_date_format_stages(project):
    project.write("mydeals.csv", DAY_FIRST_CSV)
    project.write("mydeals.mapping.yaml", DAY_FIRST_MAPPING + 'date_format: "%d/%m/%Y"\n')
    stage_ok(project, "deals", "2024-01-01", "2024-01-01")  # created 5 and 13 January 2024
    expected = {}
    for r in rows_of(DAY_FIRST_CSV):
        closed = r["is_closed"] == "true"
        expected[r["deal_id"]] = (
            dt.datetime.strptime(r["created_at"], "%d/%m/%Y"),
            dt.datetime.strptime(r["closed_at"], "%d/%m/%Y") if closed else None,
        )
    # By eye: D1 '05/01/2024' is 5 January (not 1 May) and '10/02/2024' 10 February; D2 '13/01/2024' 13 January.
    assert expected["D1"] == (dt.datetime(2024, 1, 5), dt.datetime(2024, 2, 10))
    got = project.query("SELECT deal_id, created_at, closed_at FROM crm.deals")
    assert {r[0]: (r[1], r[2]) for r in got} == expected
    assert project.query("SELECT count(*) FROM crm.rejects")[0][0] == 0


# --- Salesforce Opportunity: override, Type, booleans ------------------------------------------------

SF_TYPES = [
    "New Customer",
    "Existing Customer - Upgrade",
    "Existing Customer - Replacement",
    "Existing Customer - Downgrade",
    "Add-on",
    "Something Else",
]
# CONTRACT.md: the standard Type values, and Add-on through conftest's assumptions (deal_types: Add-on: expansion).
SF_TYPE_CLASS = {
    "New Customer": "new_business",
    "Existing Customer - Upgrade": "expansion",
    "Existing Customer - Replacement": "renewal",
    "Existing Customer - Downgrade": "renewal",
    "Add-on": "expansion",
    "Something Else": None,
}
SF_OPPORTUNITY = "Id,Name,StageName,IsClosed,IsWon,CloseDate,CreatedDate,Migrated_Created__c,Type,Amount\n" + "".join(
    f"006X0000000000{i},Deal {i},{stage},{closed},{won},2024-03-{i + 1:02d},2024-01-05T10:00:00.000+0000,"
    f"2022-06-{i + 1:02d},{type_},{100 * (i + 1)}\n"
    for i, (type_, (stage, closed, won)) in enumerate(
        zip(SF_TYPES, [("Closed Won", "true", "true"), ("Closed Lost", "true", "false"), ("Prospecting", "false", "false")] * 2)
    )
)


def test_salesforce_type_maps_to_deal_type(project):
    project.write("Opportunity.csv", SF_OPPORTUNITY)
    stage_ok(project, "deals", "2024-01-01", "2024-01-01")  # every CreatedDate is 2024-01-05
    expected = {r["Id"]: (SF_TYPE_CLASS[r["Type"]], r["Type"]) for r in rows_of(SF_OPPORTUNITY)}
    assert len(expected) == len(SF_TYPES)
    got = project.query("SELECT deal_id, deal_type, crm_deal_type FROM crm.deals")
    assert {r[0]: (r[1], r[2]) for r in got} == expected


def test_mapping_override_beside_recognised_export(project):
    project.write("Opportunity.csv", SF_OPPORTUNITY)
    project.write("Opportunity.mapping.yaml", "columns: {created_at: Migrated_Created__c}\n")
    stage_ok(project, "deals", "2022-06-01", "2022-06-01")  # Migrated_Created__c 2022-06-01 … 2022-06-06
    expected = {}
    for r in rows_of(SF_OPPORTUNITY):
        closed = r["IsClosed"] == "true"
        expected[r["Id"]] = (
            as_utc(r["Migrated_Created__c"]),  # the overridden field
            as_utc(r["CloseDate"]) if closed else None,  # every other field as the built-in mapping reads it
            r["IsWon"] == "true",
            closed,
            SF_TYPE_CLASS[r["Type"]],
            float(r["Amount"]),
            r["Name"],
            "salesforce",
        )
    got = project.query(
        "SELECT deal_id, created_at, closed_at, is_won, is_closed, deal_type, amount, name, source_system FROM crm.deals"
    )
    assert {r[0]: tuple(r[1:]) for r in got} == expected
    # By eye: the first row's CreatedDate is 2024-01-05T10:00, its Migrated_Created__c 2022-06-01.
    assert expected["006X00000000000"][0] == dt.datetime(2022, 6, 1)


BOOLEANS = """\
Id,StageName,IsClosed,IsWon,CloseDate,CreatedDate
B1,Closed Won,true,true,2024-02-01,2024-01-01
B2,Closed Lost,TRUE,FALSE,2024-02-01,2024-01-01
B3,Closed Won,1,1,2024-02-01,2024-01-01
B4,Closed Lost,1,,2024-02-01,2024-01-01
B5,Prospecting,,,2024-02-01,2024-01-01
B6,Prospecting,FALSE,false,2024-02-01,2024-01-01
B7,Closed Won,true,yes?,2024-02-01,2024-01-01
"""


def test_booleans_accepted_and_unreadable_flag_rejected(project):
    project.write("Opportunity.csv", BOOLEANS)
    stage_ok(project, "deals", "2024-01-01", "2024-01-01")  # every CreatedDate is 2024-01-01
    truth = {"true": True, "TRUE": True, "1": True, "false": False, "FALSE": False, "": False}
    rows = rows_of(BOOLEANS)
    expected = {
        r["Id"]: (truth[r["IsWon"]], truth[r["IsClosed"]]) for r in rows if r["IsWon"] in truth and r["IsClosed"] in truth
    }
    assert len(expected) == len(rows) - 1  # only B7 ('yes?') is unreadable
    got = project.query("SELECT deal_id, is_won, is_closed FROM crm.deals")
    assert {r[0]: (r[1], r[2]) for r in got} == expected
    rejects = project.query("SELECT source_id, reason, source_file, source_row, raw FROM crm.rejects WHERE entity = 'deals'")
    assert len(rejects) == 1
    source_id, reason, source_file, source_row, raw = rejects[0]
    assert (source_id, source_file, source_row) == ("B7", "Opportunity.csv", 7)
    assert "is_won" in reason and "'yes?'" in reason
    assert json.loads(raw)["is_won"] == "yes?"


# --- HubSpot exports ---------------------------------------------------------------------------------

HUBSPOT_DEALS_LABELS = """\
Record ID,Deal Name,Deal Stage,Amount,Close Date,Create Date,Deal owner,Deal Type
101,Alpha renewal,Closed Won,1000,2024-03-10 10:00,2024-01-02 09:30,Ann Smith,New Business
102,Beta upsell,Closed Lost,500,2024-04-11 00:00,2024-01-03 00:00,Bob Jones,Existing Business
103,Gamma pilot,Appointment Scheduled,700,2024-09-30 00:00,2024-02-04 15:45,Ann Smith,New Business
"""
HUBSPOT_DEALS_INTERNAL = """\
hs_object_id,dealname,dealstage,amount,closedate,createdate
201,Alpha,closedwon,10,2024-03-10T10:00:00Z,2024-01-02T09:30:00Z
202,Beta,closedlost,20,2024-04-11T00:00:00.000Z,2024-01-03T00:00:00.000Z
203,Gamma,appointmentscheduled,30,2024-09-30T00:00:00Z,2024-02-04T00:00:00Z
"""
# HubSpot's default sales pipeline: its closed stages as labels and as internal ids; any other stage is open.
HUBSPOT_CLOSED = {"Closed Won": "won", "closedwon": "won", "Closed Lost": "lost", "closedlost": "lost"}


@pytest.mark.parametrize(
    "text, cols",
    [
        (HUBSPOT_DEALS_LABELS, ("Record ID", "Deal Stage", "Create Date", "Close Date", "Amount")),
        (HUBSPOT_DEALS_INTERNAL, ("hs_object_id", "dealstage", "createdate", "closedate", "amount")),
    ],
    ids=["labels", "internal-names"],
)
def test_hubspot_deals_export(project, text, cols):
    id_col, stage_col, created_col, closed_col, amount_col = cols
    project.write("hubspot-deals.csv", text)
    stage_ok(project, "deals", "2024-01-01", "2024-02-01")  # created 2024-01-02 … 2024-02-04
    expected = {}
    for r in rows_of(text):
        state = HUBSPOT_CLOSED.get(r[stage_col], "open")
        expected[r[id_col]] = (
            r[stage_col],
            state == "won",
            state != "open",
            as_utc(r[created_col]),
            as_utc(r[closed_col]) if state != "open" else None,
            float(r[amount_col]),
            "hubspot",
        )
    assert {v[2] for v in expected.values()} == {True, False}
    got = project.query("SELECT deal_id, stage, is_won, is_closed, created_at, closed_at, amount, source_system FROM crm.deals")
    assert {r[0]: tuple(r[1:]) for r in got} == expected
    if "Deal Type" in rows_of(text)[0]:
        # HubSpot's standard deal types (CONTRACT.md: standard values map to deal_type).
        types = dict(project.query("SELECT deal_id, deal_type FROM crm.deals"))
        assert types == {"101": "new_business", "102": "expansion", "103": "new_business"}
        owners = dict(project.query("SELECT deal_id, owner_id FROM crm.deals"))
        assert owners == {r["Record ID"]: r["Deal owner"] for r in rows_of(text)}


HUBSPOT_CONTACTS = """\
Record ID,Create Date,Lifecycle Stage,Original Source,Became an Opportunity Date,Associated Deal IDs
301,2024-01-05 10:00,Opportunity,Organic Search,2024-02-01 12:00,111;222
302,2024-01-06 11:00,Lead,Paid Search,,
"""


def test_hubspot_contacts_export(project):
    project.write("hubspot-contacts.csv", HUBSPOT_CONTACTS)
    stage_ok(project, "leads", "2024-01-01", "2024-01-01")  # created 2024-01-05 and 2024-01-06
    expected = {}
    for r in rows_of(HUBSPOT_CONTACTS):
        opportunity = r["Became an Opportunity Date"]
        expected[r["Record ID"]] = (
            as_utc(r["Create Date"]),
            r["Lifecycle Stage"],
            r["Original Source"],
            bool(opportunity),
            as_utc(opportunity) if opportunity else None,
            r["Associated Deal IDs"].split(";")[0] or None,  # the first associated deal
            "hubspot",
        )
    assert expected["301"][5] == "111"  # by eye: '111;222'
    got = project.query(
        "SELECT lead_id, created_at, status, lead_source, is_converted, converted_at, converted_deal_id, source_system "
        "FROM crm.leads"
    )
    assert {r[0]: tuple(r[1:]) for r in got} == expected


HUBSPOT_CALLS = """\
Record ID,Activity date,Activity assigned to,Call duration (HH:mm:ss)
401,2024-01-05 10:00,Ann Smith,00:05:30
402,2024-01-06 11:00,Bob Jones,01:02:03
"""


def test_hubspot_calls_export(project):
    project.write("hubspot-calls.csv", HUBSPOT_CALLS)
    stage_ok(project, "activities", "2024-01-01", "2024-01-01")  # on 2024-01-05 and 2024-01-06
    expected = {}
    for r in rows_of(HUBSPOT_CALLS):
        h, m, s = (int(x) for x in r["Call duration (HH:mm:ss)"].split(":"))
        expected[r["Record ID"]] = (
            "call",  # from the file name: a per-type export has no type column
            as_utc(r["Activity date"]),
            r["Activity assigned to"],
            pytest.approx(h * 60 + m + s / 60),
            "hubspot",
        )
    assert expected["401"][3] == 5.5  # by eye: 00:05:30 is five and a half minutes
    got = project.query("SELECT activity_id, type, occurred_at, owner_id, duration_minutes, source_system FROM crm.activities")
    assert {r[0]: tuple(r[1:]) for r in got} == expected


# --- fx ----------------------------------------------------------------------------------------------

FX_DEALS = """\
deal_id,created_at,closed_at,is_won,is_closed,amount,currency
E1,2024-01-10,2024-03-15,true,true,1000,EUR
E2,2024-02-01,2024-05-20,true,true,2000,EUR
E3,2024-04-10,,false,false,300,EUR
U1,2024-01-10,2024-03-15,true,true,50,USD
"""
FX_RATES = """\
month,currency,rate
2024-03-01,EUR,1.10
2024-04-01,EUR,1.20
"""


def test_fx_rates_convert_and_missing_rate_rejects(project):
    project.write("deals.csv", FX_DEALS)
    project.write("fx_rates.csv", FX_RATES)
    stage_ok(project, "deals", "2024-01-01", "2024-04-01")  # created 2024-01-10 … 2024-04-10
    rates = {(r["month"][:7], r["currency"]): float(r["rate"]) for r in rows_of(FX_RATES)}
    staged, missing = {}, {}
    for r in rows_of(FX_DEALS):
        # The deal's month: closed_at once closed, created_at while open; the reporting currency is USD.
        month = (r["closed_at"] if r["is_closed"] == "true" else r["created_at"])[:7]
        rate = 1.0 if r["currency"] == "USD" else rates.get((month, r["currency"]))
        if rate is None:
            missing[r["deal_id"]] = (r["currency"], month)
        else:
            staged[r["deal_id"]] = (float(r["amount"]), r["currency"], pytest.approx(float(r["amount"]) * rate))
    assert missing == {"E2": ("EUR", "2024-05")}  # by eye: no EUR rate for May 2024
    got = project.query("SELECT deal_id, amount, currency, amount_reporting FROM crm.deals")
    assert {r[0]: tuple(r[1:]) for r in got} == staged
    rejects = project.query("SELECT source_id, reason FROM crm.rejects WHERE entity = 'deals'")
    assert [r[0] for r in rejects] == ["E2"]
    assert "EUR" in rejects[0][1] and "2024-05" in rejects[0][1]

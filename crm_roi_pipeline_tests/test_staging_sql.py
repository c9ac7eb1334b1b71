"""The query each staged table is built by (staging/sql/stage_<entity>.sql, rendered): compared with a committed
copy in snapshots/, so a change to what staging runs shows in review as a diff of the SQL itself; and run as
written, on a DuckDB holding only its inputs, made by hand."""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import json
import os
import textwrap
from pathlib import Path

import duckdb
import pytest

from crm_roi_pipeline.sources.fields import ENTITIES, fields_of
from crm_roi_pipeline.sql_files import PACKAGE_DIR, read_sql, render_sql
from crm_roi_pipeline.staging.transform import staged_sql

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("CRM_ROI_UPDATE_SNAPSHOTS") == "1"
REFRESH = "CRM_ROI_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest crm_roi_pipeline_tests/test_staging_sql.py"
PARAMS = {
    "reporting_currency": "USD",
    "history_start": dt.date(2021, 1, 1),
    "last_month": dt.date(2026, 5, 1),
    "run_day": dt.date(2026, 5, 20),
}


def _rendered(entity: str) -> str:
    return staged_sql(entity, f"_raw_{entity}_csv", f"_staged_{entity}_csv", **PARAMS)


@pytest.mark.parametrize("entity", ENTITIES)
def test_each_staging_query_is_its_committed_snapshot(entity):
    sql = _rendered(entity)
    path = SNAPSHOTS / f"stage_{entity}.sql"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(sql)
    if not path.exists():
        pytest.fail(f"no snapshot {path.name}: write it with `{REFRESH}` and commit it")
    committed = path.read_text()
    if sql != committed:
        diff = difflib.unified_diff(
            committed.splitlines(), sql.splitlines(), f"snapshots/{path.name}", "rendered now", lineterm=""
        )
        pytest.fail(
            f"the staging query of {entity} is not its snapshot. If the change is meant, refresh the snapshots with "
            f"`{REFRESH}` and commit them with it, so the review shows the query's change:\n" + "\n".join(diff),
            pytrace=False,
        )


def test_the_salesforce_link_typing_is_the_salesforce_sources_file():
    fragment = render_sql("sources/salesforce/sql/activity_links.sql")
    assert "LIKE '006%'" in fragment
    assert textwrap.indent(fragment, " " * 8) in _rendered("activities")


def test_the_sql_loader_is_a_leaf():
    tree = ast.parse((PACKAGE_DIR / "sql_files.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {name for name in imported if name.startswith("crm_roi_pipeline")}


def test_a_template_given_too_little_fails_instead_of_leaving_a_hole():
    with pytest.raises(Exception, match="raw_json_sql"):
        render_sql("staging/sql/stage_spend.sql", raw_table="r", staged_table="s", reporting_currency="USD",
                   problems_sql="NULL", misread_columns=[])


# -- the rendered text runs as written ---------------------------------------------------------------------

_TYPES = {"id": "VARCHAR", "text": "VARCHAR", "bool": "BOOLEAN", "number": "DOUBLE", "timestamp": "TIMESTAMP"}


@pytest.fixture
def conn():
    """A DuckDB with the macros, the lookups and, per entity, an empty raw table shaped like a source's typed
    view: each field typed, the text of each flag, number and date beside it, and the row's provenance."""
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute(read_sql("staging/sql/macros.sql"))
    for entity in ENTITIES:
        columns = []
        for name, kind in fields_of(entity).items():
            columns.append(f"{name} {_TYPES[kind]}")
            if kind in ("bool", "number", "timestamp"):
                columns.append(f"{name}__txt VARCHAR")
        if entity == "deals":
            columns += ["_stage_class VARCHAR", "_has_stage_map BOOLEAN"]
        columns += ["_row BIGINT", "_file_order INTEGER", "_date_format VARCHAR"]
        conn.execute(f"CREATE TEMP TABLE _raw_{entity}_csv ({', '.join(columns)})")
    conn.execute("CREATE TEMP TABLE _fx_rates (month DATE, currency VARCHAR, rate DOUBLE)")
    conn.execute("INSERT INTO _fx_rates VALUES (DATE '2026-03-01', 'EUR', 1.25), (DATE '2026-04-01', 'EUR', 1.5)")
    conn.execute("CREATE TEMP TABLE _account_names (source_system VARCHAR, account_id VARCHAR, account_name VARCHAR)")
    conn.execute("INSERT INTO _account_names VALUES ('salesforce', '001A', 'Acme Ltd.')")
    conn.execute("CREATE TEMP TABLE _owner_teams (source_system VARCHAR, owner_id VARCHAR, team VARCHAR)")
    conn.execute("INSERT INTO _owner_teams VALUES ('salesforce', '005X', 'EMEA')")
    conn.execute("CREATE TEMP TABLE _deal_type_map (crm_value VARCHAR, deal_type VARCHAR)")
    conn.execute("INSERT INTO _deal_type_map VALUES ('New Customer', 'new_business')")
    yield conn
    conn.close()


def _stage(conn, entity: str, *rows: dict) -> dict[int, dict]:
    """Insert `rows` (typed values by name; the text beside a typed value is its str) and run the rendered
    query as written; the staged rows by _row."""
    kinds = fields_of(entity)
    for i, row in enumerate(rows, start=1):
        values = {"source_system": "salesforce", "_row": i, "_file_order": 0, **row}
        for name, value in list(values.items()):
            if kinds.get(name) in ("bool", "number", "timestamp") and f"{name}__txt" not in values:
                values[f"{name}__txt"] = None if value is None else str(value)
        conn.execute(
            f"INSERT INTO _raw_{entity}_csv BY NAME SELECT {', '.join(f'?::{_type(entity, n)} AS {n}' for n in values)}",
            list(values.values()),
        )
    conn.execute(_rendered(entity))
    result = conn.execute(f"SELECT * FROM _staged_{entity}_csv ORDER BY _row")
    columns = [d[0] for d in result.description]
    return {row[columns.index("_row")]: dict(zip(columns, row)) for row in result.fetchall()}


def _type(entity: str, name: str) -> str:
    kind = fields_of(entity).get(name)
    if kind:
        return _TYPES[kind]
    return {"_row": "BIGINT", "_file_order": "INTEGER", "_has_stage_map": "BOOLEAN"}.get(name, "VARCHAR")


def test_the_deals_query_runs_as_written(conn):
    staged = _stage(
        conn, "deals",
        # Won in EUR in March 2026: 1.25 USD a euro that month.
        {"deal_id": "006A", "account_id": "001A", "owner_id": "005X", "stage": "Closed Won", "is_won": True,
         "is_closed": True, "amount": 1000.0, "currency": "eur", "deal_type": "New Customer",
         "created_at": dt.datetime(2026, 2, 10), "closed_at": dt.datetime(2026, 3, 31, 23, 0)},
        # Open: its close date is an expectation, not staged; its amount is rated in the month it was created.
        {"deal_id": "006B", "is_closed": False, "amount": 10.0, "currency": "EUR",
         "created_at": dt.datetime(2026, 4, 2), "closed_at": dt.datetime(2026, 9, 1)},
        {"deal_id": None, "amount": 5.0, "created_at": dt.datetime(2026, 3, 1)},
        {"deal_id": "006C", "amount": 7.0, "currency": "GBP", "created_at": dt.datetime(2026, 3, 1)},
    )
    won = staged[1]
    assert won["amount_reporting"] == 1250.0
    assert (won["currency"], won["is_won"], won["is_closed"], won["team"]) == ("EUR", True, True, "EMEA")
    assert (won["deal_type"], won["crm_deal_type"]) == ("new_business", "New Customer")
    assert won["account_key"] == conn.execute("SELECT crm_account_key('Acme Ltd.')").fetchone()[0]
    assert (won["_month"], won["closed_at"]) == (dt.date(2026, 2, 1), dt.datetime(2026, 3, 31, 23, 0))
    assert won["_reason"] is None and won["_raw"] is None
    assert staged[2]["closed_at"] is None and staged[2]["amount_reporting"] == 15.0 and staged[2]["_reason"] is None
    assert staged[3]["_reason"] == "no deal_id"
    assert json.loads(staged[3]["_raw"]) == {"amount": "5.0", "created_at": "2026-03-01 00:00:00"}
    assert staged[4]["_reason"] == "no fx rate for GBP in 2026-03 (add it to fx_rates.csv)"


def test_a_repeated_id_keeps_its_values_for_the_duplicate_reject(conn):
    staged = _stage(
        conn, "leads",
        {"lead_id": "00QA", "created_at": dt.datetime(2026, 3, 1)},
        {"lead_id": "00QA", "created_at": dt.datetime(2026, 3, 2), "owner_id": "005X",
         "converted_at": dt.datetime(2026, 4, 1)},
        {"lead_id": "00QB", "created_at": dt.datetime(2020, 12, 31)},
    )
    # Both rows of 00QA keep their values (the older is rejected once the table is built), with no reason yet.
    assert [staged[i]["_reason"] for i in (1, 2)] == [None, None]
    assert json.loads(staged[1]["_raw"]) == {"lead_id": "00QA", "created_at": "2026-03-01 00:00:00"}
    assert (staged[2]["team"], staged[2]["is_converted"]) == ("EMEA", True)
    assert staged[3]["_reason"] == "created_at 2020-12 is before CRM_ROI_HISTORY_START (2021-01-01)"


def test_the_activities_query_types_salesforce_links_by_key_prefix(conn):
    staged = _stage(
        conn, "activities",
        {"activity_id": "00TA", "type": "Call", "what_id": "006A", "who_id": "00QA", "duration_seconds": 90.0,
         "occurred_at": dt.datetime(2026, 3, 3)},
        {"activity_id": "00TB", "what_id": "001A", "who_id": "003A", "deal_id": "006Z", "is_closed": False,
         "occurred_at": dt.datetime(2026, 3, 3)},
    )
    first, second = staged[1], staged[2]
    assert (first["deal_id"], first["lead_id"], first["account_id"], first["contact_id"]) == ("006A", "00QA", None, None)
    assert first["duration_minutes"] == 1.5 and first["status"] == "completed"
    assert (second["deal_id"], second["account_id"], second["contact_id"]) == ("006Z", "001A", "003A")
    assert second["status"] == "open"


def test_the_spend_query_runs_as_written(conn):
    staged = _stage(
        conn, "spend",
        {"month": dt.datetime(2026, 4, 15), "category": "Marketing", "channel": "Webinar", "amount": 200.0,
         "currency": "EUR"},
        {"month": dt.datetime(2026, 4, 1), "category": "events", "amount": 1.0},
    )
    assert staged[1]["month"] == dt.date(2026, 4, 1)
    assert (staged[1]["category"], staged[1]["amount_reporting"], staged[1]["_reason"]) == ("marketing", 300.0, None)
    assert staged[2]["_reason"] == "category 'events' is not marketing or sales"
    assert staged[2]["amount_reporting"] == 1.0  # no currency: the reporting currency, at 1

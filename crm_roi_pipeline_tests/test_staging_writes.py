"""Partition writes: idempotent reruns, exact replacement of a source's months, atomic failure, rejects."""

from __future__ import annotations

import json

import pytest

from crm_roi_pipeline_tests.conftest import Project, failure_message, planned_events_as_ranges

DEALS = """
deal_id,account_id,account_name,stage,is_closed,is_won,amount,currency,created_at,closed_at
D1,A1,Acme Inc.,Closed Won,true,true,100.00,USD,2024-01-05T10:00:00Z,2024-02-01T00:00:00Z
D2,A2,Beta LLC,Closed Lost,true,false,50.00,USD,2024-01-20T10:00:00Z,2024-03-01T00:00:00Z
D3,A1,ACME,Proposal,false,false,70.00,USD,2024-02-10T10:00:00Z,2024-06-30T00:00:00Z
D4,,,Closed Won,true,true,20.00,USD,2024-03-15T23:59:59+02:00,2024-03-20T00:00:00Z
,A3,Gamma,Closed Won,true,true,10.00,USD,2024-02-02T00:00:00Z,2024-02-03T00:00:00Z
D6,A3,Gamma,Closed Won,true,true,10.00,USD,not a date,2024-02-03T00:00:00Z
D7,A3,Gamma,Closed Won,true,true,10.00,USD,2014-12-31T00:00:00Z,2015-01-03T00:00:00Z
D8,A4,Delta,Closed Won,true,true,30.00,EUR,2024-02-11T00:00:00Z,2024-02-12T00:00:00Z
"""
FX = """
month,currency,rate
2024-03-01,EUR,1.10
"""


def _deals(project):
    return project.query("SELECT deal_id, amount, created_at FROM crm.deals ORDER BY deal_id")


@pytest.fixture(scope="module")
def staged_deals(tmp_path_factory):
    """DEALS and FX staged over every month, once: read here, copied by `_stage_deals`."""
    project = Project(tmp_path_factory.mktemp("deals"))
    project.write("deals.csv", DEALS)
    project.write("fx_rates.csv", FX)
    with planned_events_as_ranges():
        project.stage(entities=["deals"])
    return project


def _stage_deals(project, staged_deals) -> None:
    """DEALS and FX in the folder and staged over every month, as the first run of the tests below leaves
    them: a copy of `staged_deals`' database (the test above checks that run's rows)."""
    project.write("deals.csv", DEALS)
    project.write("fx_rates.csv", FX)
    project.use_database(staged_deals.db_path)


def test_all_months_stage_valid_rows_and_reject_the_rest_with_reasons(staged_deals):
    project = staged_deals
    # D1..D4 are valid. D4's +02:00 offset makes it 21:59:59 UTC on 2024-03-15.
    assert [r[0] for r in _deals(project)] == ["D1", "D2", "D3", "D4"]
    assert project.query("SELECT created_at::VARCHAR FROM crm.deals WHERE deal_id = 'D4'") == [("2024-03-15 21:59:59",)]
    # An open deal's closed_at is NULL even though the file gives an (expected) date.
    assert project.query("SELECT closed_at FROM crm.deals WHERE deal_id = 'D3'") == [(None,)]
    # 'Acme Inc.' and 'ACME' are one account once the name is normalised.
    assert project.query("SELECT DISTINCT account_key FROM crm.deals WHERE account_id = 'A1'") == [("acme",)]
    rejects = project.query(
        "SELECT source_id, reason, source_file, source_row, partition_month::VARCHAR FROM crm.rejects ORDER BY source_row"
    )
    assert rejects == [
        (None, "no deal_id", "deals.csv", 5, "2024-02-01"),
        ("D6", "created_at: cannot read 'not a date' as a date", "deals.csv", 6, None),
        ("D7", "created_at 2014-12 is before CRM_ROI_HISTORY_START (2015-01-01)", "deals.csv", 7, "2014-12-01"),
        # EUR rate given for 2024-03 only; D8 closed in 2024-02.
        ("D8", "no fx rate for EUR in 2024-02 (add it to fx_rates.csv)", "deals.csv", 8, "2024-02-01"),
    ]
    raw = json.loads(project.query("SELECT raw FROM crm.rejects WHERE source_id = 'D6'")[0][0])
    assert raw["created_at"] == "not a date" and raw["deal_id"] == "D6"
    # Only mapped canonical fields are kept, never other columns of the input row.
    assert set(raw) <= {"deal_id", "account_id", "account_name", "stage", "is_closed", "is_won", "amount",
                        "currency", "created_at", "closed_at"}


def test_rerunning_a_month_is_idempotent(project, staged_deals):
    _stage_deals(project, staged_deals)
    before = project.query("SELECT * FROM crm.deals ORDER BY deal_id")
    rejects = "SELECT entity, source_id, reason, source_file, source_row, raw FROM crm.rejects ORDER BY ALL"
    rejects_before = project.query(rejects)
    # Rows of no partition (D6's unreadable date, D7 before the history) are rewritten by every run, with
    # the row numbers of the whole file although a one-month run keeps only its month's text.
    assert [(r[1], r[4]) for r in rejects_before if r[1] in ("D6", "D7")] == [("D6", 6), ("D7", 7)]
    project.stage("2024-01-01", "2024-01-01", entities=["deals"])
    project.stage("2024-01-01", "2024-03-01", entities=["deals"])
    assert project.query("SELECT * FROM crm.deals ORDER BY deal_id") == before
    assert project.query(rejects) == rejects_before


def test_a_month_write_replaces_exactly_that_source_and_month(project, staged_deals):
    _stage_deals(project, staged_deals)
    # The export changes: D1 (Jan) gets a new amount, D3 (Feb) too. Only January is rerun.
    project.write("deals.csv", DEALS.replace("D1,A1,Acme Inc.,Closed Won,true,true,100.00", "D1,A1,Acme Inc.,Closed Won,true,true,111.00")
                  .replace("D3,A1,ACME,Proposal,false,false,70.00", "D3,A1,ACME,Proposal,false,false,77.00"))
    project.stage("2024-01-01", "2024-01-01", entities=["deals"])
    amounts = dict(project.query("SELECT deal_id, amount FROM crm.deals"))
    assert amounts == {"D1": 111.0, "D2": 50.0, "D3": 70.0, "D4": 20.0}
    # A row of another source in the same month is untouched by the csv write.
    with project.connect() as conn:
        conn.execute("INSERT INTO crm.deals (deal_id, source_system, loaded_from, is_closed, is_won, created_at) "
                     "VALUES ('SF1', 'salesforce', 'salesforce', false, false, '2024-01-07')")
    project.stage("2024-01-01", "2024-01-01", entities=["deals"])
    assert project.query("SELECT count(*) FROM crm.deals WHERE loaded_from = 'salesforce'") == [(1,)]


def test_the_api_source_wins_over_csv_for_the_same_record(project):
    project.write("deals.csv", DEALS.replace("D2,A2", "006X2,A2") .replace("deal_id,", "deal_id,source_system,")
                  .replace("\nD1,", "\nD1,csv,").replace("\n006X2,", "\n006X2,salesforce,").replace("\nD3,", "\nD3,csv,")
                  .replace("\nD4,", "\nD4,csv,").replace("\n,A3", "\n,csv,A3").replace("\nD6,", "\nD6,csv,")
                  .replace("\nD7,", "\nD7,csv,").replace("\nD8,", "\nD8,csv,"))
    # The Salesforce API already staged 006X2; the csv copy of the same record must not replace it. Both runs
    # cover the months of DEALS' readable rows (2024-01 … 2024-03; D6 and D7 have none): over 2015 … today
    # Dagster's per-month events made each ~0.6 s longer.
    project.stage("2024-01-01", "2024-03-01", entities=["deals"])
    with project.connect() as conn:
        conn.execute("DELETE FROM crm.deals WHERE deal_id = '006X2'")
        conn.execute("INSERT INTO crm.deals (deal_id, source_system, loaded_from, is_closed, is_won, amount, created_at) "
                     "VALUES ('006X2', 'salesforce', 'salesforce', true, false, 999, '2024-01-20')")
    result = project.stage("2024-01-01", "2024-03-01", entities=["deals"])
    assert project.query("SELECT loaded_from, amount FROM crm.deals WHERE deal_id = '006X2'") == [("salesforce", 999.0)]
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["superseded_by_api_source"].value == 1


def test_a_failed_write_leaves_the_database_as_it_was(project, staged_deals):
    _stage_deals(project, staged_deals)
    deals_before = project.query("SELECT * FROM crm.deals ORDER BY deal_id")
    rejects_before = project.query("SELECT * FROM crm.rejects ORDER BY ALL")
    # Make the insert fail after the delete has run: a NOT NULL column the pipeline does not fill.
    with project.connect() as conn:
        conn.execute("ALTER TABLE crm.deals ADD COLUMN must_have INTEGER")
        conn.execute("UPDATE crm.deals SET must_have = 1")
        conn.execute("ALTER TABLE crm.deals ALTER COLUMN must_have SET NOT NULL")
    project.write("deals.csv", DEALS.replace("100.00", "999.00"))
    result = project.stage(entities=["deals"], raise_on_error=False)
    assert not result.success
    assert "must_have" in failure_message(result) or "NOT NULL" in failure_message(result)
    assert project.query("SELECT * EXCLUDE (must_have) FROM crm.deals ORDER BY deal_id") == deals_before
    assert project.query("SELECT * FROM crm.rejects ORDER BY ALL") == rejects_before


def test_bad_assumptions_fail_before_any_write(project):
    project.write("deals.csv", DEALS)
    project.assumptions.write_text(project.assumptions.read_text().replace("gross_margin: 0.7", "gross_margin: 1.7"))
    result = project.stage(entities=["deals"], raise_on_error=False)
    assert not result.success
    assert "gross_margin" in failure_message(result)
    assert not project.db_path.exists()


def test_duplicate_ids_keep_the_last_row_and_reject_the_others(project):
    project.write("deals.csv", """
        deal_id,stage,is_closed,is_won,amount,created_at,closed_at
        D1,Closed Won,true,true,100,2024-01-05,2024-02-01
        D1,Closed Won,true,true,120,2024-01-05,2024-02-01
    """)
    project.stage("2024-01-01", "2024-01-01", entities=["deals"])  # both copies' month
    assert project.query("SELECT amount FROM crm.deals") == [(120.0,)]
    assert project.query("SELECT source_row, reason FROM crm.rejects") == [
        (1, "duplicate deal_id: deals.csv row 2 has the same id and was staged")
    ]
    # The rejected copy's fields, as the file wrote them.
    raw = json.loads(project.query("SELECT raw FROM crm.rejects")[0][0])
    assert raw == {"deal_id": "D1", "stage": "Closed Won", "is_closed": "true", "is_won": "true", "amount": "100",
                   "created_at": "2024-01-05", "closed_at": "2024-02-01"}


def test_a_row_with_several_problems_gets_every_reason_in_field_order(project):
    project.write("deals.csv", """
        deal_id,stage,is_closed,is_won,amount,created_at,closed_at,is_deleted
        D1,Closed Won,true,true,lots,not a date,2024-02-01,true
        D2,Closed Won,true,true,100,2024-01-05,2024-02-01,false
    """)
    project.stage("2024-01-01", "2024-01-01", entities=["deals"])  # D2's month; D1's has none
    assert project.query("SELECT deal_id FROM crm.deals") == [("D2",)]
    # Deleted first, then the unreadable fields in the order the fields are listed (amount before
    # created_at); a month that cannot be read is not also "no created_at".
    assert project.query("SELECT source_row, reason FROM crm.rejects") == [
        (1, "deleted in the source (IsDeleted is true); amount: cannot read 'lots' as a number; "
            "created_at: cannot read 'not a date' as a date")
    ]


def test_removing_the_input_removes_the_source_rows_of_the_months_when_allowed(project, staged_deals):
    _stage_deals(project, staged_deals)
    staged = project.query("SELECT count(*) FROM crm.deals")
    (project.csv_dir / "deals.csv").unlink()
    # Without --allow-shrink the shrink guard stops the run and keeps every row (test_shrink_guard.py). The
    # runs cover the months every staged row is in (2024-01 … 2024-03), not 2015 … today (~0.6 s of Dagster's
    # per-month events); the rejects of no partition (D6, D7) are rewritten by every run.
    assert not project.stage("2024-01-01", "2024-03-01", entities=["deals"], raise_on_error=False).success
    assert project.query("SELECT count(*) FROM crm.deals") == staged
    project.stage("2024-01-01", "2024-03-01", entities=["deals"], allow_shrink=True)
    assert project.query("SELECT count(*) FROM crm.deals") == [(0,)]
    assert project.query("SELECT count(*) FROM crm.rejects") == [(0,)]


def test_a_one_month_run_over_a_large_file_keeps_the_files_row_numbers(project):
    """DuckDB reads a large file on several threads; a one-month run must still number rows as the file does
    (small files fit one chunk, where any order is the file's)."""
    lines = ["deal_id,stage,is_closed,is_won,amount,created_at,closed_at"]
    for i in range(1, 300_001):
        month = 1 + i % 12
        lines.append(f"D{i},Closed Won,true,true,{i},2023-{month:02d}-15T10:00:00Z,2023-{month:02d}-20T00:00:00Z")
    # Planted deep in the file: rows every run rewrites (no readable month) and a March id written twice.
    lines[250_000] = "D250000,Closed Won,true,true,1,someday,2023-03-20T00:00:00Z"
    lines[280_000] = "D280000,Closed Won,true,true,1,,2023-03-20T00:00:00Z"
    # D290006 is a March deal (290006 % 12 == 2); an earlier copy replaces row 290002 (a November deal).
    lines[290_002] = "D290006,Closed Won,true,true,7,2023-03-01T10:00:00Z,2023-03-20T00:00:00Z"
    project.write("deals.csv", "\n".join(lines) + "\n")
    expected = [("D250000", 250_000), ("D280000", 280_000), ("D290006", 290_002)]
    project.stage(entities=["deals"])  # every month, then March alone
    assert project.query("SELECT source_id, source_row FROM crm.rejects ORDER BY source_row") == expected
    project.stage("2023-03-01", "2023-03-01", entities=["deals"])
    rejects = project.query("SELECT source_id, source_row, reason FROM crm.rejects ORDER BY source_row")
    assert [(r[0], r[1]) for r in rejects] == expected
    assert rejects[2][2] == "duplicate deal_id: deals.csv row 290006 has the same id and was staged"
    # Every deal is staged once with its own amount (i, built above): 300,000 less D290002 (overwritten) and
    # the two unreadable ones; March's 25,000 (i % 12 == 2) all from their own rows, D290006's later copy too.
    assert project.query(
        "SELECT count(*), count(*) FILTER (WHERE amount::BIGINT::VARCHAR = substr(deal_id, 2)), "
        "count(*) FILTER (WHERE created_at::DATE = DATE '2023-03-15') FROM crm.deals"
    ) == [(300_000 - 3, 300_000 - 3, 25_000)]


def test_a_scope_over_every_partition_keeps_every_row():
    """A run over every month reads files without testing each row's month (see CsvSource.load)."""
    import datetime as dt

    from crm_roi_pipeline.sources.base import MonthScope

    start, current = dt.date(2015, 1, 1), dt.date(2026, 11, 1)
    assert MonthScope(start, current, start, current).keeps_all
    assert not MonthScope(dt.date(2015, 2, 1), current, start, current).keeps_all
    assert not MonthScope(start, dt.date(2026, 10, 1), start, current).keeps_all

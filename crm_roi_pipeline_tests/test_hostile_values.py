"""Hostile values (issue 17): placeholder dates, numbers that are not numbers, NUL bytes, deals that contradict
themselves, and an adoption date that leaves a window empty. Each row is rejected with a reason quoting the
value as written, or the comparison fails naming the empty window."""

from __future__ import annotations

import datetime as dt
import textwrap

from dagster import materialize

from crm_roi_pipeline.metrics.assets import metrics_adoption, metrics_assets, metrics_facts, metrics_monthly
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline.roi.assets import roi_assets
from crm_roi_pipeline_tests.conftest import HISTORY_ASSUMPTIONS


def _rejects(project) -> list[tuple[str, str]]:
    return project.query("SELECT source_id, reason FROM crm.rejects ORDER BY source_file, source_row")


def _staged(project, entity: str, id_field: str) -> list[str]:
    return [r[0] for r in project.query(f"SELECT {id_field} FROM crm.{entity} ORDER BY 1")]


def _resources(project) -> dict:
    return {**project.resources(), "reports": Reports(dir=str(project.root / "reports"))}


def _step_failures(result) -> list[str]:
    return [e.step_failure_data.user_failure_data.description for e in result.all_events
            if e.is_step_failure and e.step_failure_data.user_failure_data]


def test_a_0001_close_date_is_rejected_and_the_metrics_span_only_the_data(project):
    project.assumptions.write_text(HISTORY_ASSUMPTIONS.format(method="before_after", extra=""))
    project.write("deals.csv", """
        deal_id,is_closed,is_won,amount,created_at,closed_at
        D1,true,true,100,2023-06-01,2023-06-11
        D2,true,true,200,2024-06-01,0001-01-01
        D3,true,true,300,2024-07-01,2024-07-02
        """)
    project.stage(first="2023-01-01", last="2025-01-01")
    assert _rejects(project) == [("D2", "closed_at '0001-01-01' is before 1970 (a placeholder for no date?)")]
    assert _staged(project, "deals", "deal_id") == ["D1", "D3"]
    # Before, D2 made the first month with data 0001-01 and metrics.monthly 24,294 months long, and the run
    # hung building them. Now it runs from 2023-06 (D1) to as_of's month 2025-01: 7 + 12 + 1 = 20 months.
    assert materialize([metrics_facts, metrics_monthly, metrics_adoption], resources=_resources(project),
                       instance=project.instance).success
    assert project.query("SELECT count(*), min(month)::VARCHAR, max(month)::VARCHAR FROM metrics.monthly") == [
        (20, "2023-06-01", "2025-01-01")]
    # Windows of N = 7 (2023-06 … 2023-12 before 2024-01): 100 / 7 a month before, 300 / 7 after.
    pre, post = project.query("SELECT pre_value, post_value FROM metrics.adoption WHERE metric = 'won_revenue'")[0]
    assert (round(pre * 7), round(post * 7)) == (100, 300)


def test_dates_before_1970_or_over_a_year_ahead_are_rejected_in_every_date_field(project):
    today = dt.datetime.now(dt.timezone.utc).date()
    # A year after today; a 29 February run allows up to 28 February next year.
    latest = dt.date(today.year + 1, today.month, min(today.day, 28 if today.month == 2 else 31))
    project.write("deals.csv", """
        deal_id,is_closed,is_won,amount,created_at,closed_at
        D1,true,true,100,2024-01-05,9999-12-31
        D2,false,false,100,2024-01-05,9999-12-31
        """)
    project.write("leads.csv", """
        lead_id,created_at,is_converted,converted_at
        L1,2024-01-05,true,1900-01-01
        L2,2024-01-05,true,2024-02-01
        """)
    # The month every record was created in (a reason quotes the day of the run, not the months staged): a
    # run over 2015 … today added ~0.5 s of Dagster's per-month events, for no row.
    project.stage("2024-01-01", "2024-01-01", entities=["deals", "leads"])
    assert _rejects(project) == [
        ("D1", f"closed_at '9999-12-31' is more than a year after the day of the run (after {latest})"),
        ("L1", "converted_at '1900-01-01' is before 1970 (a placeholder for no date?)"),
    ]
    # An open deal's closed_at is an expected date that is not staged (NULL while open), so it may be anything.
    assert project.query("SELECT deal_id, closed_at FROM crm.deals") == [("D2", None)]
    assert _staged(project, "leads", "lead_id") == ["L2"]


def test_numbers_that_are_not_finite_or_absurdly_large_are_rejected(project):
    project.write("deals.csv", """
        deal_id,is_closed,is_won,amount,currency,created_at,closed_at
        D1,true,true,NaN,USD,2024-01-05,2024-02-01
        D2,true,true,inf,USD,2024-01-05,2024-02-01
        D3,true,true,-inf,USD,2024-01-05,2024-02-01
        D4,true,true,1e309,USD,2024-01-05,2024-02-01
        D5,true,true,1e308,USD,2024-01-05,2024-02-01
        D6,true,true,-1e308,USD,2024-01-05,2024-02-01
        D7,true,true,1_000,USD,2024-01-05,2024-02-01
        D8,true,true,100,EUR,2024-01-05,2024-02-01
        D9,true,true,"1,000",USD,2024-01-05,2024-02-01
        D10,true,true,1e15,USD,2024-01-05,2024-02-01
        """)
    # A rate that turns EUR 100 into 1e16 USD.
    project.write("fx_rates.csv", "month,currency,rate\n2024-02-01,EUR,1e14\n")
    project.write("spend.csv", """
        month,category,amount
        2024-01-01,marketing,Infinity
        2024-02-01,marketing,500
        """)
    project.stage("2024-01-01", "2024-02-01", entities=["deals", "spend"])  # the deals' and the spend's months
    assert _rejects(project) == [
        ("D1", "amount: cannot read 'NaN' as a number"),
        ("D2", "amount: cannot read 'inf' as a number"),
        ("D3", "amount: cannot read '-inf' as a number"),
        ("D4", "amount: cannot read '1e309' as a number"),
        ("D5", "amount '1e308' is beyond ±1e15 (a placeholder or a typo?)"),
        ("D6", "amount '-1e308' is beyond ±1e15 (a placeholder or a typo?)"),
        ("D7", "amount: cannot read '1_000' as a number"),
        ("D8", "amount '100' EUR at the rate 100000000000000.0 is beyond ±1e15 in the reporting currency "
               "(a wrong rate in fx_rates.csv?)"),
        (None, "amount: cannot read 'Infinity' as a number"),
    ]
    # A grouped thousand is still a number, and 1e15 itself is within the bound: won revenue is finite.
    assert project.query("SELECT deal_id, amount_reporting FROM crm.deals ORDER BY 1") == [("D10", 1e15), ("D9", 1000.0)]
    assert project.query("SELECT month::VARCHAR, amount FROM crm.spend") == [("2024-02-01", 500.0)]


def test_a_nul_byte_in_an_id_or_a_text_field_rejects_the_row(project):
    project.write("deals.csv", """
        deal_id,is_closed,is_won,amount,created_at,closed_at,account_name
        D1\0x,true,true,100,2024-01-05,2024-02-01,Acme
        D2,true,true,100,2024-01-05,2024-02-01,Ac\0me
        D3,true,true,100,2024-01-05,2024-02-01,Acme
        """)
    project.write("leads.csv", """
        lead_id,created_at,lead_source
        L1,2024-01-05,Web\0
        """)
    project.stage("2024-01-01", "2024-01-01", entities=["deals", "leads"])  # every record's month
    # The reason shows the NUL as \0 (a NUL in the reason would cut it short in many readers).
    assert [reason for _, reason in _rejects(project)] == [
        "deal_id 'D1\\0x' holds a NUL byte",
        "account_name 'Ac\\0me' holds a NUL byte",
        "lead_source 'Web\\0' holds a NUL byte",
    ]
    assert _staged(project, "deals", "deal_id") == ["D3"]
    assert _staged(project, "leads", "lead_id") == []


def test_won_deals_that_say_they_are_open_or_lost_are_rejected_and_early_closes_are_warned(project):
    project.write("deals.csv", """
        deal_id,is_closed,is_won,amount,created_at,closed_at
        D1,false,true,100,2024-01-05,2024-02-01
        D2,,true,100,2024-01-05,2024-02-01
        D3,true,true,100,2024-03-01,2021-02-28
        D4,true,true,100,2024-03-01,2024-02-20
        """)
    project.write("pipeline.csv", """
        opportunity_id,won,deal_stage,engage_date,close_date
        P1,true,Lost,2024-01-05,2024-02-01
        P2,true,Won,2024-01-05,2024-02-01
        P3,true,Engaging,2024-01-05,
        """)
    (project.csv_dir / "pipeline.mapping.yaml").write_text(textwrap.dedent("""\
        entity: deals
        columns: {deal_id: opportunity_id, is_won: won, stage: deal_stage, created_at: engage_date, closed_at: close_date}
        stages: {Won: won, Lost: lost, Engaging: open}
        """))
    # The months the deals were created in (2024-01 … 2024-03); the checks read the whole table.
    result = project.stage("2024-01-01", "2024-03-01", entities=["deals"], checks=True)
    assert _rejects(project) == [
        ("D1", "is_won 'true' but is_closed 'false'"),
        ("P1", "is_won 'true' but stage 'Lost' is lost"),
    ]
    # Staged: D2 (an empty is_closed, as report exports write false, beside is_won true is a won deal); P3
    # (is_won true on a stage the map calls open: a custom pipeline's won stage looks like that); D3 and D4,
    # closed 3 years and 10 days before they were created: CreatedDate is often the day data was loaded into
    # the CRM while the close date, which places the revenue, is right. The WARN check lists both.
    assert _staged(project, "deals", "deal_id") == ["D2", "D3", "D4", "P2", "P3"]
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "closed_after_created")
    assert not check.passed and check.metadata["count"].value == 2


def test_an_adoption_date_after_the_data_fails_the_comparison_and_the_roi_naming_the_empty_window(project):
    # One won deal a month from 2022-01 to 2023-12; adoption on 2024-03-01 and as_of 2025-06-30. N = 12 months
    # (15 complete post months, 26 months of data before adoption), but the post window 2024-03 … 2025-02 holds
    # no record: its figures would be zeros and the ROI a loss measured on nothing.
    rows = [f"D{i},true,true,100,{2022 + i // 12}-{i % 12 + 1:02d}-03,{2022 + i // 12}-{i % 12 + 1:02d}-13"
            for i in range(24)]
    project.write("deals.csv", "deal_id,is_closed,is_won,amount,created_at,closed_at\n" + "\n".join(rows) + "\n")
    project.assumptions.write_text(
        HISTORY_ASSUMPTIONS.format(method="before_after", extra="")
        .replace("adoption_date: 2024-01-01", "adoption_date: 2024-03-01")
        .replace("as_of: 2025-01-15", "as_of: 2025-06-30")
    )
    project.stage(first="2022-01-01", last="2025-06-01")
    expected = (
        "Cannot compare before and after adoption: the post window 2024-03 … 2025-02 is empty: no deal created or "
        "closed and no lead created in it (the last month with data is 2023-12). First month with data: 2022-01; "
        "adoption month: 2024-03. Check adoption_date, transition_months and as_of in the assumptions, or stage "
        "more history."
    )
    result = materialize(metrics_assets, resources=_resources(project), instance=project.instance, raise_on_error=False)
    # metrics/adoption and metrics/lead_sources fail with it; metrics.monthly is published.
    assert _step_failures(result) == [expected, expected]
    assert project.query("SELECT count(*), max(month)::VARCHAR FROM metrics.monthly") == [(42, "2025-06-01")]
    # The ROI on its own (as the UI or a sensor may launch it) fails the same way, before reading anything.
    result = materialize(roi_assets, resources=_resources(project), instance=project.instance, raise_on_error=False)
    assert _step_failures(result) == [expected]

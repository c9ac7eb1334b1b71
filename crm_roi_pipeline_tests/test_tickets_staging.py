"""Service cases into crm.tickets from files: canonical tickets.csv, Salesforce Case exports (Data Loader and
report) with their first-response milestones, HubSpot's ticket export, and a helpdesk export through a mapping
file. Every expected row is worked out by hand from the files in ticket_exports/ (see its README)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import AssetCheckSeverity

from crm_roi_pipeline.metrics.completeness import completeness_result
from crm_roi_pipeline.metrics.windows import compute_windows
from crm_roi_pipeline.sources.salesforce.resource import SalesforceResource
from crm_roi_pipeline_tests.conftest import failure_message

EXPORTS = Path(__file__).parent / "ticket_exports"
MARCH = ("2024-03-01", "2024-03-01")
COLUMNS = ("ticket_id, source_system, status, priority, channel, account_key, owner_id, team, created_at::VARCHAR, "
           "first_response_at::VARCHAR, closed_at::VARCHAR, csat_score, csat_scale_max")


def _copy(project, folder: str) -> None:
    for file in (EXPORTS / folder).iterdir():
        shutil.copy(file, project.csv_dir / file.name)


def _stage(project, *months, salesforce: SalesforceResource | None = None, **kwargs):
    if salesforce is not None:
        from dagster import materialize

        from crm_roi_pipeline.staging.assets import staging_assets

        first, last = months or MARCH
        return materialize(
            [a for a in staging_assets if a.key.path[-1] == "tickets"],
            resources=project.resources(salesforce=salesforce), instance=project.instance,
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
            raise_on_error=kwargs.get("raise_on_error", True),
        )
    return project.stage(*(months or MARCH), entities=["tickets"], **kwargs)


def _tickets(project) -> list[tuple]:
    return project.query(f"SELECT {COLUMNS} FROM crm.tickets ORDER BY created_at")


def _metadata(result):
    return result.asset_materializations_for_node("crm__tickets")[0].metadata


def test_salesforce_data_loader_cases_with_milestones_and_a_csat_field(project):
    _copy(project, "salesforce_dataloader")
    result = _stage(project, salesforce=SalesforceResource(csat_field="CSAT__c", csat_scale_max=5))
    assert result.success, failure_message(result)
    account, owner = "001Ec00000GGw3iIAD", "005Ec000004oBPNIA2"
    assert _tickets(project) == [
        # IsClosed 1; the First Response milestone completed at 10:30 (the Resolution one is not a response).
        ("500Ec00000B1aaaIAB", "salesforce", "closed", "High", "Email", account, owner, None, "2024-03-04 09:00:00",
         "2024-03-04 10:30:00", "2024-03-05 09:00:00", 4.0, 5.0),
        # IsClosed empty is false; its milestone has no completion date.
        ("500Ec00000B1aabIAB", "salesforce", "open", "Medium", "Phone", account, owner, None, "2024-03-10 12:00:00",
         None, None, None, 5.0),
        ("500Ec00000B1aacIAB", "salesforce", "closed", "Low", "Web", None, owner, None, "2024-03-20 08:00:00",
         "2024-03-20 08:45:00", "2024-03-20 18:00:00", None, 5.0),
    ]
    # The deleted case is rejected with its reason.
    assert project.query("SELECT source_id, reason FROM crm.rejects") == [
        ("500Ec00000B1aadIAB", "deleted in the source (IsDeleted is true)")]
    assert "warnings" not in _metadata(result)


def test_a_salesforce_report_export_names_milestones_and_says_there_is_no_csat(project):
    _copy(project, "salesforce_report")
    result = _stage(project)
    assert result.success, failure_message(result)
    assert _tickets(project) == [
        # "Acme Corp." and "ACME CORP" are one account: case-folded, punctuation and the legal suffix removed.
        ("500Ec00000B1aaa", "salesforce", "closed", "High", "Email", "acme", "Sam Support", None, "2024-03-04 09:00:00",
         "2024-03-04 10:30:00", "2024-03-05 09:00:00", None, None),
        ("500Ec00000B1aab", "salesforce", "open", "Medium", "Phone", "acme", "Sam Support", None, "2024-03-10 12:00:00",
         None, None, None, None),
        ("500Ec00000B1aac", "salesforce", "closed", "Low", "Web", None, "Sam Support", None, "2024-03-20 08:00:00",
         "2024-03-20 08:45:00", "2024-03-20 18:00:00", None, None),
    ]
    assert "no satisfaction score" in _metadata(result)["warnings"].value


def test_cases_without_milestones_say_the_first_response_is_empty(project):
    shutil.copy(EXPORTS / "salesforce_report" / "Case.csv", project.csv_dir / "Case.csv")
    result = _stage(project)
    assert [row[9] for row in _tickets(project)] == [None, None, None]
    assert "no CaseMilestone.csv" in _metadata(result)["warnings"].value


def test_a_milestone_name_the_files_do_not_hold_is_said(project):
    _copy(project, "salesforce_dataloader")
    result = _stage(project, salesforce=SalesforceResource(first_response_milestone="First Reply"))
    assert [row[9] for row in _tickets(project)] == [None, None, None]
    assert "no milestone named 'First Reply'" in _metadata(result)["warnings"].value


def test_a_csat_field_missing_from_the_export_names_the_setting(project):
    _copy(project, "salesforce_dataloader")
    result = _stage(project, salesforce=SalesforceResource(csat_field="Satisfaction__c", csat_scale_max=5),
                    raise_on_error=False)
    assert not result.success
    assert "Case.csv, line 1: has no column 'Satisfaction__c', which SALESFORCE_CSAT_FIELD names" in failure_message(result)


def test_hubspot_ticket_export_default_and_custom_pipelines(project):
    _copy(project, "hubspot")
    result = _stage(project)
    assert result.success, failure_message(result)
    assert _tickets(project) == [
        ("3011", "hubspot", "closed", "HIGH", "EMAIL", "acme", "Sam Support", None, "2024-03-04 09:00:00",
         "2024-03-04 10:30:00", "2024-03-05 09:00:00", None, None),
        # "Waiting on us": open in the default pipeline.
        ("3012", "hubspot", "open", "MEDIUM", "PHONE", "acme", "Sam Support", None, "2024-03-10 12:00:00",
         None, None, None, None),
        # A custom pipeline's stage is closed by its close date; 2,700,000 ms after 08:00 is 08:45.
        ("3013", "hubspot", "closed", "LOW", "FORM", None, "Sam Support", None, "2024-03-20 08:00:00",
         "2024-03-20 08:45:00", "2024-03-20 18:00:00", None, None),
        ("3014", "hubspot", "open", "LOW", "CHAT", None, None, None, "2024-03-22 08:00:00", None, None, None, None),
    ]


def test_a_helpdesk_export_through_a_mapping_file(project):
    _copy(project, "freshdesk")
    result = _stage(project)
    assert result.success, failure_message(result)
    assert _tickets(project) == [
        # Closed at the Resolved time, the first of the two close columns; Survey results 4 on the 5-point scale.
        ("101", "csv", "closed", "High", "Email", "acme", "Sam Support", "Billing", "2024-03-04 09:00:00",
         "2024-03-04 10:30:00", "2024-03-05 09:00:00", 4.0, 5.0),
        ("102", "csv", "open", "Medium", "Phone", "acme", "Sam Support", "Support", "2024-03-10 12:00:00",
         None, None, None, 5.0),
        ("103", "csv", "closed", "Low", "Portal", None, "Sam Support", "Support", "2024-03-20 08:00:00",
         "2024-03-20 08:45:00", "2024-03-20 18:00:00", 2.0, 5.0),
    ]


def test_a_status_the_mapping_does_not_list_stops_the_file(project):
    _copy(project, "freshdesk")
    path = project.csv_dir / "freshdesk_tickets.csv"
    path.write_text(path.read_text().replace(",Pending,", ",On hold,"))
    result = _stage(project, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert "freshdesk_tickets.csv: 1 rows have a status value the mapping does not list: 'On hold'" in message
    assert "as open or closed" in message
    assert project.query("SELECT count(*) FROM crm.tickets") == [(0,)]


def test_a_deal_class_in_a_ticket_mapping_is_an_error(project):
    _copy(project, "freshdesk")
    mapping = project.csv_dir / "freshdesk_tickets.mapping.yaml"
    mapping.write_text(mapping.read_text().replace("Resolved: closed", "Resolved: won"))
    result = _stage(project, raise_on_error=False)
    assert not result.success
    assert "stages: 'Resolved' is mapped to 'won', which is no class of tickets" in failure_message(result)


def test_canonical_tickets_status_rules_and_rejects(project):
    project.write("tickets.csv", """
        ticket_id,account_name,status,created_at,first_response_at,first_response_ms,closed_at,csat_score,csat_scale_max
        T1,Acme Inc,closed,2024-03-02T10:00:00Z,2024-03-02T12:30:00Z,,2024-03-03T10:00:00Z,5,5
        T2,,open,2024-03-05,,,2024-03-06,,
        T3,,pending,2024-03-06,,60000,2024-03-08,9,10
        T4,,,2024-03-07,,,,,
        ,,open,2024-03-08,,,,,
        T6,,open,not a date,,,,,
        T7,,closed,2024-03-09,,,2024-03-10,inf,5
        T8,,closed,2024-03-09,1900-01-01,,2024-03-10,,
    """)
    result = _stage(project, raise_on_error=False)
    assert result.success, failure_message(result)
    assert project.query("SELECT ticket_id, status, first_response_at::VARCHAR, closed_at::VARCHAR, csat_score "
                         "FROM crm.tickets ORDER BY 1") == [
        ("T1", "closed", "2024-03-02 12:30:00", "2024-03-03 10:00:00", 5.0),
        # Open: its close date does not count (a reopened ticket keeps the old one).
        ("T2", "open", None, None, None),
        # "pending" is neither open nor closed: the close date decides; 60,000 ms is one minute.
        ("T3", "closed", "2024-03-06 00:01:00", "2024-03-08 00:00:00", 9.0),
        ("T4", "open", None, None, None),
    ]
    assert project.query("SELECT source_id, reason FROM crm.rejects ORDER BY source_row") == [
        (None, "no ticket_id"),
        ("T6", "created_at: cannot read 'not a date' as a date"),
        ("T7", "csat_score: cannot read 'inf' as a number"),
        ("T8", "first_response_at '1900-01-01' is before 1970 (a placeholder for no date?)"),
    ]
    assert _metadata(result)["rows_rejected"].value == 4


def test_the_ticket_checks_fire(project):
    project.write("tickets.csv", """
        ticket_id,created_at,first_response_at,closed_at,csat_score,csat_scale_max
        T1,2024-03-02T10:00:00Z,2024-03-02T09:00:00Z,2024-03-02T08:00:00Z,6,5
        T2,2024-03-02T10:00:00Z,2024-03-02T11:00:00Z,2024-03-02T12:00:00Z,4,
        T3,2024-03-02T10:00:00Z,2024-03-02T11:00:00Z,2024-03-02T12:00:00Z,-1,10
        T4,2024-03-02T10:00:00Z,2024-03-02T11:00:00Z,2024-03-02T12:00:00Z,10,10
    """)
    project.write("deals.csv", """
        deal_id,account_name,is_closed,is_won,amount,deal_type,created_at,closed_at
        D1,,true,true,100,renewal,2024-03-01,2024-03-05
        D2,Acme,true,false,100,renewal,2024-03-01,2024-03-05
    """)
    result = project.stage(*MARCH, entities=["tickets", "deals"], checks=True, raise_on_error=False)
    evaluations = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    expected = {
        # T1 closed and answered before it was created; T1 (6 of 5), T2 (no scale) and T3 (-1) are off their scale.
        ("tickets", "closed_after_created"): 1,
        ("tickets", "answered_after_created"): 1,
        ("tickets", "csat_on_scale"): 3,
        ("deals", "renewals_have_account"): 1,  # D1
    }
    for key, count in expected.items():
        assert not evaluations[key].passed, key
        assert evaluations[key].severity == AssetCheckSeverity.WARN
        assert evaluations[key].metadata["count"].value == count, key
    assert evaluations[("tickets", "unique_ids")].passed


def test_a_pre_window_without_tickets_is_flagged():
    import datetime as dt

    windows = compute_windows(adoption_date=dt.date(2024, 1, 1), transition_months=0, window_months=3,
                              as_of=dt.date(2024, 6, 1), first_data_month=dt.date(2023, 10, 1))
    # Tickets only from the adoption month: 30 a month after, none before.
    counts = {dt.date(2024, m, 1): 30 for m in (1, 2, 3, 4, 5)}
    result = completeness_result(counts, windows)
    assert not result.passed
    assert "the pre window has no records, the post window 30.0 per month" in result.description


def test_the_shrink_guard_holds_for_tickets(project):
    rows = "".join(f"T{i},2024-03-{1 + i % 28:02d}\n" for i in range(60))
    project.write("tickets.csv", "ticket_id,created_at\n" + rows)
    assert _stage(project).success
    project.write("tickets.csv", "ticket_id,created_at\n" + "".join(rows.splitlines(True)[:10]))  # a cut-off export
    result = _stage(project, raise_on_error=False)
    assert not result.success
    assert "would leave 10 of the 60 rows the csv source has in 2024-03" in failure_message(result)
    assert project.query("SELECT count(*) FROM crm.tickets") == [(60,)]


def test_hostile_ticket_values_are_rejected_with_the_value_quoted(project):
    project.write("tickets.csv", "ticket_id,created_at,csat_score,csat_scale_max\n"
                  "T1\x00x,2024-03-02,,\n"          # a NUL byte in the id
                  "T2,2024-03-02,1e20,5\n"          # beyond any score
                  "T3,2024-03-02,4,5\n"
                  "T3,2024-03-03,5,5\n"             # the same id again: the later row is kept
                  "T4,9999-12-31,,\n")              # a placeholder date
    result = _stage(project)
    assert result.success, failure_message(result)
    assert project.query("SELECT ticket_id, csat_score FROM crm.tickets") == [("T3", 5.0)]
    assert project.query("SELECT source_id, reason FROM crm.rejects ORDER BY source_row") == [
        ("T1\x00x", "ticket_id 'T1\\0x' holds a NUL byte"),
        ("T2", "csat_score '1e20' is beyond ±1e15 (a placeholder or a typo?)"),
        ("T3", "duplicate ticket_id: tickets.csv row 4 has the same id and was staged"),
        ("T4", "created_at 9999-12 is after the current month"),
    ]


def test_a_day_first_ticket_file_stops_naming_the_setting(project):
    project.write("tickets.csv", "ticket_id,created_at\nT1,03/04/2024\nT2,25/03/2024\n")
    result = _stage(project, raise_on_error=False)
    assert not result.success
    assert "tickets.csv, row 2: created_at value '25/03/2024' cannot be read as a month-first date" in failure_message(result)
    assert 'date_format: "%d/%m/%Y"' in failure_message(result)


def test_a_folder_named_like_the_ticket_export_stops_only_the_tickets(project):
    (project.csv_dir / "tickets.csv").mkdir()
    project.write("deals.csv", "deal_id,is_won,created_at\nD1,false,2024-03-01\n")
    result = project.stage(*MARCH, entities=["tickets", "deals"], raise_on_error=False)
    assert not result.success
    assert "tickets.csv: is a folder, where a CSV export is expected" in failure_message(result)
    assert project.query("SELECT deal_id FROM crm.deals") == [("D1",)]

"""HubSpot tickets through the API: the real hubspot-api-client, real HTTP to the fake portal, real Dagster
materializations of crm/tickets into a real DuckDB file. Expected values are worked out by hand in the comments."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import materialize

from crm_roi_pipeline.sources.hubspot.resource import HubSpotResource
from crm_roi_pipeline.staging.assets import staging_assets
from crm_roi_pipeline.staging.partitions import monthly_partitions
from crm_roi_pipeline_tests.conftest import failure_message
from crm_roi_pipeline_tests.fakes.hubspot import FEEDBACK_SCOPE, make_fake_hubspot  # noqa: F401 (fixture)

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC).replace(microsecond=0)
CURRENT = monthly_partitions.get_last_partition_key()
TICKETS = [a for a in staging_assets if a.key.path[-1] == "tickets"]
COLUMNS = ("status, priority, channel, created_at::VARCHAR, first_response_at::VARCHAR, closed_at::VARCHAR, "
           "csat_score, csat_scale_max, account_key, team")


@pytest.fixture
def portal(make_fake_hubspot):  # noqa: F811
    fake = make_fake_hubspot(search_rps=None, clock=NOW)
    owner = fake.add_owner("grace@example.com", "Grace", "Agent", teams=["Support"])
    globex = fake.add("companies", name="Globex Corporation")
    # A custom pipeline whose closed stage is called "Resolved": only its metadata says it is closed.
    escalations = fake.add_pipeline("Escalations", [("9001", "Investigating", "OPEN"), ("9002", "Resolved", "CLOSED")],
                                    object_type="tickets")
    tickets = {
        # Default pipeline, "1" New: open. First reply from first_agent_reply_date.
        "new": fake.add("tickets", subject="Login fails", hs_pipeline_stage="1", createdate="2024-03-04T09:00:00Z",
                        hs_ticket_priority="HIGH", source_type="EMAIL", hubspot_owner_id=owner["id"],
                        first_agent_reply_date="2024-03-04T10:30:00Z"),
        # The custom pipeline's "Resolved": closed. No reply date, only time_to_first_agent_reply = 5,400,000 ms
        # = 1.5 h after createdate 08:00 -> 09:30.
        "escalated": fake.add("tickets", subject="Outage", hs_pipeline=escalations["id"], hs_pipeline_stage="9002",
                              createdate="2024-03-05T08:00:00Z", closed_date="2024-03-07T16:00:00Z",
                              hs_ticket_priority="URGENT", source_type="PHONE", time_to_first_agent_reply="5400000"),
        # Default "4" Closed: closed.
        "closed": fake.add("tickets", subject="Invoice", hs_pipeline_stage="4", createdate="2024-03-10T12:00:00Z",
                           closed_date="2024-03-11T12:00:00Z", hs_ticket_priority="LOW", source_type="CHAT"),
        # Reopened into the custom pipeline's open stage, still carrying its old close date: open, no closed_at.
        "reopened": fake.add("tickets", subject="Export", hs_pipeline=escalations["id"], hs_pipeline_stage="9001",
                             createdate="2024-03-20T12:00:00Z", closed_date="2024-03-21T12:00:00Z"),
        "april": fake.add("tickets", subject="April", hs_pipeline_stage="1", createdate="2024-04-01T00:00:00Z"),
    }
    fake.associate("tickets", tickets["new"]["id"], "companies", globex["id"])
    # CSAT on HubSpot's 0/1/2 scale. The escalated ticket was surveyed twice: its newest answer (2) counts, and
    # its NPS answer (9 of 10) is no CSAT.
    for ticket, survey, value, submitted in [
        ("escalated", "CSAT", "0", "2024-03-08T09:00:00Z"),
        ("escalated", "CSAT", "2", "2024-03-09T09:00:00Z"),
        ("escalated", "NPS", "9", "2024-03-10T09:00:00Z"),
        ("closed", "CSAT", "1", "2024-03-12T09:00:00Z"),
    ]:
        response = fake.add("feedback_submissions", hs_survey_type=survey, hs_value=value,
                            hs_submission_timestamp=submitted, hs_createdate=submitted)
        fake.associate("feedback_submissions", response["id"], "tickets", tickets[ticket]["id"])
    fake.tickets = tickets
    return fake


def _stage(project, fake, first="2024-03-01", last="2024-03-01", raise_on_error=True, **overrides):
    resource = HubSpotResource(**{"access_token": fake.token, "base_url": fake.url, "search_rps": 0,
                                  "backoff_seconds": 0, "burst_per_10s": 0, **overrides})
    return materialize(
        TICKETS,
        resources=project.resources(source="hubspot", hubspot=resource),
        instance=project.instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        raise_on_error=raise_on_error,
    )


def _metadata(result) -> dict:
    return result.asset_materializations_for_node("crm__tickets")[0].metadata


def _warnings(result) -> str:
    """The run's warnings as text (the metadata is Markdown, with its underscores escaped)."""
    return _metadata(result)["warnings"].value.replace("\\_", "_")


def test_a_month_of_tickets_lands_in_crm_tickets(project, portal):
    result = _stage(project, portal)
    rows = project.query(f"SELECT {COLUMNS} FROM crm.tickets ORDER BY created_at")
    assert rows == [
        ("open", "HIGH", "EMAIL", "2024-03-04 09:00:00", "2024-03-04 10:30:00", None, None, None, "globex", "Support"),
        ("closed", "URGENT", "PHONE", "2024-03-05 08:00:00", "2024-03-05 09:30:00", "2024-03-07 16:00:00", 2.0, 2.0,
         None, None),
        ("closed", "LOW", "CHAT", "2024-03-10 12:00:00", None, "2024-03-11 12:00:00", 1.0, 2.0, None, None),
        ("open", None, None, "2024-03-20 12:00:00", None, None, None, None, None, None),
    ]
    assert project.query("SELECT DISTINCT source_system, loaded_from FROM crm.tickets") == [("hubspot", "hubspot")]
    assert project.query("SELECT count(*) FROM crm.rejects") == [(0,)]
    assert "warnings" not in _metadata(result)


def test_without_the_feedback_scope_tickets_load_without_csat_and_the_run_says_why(project, portal):
    portal.revoke_scope(FEEDBACK_SCOPE)
    result = _stage(project, portal)
    assert project.query("SELECT count(*), count(csat_score), count(csat_scale_max) FROM crm.tickets") == [(4, 0, 0)]
    # Everything else is as with the scope: the two closed tickets, the reply date and the millisecond fallback.
    assert project.query("SELECT count(*) FILTER (status = 'closed'), count(first_response_at) FROM crm.tickets") \
        == [(2, 2)]
    warnings = _warnings(result)
    assert FEEDBACK_SCOPE in warnings and "403 MISSING_SCOPES" in warnings and "CSAT" in warnings
    assert portal.token not in warnings


def test_without_the_feedback_scope_the_run_says_so_even_with_no_ticket_in_the_months(project, portal):
    portal.revoke_scope(FEEDBACK_SCOPE)
    result = _stage(project, portal, first="2023-01-01", last="2023-01-01")
    assert project.query("SELECT count(*) FROM crm.tickets") == [(0,)]
    assert FEEDBACK_SCOPE in _warnings(result)


def test_without_the_tickets_scope_the_run_fails_at_the_start_naming_it(project, portal):
    portal.revoke_scope("tickets")
    message = failure_message(_stage(project, portal, raise_on_error=False))
    assert "403" in message and "tickets (for tickets)" in message and "ticket pipelines" in message


@pytest.mark.parametrize("fault", ["502 on associations", "429 on a batch read"])
def test_faults_on_the_lookups_are_retried(project, portal, fault):
    if fault.startswith("502"):
        portal.fail_next("associations", 502, "<html>Bad Gateway</html>")
    else:
        portal.fail_next_rate_limit("batch", retry_after=0)
    result = _stage(project, portal)
    assert _metadata(result)["hubspot_retries"].value == 1
    # Nothing was lost to the fault: the company's key and both CSAT scores are there.
    assert project.query("SELECT count(account_key), sum(csat_score) FROM crm.tickets") == [(1, 3.0)]


def test_change_sync_moves_a_modified_ticket_and_removes_an_archived_one(project, portal):
    _stage(project, portal, first="2024-03-01", last=CURRENT)
    assert project.query("SELECT count(*) FROM crm.tickets") == [(5,)]
    portal.tick(minutes=30)
    # The new ticket is closed, and its create date corrected into February: it moves to that month's partition.
    portal.update("tickets", portal.tickets["new"]["id"], hs_pipeline_stage="4", closed_date="2024-03-06T12:00:00Z",
                  createdate="2024-02-20T09:00:00Z")
    portal.archive("tickets", portal.tickets["closed"]["id"])
    result = _stage(project, portal, first=CURRENT, last=CURRENT)
    rows = project.query("SELECT ticket_id, status, created_at::VARCHAR, closed_at::VARCHAR FROM crm.tickets "
                         "ORDER BY created_at")
    t = portal.tickets
    assert rows == [
        (t["new"]["id"], "closed", "2024-02-20 09:00:00", "2024-03-06 12:00:00"),
        (t["escalated"]["id"], "closed", "2024-03-05 08:00:00", "2024-03-07 16:00:00"),
        (t["reopened"]["id"], "open", "2024-03-20 12:00:00", None),
        (t["april"]["id"], "open", "2024-04-01 00:00:00", None),
    ]
    meta = _metadata(result)
    assert meta["hubspot_changes_applied"].value == 1
    assert meta["hubspot_deleted_removed"].value == 1


def test_a_month_of_more_than_10000_tickets_is_split_and_nothing_is_lost_or_doubled(project, make_fake_hubspot):  # noqa: F811
    fake = make_fake_hubspot(search_rps=None, clock=NOW)
    start = dt.datetime(2024, 3, 1, tzinfo=UTC)
    # 10,001 tickets in March 2024, one more than one search can page through; 50 share one second (a bulk
    # import), so a split half may hold several tickets of the same instant.
    fake.add_many("tickets", [
        {"hs_pipeline_stage": "4" if i % 2 else "1", "closed_date": "2024-03-31T00:00:00Z" if i % 2 else None,
         "createdate": "2024-03-15T12:00:00Z" if i < 50
         else (start + dt.timedelta(seconds=250 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for i in range(10_001)
    ])
    result = _stage(project, fake)
    # Tickets 1, 3, ..., 9,999 are closed: 5,000 of them.
    assert project.query("SELECT count(*), count(DISTINCT ticket_id), count(*) FILTER (status = 'closed') "
                         "FROM crm.tickets") == [(10_001, 10_001, 5_000)]
    # 10,001 results cannot be paged through in one query: the month was split in two halves of at most
    # 10,000, each paged 200 at a time (51 pages at least), after the first query that found 10,001.
    assert _metadata(result)["hubspot_search_requests"].value >= 52
    searches = [body for method, path, body in fake.requests if path.endswith("/tickets/search")]
    assert all(int(b.get("after") or 0) < 10_000 for b in searches)

"""The HubSpot source end to end: the real hubspot-api-client, real HTTP to a fake portal, real Dagster
materializations into a real DuckDB file."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import materialize

from crm_roi_pipeline.sources.hubspot.resource import HubSpotResource
from crm_roi_pipeline.staging.assets import staging_assets
from crm_roi_pipeline.staging.partitions import monthly_partitions
from crm_roi_pipeline_tests.conftest import failure_message
from crm_roi_pipeline_tests.fakes.hubspot import make_fake_hubspot  # noqa: F401 (fixture)

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC).replace(microsecond=0)
CURRENT = monthly_partitions.get_last_partition_key()


@pytest.fixture
def portal(make_fake_hubspot):  # noqa: F811
    fake = make_fake_hubspot(search_rps=None, clock=NOW)
    owner = fake.add_owner("ada@example.com", "Ada", "Seller", teams=["Enterprise"])
    acme = fake.add("companies", name="Acme, Inc.")
    custom = fake.add_pipeline("Renewals", [("1001", "Talking", 0.5, False), ("1002", "Signed", 1.0, True),
                                            ("1003", "Gone", 0.0, True)])
    deals = {
        "won": fake.add("deals", dealname="Acme platform", dealstage="closedwon", amount="1200.50",
                        closedate="2024-03-20T10:00:00Z", createdate="2024-03-02T09:00:00Z", dealtype="newbusiness",
                        hs_analytics_source="ORGANIC_SEARCH", hubspot_owner_id=owner["id"]),
        "lost": fake.add("deals", dealname="Lost one", dealstage="closedlost", amount="300",
                         closedate="2024-03-25T10:00:00Z", createdate="2024-03-03T09:00:00Z"),
        "open": fake.add("deals", dealname="Open one", dealstage="appointmentscheduled", amount="700",
                         closedate="2024-06-30T10:00:00Z", createdate="2024-03-04T09:00:00Z"),
        "custom": fake.add("deals", dealname="Renewal", pipeline=custom["id"], dealstage="1002", amount="90",
                           closedate="2024-03-28T10:00:00Z", createdate="2024-03-05T09:00:00Z",
                           dealtype="existingbusiness"),
        "april": fake.add("deals", dealname="April", dealstage="appointmentscheduled", createdate="2024-04-01T00:00:00Z"),
    }
    fake.associate("deals", deals["won"]["id"], "companies", acme["id"])
    contact = fake.add("contacts", createdate="2024-03-01T08:00:00Z", lifecyclestage="opportunity",
                       hs_lifecyclestage_opportunity_date="2024-03-02T09:00:00Z", hs_analytics_source="ORGANIC_SEARCH",
                       hubspot_owner_id=owner["id"])
    fake.associate("contacts", contact["id"], "deals", deals["won"]["id"])
    fake.add("contacts", createdate="2024-03-06T08:00:00Z", lifecyclestage="lead")
    call = fake.add("calls", hs_timestamp="2024-03-07T10:00:00Z", hs_call_duration="330000", hubspot_owner_id=owner["id"])
    fake.associate("calls", call["id"], "deals", deals["won"]["id"])
    fake.add("tasks", hs_timestamp="2024-03-29T10:00:00Z", hs_task_status="NOT_STARTED")
    fake.add("meetings", hs_timestamp="2024-03-08T15:00:00Z", hs_meeting_start_time="2024-03-08T15:00:00Z",
             hs_meeting_end_time="2024-03-08T15:45:00Z")
    fake.add("notes", hs_timestamp="2024-03-09T15:00:00Z")
    fake.add("emails", hs_timestamp="2024-03-10T15:00:00Z")
    fake.deals = deals
    return fake


def _resource(fake, **overrides) -> HubSpotResource:
    return HubSpotResource(**{"access_token": fake.token, "base_url": fake.url, "search_rps": 0, "backoff_seconds": 0,
                              "burst_per_10s": 0, **overrides})


def _stage(project, fake, first="2024-03-01", last="2024-03-01", raise_on_error=True, entities=None, **overrides):
    assets = [a for a in staging_assets if entities is None or a.key.path[-1] in entities]
    return materialize(
        assets,
        resources=project.resources(source="hubspot", hubspot=_resource(fake, **overrides)),
        instance=project.instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        raise_on_error=raise_on_error,
    )


def test_a_month_from_the_portal_lands_in_crm(project, portal):
    _stage(project, portal, entities=["deals", "leads", "activities"])
    deals = project.query(
        "SELECT name, stage, is_closed, is_won, closed_at::VARCHAR, amount, deal_type, account_key, team, lead_source "
        "FROM crm.deals ORDER BY name"
    )
    assert deals == [
        # Won/lost/open from each stage's metadata (isClosed, probability), labels from the Pipelines API.
        ("Acme platform", "Closed Won", True, True, "2024-03-20 10:00:00", 1200.5, "new_business", "acme",
         "Enterprise", "ORGANIC_SEARCH"),
        ("Lost one", "Closed Lost", True, False, "2024-03-25 10:00:00", 300.0, None, None, None, None),
        ("Open one", "Appointment Scheduled", False, False, None, 700.0, None, None, None, None),
        # A custom pipeline's numeric stage with probability 1.0 and isClosed true is a win.
        ("Renewal", "Signed", True, True, "2024-03-28 10:00:00", 90.0, "expansion", None, None, None),
    ]
    leads = project.query("SELECT is_converted, converted_at::VARCHAR, converted_deal_id, team FROM crm.leads ORDER BY created_at")
    assert leads == [(True, "2024-03-02 09:00:00", portal.deals["won"]["id"], "Enterprise"), (False, None, None, None)]
    activities = project.query("SELECT type, status, duration_minutes, deal_id FROM crm.activities ORDER BY type")
    assert activities == [
        ("call", "completed", 5.5, portal.deals["won"]["id"]),  # 330,000 ms
        ("email", "completed", None, None),
        ("meeting", "completed", 45.0, None),
        ("note", "completed", None, None),
        ("task", "open", None, None),
    ]


@pytest.mark.slow  # 25,000 deals through the fake portal: ~30 s
def test_no_deal_of_a_25000_deal_month_is_lost_or_doubled(project, make_fake_hubspot):  # noqa: F811
    fake = make_fake_hubspot(search_rps=None, clock=NOW)
    start = dt.datetime(2024, 3, 1, tzinfo=UTC)
    # 25,000 deals in March 2024, 100 of them at the very same second (a bulk import).
    fake.add_many("deals", [
        {"dealname": f"d{i}", "dealstage": "appointmentscheduled",
         "createdate": "2024-03-15T12:00:00Z" if i < 100
         else (start + dt.timedelta(seconds=100 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for i in range(25_000)
    ])
    result = _stage(project, fake, entities=["deals"])
    assert project.query("SELECT count(*), count(DISTINCT deal_id) FROM crm.deals") == [(25_000, 25_000)]
    # 25,000 results cannot be paged through in one search: the month was split into windows of at most
    # 10,000, each paged 200 at a time: at least 125 searches.
    assert result.asset_materializations_for_node("crm__deals")[0].metadata["hubspot_search_requests"].value >= 125
    searches = [body for method, path, body in fake.requests if path.endswith("/deals/search")]
    assert all(int(b.get("after") or 0) < 10_000 for b in searches)  # never asked past the ceiling


@pytest.mark.parametrize("fault", ["429", "502"])
def test_rate_limits_and_server_errors_are_retried(project, portal, fault):
    if fault == "429":
        portal.fail_next_rate_limit("search", retry_after=1)  # waits the Retry-After second, then succeeds
    else:
        portal.fail_next("search", 502, "<html>Bad Gateway</html>")
    result = _stage(project, portal, entities=["deals"])
    assert project.query("SELECT count(*) FROM crm.deals") == [(4,)]
    assert result.asset_materializations_for_node("crm__deals")[0].metadata["hubspot_retries"].value == 1


def test_custom_lifecycle_stages_are_shown_by_their_label(project, portal):
    portal.set_property_options("contacts", "lifecyclestage", [
        ("subscriber", "Subscriber"), ("lead", "Lead"), ("opportunity", "Opportunity"), ("123456", "Demo booked"),
    ])
    portal.add("contacts", createdate="2024-03-12T08:00:00Z", lifecyclestage="123456")
    _stage(project, portal, entities=["leads"])
    assert project.query("SELECT status FROM crm.leads ORDER BY created_at") == [("Opportunity",), ("Lead",), ("Demo booked",)]


def test_the_client_keeps_under_four_searches_a_second(project, make_fake_hubspot):  # noqa: F811
    # Deals, contacts and five engagement types: seven searches. The portal allows four a second; with no
    # retries, a single 429 would fail the run.
    fake = make_fake_hubspot(search_rps=4, clock=NOW)
    fake.add("deals", dealname="d", dealstage="closedlost", createdate="2024-03-01T00:00:00Z")
    spaced = _stage(project, fake, entities=["deals", "leads", "activities"], search_rps=4, retries=0,
                    raise_on_error=False)
    assert spaced.success, failure_message(spaced)
    # The control: without spacing the same run is refused, so the spacing is what kept it under the limit.
    fake.tick(seconds=0)
    unspaced = _stage(project, fake, entities=["deals", "leads", "activities"], search_rps=0, retries=0,
                      raise_on_error=False)
    assert not unspaced.success
    assert "429" in failure_message(unspaced)


def test_change_sync_applies_changes_and_removes_archived_records(project, portal):
    _stage(project, portal, first="2024-03-01", last=CURRENT, entities=["deals"])
    portal.tick(minutes=30)
    portal.update("deals", portal.deals["open"]["id"], dealstage="closedwon", closedate=NOW.strftime("%Y-%m-%dT%H:%M:%SZ"))
    portal.archive("deals", portal.deals["lost"]["id"])
    result = _stage(project, portal, first=CURRENT, last=CURRENT, entities=["deals"])
    rows = dict(project.query("SELECT name, is_won FROM crm.deals"))
    assert rows == {"Acme platform": True, "Open one": True, "Renewal": True, "April": False}
    meta = result.asset_materializations_for_node("crm__deals")[0].metadata
    assert meta["hubspot_changes_applied"].value == 1
    assert meta["hubspot_deleted_removed"].value == 1


def test_a_bad_token_fails_at_the_start_with_a_clear_message(project, portal):
    result = _stage(project, portal, raise_on_error=False, entities=["deals"], access_token="pat-na1-wrong")
    message = failure_message(result)
    assert "HUBSPOT_ACCESS_TOKEN" in message and "401" in message
    assert "pat-na1-wrong" not in message
    assert not project.db_path.exists() or project.query("SELECT count(*) FROM crm.deals") == [(0,)]


def test_a_missing_scope_names_the_scopes_needed(project, portal):
    portal.revoke_scope("crm.objects.deals.read")
    result = _stage(project, portal, raise_on_error=False, entities=["deals"])
    message = failure_message(result)
    assert "403" in message and "crm.objects.deals.read" in message


def test_missing_token_names_the_variable(project, portal):
    result = _stage(project, portal, raise_on_error=False, entities=["deals"], access_token=None)
    assert "HUBSPOT_ACCESS_TOKEN is not set" in failure_message(result)

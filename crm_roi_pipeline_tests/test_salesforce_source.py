"""The Salesforce source end to end: the real simple-salesforce client, real HTTPS to a fake org, real
Dagster materializations into a real DuckDB file."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from dagster import materialize

from crm_roi_pipeline.metrics.assets import metrics_monthly
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline.sources.salesforce.resource import SalesforceResource
from crm_roi_pipeline.staging.assets import staging_assets
from crm_roi_pipeline.staging.partitions import monthly_partitions
from crm_roi_pipeline_tests.conftest import failure_message
from crm_roi_pipeline_tests.fakes.salesforce import make_fake_salesforce, salesforce_ca  # noqa: F401 (fixtures)

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC).replace(microsecond=0)
CURRENT = monthly_partitions.get_last_partition_key()


@pytest.fixture
def org(make_fake_salesforce, monkeypatch):  # noqa: F811
    """A small org: two accounts, a role, four opportunities in 2024-03 (won, lost, open, open with an
    expected CloseDate), two leads, tasks (one archived, one open) and an event, a campaign."""
    fake = make_fake_salesforce(page_size=2, clock=NOW)
    # The sandbox's requests honours REQUESTS_CA_BUNDLE over a session's own verify setting.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
    role = fake.add("UserRole", Name="Enterprise Sales")
    user = fake.add("User", Name="Ada Seller", UserRoleId=role["Id"], Department="Sales")
    acme = fake.add("Account", Name="Acme Corp.", CreatedDate="2020-01-01T00:00:00Z")
    beta = fake.add("Account", Name="Beta GmbH", CreatedDate="2020-01-01T00:00:00Z")
    fake.add("Opportunity", Name="Acme expansion", AccountId=acme["Id"], StageName="Closed Won", IsClosed=True,
             IsWon=True, Amount=1200.0, CloseDate="2024-03-20", Type="Existing Customer - Upgrade",
             LeadSource="Web", OwnerId=user["Id"], CreatedDate="2024-03-02T10:00:00.000+0000")
    fake.add("Opportunity", Name="Beta new", AccountId=beta["Id"], StageName="Closed Lost", IsClosed=True,
             IsWon=False, Amount=500.0, CloseDate="2024-03-25", Type="New Customer", OwnerId=user["Id"],
             CreatedDate="2024-03-05T09:00:00.000+0000")
    fake.add("Opportunity", Name="Beta later", AccountId=beta["Id"], StageName="Prospecting", IsClosed=False,
             IsWon=False, Amount=700.0, CloseDate="2024-06-30", OwnerId=user["Id"],
             CreatedDate="2024-03-10T09:00:00.000+0000")
    fake.add("Opportunity", Name="No account", StageName="Negotiation/Review", IsClosed=False, IsWon=False,
             Amount=None, CloseDate="2024-04-30", OwnerId=user["Id"], CreatedDate="2024-03-31T23:30:00.000+0000")
    fake.add("Opportunity", Name="April deal", AccountId=acme["Id"], StageName="Prospecting", OwnerId=user["Id"],
             CreatedDate="2024-04-01T00:00:00.000+0000", CloseDate="2024-05-01")
    lead = fake.add("Lead", Company="Gamma", LeadSource="Web", Status="Open - Not Contacted", OwnerId=user["Id"],
                    CreatedDate="2024-03-03T08:00:00.000+0000")
    fake.add("Lead", Company="Delta", LeadSource="Partner", Status="Closed - Converted", IsConverted=True,
             ConvertedDate="2024-03-09", OwnerId=user["Id"], CreatedDate="2024-03-04T08:00:00.000+0000")
    fake.add("Task", TaskSubtype="Call", Status="Completed", CompletedDateTime="2024-03-06T12:00:00.000+0000",
             WhoId=lead["Id"], CallDurationInSeconds=300, OwnerId=user["Id"], CreatedDate="2024-03-06T11:00:00.000+0000")
    fake.add("Task", TaskSubtype="Task", Status="Not Started", ActivityDate="2024-03-28", WhatId=acme["Id"],
             OwnerId=user["Id"], CreatedDate="2024-03-01T11:00:00.000+0000")
    fake.add("Task", TaskSubtype="Email", Status="Completed", CompletedDateTime="2024-03-07T12:00:00.000+0000",
             IsArchived=True, OwnerId=user["Id"], CreatedDate="2024-03-07T11:00:00.000+0000")
    fake.add("Event", EventSubtype="Event", ActivityDateTime="2024-03-15T15:00:00.000+0000", DurationInMinutes=45,
             WhatId=acme["Id"], OwnerId=user["Id"], CreatedDate="2024-03-01T11:00:00.000+0000")
    fake.add("Campaign", Name="Spring webinar", Type="Webinar", StartDate="2024-03-12", ActualCost=2500.0)
    return fake


def _resource(fake, **overrides) -> SalesforceResource:
    settings = dict(
        login_url=fake.url, consumer_key=fake.consumer_key, consumer_secret=fake.consumer_secret,
        username=fake.username, password=fake.password, security_token=fake.security_token,
        api_version="59.0", retry_wait_seconds=0, bulk_poll_seconds=0,
    )
    return SalesforceResource(**{**settings, **overrides})


def _stage(project, fake, first="2024-03-01", last="2024-03-01", source="salesforce", raise_on_error=True, entities=None,
           **overrides):
    """Stage every entity, or `entities` alone (a test about deals pulls no leads, tasks and campaigns)."""
    return materialize(
        [a for a in staging_assets if entities is None or a.key.path[-1] in entities],
        resources=project.resources(source=source, salesforce=_resource(fake, **overrides)),
        instance=project.instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        raise_on_error=raise_on_error,
    )


def _metadata(result, entity):
    return result.asset_materializations_for_node(f"crm__{entity}")[0].metadata


def test_a_month_from_the_org_lands_in_every_table(project, org):
    result = _stage(project, org)
    deals = project.query(
        "SELECT name, source_system, loaded_from, is_closed, is_won, closed_at::VARCHAR, amount, deal_type, "
        "account_key, team, lead_source FROM crm.deals ORDER BY name"
    )
    assert deals == [
        # Account.Name through AccountId gives the key; the owner's role gives the team.
        ("Acme expansion", "salesforce", "salesforce", True, True, "2024-03-20 00:00:00", 1200.0, "expansion",
         "acme", "Enterprise Sales", "Web"),
        ("Beta later", "salesforce", "salesforce", False, False, None, 700.0, None, "beta", "Enterprise Sales", None),
        ("Beta new", "salesforce", "salesforce", True, False, "2024-03-25 00:00:00", 500.0, "new_business", "beta",
         "Enterprise Sales", None),
        # Created 23:30 UTC on 2024-03-31: March. Open, so its expected CloseDate is not a closed_at.
        ("No account", "salesforce", "salesforce", False, False, None, None, None, None, "Enterprise Sales", None),
    ]
    assert project.query("SELECT count(*) FILTER (WHERE is_converted), count(*) FROM crm.leads") == [(1, 2)]
    activities = project.query("SELECT type, status, duration_minutes, lead_id IS NOT NULL, account_id IS NOT NULL "
                               "FROM crm.activities ORDER BY type")
    # The archived email is there (queryAll); the open to-do is open; the call's 300 s are 5 minutes.
    assert activities == [
        ("call", "completed", 5.0, True, False), ("email", "completed", None, False, False),
        ("meeting", "completed", 45.0, False, True), ("task", "open", None, False, True),
    ]
    assert project.query("SELECT month::VARCHAR, category, amount FROM crm.spend") == [("2024-03-01", "marketing", 2500.0)]
    assert project.query("SELECT count(*) FROM crm.rejects") == [(0,)]
    meta = _metadata(result, "deals")
    assert meta["salesforce_requests"].value > 0
    assert "API requests used" in meta["salesforce_api_usage"].value
    # Every SOQL was built from describe() names and our own date literals, and paged (page size 2).
    assert any("CreatedDate >= 2024-03-01T00:00:00Z AND CreatedDate < 2024-04-01T00:00:00Z" in q for q in org.queries)
    assert sum(1 for method, path in org.requests if "/query/01g" in path) >= 1


def test_bulk_api_gives_the_same_rows_as_rest(project, org, tmp_path):
    _stage(project, org, entities=["deals"])
    rest = project.query("SELECT * EXCLUDE (loaded_from) FROM crm.deals ORDER BY deal_id")
    (tmp_path / "bulk").mkdir()
    bulk_project = type(project)(tmp_path / "bulk")
    result = _stage(bulk_project, org, entities=["deals"], bulk_threshold=0, bulk_page_size=2)
    assert bulk_project.query("SELECT * EXCLUDE (loaded_from) FROM crm.deals ORDER BY deal_id") == rest
    # The job went InProgress, then JobComplete; its 4 March opportunities came in pages of 2 (Sforce-Locator).
    job = next(j for j in org.jobs.values() if j.object == "Opportunity" and "COUNT" not in j.query)
    assert "InProgress" in job.states_seen and job.state == "JobComplete"
    assert sum(1 for method, path in org.requests if f"/jobs/query/{job.id}/results" in path) == 2
    assert "Bulk API 2.0" in _metadata(result, "deals")["files"].value


def test_csv_history_and_the_org_together_count_a_customer_once(project, org):
    # The legacy spreadsheet knew Acme (won in 2023, before the CRM); the org's 2024 win is an expansion.
    project.write("deals.csv", """
        deal_id,account_name,stage,is_closed,is_won,amount,created_at,closed_at
        L1,"ACME Corp",Closed Won,true,true,900,2023-05-01,2023-05-20
    """)
    _stage(project, org, first="2023-05-01", last="2024-03-01", source="csv,salesforce", entities=["deals"])
    assert project.query("SELECT loaded_from, count(*) FROM crm.deals GROUP BY 1 ORDER BY 1") == [("csv", 1), ("salesforce", 4)]
    materialize([metrics_monthly], resources={**project.resources(), "reports": Reports(dir=str(project.root / "r"))},
                instance=project.instance)
    months = dict(project.query("SELECT strftime(month, '%Y-%m'), new_customers FROM metrics.monthly"))
    assert months["2023-05"] == 1  # Acme acquired from the legacy history
    assert months["2024-03"] == 0  # Acme's 2024 win (account key 'acme' in both) is not a new customer


def test_change_sync_applies_exactly_the_changes_since_the_last_sync(project, org):
    _stage(project, org, first="2024-03-01", last=CURRENT, entities=["deals"])  # the first full pull sets the cursor
    before = {r[0]: r[1:] for r in project.query("SELECT name, is_won, closed_at::VARCHAR, amount FROM crm.deals")}
    org.tick(minutes=30)
    beta_later = next(r for r in org.records("Opportunity") if r["Name"] == "Beta later")
    no_account = next(r for r in org.records("Opportunity") if r["Name"] == "No account")
    org.update("Opportunity", beta_later["Id"], StageName="Closed Won", IsClosed=True, IsWon=True, CloseDate=NOW.date())
    org.delete("Opportunity", no_account["Id"])
    result = _stage(project, org, first=CURRENT, last=CURRENT, entities=["deals"])  # tonight's run: the current month only
    after = {r[0]: r[1:] for r in project.query("SELECT name, is_won, closed_at::VARCHAR, amount FROM crm.deals")}
    assert set(after) == set(before) - {"No account"}
    assert after["Beta later"] == (True, f"{NOW.date()} 00:00:00", 700.0)  # closed today, still in March 2024
    assert {k: v for k, v in after.items() if k != "Beta later"} == {
        k: v for k, v in before.items() if k not in ("Beta later", "No account")
    }
    meta = _metadata(result, "deals")
    assert meta["salesforce_changes_applied"].value == 1
    assert meta["salesforce_deleted_removed"].value == 1
    # The change query asked only for records modified since the cursor, deleted ones included.
    assert any("SystemModstamp >" in q for q in org.queries)


@pytest.mark.parametrize(
    "fault",
    [
        ("query", 403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]),
        ("query", 503, "<html>Service Unavailable</html>"),
    ],
)
def test_transient_faults_are_retried(project, org, fault):
    kind, status, body = fault
    org.fail_next(kind, status, body)
    result = _stage(project, org, entities=["deals"])
    assert project.query("SELECT count(*) FROM crm.deals") == [(4,)]
    assert _metadata(result, "deals").get("salesforce_retries")  # the metadata says a call was retried


def test_a_failed_bulk_job_names_the_job_and_its_state(project, org):
    org.fail_next_bulk_job("InvalidBatch : Failed to process query")
    result = _stage(project, org, bulk_threshold=0, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    job_id = next(iter(org.jobs))
    assert f"query job {job_id}" in message and "Failed: InvalidBatch" in message


def test_an_expired_session_logs_in_again_once(project, org):
    org.fail_next("query", 401, [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}])
    _stage(project, org, entities=["deals"])
    assert project.query("SELECT count(*) FROM crm.deals") == [(4,)]
    assert sum(1 for method, path in org.requests if path.endswith("/oauth2/token")) >= 2


def test_an_invalid_access_token_fails_clearly(project, org):
    result = _stage(project, org, raise_on_error=False, consumer_key=None, consumer_secret=None, username=None,
                    password=None, security_token=None, instance_url=org.url, access_token="00Dx!expired")
    assert not result.success
    message = failure_message(result)
    assert "SALESFORCE_ACCESS_TOKEN is no longer valid" in message
    assert "00Dx!expired" not in message


def test_wrong_password_fails_at_the_start_naming_the_variables(project, org):
    result = _stage(project, org, raise_on_error=False, password="hunter2-not-it")
    message = failure_message(result)
    assert "invalid_grant" in message and "SALESFORCE_PASSWORD" in message
    assert "hunter2-not-it" not in message
    assert not project.db_path.exists() or project.query("SELECT count(*) FROM crm.deals") == [(0,)]


def test_missing_credentials_fail_naming_the_variables(project, org):
    result = _stage(project, org, raise_on_error=False, consumer_secret=None, username=None, password=None)
    assert "SALESFORCE_CONSUMER_SECRET" in failure_message(result)


def test_a_standard_field_missing_in_the_org_is_skipped_with_a_warning(project, org):
    org.remove_field("Opportunity", "LeadSource")
    result = _stage(project, org, entities=["deals"])
    assert project.query("SELECT count(*), count(lead_source) FROM crm.deals") == [(4, 0)]
    # Markdown-escaped (crm_roi_pipeline/markdown.py), so field names' underscores show as typed.
    assert _metadata(result, "deals")["warnings"].value == "- Opportunity: the org has no LeadSource; lead\\_source left empty"


def test_custom_fields_named_in_settings(project, org):
    org.add_field("Opportunity", "Segment_Source__c", "picklist")
    deal = next(r for r in org.records("Opportunity") if r["Name"] == "Beta new")
    org.update("Opportunity", deal["Id"], Segment_Source__c="Trade Show")
    result = _stage(project, org, entities=["deals", "leads"], lead_source_field="Segment_Source__c")
    # The custom field first, the standard LeadSource where it is empty.
    assert dict(project.query("SELECT name, lead_source FROM crm.deals")) == {
        "Acme expansion": "Web", "Beta new": "Trade Show", "Beta later": None, "No account": None}
    # Leads have no such field in this org: their standard LeadSource is used, with a warning.
    assert project.query("SELECT count(lead_source) FROM crm.leads") == [(2,)]
    assert "Lead: the org has no Segment\\_Source\\_\\_c; LeadSource used instead" in _metadata(result, "leads")["warnings"].value


def test_secrets_never_reach_the_database_or_the_run_metadata(project, org):
    result = _stage(project, org)
    secrets = [org.password, org.security_token, org.consumer_secret, org.access_token]
    stored = project.db_path.read_bytes()
    for secret in secrets:
        assert secret.encode() not in stored
    events = json.dumps([str(e.event_specific_data) + str(e.message) for e in result.all_events])
    for secret in secrets:
        assert secret not in events


def test_client_credentials_flow(project, org):
    _stage(project, org, entities=["deals"], username=None, password=None, security_token=None)
    assert project.query("SELECT count(*) FROM crm.deals") == [(4,)]


def test_multi_currency_amounts_use_the_dated_rate_of_the_month(project, org):
    # Rates against the corporate currency (USD): 1 USD = 0.9 EUR from 2024-01-01, so 1 EUR = 1 / 0.9 USD.
    org.add("DatedConversionRate", IsoCode="USD", ConversionRate=1.0, StartDate="2020-01-01", NextStartDate=None)
    org.add("DatedConversionRate", IsoCode="EUR", ConversionRate=0.8, StartDate="2023-01-01", NextStartDate="2024-01-01")
    org.add("DatedConversionRate", IsoCode="EUR", ConversionRate=0.9, StartDate="2024-01-01", NextStartDate=None)
    deal = next(r for r in org.records("Opportunity") if r["Name"] == "Beta new")
    org.update("Opportunity", deal["Id"], CurrencyIsoCode="EUR", Amount=900.0)
    _stage(project, org, entities=["deals"])
    # Closed 2024-03-25: March's rate, 900 EUR / 0.9 = 1,000 USD.
    assert project.query("SELECT currency, amount, amount_reporting FROM crm.deals WHERE name = 'Beta new'") == [
        ("EUR", 900.0, pytest.approx(1000.0))]

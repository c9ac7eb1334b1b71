"""Salesforce cases into crm.tickets through the API: the real simple-salesforce client over real HTTPS to the
fake org, the first response from entitlement milestones, CSAT from the custom field a setting names, REST and
Bulk 2.0, and the change sync with deletes."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_roi_pipeline.sources.salesforce.resource import SalesforceResource
from crm_roi_pipeline.staging.partitions import monthly_partitions
from crm_roi_pipeline_tests.conftest import failure_message
from crm_roi_pipeline_tests.fakes.salesforce import make_fake_salesforce, salesforce_ca  # noqa: F401 (fixtures)
from crm_roi_pipeline_tests.test_salesforce_source import _metadata, _resource, _stage

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC).replace(microsecond=0)
CURRENT = monthly_partitions.get_last_partition_key()


@pytest.fixture
def org(make_fake_salesforce, monkeypatch):  # noqa: F811
    """Three cases of 2024-03 on an entitlement process: C1 answered (First Response completed 90 minutes after
    it was opened) and closed with a satisfaction score of 4 on the org's 5-point field; C2 open and not yet
    answered; C3 closed, answered, rated 9 (out of scale 5: staged, counted unrated by the check). One April
    case, outside the month."""
    fake = make_fake_salesforce(page_size=2, clock=NOW)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
    fake.add_field("Case", "CSAT__c", "double")
    user = fake.add("User", Name="Sam Support", Department="Support")
    acme = fake.add("Account", Name="Acme Corp.", CreatedDate="2020-01-01T00:00:00Z")
    first = fake.add("MilestoneType", Name="First Response")
    resolve = fake.add("MilestoneType", Name="Resolution")
    c1 = fake.add("Case", AccountId=acme["Id"], OwnerId=user["Id"], Status="Closed", Priority="High", Origin="Email",
                  CSAT__c=4, CreatedDate="2024-03-04T09:00:00.000+0000", ClosedDate="2024-03-05T09:00:00.000+0000")
    c2 = fake.add("Case", AccountId=acme["Id"], OwnerId=user["Id"], Status="Working", Priority="Low", Origin="Phone",
                  CreatedDate="2024-03-10T12:00:00.000+0000")
    c3 = fake.add("Case", OwnerId=user["Id"], Status="Closed", Priority="Medium", Origin="Web", CSAT__c=9,
                  CreatedDate="2024-03-20T08:00:00.000+0000", ClosedDate="2024-03-20T18:00:00.000+0000")
    fake.add("Case", OwnerId=user["Id"], Status="New", CreatedDate="2024-04-02T08:00:00.000+0000")
    fake.add("CaseMilestone", CaseId=c1["Id"], MilestoneTypeId=first["Id"], StartDate="2024-03-04T09:00:00.000+0000",
             CompletionDate="2024-03-04T10:30:00.000+0000")
    fake.add("CaseMilestone", CaseId=c1["Id"], MilestoneTypeId=resolve["Id"], StartDate="2024-03-04T09:00:00.000+0000",
             CompletionDate="2024-03-05T09:00:00.000+0000")
    fake.add("CaseMilestone", CaseId=c2["Id"], MilestoneTypeId=first["Id"], StartDate="2024-03-10T12:00:00.000+0000")
    fake.add("CaseMilestone", CaseId=c3["Id"], MilestoneTypeId=first["Id"], StartDate="2024-03-20T08:00:00.000+0000",
             CompletionDate="2024-03-20T08:45:00.000+0000")
    fake.cases = (c1, c2, c3)
    return fake


def _tickets(project) -> list[tuple]:
    return project.query(
        "SELECT ticket_id, source_system, status, priority, channel, account_key, team, created_at::VARCHAR, "
        "first_response_at::VARCHAR, closed_at::VARCHAR, csat_score, csat_scale_max FROM crm.tickets ORDER BY created_at"
    )


def _expected(org) -> list[tuple]:
    c1, c2, c3 = org.cases
    return [
        (c1["Id"], "salesforce", "closed", "High", "Email", "acme", "Support", "2024-03-04 09:00:00",
         "2024-03-04 10:30:00", "2024-03-05 09:00:00", 4.0, 5.0),  # the First Response milestone, not Resolution
        (c2["Id"], "salesforce", "open", "Low", "Phone", "acme", "Support", "2024-03-10 12:00:00", None, None, None, 5.0),
        (c3["Id"], "salesforce", "closed", "Medium", "Web", None, "Support", "2024-03-20 08:00:00",
         "2024-03-20 08:45:00", "2024-03-20 18:00:00", 9.0, 5.0),
    ]


@pytest.mark.parametrize("bulk_threshold", [50_000, 0], ids=["rest", "bulk"])
def test_a_month_of_cases_with_milestones_and_csat(project, org, bulk_threshold):
    result = _stage(project, org, entities=["tickets"], bulk_threshold=bulk_threshold, csat_field="CSAT__c",
                    csat_scale_max=5)
    assert result.success, failure_message(result)
    assert _tickets(project) == _expected(org)
    assert project.query("SELECT count(*) FROM crm.rejects") == [(0,)]
    # The milestones were asked for by case and by the named type, completed ones only.
    assert any("FROM CaseMilestone WHERE CaseId IN" in q and "MilestoneType.Name = 'First Response'" in q
               for q in org.queries)


def test_an_org_without_entitlements_stages_cases_without_first_response_and_says_why(project, org):
    org.remove_object("CaseMilestone")
    result = _stage(project, org, entities=["tickets"])
    assert result.success, failure_message(result)
    assert [row[8] for row in _tickets(project)] == [None, None, None]
    assert [row[10:] for row in _tickets(project)] == [(None, None)] * 3  # no CSAT setting: no score
    assert "no CaseMilestone" in _metadata(result, "tickets")["warnings"].value


def test_a_csat_field_the_org_lacks_is_an_error_naming_the_setting(project, org):
    result = _stage(project, org, entities=["tickets"], raise_on_error=False, csat_field="Satisfaction__c",
                    csat_scale_max=5)
    assert not result.success
    assert "SALESFORCE_CSAT_FIELD is 'Satisfaction__c'" in failure_message(result)
    assert project.query("SELECT count(*) FROM crm.tickets") == [(0,)]


def test_a_csat_field_without_its_scale_is_an_error():
    with pytest.raises(Exception, match="SALESFORCE_CSAT_SCALE_MAX is not set"):
        SalesforceResource(csat_field="CSAT__c").case_settings()


def test_the_change_sync_brings_an_answer_and_removes_a_deleted_case(project, org):
    c1, c2, c3 = org.cases
    _stage(project, org, first="2024-03-01", last=CURRENT, entities=["tickets"], csat_field="CSAT__c", csat_scale_max=5)
    org.tick(minutes=30)
    # C2 is answered and closed today (the reply changes the case too), C3 is deleted.
    milestone = next(m for m in org.records("CaseMilestone") if m["CaseId"] == c2["Id"])
    org.update("CaseMilestone", milestone["Id"], CompletionDate=NOW - dt.timedelta(minutes=10))
    org.update("Case", c2["Id"], Status="Closed", ClosedDate=NOW - dt.timedelta(minutes=5))
    org.delete("Case", c3["Id"])
    result = _stage(project, org, first=CURRENT, last=CURRENT, entities=["tickets"], csat_field="CSAT__c",
                    csat_scale_max=5)
    assert result.success, failure_message(result)
    rows = {r[0]: r for r in _tickets(project)}
    assert set(rows) == {c1["Id"], c2["Id"], org.records("Case")[-1]["Id"]} - {c3["Id"]}
    answered = (NOW - dt.timedelta(minutes=10)).replace(tzinfo=None)
    assert rows[c2["Id"]][2] == "closed" and rows[c2["Id"]][8] == str(answered)  # still in March 2024
    meta = _metadata(result, "tickets")
    assert meta["salesforce_changes_applied"].value == 1
    assert meta["salesforce_deleted_removed"].value == 1

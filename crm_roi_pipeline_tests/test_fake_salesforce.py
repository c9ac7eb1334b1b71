"""The fake Salesforce org (fakes/salesforce.py), driven over real HTTPS by the real simple-salesforce client.

Nothing is patched: the token request goes out with `requests` (as the project's source does it), then
simple_salesforce.Salesforce(instance_url=..., session_id=..., version=...) talks to the fake's TLS server,
trusting the fake's CA through REQUESTS_CA_BUNDLE or a session from fake.session().
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.login import token_login
from simple_salesforce.util import Usage

from crm_roi_pipeline_tests.fakes.salesforce import (  # noqa: F401 - fixtures are used by name
    FakeSalesforce,
    fake_salesforce,
    make_fake_salesforce,
    salesforce_ca,
)

UTC = timezone.utc
VERSION = "60.0"


def password_token(fake: FakeSalesforce, **overrides: str) -> requests.Response:
    data = {"grant_type": "password", "client_id": fake.consumer_key, "client_secret": fake.consumer_secret,
            "username": fake.username, "password": fake.password + fake.security_token, **overrides}
    return requests.post(f"{fake.url}/services/oauth2/token", data=data, timeout=10)


def connect(fake: FakeSalesforce, monkeypatch: pytest.MonkeyPatch, version: str = VERSION) -> Salesforce:
    """What the project's source does: OAuth token with requests, then a direct-session Salesforce."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
    response = password_token(fake)
    response.raise_for_status()
    token = response.json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], version=version)


def opportunity_ids(records) -> list[str]:
    return [r["Id"] for r in records]


# ------------------------------------------------------------------------------------------- OAuth


def test_password_flow_issues_a_token_that_the_api_accepts(fake_salesforce, monkeypatch):
    fake = fake_salesforce
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
    response = password_token(fake)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == fake.url
    assert body["id"] == f"{fake.url}/id/{fake.org_id}/{fake.user_id}"
    assert body["issued_at"] == str(int(fake.clock.timestamp() * 1000))
    assert body["access_token"] == fake.access_token

    sf = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"], version=VERSION)
    assert sf.query("SELECT Id FROM Account") == {"totalSize": 0, "done": True, "records": []}


def test_client_credentials_flow_with_form_or_basic_auth(fake_salesforce, monkeypatch):
    fake = fake_salesforce
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
    url = f"{fake.url}/services/oauth2/token"
    form = requests.post(url, data={"grant_type": "client_credentials", "client_id": fake.consumer_key,
                                    "client_secret": fake.consumer_secret}, timeout=10)
    assert form.status_code == 200 and form.json()["token_type"] == "Bearer"
    basic = requests.post(url, data={"grant_type": "client_credentials"},
                          auth=(fake.consumer_key, fake.consumer_secret), timeout=10)
    assert basic.status_code == 200
    assert basic.json()["access_token"] == fake.access_token != form.json()["access_token"]

    fake.client_credentials_enabled = False
    refused = requests.post(url, data={"grant_type": "client_credentials"},
                            auth=(fake.consumer_key, fake.consumer_secret), timeout=10)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_token_errors(fake_salesforce, monkeypatch):
    fake = fake_salesforce
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
    wrong_password = password_token(fake, password=fake.password)  # security token missing
    assert wrong_password.status_code == 400
    assert wrong_password.json() == {"error": "invalid_grant", "error_description": "authentication failure"}
    unknown_client = password_token(fake, client_id="3MVG9-nobody")
    assert unknown_client.status_code == 400
    assert unknown_client.json() == {"error": "invalid_client_id", "error_description": "client identifier invalid"}
    wrong_secret = password_token(fake, client_secret="nope")
    assert wrong_secret.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}
    assert password_token(fake, grant_type="authorization_code").json()["error"] == "unsupported_grant_type"

    # simple-salesforce's own token helper turns the error into SalesforceAuthenticationFailed(code, message)
    with pytest.raises(SalesforceAuthenticationFailed) as failed:
        token_login(f"{fake.url}/services/oauth2/token",
                    {"grant_type": "password", "client_id": fake.consumer_key, "client_secret": fake.consumer_secret,
                     "username": fake.username, "password": "wrong"}, "login", fake.consumer_key, None, None)
    assert failed.value.code == "invalid_grant" and failed.value.auth_message == "authentication failure"

    fake.fail_next("token", 503, "<html><body>Service Unavailable</body></html>")
    outage = password_token(fake)
    assert outage.status_code == 503 and outage.headers["Content-Type"].startswith("text/html")
    assert password_token(fake).status_code == 200


def test_tls_is_real_and_the_ca_must_be_trusted(fake_salesforce, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{fake_salesforce.url}/services/data", timeout=10)
    assert fake_salesforce.session().get(f"{fake_salesforce.url}/services/data", timeout=10).ok


# ---------------------------------------------------------------------------------------- describe

SPEC_FIELDS = {
    "Opportunity": "Id AccountId Name StageName IsClosed IsWon Amount CloseDate Type LeadSource OwnerId CreatedDate "
                   "CurrencyIsoCode SystemModstamp IsDeleted",
    "Lead": "Id OwnerId LeadSource Status Company CreatedDate IsConverted ConvertedDate ConvertedOpportunityId "
            "ConvertedAccountId SystemModstamp IsDeleted",
    "Task": "Id TaskSubtype Type Status IsClosed ActivityDate CompletedDateTime CreatedDate OwnerId WhatId WhoId "
            "AccountId CallDurationInSeconds SystemModstamp IsDeleted IsArchived",
    "Event": "Id EventSubtype Type ActivityDateTime ActivityDate DurationInMinutes OwnerId WhatId WhoId AccountId "
             "CreatedDate SystemModstamp IsDeleted",
    "Campaign": "Id Name Type StartDate ActualCost CreatedDate SystemModstamp IsDeleted",
    "Account": "Id Name CreatedDate SystemModstamp IsDeleted",
    "User": "Id Name UserRoleId Department CreatedDate SystemModstamp IsDeleted",
    "UserRole": "Id Name",
    "DatedConversionRate": "Id IsoCode ConversionRate StartDate NextStartDate",
    "CurrencyType": "Id IsoCode ConversionRate IsCorporate IsActive",
}


def test_describe_every_object(fake_salesforce):
    sf = fake_salesforce.client(version="62.0")
    for name, fields in SPEC_FIELDS.items():
        described = getattr(sf, name).describe()
        assert described["name"] == name and described["queryable"] is True
        assert [f["name"] for f in described["fields"]] == fields.split()
        for f in described["fields"]:
            assert {"name", "type", "label", "nillable", "custom"} <= set(f)
            assert f["custom"] is False
    opp = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert (opp["Id"]["type"], opp["Amount"]["type"], opp["CloseDate"]["type"]) == ("id", "currency", "date")
    assert (opp["CreatedDate"]["type"], opp["IsWon"]["type"], opp["StageName"]["type"]) == (
        "datetime", "boolean", "picklist")
    assert opp["AccountId"]["referenceTo"] == ["Account"] and opp["AccountId"]["relationshipName"] == "Account"
    assert opp["Id"]["nillable"] is False and opp["Amount"]["nillable"] is True
    lead = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert lead["OwnerId"]["referenceTo"] == ["Group", "User"] and lead["OwnerId"]["polymorphicForeignKey"]


def test_describe_custom_and_removed_fields_and_unknown_object(fake_salesforce):
    fake = fake_salesforce
    fake.add_field("Opportunity", "Segment__c", "picklist", picklist_values=["SMB", "Enterprise"])
    fake.remove_field("Opportunity", "CurrencyIsoCode")
    sf = fake.client()
    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert fields["Segment__c"]["custom"] is True and fields["Segment__c"]["type"] == "picklist"
    assert [v["value"] for v in fields["Segment__c"]["picklistValues"]] == ["SMB", "Enterprise"]
    assert "CurrencyIsoCode" not in fields

    opp = fake.add("Opportunity", Name="Seg", StageName="Prospecting", CloseDate="2024-03-01", Segment__c="SMB")
    assert sf.query("SELECT Id, Segment__c FROM Opportunity")["records"][0]["Segment__c"] == "SMB"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id, CurrencyIsoCode FROM Opportunity")
    assert exc.value.status == 400
    [error] = exc.value.content
    assert error["errorCode"] == "INVALID_FIELD"
    assert "No such column 'CurrencyIsoCode' on entity 'Opportunity'" in error["message"]
    assert opp["Id"].startswith("006")

    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.Widget__c.describe()
    assert missing.value.status == 404 and missing.value.content[0]["errorCode"] == "NOT_FOUND"


# ------------------------------------------------------------------------------------------- query


@pytest.mark.parametrize("fake_salesforce", [{"page_size": 2}], indirect=True)
def test_query_spans_three_pages_for_a_created_date_range(fake_salesforce, monkeypatch):
    fake = fake_salesforce
    owner = fake.add("User", Name="Ann Owner")
    inside, outside = [], []
    for day in range(1, 11):
        rec = fake.add("Opportunity", Name=f"Deal {day}", StageName="Prospecting", CloseDate="2024-06-30",
                       OwnerId=owner["Id"], Amount=100 * day, CreatedDate=datetime(2024, 1, day, 12, tzinfo=UTC))
        (inside if 3 <= day <= 8 else outside).append(rec["Id"])
    sf = connect(fake, monkeypatch)
    soql = ("SELECT Id, Name, Amount, CreatedDate FROM Opportunity "
            "WHERE CreatedDate >= 2024-01-03T00:00:00Z AND CreatedDate < 2024-01-09T00:00:00Z ORDER BY CreatedDate")

    first = sf.query(soql)
    assert (first["totalSize"], first["done"], len(first["records"])) == (6, False, 2)
    assert first["nextRecordsUrl"].startswith(f"/services/data/v{VERSION}/query/01g")
    assert first["nextRecordsUrl"].endswith("-2")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert (second["done"], len(second["records"])) == (False, 2)
    third = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)
    assert third["done"] is True and "nextRecordsUrl" not in third
    records = first["records"] + second["records"] + third["records"]
    assert opportunity_ids(records) == inside
    assert records[0]["CreatedDate"] == "2024-01-03T12:00:00.000+0000"
    assert records[0]["Amount"] == 300.0 and records[0]["attributes"]["type"] == "Opportunity"
    assert records[0]["attributes"]["url"] == f"/services/data/v{VERSION}/sobjects/Opportunity/{inside[0]}"

    before = len(fake.requests)
    assert opportunity_ids(sf.query_all_iter(soql)) == inside
    pages = [p for _, p in fake.requests[before:] if p.startswith(f"/services/data/v{VERSION}/query")]
    assert len(pages) == 3


def test_query_locator_expires_after_fifteen_idle_minutes(make_fake_salesforce):
    fake = make_fake_salesforce(page_size=1)
    for name in "ABC":
        fake.add("Account", Name=name)
    sf = fake.client()
    first = sf.query("SELECT Name FROM Account")
    fake.tick(minutes=16)
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert exc.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_all_sees_a_deleted_record_that_query_hides(fake_salesforce):
    fake = fake_salesforce
    keep = fake.add("Lead", Company="Keep", Status="Open - Not Contacted", LeadSource="Web")
    gone = fake.add("Lead", Company="Gone", Status="Open - Not Contacted")
    fake.tick(hours=2)
    fake.delete("Lead", gone["Id"])
    sf = fake.client()
    soql = "SELECT Id, Company, IsDeleted, SystemModstamp FROM Lead"
    assert opportunity_ids(sf.query(soql)["records"]) == [keep["Id"]]
    all_rows = sf.query_all(soql, include_deleted=True)["records"]
    assert opportunity_ids(all_rows) == [keep["Id"], gone["Id"]]
    assert all_rows[1]["IsDeleted"] is True
    assert all_rows[1]["SystemModstamp"] == "2024-07-01T11:00:00.000+0000"  # the default clock + 2 h
    assert fake.requests[-1] == ("GET", "/services/data/v59.0/queryAll/")  # fake.client() defaults to 59.0
    deleted_only = sf.query_all("SELECT Id FROM Lead WHERE IsDeleted = true", include_deleted=True)
    assert opportunity_ids(deleted_only["records"]) == [gone["Id"]]


def test_relationship_fields_come_back_nested(fake_salesforce):
    fake = fake_salesforce
    role = fake.add("UserRole", Name="Enterprise AE")
    ann = fake.add("User", Name="Ann", UserRoleId=role["Id"], Department="Sales")
    bob = fake.add("User", Name="Bob")  # no role
    acme = fake.add("Account", Name="Acme")
    with_account = fake.add("Opportunity", Name="A", StageName="Closed Won", CloseDate="2024-02-01",
                            AccountId=acme["Id"], OwnerId=ann["Id"], Amount=5000)
    fake.add("Opportunity", Name="B", StageName="Closed Lost", CloseDate="2024-02-02", OwnerId=bob["Id"])
    sf = fake.client()
    records = sf.query("SELECT Id, Account.Name, Owner.Name, Owner.UserRole.Name, IsWon, IsClosed "
                       "FROM Opportunity ORDER BY Name")["records"]
    first, second = records
    assert first["Id"] == with_account["Id"]
    assert first["Account"] == {"attributes": {"type": "Account",
                                               "url": f"/services/data/v59.0/sobjects/Account/{acme['Id']}"},
                                "Name": "Acme"}
    assert first["Owner"]["Name"] == "Ann" and first["Owner"]["UserRole"]["Name"] == "Enterprise AE"
    assert first["Owner"]["UserRole"]["attributes"]["type"] == "UserRole"
    assert (first["IsWon"], first["IsClosed"]) == (True, True)  # derived from StageName
    assert second["Account"] is None
    assert second["Owner"]["Name"] == "Bob" and second["Owner"]["UserRole"] is None
    assert (second["IsWon"], second["IsClosed"]) == (False, True)

    # A polymorphic lookup (Lead.Owner is User or Group) nests as the "Name" object, as Salesforce does.
    fake.add("Lead", Company="Initech", Status="Working - Contacted", OwnerId=ann["Id"])
    lead = sf.query("SELECT Owner.Name, Owner.Type FROM Lead")["records"][0]
    assert lead["Owner"]["attributes"] == {"type": "Name", "url": f"/services/data/v59.0/sobjects/User/{ann['Id']}"}
    assert (lead["Owner"]["Name"], lead["Owner"]["Type"]) == ("Ann", "User")
    # relationship paths also filter
    named = sf.query("SELECT Id FROM Opportunity WHERE Account.Name = 'acme'")["records"]
    assert opportunity_ids(named) == [with_account["Id"]]


def test_count(fake_salesforce):
    fake = fake_salesforce
    for stage in ("Closed Won", "Closed Won", "Closed Lost", "Prospecting"):
        fake.add("Opportunity", Name=stage, StageName=stage, CloseDate="2024-01-31")
    sf = fake.client()
    assert sf.query("SELECT COUNT() FROM Opportunity WHERE IsWon = true") == {
        "totalSize": 2, "done": True, "records": []}
    assert sf.query("select count() from opportunity")["totalSize"] == 4
    aggregate = sf.query("SELECT COUNT(Id) FROM Opportunity WHERE IsClosed = false")
    assert aggregate["records"][0]["expr0"] == 1


def test_soql_is_parsed_not_pattern_matched(fake_salesforce):
    fake = fake_salesforce
    obrien = fake.add("Account", Name="O'Brien AND Sons (OR not)", CreatedDate="2023-12-31T23:59:59Z")
    plain = fake.add("Account", Name="Plain", CreatedDate="2024-01-01T00:00:00Z")
    pct = fake.add("Account", Name="100% Growth", CreatedDate="2024-01-02T00:00:00Z")
    sf = fake.client()

    def ids(soql: str) -> list[str]:
        return opportunity_ids(sf.query(soql)["records"])

    assert ids(r"SELECT Id FROM Account WHERE Name = 'O\'Brien AND Sons (OR not)'") == [obrien["Id"]]
    assert ids("SELECT Id FROM Account WHERE (Name = 'Plain' OR Name LIKE '100\\%%') AND CreatedDate > "
               "2023-12-31T23:59:59Z ORDER BY Name DESC") == [plain["Id"], pct["Id"]]
    assert ids("SELECT Id FROM Account WHERE Name IN ('plain', 'nobody') OR Id = '" + obrien["Id"][:15] + "'") == [
        obrien["Id"], plain["Id"]]
    assert ids("SELECT Id FROM Account WHERE NOT Name LIKE '%o%'") == [plain["Id"]]  # LIKE ignores case
    assert ids("SELECT Id FROM Account WHERE Name NOT IN ('Plain') ORDER BY CreatedDate DESC LIMIT 1") == [pct["Id"]]
    assert ids("SELECT Id FROM Account WHERE CreatedDate >= 2024-01-01T01:00:00+01:00 ORDER BY Id") == [
        plain["Id"], pct["Id"]]
    assert ids("SELECT Id FROM Account ORDER BY Name ASC LIMIT 2 OFFSET 1") == [obrien["Id"], plain["Id"]]

    opp = fake.add("Opportunity", Name="Dated", StageName="Prospecting", CloseDate="2024-03-15", Amount=None)
    assert ids("SELECT Id FROM Opportunity WHERE CloseDate = 2024-03-15 AND Amount = null") == [opp["Id"]]
    assert ids("SELECT Id FROM Opportunity WHERE Amount != null") == []
    assert ids("SELECT Id FROM Opportunity WHERE Amount != 10.5") == [opp["Id"]]  # SOQL != keeps nulls


@pytest.mark.parametrize(("soql", "code", "text"), [
    ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "MALFORMED_QUERY", "unexpected token: OR"),
    ("SELECT Id Account", "MALFORMED_QUERY", "unexpected token: Account"),
    ("SELECT Id FROM Account WHERE Name = 'oops", "MALFORMED_QUERY", "unterminated"),
    ("SELECT Id FROM Account WHERE Name = 'o''Brien'", "MALFORMED_QUERY", "unexpected token"),
    ("SELECT Id FROM Account LIMIT", "MALFORMED_QUERY", "<EOF>"),
    ("SELECT Id FROM Widget__c", "INVALID_TYPE", "sObject type 'Widget__c' is not supported"),
    ("SELECT Nope FROM Account", "INVALID_FIELD", "No such column 'Nope' on entity 'Account'"),
    ("SELECT Parent.Name FROM Account", "INVALID_FIELD", "Didn't understand relationship 'Parent'"),
    ("SELECT Id FROM Opportunity WHERE CreatedDate > '2024-01-01T00:00:00Z'", "INVALID_FIELD",
     "must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Opportunity WHERE CloseDate > 2024-01-01T00:00:00Z", "INVALID_FIELD", "must be of type date"),
    ("SELECT Id FROM Opportunity WHERE Name = 5", "INVALID_FIELD", "should be enclosed in quotes"),
    ("SELECT Id FROM Opportunity WHERE OwnerId = 'not-an-id'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field"),
])
def test_soql_errors(fake_salesforce, soql, code, text):
    with pytest.raises(SalesforceMalformedRequest) as exc:
        fake_salesforce.client().query(soql)
    [error] = exc.value.content
    assert error["errorCode"] == code
    assert text in error["message"]


def test_update_bumps_system_modstamp_for_incremental_pulls(fake_salesforce):
    fake = fake_salesforce
    a = fake.add("Opportunity", Name="A", StageName="Prospecting", CloseDate="2024-05-01")
    b = fake.add("Opportunity", Name="B", StageName="Prospecting", CloseDate="2024-05-01")
    watermark = fake.clock
    fake.tick(seconds=90)
    fake.update("Opportunity", b["Id"], StageName="Closed Won", Amount="1250.50")
    sf = fake.client()
    changed = sf.query(f"SELECT Id, StageName, IsWon, Amount, SystemModstamp FROM Opportunity "
                       f"WHERE SystemModstamp > {watermark.strftime('%Y-%m-%dT%H:%M:%SZ')}")["records"]
    assert opportunity_ids(changed) == [b["Id"]]
    assert changed[0]["IsWon"] is True and changed[0]["Amount"] == 1250.5
    assert changed[0]["SystemModstamp"] == "2024-07-01T09:01:30.000+0000"
    assert fake.get("Opportunity", a["Id"])["SystemModstamp"] == watermark


# --------------------------------------------------------------------------------------- Bulk 2.0


def read_csv(path: str) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


@pytest.mark.parametrize("fake_salesforce", [{"bulk_polls_before_complete": 2}], indirect=True)
def test_bulk2_download_pages_through_locators(fake_salesforce, tmp_path, monkeypatch):
    fake = fake_salesforce
    acme = fake.add("Account", Name="Acme, Inc.")
    expected = []
    for i in range(7):
        rec = fake.add("Opportunity", Name=f'Deal "{i}"', StageName="Closed Won" if i % 2 else "Prospecting",
                       CloseDate="2024-02-01", Amount=1000 + i, AccountId=acme["Id"] if i % 3 else None,
                       CreatedDate=datetime(2024, 1, 1 + i, 8, 30, tzinfo=UTC))
        expected.append(rec)
    gone = fake.add("Opportunity", Name="Deleted", StageName="Prospecting", CloseDate="2024-02-01")
    fake.delete("Opportunity", gone["Id"])
    sf = connect(fake, monkeypatch)
    soql = "SELECT Id, Name, Account.Name, Amount, IsWon, CloseDate, CreatedDate FROM Opportunity"

    results = sf.bulk2.Opportunity.download(soql, str(tmp_path), max_records=3, wait=0)

    assert [r["number_of_records"] for r in results] == [3, 3, 1]
    assert results[-1]["locator"] == ""  # simple-salesforce maps Sforce-Locator "null" to ""
    header = ["Id", "Name", "Account.Name", "Amount", "IsWon", "CloseDate", "CreatedDate"]
    rows = []
    for result in results:  # download() names files tmpXXXX.csv: read them in result order, not by name
        page = read_csv(result["file"])
        assert page[0] == header
        rows.extend(page[1:])
    assert [r[0] for r in rows] == [rec["Id"] for rec in expected]
    assert rows[0] == [expected[0]["Id"], 'Deal "0"', "", "1000.0", "false", "2024-02-01",
                       "2024-01-01T08:30:00.000Z"]
    assert rows[1][2] == "Acme, Inc." and rows[1][4] == "true"

    # The same rows as the REST API gives for the same SOQL
    rest = sf.query_all(soql)["records"]
    assert [(r["Id"], r["Name"], (r["Account"] or {}).get("Name", "")) for r in rest] == [
        (row[0], row[1], row[2]) for row in rows]

    [job] = fake.jobs.values()
    assert job.states_seen == ["UploadComplete", "InProgress", "InProgress", "JobComplete"]
    assert job.query == soql and job.object == "Opportunity"
    results_requests = [p for m, p in fake.requests if p.endswith(f"/jobs/query/{job.id}/results")]
    assert len(results_requests) == 3


def test_bulk2_query_all_includes_deleted_rows(fake_salesforce, tmp_path):
    fake = fake_salesforce
    keep = fake.add("Task", Status="Completed", Type="Call", CallDurationInSeconds=120)
    gone = fake.add("Task", Status="Not Started")
    fake.delete("Task", gone["Id"])
    sf = fake.client()
    pages = list(sf.bulk2.Task.query_all("SELECT Id, IsClosed, IsDeleted, CallDurationInSeconds FROM Task",
                                         max_records=1, wait=0))
    assert len(pages) == 2
    rows = [list(csv.reader(page.splitlines()))[1] for page in pages]
    assert rows == [[keep["Id"], "true", "false", "120"], [gone["Id"], "false", "true", ""]]
    plain = list(sf.bulk2.Task.query("SELECT Id FROM Task", wait=0))
    assert [list(csv.reader(p.splitlines()))[1:] for p in plain] == [[[keep["Id"]]]]


def test_bulk2_failed_job_raises_operation_error(fake_salesforce, tmp_path):
    fake = fake_salesforce
    fake.add("Account", Name="Acme")
    fake.fail_next_bulk_job("InvalidBatch : Failed to process query: QUERY_TIMEOUT")
    sf = fake.client()
    with pytest.raises(SalesforceOperationError) as exc:
        sf.bulk2.Account.download("SELECT Id FROM Account", str(tmp_path), wait=0)
    [job] = fake.jobs.values()
    assert job.state == "Failed"
    assert str(exc.value) == "Job failure. Response content: InvalidBatch : Failed to process query: QUERY_TIMEOUT"
    # simple-salesforce keeps only errorMessage: neither the job id nor the state reaches the exception
    assert job.id not in str(exc.value) and not hasattr(exc.value, "status")
    assert list(tmp_path.iterdir()) == []
    # the next job is fine again
    assert sf.bulk2.Account.download("SELECT Id FROM Account", str(tmp_path), wait=0)[0]["number_of_records"] == 1


def test_bulk2_rejects_invalid_soql_at_job_creation(fake_salesforce, tmp_path):
    fake = fake_salesforce
    fake.remove_field("Opportunity", "CurrencyIsoCode")
    sf = fake.client()
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.bulk2.Opportunity.download("SELECT Id, CurrencyIsoCode FROM Opportunity", str(tmp_path), wait=0)
    assert exc.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert fake.jobs == {}


# ----------------------------------------------------------------------------------------- faults


def test_request_limit_and_outage_surface_as_simple_salesforce_exceptions(fake_salesforce, tmp_path):
    fake = fake_salesforce
    fake.add("Account", Name="Acme")
    sf = fake.client()
    fake.fail_next("query", 403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}])
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM Account")
    assert refused.value.status == 403
    assert refused.value.content == [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
    assert refused.value.url.startswith(f"{fake.url}/services/data/v59.0/query/")

    fake.fail_next("describe", 503, "<html><body><h1>503 Service Unavailable</h1></body></html>")
    with pytest.raises(SalesforceGeneralError) as outage:
        sf.Account.describe()
    assert outage.value.status == 503 and "Service Unavailable" in outage.value.content

    fake.fail_next("bulk_results", 503, None)  # empty body
    with pytest.raises(SalesforceGeneralError) as empty:
        sf.bulk2.Account.download("SELECT Id FROM Account", str(tmp_path), wait=0)
    assert empty.value.status == 503 and empty.value.content == ""

    # normal service resumes
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 1
    assert sf.Account.describe()["name"] == "Account"


def test_expired_session_raises_and_a_new_token_works(fake_salesforce, monkeypatch):
    fake = fake_salesforce
    sf = connect(fake, monkeypatch)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    fake.expire_session()
    with pytest.raises(SalesforceExpiredSession) as exc:
        sf.query("SELECT COUNT() FROM Account")
    assert exc.value.status == 401
    assert exc.value.content == [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]
    with pytest.raises(SalesforceExpiredSession):
        next(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0))
    fresh = connect(fake, monkeypatch)
    assert fresh.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    assert fresh.session_id == fake.access_token != sf.session_id


def test_api_usage_comes_from_sforce_limit_info(fake_salesforce):
    fake = fake_salesforce
    sf = fake.client()
    sf.query("SELECT Id FROM Account")
    assert sf.api_usage["api-usage"] == Usage(used=1, total=15000)
    sf.query("SELECT Id FROM Account")
    sf.Account.describe()  # counted by the org, but reported on the SFType, not on sf
    sf.query("SELECT Id FROM Account")
    assert sf.api_usage["api-usage"] == Usage(used=4, total=15000) and fake.api_used == 4

    fake.api_used = fake.api_limit  # the org's daily allowance is spent: Salesforce refuses with 403
    with pytest.raises(SalesforceRefusedRequest) as exc:
        sf.query("SELECT Id FROM Account")
    assert exc.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_add_fills_ids_and_system_fields(fake_salesforce):
    fake = fake_salesforce
    expected_prefixes = {"Opportunity": "006", "Lead": "00Q", "Task": "00T", "Event": "00U", "Campaign": "701",
                         "Account": "001", "User": "005", "UserRole": "00E", "DatedConversionRate": "04w",
                         "CurrencyType": "02u"}
    for name, prefix in expected_prefixes.items():
        rec = fake.add(name)
        assert rec["Id"].startswith(prefix) and len(rec["Id"]) == 18
    opp = fake.add("Opportunity", Name="X", StageName="Prospecting", CloseDate="2024-01-01")
    assert opp["CreatedDate"] == opp["SystemModstamp"] == fake.clock
    assert opp["IsDeleted"] is False and opp["CurrencyIsoCode"] == "USD"
    old = fake.add("Account", Name="Old", CreatedDate="2020-05-05T05:05:05.000+0000")
    assert old["SystemModstamp"] == datetime(2020, 5, 5, 5, 5, 5, tzinfo=UTC)
    with pytest.raises(KeyError):
        fake.add("Opportunity", Stage="typo")
    # 15-character ids given to the API or to add() are the same record as their 18-character form
    acme = fake.add("Account", Name="Acme")
    fake.add("Opportunity", Name="Y", StageName="Prospecting", CloseDate="2024-01-01", AccountId=acme["Id"][:15])
    record = fake.client().query("SELECT Account.Name FROM Opportunity WHERE Name = 'Y'")["records"][0]
    assert record["Account"]["Name"] == "Acme"

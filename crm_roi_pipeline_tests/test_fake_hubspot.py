"""The fake HubSpot portal (fakes/hubspot.py), driven over real HTTP by the real hubspot-api-client.

Nothing is patched: hubspot.HubSpot(access_token=..., host=fake.url) sets `host` on the Configuration of every
generated API client, so each call is an HTTP request to the fake's werkzeug server on 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
import trustme
import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    BatchResponsePublicAssociationMultiWithLabelWithErrors,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.objects import (
    ApiException,
    BatchReadInputSimplePublicObjectId,
    BatchResponseSimplePublicObjectWithErrors,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
)
from hubspot.crm.objects.exceptions import ForbiddenException, ServiceException, UnauthorizedException
from hubspot.crm.owners import ApiException as OwnersApiException
from hubspot.crm.pipelines.exceptions import ServiceException as PipelinesServiceException
from hubspot.crm.properties.exceptions import NotFoundException
from urllib3.util.retry import Retry

from crm_roi_pipeline_tests.fakes.hubspot import (  # noqa: F401 - fixtures are used by name
    DEFAULT_SCOPES,
    FakeHubSpot,
    fake_hubspot,
    make_fake_hubspot,
)

UTC = timezone.utc


def ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def search(client: HubSpot, object_type: str, filters=(), groups=None, **kwargs):
    groups = groups if groups is not None else ([FilterGroup(filters=list(filters))] if filters else [])
    request = PublicObjectSearchRequest(filter_groups=groups, **kwargs)
    return client.crm.objects.search_api.do_search(object_type, request)


def f(name: str, op: str, value=None, **kwargs) -> Filter:
    return Filter(property_name=name, operator=op, value=value, **kwargs)


def body(exc: Exception) -> dict:
    return json.loads(exc.body)


# ------------------------------------------------------------------------------------- connection


def test_host_reaches_every_generated_api(fake_hubspot):
    fake = fake_hubspot
    client = HubSpot(access_token=fake.token, host=fake.url)
    for api in (client.crm.objects.search_api, client.crm.objects.basic_api, client.crm.objects.batch_api,
                client.crm.associations.v4.basic_api, client.crm.associations.v4.batch_api,
                client.crm.pipelines.pipelines_api, client.crm.properties.core_api, client.crm.owners.owners_api,
                client.crm.deals.search_api, client.oauth.access_tokens_api):
        assert api.api_client.configuration.host == fake.url
    assert fake.url.startswith("http://127.0.0.1:")
    assert client.crm.deals.basic_api.get_page(limit=1).results == []
    method, path, sent = fake.requests[-1]
    assert (method, path, sent) == ("GET", "/crm/v3/objects/deals?limit=1", None)


def test_tls_with_a_trustme_ca(make_fake_hubspot):
    fake = make_fake_hubspot(ca=trustme.CA())
    assert fake.url.startswith("https://")
    fake.add("deals", dealname="Over TLS")
    client = fake.client()  # HubSpot(access_token=..., host=fake.url, ssl_ca_cert=fake.ca_bundle)
    page = client.crm.objects.basic_api.get_page("deals", properties=["dealname"])
    assert [d.properties["dealname"] for d in page.results] == ["Over TLS"]
    untrusting = HubSpot(access_token=fake.token, host=fake.url, retry=Retry(total=0))
    with pytest.raises(urllib3.exceptions.MaxRetryError) as info:  # certifi does not know the fake's CA
        untrusting.crm.objects.basic_api.get_page("deals")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


# ---------------------------------------------------------------------------------------- search


def test_search_filters_by_epoch_ms_or_iso_and_pages_with_after(make_fake_hubspot):
    fake = make_fake_hubspot(search_rps=None)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    ids = []
    for i in range(12):
        deal = fake.add("deals", dealname=f"D{i:02d}", amount=1000 + i * 100.5, createdate=start + timedelta(days=i),
                        closedate="2024-03-01T00:00:00Z", dealstage="closedwon" if i % 2 else "closedlost")
        ids.append(deal["id"])
    fake.add("deals", dealname="too late", createdate=datetime(2024, 2, 1, tzinfo=UTC))
    client = fake.client()

    window = [f("createdate", "GTE", ms(start + timedelta(days=2))),
              f("createdate", "LT", ms(start + timedelta(days=11)))]
    pages, after = [], None
    while True:
        page = search(client, "deals", window, sorts=["createdate"], properties=["amount", "dealstage"], limit=4,
                      after=after)
        pages.append(page)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert [len(p.results) for p in pages] == [4, 4, 1]
    assert {p.total for p in pages} == {9}
    assert [p.paging.next.after for p in pages[:-1]] == ["4", "8"]
    assert [r.id for p in pages for r in p.results] == ids[2:11]
    first = pages[0].results[0]
    # only requested properties plus the defaults, all HubSpot strings
    assert first.properties == {"amount": "1201", "dealstage": "closedlost", "hs_object_id": ids[2],
                                "createdate": "2024-01-03T00:00:00.000Z",
                                "hs_lastmodifieddate": "2024-01-03T00:00:00.000Z"}
    assert pages[0].results[1].properties["amount"] == "1301.5"
    assert first.created_at == datetime(2024, 1, 3, tzinfo=UTC) and first.archived is False

    # the same window with ISO strings; descending sort by a number property
    iso = search(client, "deals", [f("createdate", "GTE", "2024-01-03T00:00:00Z"), f("createdate", "LT", "2024-01-12")],
                 sorts=["-amount"], properties=["amount"], limit=100)
    assert [r.id for r in iso.results] == list(reversed(ids[2:11])) and iso.paging is None
    sent = fake.requests[-1][2]
    assert sent["sorts"] == ["-amount"] and sent["filterGroups"][0]["filters"][0]["value"] == "2024-01-03T00:00:00Z"


def test_search_operators_groups_and_sort_objects(make_fake_hubspot):
    fake = make_fake_hubspot(search_rps=None)
    a = fake.add("contacts", email="ann@example.com", firstname="Ann", lifecyclestage="customer",
                 hs_analytics_source="PAID_SEARCH", createdate="2024-05-01T10:00:00.000Z")
    b = fake.add("contacts", email="bob@example.com", firstname="Bob", lifecyclestage="lead",
                 createdate="2024-05-02T10:00:00Z")
    c = fake.add("contacts", email="cy@other.org", lifecyclestage="opportunity",
                 createdate=datetime(2024, 5, 3, tzinfo=UTC))
    client = fake.client()

    def ids(*filters, groups=None, **kwargs):
        return [r.id for r in search(client, "contacts", filters, groups=groups, limit=50, **kwargs).results]

    assert ids(f("hs_analytics_source", "HAS_PROPERTY")) == [a["id"]]
    assert ids(f("hs_analytics_source", "NOT_HAS_PROPERTY")) == [b["id"], c["id"]]
    assert ids(f("lifecyclestage", "EQ", "Customer")) == [a["id"]]  # string comparisons ignore case
    assert ids(f("lifecyclestage", "NEQ", "customer")) == [b["id"], c["id"]]
    assert ids(f("lifecyclestage", "IN", values=["lead", "opportunity"])) == [b["id"], c["id"]]
    assert ids(f("createdate", "BETWEEN", "2024-05-01T12:00:00Z", high_value=ms(datetime(2024, 5, 3, tzinfo=UTC)))) \
        == [b["id"], c["id"]]
    assert ids(f("createdate", "GT", "2024-05-02T10:00:00.000Z")) == [c["id"]]
    assert ids(f("email", "CONTAINS_TOKEN", "*@example.com")) == [a["id"], b["id"]]
    assert ids(groups=[FilterGroup(filters=[f("firstname", "EQ", "ann")]),
                       FilterGroup(filters=[f("lifecyclestage", "EQ", "opportunity")])]) == [a["id"], c["id"]]
    assert ids(sorts=[{"propertyName": "createdate", "direction": "DESCENDING"}]) == [c["id"], b["id"], a["id"]]
    assert ids(query="bob") == [b["id"]]

    for bad, needle in ((dict(filter_groups=[FilterGroup(filters=[f("no_such_prop", "EQ", "x")])]), "no_such_prop"),
                        (dict(filter_groups=[FilterGroup(filters=[f("createdate", "GTE", "yesterday")])]), "yesterday"),
                        (dict(sorts=["createdate", "email"]), "one sort"),
                        (dict(limit=201), "200")):
        with pytest.raises(ApiException) as info:
            client.crm.objects.search_api.do_search("contacts", PublicObjectSearchRequest(**bad))
        assert info.value.status == 400
        assert body(info.value)["category"] == "VALIDATION_ERROR" and needle in body(info.value)["message"]


def test_search_stops_at_ten_thousand_results(make_fake_hubspot):
    fake = make_fake_hubspot(search_rps=None)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(10_050):
        fake.add("contacts", createdate=start + timedelta(minutes=i))
    client = fake.client()
    page = search(client, "contacts", [f("createdate", "GTE", ms(start))], sorts=["createdate"], limit=200,
                  after="9800")
    assert page.total == 10_050  # total is the real count, beyond what can be paged
    assert len(page.results) == 200 and page.paging.next.after == "10000"
    with pytest.raises(ApiException) as info:
        search(client, "contacts", [f("createdate", "GTE", ms(start))], sorts=["createdate"], limit=200,
               after=page.paging.next.after)
    assert info.value.status == 400
    assert body(info.value)["category"] == "VALIDATION_ERROR" and "10000" in body(info.value)["message"]
    # what a client does instead: a narrower window
    tail = search(client, "contacts", [f("createdate", "GTE", ms(start + timedelta(minutes=10_000)))], limit=200)
    assert tail.total == 50 and tail.paging is None


def test_search_rate_limit_is_429_with_retry_after(fake_hubspot):
    fake = fake_hubspot  # search_rps=4 by default
    fake.add("deals", dealname="x")
    client = fake.client()
    for _ in range(4):
        assert search(client, "deals").total == 1
    with pytest.raises(ApiException) as info:
        search(client, "deals")
    exc = info.value
    assert type(exc) is ApiException and exc.status == 429 and exc.reason == "TOO MANY REQUESTS"
    assert exc.headers["Retry-After"] == "1"  # HTTPHeaderDict: case-insensitive
    assert body(exc)["policyName"] == "SECONDLY" and body(exc)["errorType"] == "RATE_LIMIT"
    assert body(exc)["message"] == "You have reached your secondly limit."
    # another token has its own budget; list calls are not limited
    assert search(fake.client(token=fake.issue_token()), "deals").total == 1
    assert len(client.crm.objects.basic_api.get_page("deals").results) == 1
    time.sleep(float(exc.headers["Retry-After"]))
    assert search(client, "deals").total == 1


def test_a_retry_with_status_forcelist_retries_the_search_post(fake_hubspot):
    fake = fake_hubspot
    fake.fail_next_rate_limit("search", retry_after=0)
    retry = Retry(total=3, status_forcelist=(429,), allowed_methods=None, respect_retry_after_header=True,
                  raise_on_status=False)
    client = fake.client(retry=retry)
    assert search(client, "deals").total == 0
    assert [m for m, p, _ in fake.requests if p.endswith("/search")] == ["POST", "POST"]


# ------------------------------------------------------------------------------- list, batch read


def test_list_pages_and_archived_records(fake_hubspot):
    fake = fake_hubspot
    deals = [fake.add("deals", dealname=f"D{i}", amount=i) for i in range(5)]
    fake.tick(hours=2)
    fake.archive("deals", deals[1]["id"])
    client = fake.client()
    api = client.crm.objects.basic_api

    first = api.get_page("deals", limit=2, properties=["dealname", "amount"])
    assert [r.id for r in first.results] == [deals[0]["id"], deals[2]["id"]]
    assert first.results[0].properties["dealname"] == "D0" and first.results[0].properties["amount"] == "0"
    second = api.get_page("deals", limit=2, after=first.paging.next.after)
    assert [r.id for r in second.results] == [deals[3]["id"], deals[4]["id"]] and second.paging is None
    assert [r.id for r in client.crm.objects.get_all("deals")] == [d["id"] for d in deals if d is not deals[1]]

    gone = api.get_page("deals", archived=True)
    assert [r.id for r in gone.results] == [deals[1]["id"]]
    assert gone.results[0].archived is True
    assert gone.results[0].archived_at == datetime(2024, 7, 1, 11, 0, tzinfo=UTC)
    assert fake.requests[-1][1] == "/crm/v3/objects/deals?archived=True"
    assert search(client, "deals").total == 4  # search never shows archived records

    with pytest.raises(ApiException) as info:
        api.get_page("deals", limit=101)
    assert info.value.status == 400


def test_batch_read_with_a_missing_id_is_207(fake_hubspot):
    fake = fake_hubspot
    company = fake.add("companies", name="Acme", domain="acme.example")
    other = fake.add("companies", name="Globex")
    client = fake.client()
    # properties_with_history is "required" in the model, but client-side validation is off by default (v12)
    request = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in (company["id"], "999999", other["id"])], properties=["name"])
    result = client.crm.objects.batch_api.read("companies", request)
    assert fake.requests[-1][2] == {"inputs": [{"id": company["id"]}, {"id": "999999"}, {"id": other["id"]}],
                                    "properties": ["name"]}
    assert isinstance(result, BatchResponseSimplePublicObjectWithErrors)
    assert result.status == "COMPLETE"
    assert {r.id: r.properties["name"] for r in result.results} == {company["id"]: "Acme", other["id"]: "Globex"}
    assert result.num_errors == 1 and result.errors[0].context == {"ids": ["999999"]}

    fake.update("companies", company["id"], name="Acme Corp")
    history = client.crm.objects.batch_api.read("companies", BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=company["id"])], properties=["name"], properties_with_history=["name"]))
    assert [v.value for v in history.results[0].properties_with_history["name"]] == ["Acme Corp", "Acme"]


# ---------------------------------------------------------------------------------- associations


def test_associations_v4_single_and_batch(fake_hubspot):
    fake = fake_hubspot
    deal = fake.add("deals", dealname="Big")
    contacts = [fake.add("contacts", email=f"c{i}@example.com") for i in range(3)]
    company = fake.add("companies", name="Acme")
    for contact in contacts[:2]:
        fake.associate("deals", deal["id"], "contacts", contact["id"])
    fake.associate("deals", deal["id"], "companies", company["id"], primary=True)
    fake.archive("contacts", contacts[1]["id"])
    client = fake.client()

    page = client.crm.associations.v4.basic_api.get_page("deals", deal["id"], "contacts")
    assert [(r.to_object_id, [(t.category, t.type_id, t.label) for t in r.association_types]) for r in page.results] \
        == [(contacts[0]["id"], [("HUBSPOT_DEFINED", 3, None)])]
    raw = requests.get(f"{fake.url}/crm/v4/objects/deals/{deal['id']}/associations/companies",
                       headers={"Authorization": f"Bearer {fake.token}"}, timeout=5).json()
    assert raw == {"results": [{"toObjectId": int(company["id"]), "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"},
        {"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None}]}]}

    request = BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[PublicFetchAssociationsBatchRequest(id=c["id"]) for c in contacts])
    batch = client.crm.associations.v4.batch_api.get_page("contacts", "deals", request)
    assert isinstance(batch, BatchResponsePublicAssociationMultiWithLabelWithErrors)  # 207: contacts[2] has none
    assert [(r._from.id, [t.to_object_id for t in r.to], r.to[0].association_types[0].type_id) for r in batch.results] \
        == [(contacts[0]["id"], [deal["id"]], 4)]
    assert sorted(e.context["fromObjectId"][0] for e in batch.errors) == [contacts[1]["id"], contacts[2]["id"]]
    assert fake.requests[-1][:2] == ("POST", "/crm/v4/associations/contacts/deals/batch/read")


# ------------------------------------------------------------------------ pipelines, properties, owners


def test_pipelines_default_and_custom_with_numeric_stage_ids(fake_hubspot):
    fake = fake_hubspot
    custom = fake.add_pipeline("Renewals", [{"label": "Open", "probability": 0.5},
                                            {"label": "Renewed", "probability": 1, "closed": True},
                                            {"label": "Churned", "probability": 0, "closed": True}])
    renewed = custom["stages"][1]["id"]
    assert custom["id"].isdigit() and renewed.isdigit()
    deal = fake.add("deals", dealname="Renewal", dealstage=renewed)
    assert deal["properties"]["pipeline"] == custom["id"] and deal["properties"]["hs_is_closed_won"] == "true"

    pipelines = fake.client().crm.pipelines.pipelines_api.get_all("deals").results
    assert [(p.id, p.label) for p in pipelines] == [("default", "Sales Pipeline"), (custom["id"], "Renewals")]
    stages = {s.id: (s.label, s.metadata) for s in pipelines[0].stages}
    assert stages["appointmentscheduled"] == ("Appointment Scheduled", {"isClosed": "false", "probability": "0.2"})
    assert stages["closedwon"] == ("Closed Won", {"isClosed": "true", "probability": "1.0"})
    assert stages["closedlost"] == ("Closed Lost", {"isClosed": "true", "probability": "0.0"})
    assert [s.metadata for s in pipelines[1].stages] == [
        {"isClosed": "false", "probability": "0.5"}, {"isClosed": "true", "probability": "1.0"},
        {"isClosed": "true", "probability": "0.0"}]


def test_properties_with_options(fake_hubspot):
    fake = fake_hubspot
    fake.set_property_options("contacts", "lifecyclestage", [
        ("subscriber", "Subscriber"), ("lead", "Lead"), ("1234567", "Product Qualified Lead"),
        ("customer", "Customer")])
    core = fake.client().crm.properties.core_api
    lifecycle = core.get_by_name("contacts", "lifecyclestage")
    assert (lifecycle.type, lifecycle.field_type) == ("enumeration", "radio")
    assert [(o.value, o.label, o.display_order, o.hidden) for o in lifecycle.options] == [
        ("subscriber", "Subscriber", 0, False), ("lead", "Lead", 1, False),
        ("1234567", "Product Qualified Lead", 2, False), ("customer", "Customer", 3, False)]
    dealtype = core.get_by_name("deals", "dealtype")
    assert {o.value: o.label for o in dealtype.options} == {"newbusiness": "New Business",
                                                          "existingbusiness": "Existing Business"}
    names = {p.name for p in core.get_all("deals").results}
    assert {"dealname", "amount", "dealstage", "closedate", "hs_lastmodifieddate"} <= names
    with pytest.raises(NotFoundException) as info:
        core.get_by_name("deals", "no_such_property")
    assert info.value.status == 404 and body(info.value)["category"] == "OBJECT_NOT_FOUND"


def test_owners_with_teams_and_paging(fake_hubspot):
    fake = fake_hubspot
    ann = fake.add_owner("ann@example.com", "Ann", "Lee", teams=["EMEA Sales", "Enterprise"])
    fake.add_owner("bob@example.com", "Bob", "Ray", teams=[{"name": "Enterprise"}, {"name": "AMER", "primary": True}])
    fake.add_owner("cy@example.com", "Cy", "Wu")
    api = fake.client().crm.owners.owners_api
    first = api.get_page(limit=2)
    assert [o.email for o in first.results] == ["ann@example.com", "bob@example.com"]
    assert [(t.name, t.primary) for t in first.results[0].teams] == [("EMEA Sales", True), ("Enterprise", False)]
    assert [(t.name, t.primary) for t in first.results[1].teams] == [("Enterprise", False), ("AMER", True)]
    assert first.results[0].teams[1].id == first.results[1].teams[0].id  # same team, same id
    assert first.results[0].user_id == ann["userId"] and first.results[0].archived is False
    rest = api.get_page(limit=2, after=first.paging.next.after)
    assert [o.email for o in rest.results] == ["cy@example.com"] and rest.results[0].teams == [] and rest.paging is None
    deal_owner = fake.property_definition("deals", "hubspot_owner_id")
    assert [o["label"] for o in deal_owner["options"]] == ["Ann Lee", "Bob Ray", "Cy Wu"]


# ---------------------------------------------------------------------------------- auth and faults


def test_bad_token_is_401_and_a_missing_scope_403(fake_hubspot):
    fake = fake_hubspot
    with pytest.raises(UnauthorizedException) as info:
        search(HubSpot(access_token="pat-na1-wrong", host=fake.url), "deals")
    exc = info.value
    assert isinstance(exc, ApiException) and exc.status == 401
    assert body(exc)["category"] == "INVALID_AUTHENTICATION"
    assert body(exc)["message"].startswith("Authentication credentials not found")

    fake.revoke_scope("crm.objects.deals.read")
    client = fake.client()
    with pytest.raises(ForbiddenException) as info:
        search(client, "deals")
    payload = body(info.value)
    assert info.value.status == 403 and payload["category"] == "MISSING_SCOPES"
    assert payload["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.deals.read"]
    assert search(client, "contacts").total == 0  # other scopes still work
    # the owners API has its own ApiException class
    fake.revoke_scope("crm.objects.owners.read")
    with pytest.raises(OwnersApiException) as info:
        client.crm.owners.owners_api.get_page()
    assert info.value.status == 403 and not isinstance(info.value, ApiException)


def test_fail_next_and_what_the_client_makes_of_it(fake_hubspot):
    fake = fake_hubspot
    client = fake.client()
    fake.fail_next("search", 502, "<html><body>Bad Gateway</body></html>")
    with pytest.raises(ServiceException) as info:
        search(client, "deals")
    assert info.value.status == 502 and "Bad Gateway" in info.value.body  # body: the decoded str
    assert search(client, "deals").total == 0  # service resumes

    # a GET answered 429 (or 503) with Retry-After is retried by urllib3's default Retry, transparently...
    fake.fail_next_rate_limit("list", retry_after=0)
    assert client.crm.objects.basic_api.get_page("deals").results == []
    assert [p for _, p, _ in fake.requests[-2:]] == ["/crm/v3/objects/deals"] * 2
    # ...up to 3 times; the 4th 429 in a row surfaces as an ApiException
    fake.fail_next_rate_limit("list", retry_after=0, times=4)
    before = len(fake.requests)
    with pytest.raises(ApiException) as info:
        client.crm.objects.basic_api.get_page("deals")
    assert info.value.status == 429 and len(fake.requests) - before == 4

    fake.fail_next("any", 500, {"status": "error", "message": "internal", "category": "INTERNAL_ERROR"},
                   headers={"X-Trace": "abc"})
    with pytest.raises(PipelinesServiceException) as info:  # each API package has its own exception classes
        client.crm.pipelines.pipelines_api.get_all("deals")
    assert not isinstance(info.value, ServiceException)
    assert info.value.headers["x-trace"] == "abc" and body(info.value)["message"] == "internal"


def test_update_moves_the_modification_date_for_change_syncs(fake_hubspot):
    fake = fake_hubspot
    deal = fake.add("deals", dealname="A", dealstage="appointmentscheduled")
    contact = fake.add("contacts", email="a@example.com", lifecyclestage="lead")
    call = fake.add("calls", hs_timestamp="2024-06-30T15:00:00Z", hs_call_duration=90000)
    since = fake.tick(days=1)
    fake.update("deals", deal["id"], dealstage="closedwon", amount="5000.00")
    fake.update("contacts", contact["id"], lifecyclestage="customer")
    client = fake.client()

    changed = search(client, "deals", [f("hs_lastmodifieddate", "GTE", ms(since))], properties=["dealstage", "amount"])
    assert [r.id for r in changed.results] == [deal["id"]]
    props = changed.results[0].properties
    assert props["hs_lastmodifieddate"] == "2024-07-02T09:00:00.000Z" and props["amount"] == "5000.00"
    assert changed.results[0].updated_at == since
    assert changed.results[0].created_at == datetime(2024, 7, 1, 9, tzinfo=UTC)
    assert fake.get("deals", deal["id"])["properties"]["hs_is_closed_won"] == "true"

    stored = fake.get("contacts", contact["id"])["properties"]
    assert stored["lastmodifieddate"] == stored["hs_lastmodifieddate"] == "2024-07-02T09:00:00.000Z"
    assert stored["hs_lifecyclestage_lead_date"] == "2024-07-01T09:00:00.000Z"
    assert stored["hs_lifecyclestage_customer_date"] == "2024-07-02T09:00:00.000Z"
    assert search(client, "contacts", [f("lastmodifieddate", "GTE", ms(since))]).total == 1

    found = search(client, "calls", [f("hs_timestamp", "LT", "2024-07-01")], properties=["hs_call_duration"])
    assert found.results[0].properties == {"hs_call_duration": "90000", "hs_object_id": call["id"],
                                           "hs_createdate": "2024-07-01T09:00:00.000Z",
                                           "hs_lastmodifieddate": "2024-07-01T09:00:00.000Z"}


def test_account_details_and_token_info(fake_hubspot):
    fake = fake_hubspot
    details = requests.get(f"{fake.url}/account-info/v3/details", headers={"Authorization": f"Bearer {fake.token}"},
                           timeout=5).json()
    assert details["portalId"] == fake.portal_id and details["timeZone"] == "US/Eastern"
    assert details["companyCurrency"] == "USD"
    info = fake.client().oauth.access_tokens_api.get(fake.token)
    assert info.hub_id == fake.portal_id and sorted(info.scopes) == sorted(DEFAULT_SCOPES)
    fake.revoke_scope("crm.objects.owners.read")
    assert "crm.objects.owners.read" not in fake.client().oauth.access_tokens_api.get(fake.token).scopes


def test_add_validates_and_fills_system_properties(fake_hubspot):
    fake = fake_hubspot
    with pytest.raises(KeyError, match="add_property"):
        fake.add("deals", no_such_property="x")
    fake.add_property("deals", "segment", "enumeration", options=["SMB", "Enterprise"])
    deal = fake.add("deals", dealname="Seg", segment="SMB", closedate=datetime(2024, 3, 1, 12, 30, tzinfo=UTC),
                    hs_object_id="987654321")
    assert deal["id"] == deal["properties"]["hs_object_id"] == "987654321"
    assert deal["properties"]["closedate"] == "2024-03-01T12:30:00.000Z"
    assert deal["createdAt"] == deal["properties"]["createdate"] == "2024-07-01T09:00:00.000Z"
    assert isinstance(fake, FakeHubSpot) and fake.requests == []

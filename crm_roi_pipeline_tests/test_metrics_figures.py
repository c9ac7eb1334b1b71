"""Every figure of METRICS.md, worked out by hand on small datasets staged through the real pipeline.

The expected values below come from /work/shared/METRICS.md and the arithmetic written beside them, never
from the code's output. Three datasets, each staged once per module:

* `main`: deals, leads, activities and spend around an adoption on 2024-03-15 (not the 1st, so the
  adoption month is transition) with `transition_months: 1` (2024-04 is transition too) and `as_of`
  2024-07-10 (2024-07 is not complete). First month with data 2023-11 (a lead), so 4 months of data before the
  adoption month, 2 complete post months (2024-05, 2024-06), window_months 12: N = 2.
  Pre window 2024-01 … 2024-02, post window 2024-05 … 2024-06.
* `bare`: deals and activities only (no leads, no spend at all), adoption on 2024-03-01, window_months 2
  (the binding term of N), `as_of` 2024-06-01 (2024-05 ends before it and is complete).
* `sparse`: two deals and a lead, with assumptions that leave one comparison window empty.

Day counts (`days`) are from the created_at date to the closed_at date, UTC.
"""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import materialize

from crm_roi_pipeline.cli import failure_messages
from crm_roi_pipeline.metrics.assets import metrics_adoption, metrics_lead_sources, metrics_monthly
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline_tests.conftest import ASSUMPTIONS, Project, failure_message, planned_events_as_ranges

FIGURES = [
    "win_count", "loss_count", "win_rate", "won_revenue", "avg_deal_size", "median_days_to_close",
    "new_customers", "new_business_revenue", "expansion_revenue", "net_new_revenue", "upsell_rate",
    "spend", "cac", "leads_created", "leads_converted", "lead_conversion_rate", "deals_created",
    "activities", "activities_per_win",
]
# The figures of "Retention and customer value" and "Service (tickets)", worked out by hand in
# test_metrics_customers_service.py; here only their place in metrics.adoption is checked.
CUSTOMER_SERVICE_FIGURES = [
    "renewals_won", "renewals_lost", "renewal_rate", "churn_rate", "renewal_revenue_rate", "active_customers",
    "repeat_customers", "repeat_customer_rate", "revenue_per_customer", "tickets_created", "tickets_closed",
    "first_response_rate", "median_first_response_hours", "median_resolution_hours", "csat_rate",
]
ADOPTION_METRICS = [*FIGURES, *CUSTOMER_SERVICE_FIGURES, "customer_lifetime_value"]
MONTHLY_COLUMNS = ["period", "is_complete", *FIGURES]
LEAD_SOURCE_COLUMNS = [
    "leads_created", "leads_converted", "lead_conversion_rate", "deals_created", "win_count", "win_rate",
    "won_revenue", "avg_deal_size", "spend", "new_customers", "cac",
]
# METRICS.md, "Pre/post comparison": counts and sums per month, rates, averages and medians pooled.
PER_MONTH = {
    "win_count", "loss_count", "won_revenue", "new_customers", "new_business_revenue", "expansion_revenue",
    "net_new_revenue", "spend", "leads_created", "leads_converted", "deals_created", "activities",
}


# Every month of the three datasets (2023-09 … 2024-07), the range each is staged over: staging is tested
# elsewhere, and the other months since 2015 would stage no row, only add Dagster's events for each.
MONTHS = ("2023-09-01", "2024-07-01")


# --- helpers --------------------------------------------------------------------------------------------


def assumptions(*, adoption_date: str, transition_months: int, window_months: int, as_of: str) -> str:
    """conftest.ASSUMPTIONS (with `deal_types: {Add-on: expansion}`) with the period keys set."""
    keep = [
        line for line in ASSUMPTIONS.splitlines()
        if not line.startswith(("adoption_date:", "transition_months:", "window_months:"))
    ]
    head = [
        f"adoption_date: {adoption_date}",
        f"transition_months: {transition_months}",
        f"window_months: {window_months}",
        f"as_of: {as_of}",
        "conversion_window_days: 90",
    ]
    return "\n".join(head + keep) + "\n"


def publish(project: Project, raise_on_error: bool = True):
    return materialize(
        [metrics_monthly, metrics_adoption, metrics_lead_sources],
        resources={**project.resources(), "reports": Reports(dir=str(project.root / "reports"))},
        instance=project.instance,
        raise_on_error=raise_on_error,
    )


def table(project: Project, sql: str) -> list[dict]:
    with project.connect(read_only=True) as conn:
        cursor = conn.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def _same(got, want) -> bool:
    if want is None:
        return got is None
    if isinstance(want, (str, bool, dt.date)):
        return type(got) is type(want) and got == want
    return got is not None and not isinstance(got, (str, bool)) and got == pytest.approx(want, rel=1e-9, abs=1e-9)


def assert_rows(actual: dict, expected: dict, columns: list[str]) -> None:
    """Every expected row names every column; every cell is compared, all mismatches reported at once."""
    for key, row in expected.items():
        assert set(row) == set(columns), f"test bug: row {key} does not name exactly {columns}"
    assert sorted(actual, key=str) == sorted(expected, key=str), "rows differ"
    problems = [
        f"{key} {col}: expected {want!r}, got {actual[key][col]!r}"
        for key, row in expected.items()
        for col, want in row.items()
        if not _same(actual[key][col], want)
    ]
    assert not problems, "\n".join(problems)


def m(period: str, is_complete: bool, **figures) -> dict:
    return {"period": period, "is_complete": is_complete, **figures}


def materialization_metadata(result, key: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{key} was not materialized")


# --- the main dataset -----------------------------------------------------------------------------------
# Accounts (account_key from account_name): A1 Alpha, A2 Beta, A3 Gamma, A4 Delta, A5 Epsilon, A6 Zeta,
# A7 Eta, A8 Theta, A9 Iota. Deals without an account: D04, D17, D23, D25.

MAIN_DEALS = """
deal_id,account_id,account_name,stage,is_closed,is_won,amount,currency,deal_type,lead_source,lead_id,created_at,closed_at
D01,A1,Alpha Ltd,Closed Won,true,true,1000,USD,,Web,,2023-12-01T00:00:00Z,2023-12-11T00:00:00Z
D02,A1,Alpha Ltd,Closed Won,true,true,500,USD,Add-on,,L03,2024-01-02T10:00:00Z,2024-01-06T10:00:00Z
D03,A2,Beta Inc,Closed Won,true,true,2000,USD,expansion,Web,,2024-01-03T09:00:00Z,2024-01-10T08:00:00Z
D04,,,Closed Won,true,true,300,USD,,,L02,2024-01-05T00:00:00Z,2024-01-25T00:00:00Z
D05,A3,Gamma GmbH,Closed Lost,true,false,900,USD,,Partner,,2024-01-08T00:00:00Z,2024-01-20T00:00:00Z
D06,A1,Alpha Ltd,Closed Won,true,true,800,USD,Renewal,Web,,2024-01-15T00:00:00Z,2024-01-16T00:00:00Z
D07,A4,Delta LLC,Closed Won,true,true,1500,USD,Upgrade,"",,2024-01-20T00:00:00Z,2024-02-09T00:00:00Z
D08,A3,Gamma GmbH,Closed Won,true,true,700,USD,,Referral,,2024-02-20T00:00:00Z,2024-02-10T00:00:00Z
D09,A5,Epsilon,Closed Won,true,true,5000,USD,,Web,,2024-02-05T00:00:00Z,
D10,A6,Zeta,Closed Lost,true,false,100,USD,,Referral,,2024-02-01T00:00:00Z,2024-02-15T00:00:00Z
D11,A6,Zeta,Negotiation,false,false,250,USD,,,L99,2024-02-12T00:00:00Z,
D12,A2,Beta Inc,Closed Won,true,true,400,USD,Renewal,Partner,,2024-02-01T00:00:00Z,2024-02-04T00:00:00Z
D13,A6,Zeta,Closed Won,true,true,10000,USD,,Web,,2024-03-01T00:00:00Z,2024-03-20T00:00:00Z
D14,A4,Delta LLC,Closed Lost,true,false,50,USD,,Web,,2024-04-02T00:00:00Z,2024-04-30T00:00:00Z
D15,A5,Epsilon,Closed Won,true,true,2500,USD,,Web,,2024-05-03T00:00:00Z,2024-05-13T00:00:00Z
D16,A1,Alpha Ltd,Closed Won,true,true,600,USD,,,L13,2024-05-06T00:00:00Z,2024-05-08T00:00:00Z
D17,,,Closed Won,true,true,,USD,Add-on,Partner,,2024-05-10T00:00:00Z,2024-05-20T00:00:00Z
D18,A7,Eta,Closed Lost,true,false,3000,USD,,Web,,2024-05-01T00:00:00Z,2024-05-31T00:00:00Z
D19,A7,Eta,Closed Won,true,true,1200,USD,new_business,"  ",L11,2024-05-15T23:30:00Z,2024-05-16T00:10:00Z
D20,A8,Theta,Closed Won,true,true,4000,USD,,Web,,2024-06-01T00:00:00Z,2024-06-30T09:00:00Z
D21,A8,Theta,Closed Won,true,true,300,USD,,Web,,2024-06-10T00:00:00Z,2024-06-30T08:00:00Z
D22,A2,Beta Inc,Closed Won,true,true,900,USD,Renewal,Referral,,2024-06-03T00:00:00Z,2024-06-05T00:00:00Z
D23,,,Closed Lost,true,false,50,USD,,,,2024-06-10T00:00:00Z,2024-06-12T00:00:00Z
D24,A9,Iota,Closed Lost,true,false,800,USD,,Referral,,2024-06-15T00:00:00Z,2024-06-25T00:00:00Z
D25,,,Closed Won,true,true,100,USD,Renewal,Partner,,2024-06-20T00:00:00Z,2024-06-22T00:00:00Z
D26,A9,Iota,Closed Won,true,true,777,USD,,Web,,2024-07-01T00:00:00Z,2024-07-05T00:00:00Z
"""
# What each deal is, by METRICS.md (class; acquisition = the account's first won deal by closed_at, deal_id):
# D01 won 10 days, Alpha's acquisition -> new_business (2023-12, pre, outside the window)
# D02 won 4 days, Add-on -> expansion via the assumptions' deal_types (Alpha is already a customer)
# D03 won 7 days (09:00 -> 08:00 a week later: 6 days 23 h, but 7 by date), explicit expansion on Beta's
#     first win: Beta's acquisition (a new customer) but expansion revenue
# D04 won 20 days, no account, no type -> new_business and a new customer
# D05 lost; D06 won 1 day, Renewal (Alpha)
# D07 won 20 days (01-20 -> 02-09), type 'Upgrade' is no class -> Delta's acquisition -> new_business
# D08 won, closed 02-10 before its creation 02-20: a win, Gamma's acquisition (D05 was lost), not in the median
# D09 won without closed_at: in no period, acquires nobody (so D15 is Epsilon's acquisition)
# D10 lost; D11 open; D12 won 3 days, Renewal (Beta)
# D13 won 19 days, Zeta's acquisition (2024-03, transition); D14 lost (2024-04, transition)
# D15 won 10 days, Epsilon's acquisition -> new_business
# D16 won 2 days, Alpha's later win -> expansion
# D17 won 10 days, no account, Add-on -> expansion (not a new customer), amount missing -> 0
# D18 lost; D19 won 1 day (23:30 -> 00:10 next UTC day), explicit new_business, Eta's acquisition
# D20 won 29 days, D21 won 20 days: both Theta, both closed 06-30; D21 closed at 08:00 before D20's 09:00, so
#     D21 (the higher id) is Theta's acquisition -> new_business and D20 -> expansion
# D22 won 2 days, Renewal (Beta); D23 lost, no account; D24 lost (Iota)
# D25 won 2 days, no account, Renewal: not new_business, so no new customer
# D26 won 4 days, Iota's acquisition (2024-07, the incomplete month)
#
# Lead sources: D02 own empty, no converting lead, lead_id L03 -> Referral. D04 own empty; converting leads
# L01 (Web, created 01-05) and L07 (Partner, created 01-04): the earliest created is L07 -> Partner (not L01
# by id, not its lead_id L02's Web). D07 own "" -> Unknown. D11 lead_id L99 names no lead -> Unknown.
# D16 own empty; converting lead L10 (Referral) wins over its lead_id L13 (Web) -> Referral. D19 own "  "
# (blank) -> its lead_id L11 -> Partner. D23 nothing -> Unknown. Every other deal: its own source.

MAIN_LEADS = """
lead_id,lead_source,status,created_at,is_converted,converted_at,converted_deal_id
L08,Referral,Open,2023-11-20T00:00:00Z,false,,
L01,Web,Converted,2024-01-05T08:00:00Z,true,2024-04-04T08:00:00Z,D04
L02,Web,Converted,2024-01-05T08:00:00Z,true,2024-04-04T08:00:01Z,
L03,Referral,Converted,2024-01-10T00:00:00Z,true,,
L07,Partner,Converted,2024-01-04T00:00:00Z,true,2024-01-25T00:00:00Z,D04
L04,,Converted,2024-02-01T00:00:00Z,true,2024-02-15T00:00:00Z,
L05,Partner,Open,2024-02-03T00:00:00Z,false,,
L06,Referral,Disqualified,2024-02-10T00:00:00Z,false,2024-02-20T00:00:00Z,
L09,Web,Open,2024-03-20T00:00:00Z,false,,
L10,Referral,Converted,2024-05-01T00:00:00Z,true,2024-05-06T00:00:00Z,D16
L11,Partner,Open,2024-05-02T00:00:00Z,false,,
L12,Web,Converted,2024-06-01T00:00:00Z,true,2024-06-05T00:00:00Z,
L13,Web,Open,2024-06-02T00:00:00Z,false,,
L14,"  ",Open,2024-06-03T00:00:00Z,false,,
L15,Web,Open,2024-07-02T00:00:00Z,false,,
"""
# Converted within 90 days: L01 (2024-01-05 08:00 + 90 days = 2024-04-04 08:00: Jan 5 -> Feb 5 is 31 days,
# -> Mar 5 29 more (leap year), -> Apr 4 30 more; exactly at the edge, counts), L07, L04, L10, L12.
# Not converted: L02 (one second past the edge), L03 (flag without converted_at), L06 (a date but the flag
# false), the rest (not converted). L04 and L14 have no source (empty, blank) -> Unknown.

MAIN_ACTIVITIES = """
activity_id,type,status,occurred_at,deal_id
AC00,call,completed,2023-12-15T00:00:00Z,D01
AC01,call,open,2024-01-10T00:00:00Z,D02
AC02,task,Not Started,2024-02-05T00:00:00Z,D07
AC05,meeting,completed,2024-03-05T00:00:00Z,D13
AC10,email,completed,2024-05-02T00:00:00Z,D15
AC11,call,,2024-05-20T00:00:00Z,D17
AC12,task,open,2024-06-01T00:00:00Z,D20
AC13,meeting,Completed,2024-06-10T00:00:00Z,D21
AC14,call,completed,2024-06-30T23:59:59Z,D20
AC15,call,completed,2024-07-01T00:00:00Z,D26
"""
# Completed: AC00 (2023-12), AC05 (03), AC10 and AC11 (05; a missing status means completed), AC13 and AC14
# (06), AC15 (07). Open: AC01 (01), AC02 ('Not Started', 02), AC12 (06). The pre window thus holds activity
# rows, all open: activities 0, not null.

MAIN_SPEND = """
month,category,channel,amount,currency
2023-12-01,marketing,Web,0,USD
2024-04-01,sales,,0,USD
2024-05-01,marketing,Web,1000,USD
2024-05-01,sales,,2000,USD
2024-05-01,marketing,Referral,0,USD
2024-06-15,marketing,Web,500,USD
2024-06-01,marketing,Trade Show,300,USD
2024-06-01,sales,,1000,USD
2024-07-01,marketing,Web,50,USD
"""
# No spend rows in 2024-01 or 2024-02: the pre window's spend and cac are null. Zero rows in 2023-12 and
# 2024-04. 2024-06-15 counts for June. Spend with no channel (sales) is in no lead source's row.


@pytest.fixture(scope="module")
def main(tmp_path_factory):
    project = Project(tmp_path_factory.mktemp("main"))
    project.write("deals.csv", MAIN_DEALS)
    project.write("leads.csv", MAIN_LEADS)
    project.write("activities.csv", MAIN_ACTIVITIES)
    project.write("spend.csv", MAIN_SPEND)
    project.assumptions.write_text(
        assumptions(adoption_date="2024-03-15", transition_months=1, window_months=12, as_of="2024-07-10")
    )
    with planned_events_as_ranges():
        project.stage(*MONTHS)
    result = publish(project)
    return project, result


def test_main_inputs_staged_as_the_expectations_assume(main):
    """Guards the premises of the hand computation (staging is tested elsewhere)."""
    project, _ = main
    assert project.query("SELECT count(*) FROM crm.rejects") == [(0,)]
    deals = {r["deal_id"]: r for r in table(project, "SELECT * FROM crm.deals")}
    assert len(deals) == 26
    assert {d: deals[d]["deal_type"] for d in ("D02", "D03", "D06", "D07", "D17", "D19", "D25")} == {
        "D02": "expansion", "D03": "expansion", "D06": "renewal", "D07": None, "D17": "expansion",
        "D19": "new_business", "D25": "renewal",
    }
    assert [deals[d]["account_key"] for d in ("D04", "D17", "D23", "D25")] == [None] * 4
    assert deals["D09"]["is_won"] and deals["D09"]["closed_at"] is None
    assert deals["D17"]["amount_reporting"] is None
    assert project.query("SELECT count(*) FROM crm.leads") == [(15,)]
    assert project.query("SELECT count(*) FROM crm.activities WHERE status = 'completed'") == [(7,)]
    assert project.query("SELECT count(*), sum(amount_reporting) FROM crm.spend") == [(9, 4850.0)]


def test_main_monthly(main):
    project, _ = main
    actual = {r["month"]: r for r in table(project, "SELECT * FROM metrics.monthly")}
    d = dt.date
    expected = {
        # Nov 2023: the first month with data, from a lead's created_at alone (L08); pre, before the pre window.
        d(2023, 11, 1): m(
            "pre", True,
            win_count=0, loss_count=0, win_rate=None,  # no closed deal: 0 / 0
            won_revenue=0, avg_deal_size=None, median_days_to_close=None,
            new_customers=0, new_business_revenue=0, expansion_revenue=0, net_new_revenue=0,
            upsell_rate=None,  # 0 / 0
            spend=0,  # no spend row this month, but crm.spend holds rows: 0 in metrics.monthly
            cac=None,  # 0 / 0 new customers
            leads_created=1, leads_converted=0, lead_conversion_rate=0 / 1,  # L08
            deals_created=0,
            activities=0, activities_per_win=None,  # 0 / 0 wins
        ),
        d(2023, 12, 1): m(
            "pre", True,
            win_count=1, loss_count=0, win_rate=1 / 1,  # D01
            won_revenue=1000, avg_deal_size=1000 / 1, median_days_to_close=10,  # D01 12-01 -> 12-11
            new_customers=1,  # D01 acquires Alpha
            new_business_revenue=1000, expansion_revenue=0, net_new_revenue=1000 + 0,
            upsell_rate=0 / 1,  # no expansion among 1 non-renewal win
            spend=0, cac=0 / 1,  # a spend row of 0 is spend 0, and cac 0 with a new customer
            leads_created=0, leads_converted=0, lead_conversion_rate=None,  # 0 / 0
            deals_created=1,  # D01
            activities=1, activities_per_win=1 / 1,  # AC00
        ),
        d(2024, 1, 1): m(
            "pre", True,
            win_count=4, loss_count=1, win_rate=4 / (4 + 1),  # wins D02 D03 D04 D06; loss D05
            won_revenue=500 + 2000 + 300 + 800, avg_deal_size=3600 / 4,
            median_days_to_close=(4 + 7) / 2,  # days D06 1, D02 4, D03 7, D04 20: mean of the middle two
            new_customers=2,  # D03 (Beta's acquisition despite its explicit expansion), D04 (no account)
            new_business_revenue=300,  # D04
            expansion_revenue=500 + 2000,  # D02 (Add-on), D03 (explicit expansion)
            net_new_revenue=300 + 2500,  # the renewal D06 adds nothing
            upsell_rate=2 / 3,  # expansion D02 D03 / non-renewal wins D02 D03 D04 (D06 renewal left out)
            spend=0,  # no spend row this month, but crm.spend holds rows: 0 in metrics.monthly
            cac=0 / 2,
            leads_created=4,  # L01 L02 L03 L07
            leads_converted=2,  # L01 (exactly created_at + 90 days), L07; not L02 (+1 s), not L03 (no date)
            lead_conversion_rate=2 / 4,
            deals_created=6,  # D02 D03 D04 D05 D06, and D07 created 01-20
            activities=0, activities_per_win=0 / 4,  # AC01 is open
        ),
        d(2024, 2, 1): m(
            "pre", True,
            win_count=3, loss_count=1, win_rate=3 / (3 + 1),  # wins D07 D08 D12 (D09 has no closed_at); loss D10
            won_revenue=1500 + 700 + 400, avg_deal_size=2600 / 3,
            median_days_to_close=(3 + 20) / 2,  # D12 3, D07 20; D08 closes before its creation: left out
            new_customers=2,  # D07 (Delta), D08 (Gamma)
            new_business_revenue=1500 + 700,  # D07 ('Upgrade' is no class), D08
            expansion_revenue=0, net_new_revenue=2200 + 0,
            upsell_rate=0 / 2,  # non-renewal wins D07 D08 (D12 renewal left out)
            spend=0, cac=0 / 2,
            leads_created=3, leads_converted=1, lead_conversion_rate=1 / 3,  # L04 L05 L06; L04 converted
            deals_created=5,  # D08 D09 D10 D11 D12
            activities=0, activities_per_win=0 / 3,  # AC02 'Not Started' is open
        ),
        # Adoption 2024-03-15: not the 1st, so the adoption month is transition; the first month starting on or
        # after it is 2024-04, moved on by transition_months 1 -> first post month 2024-05; 2024-04 transition.
        d(2024, 3, 1): m(
            "transition", True,
            win_count=1, loss_count=0, win_rate=1 / 1,  # D13
            won_revenue=10000, avg_deal_size=10000 / 1, median_days_to_close=19,  # 03-01 -> 03-20
            new_customers=1,  # D13 acquires Zeta (D10 was lost, D11 is open)
            new_business_revenue=10000, expansion_revenue=0, net_new_revenue=10000,
            upsell_rate=0 / 1,
            spend=0, cac=0 / 1,
            leads_created=1, leads_converted=0, lead_conversion_rate=0 / 1,  # L09
            deals_created=1,  # D13
            activities=1, activities_per_win=1 / 1,  # AC05
        ),
        d(2024, 4, 1): m(
            "transition", True,
            win_count=0, loss_count=1, win_rate=0 / (0 + 1),  # D14 lost
            won_revenue=0, avg_deal_size=None, median_days_to_close=None,  # no wins
            new_customers=0, new_business_revenue=0, expansion_revenue=0, net_new_revenue=0,
            upsell_rate=None,  # 0 / 0
            spend=0,  # the spend row of 0
            cac=None,  # 0 / 0 new customers
            leads_created=0, leads_converted=0, lead_conversion_rate=None,  # 0 / 0
            deals_created=1,  # D14
            activities=0, activities_per_win=None,  # 0 / 0 wins
        ),
        d(2024, 5, 1): m(
            "post", True,
            win_count=4, loss_count=1, win_rate=4 / (4 + 1),  # wins D15 D16 D17 D19; loss D18
            won_revenue=2500 + 600 + 0 + 1200,  # D17's missing amount counts as 0
            avg_deal_size=4300 / 4,
            median_days_to_close=(2 + 10) / 2,  # D19 1, D16 2, D15 10, D17 10
            new_customers=2,  # D15 (Epsilon: D09 without closed_at acquired nobody), D19 (Eta)
            new_business_revenue=2500 + 1200, expansion_revenue=600 + 0,  # D16, D17
            net_new_revenue=3700 + 600,
            upsell_rate=2 / 4,  # expansion D16 D17 / non-renewal wins D15 D16 D17 D19
            spend=1000 + 2000 + 0, cac=3000 / 2,
            leads_created=2, leads_converted=1, lead_conversion_rate=1 / 2,  # L10 L11; L10 converted
            deals_created=5,  # D15 .. D19
            activities=2, activities_per_win=2 / 4,  # AC10, AC11 (no status = completed)
        ),
        d(2024, 6, 1): m(
            "post", True,
            win_count=4, loss_count=2, win_rate=4 / (4 + 2),  # wins D20 D21 D22 D25; losses D23 D24
            won_revenue=4000 + 300 + 900 + 100, avg_deal_size=5300 / 4,
            median_days_to_close=(2 + 20) / 2,  # D22 2, D25 2, D21 20, D20 29
            new_customers=1,  # D21 (Theta, closed 08:00 before D20's 09:00); D25 is a renewal, not new_business
            new_business_revenue=300, expansion_revenue=4000,  # D21; D20
            net_new_revenue=300 + 4000,
            upsell_rate=1 / 2,  # expansion D20 / non-renewal wins D20 D21 (renewals D22 D25 left out)
            spend=500 + 300 + 1000,  # the 2024-06-15 row counts for June
            cac=1800 / 1,
            leads_created=3, leads_converted=1, lead_conversion_rate=1 / 3,  # L12 L13 L14; L12 converted
            deals_created=6,  # D20 .. D25
            activities=2, activities_per_win=2 / 4,  # AC13 ('Completed'), AC14 (06-30 23:59:59); AC12 open
        ),
        # as_of 2024-07-10: July's last day is not before it, so July is not complete (and in no window).
        d(2024, 7, 1): m(
            "post", False,
            win_count=1, loss_count=0, win_rate=1 / 1,  # D26
            won_revenue=777, avg_deal_size=777 / 1, median_days_to_close=4,  # 07-01 -> 07-05
            new_customers=1,  # D26 acquires Iota (D24 was lost)
            new_business_revenue=777, expansion_revenue=0, net_new_revenue=777,
            upsell_rate=0 / 1,
            spend=50, cac=50 / 1,
            leads_created=1, leads_converted=0, lead_conversion_rate=0 / 1,  # L15
            deals_created=1,
            activities=1, activities_per_win=1 / 1,  # AC15
        ),
    }
    assert_rows(actual, expected, MONTHLY_COLUMNS)


# The main dataset's windows, N = 2:
# pre  2024-01 + 2024-02: wins 4 + 3 = 7, losses 1 + 1 = 2, won revenue 3600 + 2600 = 6200,
#      days to close (D08 left out) 1, 3, 4, 7, 20, 20 -> median (4 + 7) / 2 = 5.5 (six values),
#      new customers 2 + 2 = 4, new_business 300 + 2200 = 2500, expansion 2500 + 0 = 2500,
#      expansion wins D02 D03 = 2 of 5 non-renewal wins (D02 D03 D04 D07 D08), no spend rows,
#      leads 4 + 3 = 7 of which converted 2 + 1 = 3, deals created 6 + 5 = 11, activities 0 (rows, all open).
# post 2024-05 + 2024-06: wins 4 + 4 = 8, losses 1 + 2 = 3, won revenue 4300 + 5300 = 9600,
#      days 1, 2, 2, 2, 10, 10, 20, 29 -> median (2 + 10) / 2 = 6 (eight values),
#      new customers 2 + 1 = 3, new_business 3700 + 300 = 4000, expansion 600 + 4000 = 4600,
#      expansion wins D16 D17 D20 = 3 of 6 non-renewal wins, spend 3000 + 1800 = 4800,
#      leads 2 + 3 = 5 of which converted 1 + 1 = 2, deals created 5 + 6 = 11, activities 2 + 2 = 4.
MAIN_ADOPTION = {
    # metric: (pre, post, change, pct_change)
    "win_count": (7 / 2, 8 / 2, 4.0 - 3.5, 0.5 / 3.5),
    "loss_count": (2 / 2, 3 / 2, 1.5 - 1.0, 0.5 / 1.0),
    "win_rate": (7 / 9, 8 / 11, 8 / 11 - 7 / 9, (8 / 11 - 7 / 9) / (7 / 9)),  # pooled, not mean of months
    "won_revenue": (6200 / 2, 9600 / 2, 4800 - 3100, 1700 / 3100),
    "avg_deal_size": (6200 / 7, 9600 / 8, 1200 - 6200 / 7, (1200 - 6200 / 7) / (6200 / 7)),
    "median_days_to_close": (5.5, 6.0, 6.0 - 5.5, 0.5 / 5.5),
    "new_customers": (4 / 2, 3 / 2, 1.5 - 2.0, -0.5 / 2.0),
    "new_business_revenue": (2500 / 2, 4000 / 2, 2000 - 1250, 750 / 1250),
    "expansion_revenue": (2500 / 2, 4600 / 2, 2300 - 1250, 1050 / 1250),
    "net_new_revenue": (5000 / 2, 8600 / 2, 4300 - 2500, 1800 / 2500),
    "upsell_rate": (2 / 5, 3 / 6, 0.5 - 0.4, 0.1 / 0.4),
    "spend": (None, 4800 / 2, None, None),  # no spend row in the pre window's months -> null, not 0
    "cac": (None, 4800 / 3, None, None),  # pooled: window spend / window new customers
    "leads_created": (7 / 2, 5 / 2, 2.5 - 3.5, -1.0 / 3.5),
    "leads_converted": (3 / 2, 2 / 2, 1.0 - 1.5, -0.5 / 1.5),
    "lead_conversion_rate": (3 / 7, 2 / 5, 2 / 5 - 3 / 7, (2 / 5 - 3 / 7) / (3 / 7)),
    "deals_created": (11 / 2, 11 / 2, 0.0, 0.0 / 5.5),
    "activities": (0 / 2, 4 / 2, 2.0 - 0.0, None),  # pre 0 -> pct_change null
    "activities_per_win": (0 / 7, 4 / 8, 0.5 - 0.0, None),
}


def test_main_adoption(main):
    project, _ = main
    rows = table(project, "SELECT * FROM metrics.adoption")
    assert [r["metric"] for r in rows] == ADOPTION_METRICS
    actual = {r["metric"]: r for r in rows if r["metric"] in FIGURES}
    expected = {
        name: {
            "pre_value": pre, "post_value": post, "change": change, "pct_change": pct,
            "pre_months": 2, "post_months": 2, "basis": "per_month" if name in PER_MONTH else "pooled",
        }
        for name, (pre, post, change, pct) in MAIN_ADOPTION.items()
    }
    assert_rows(actual, expected, ["pre_value", "post_value", "change", "pct_change", "pre_months", "post_months", "basis"])


def test_main_adoption_metadata(main):
    _, result = main
    meta = materialization_metadata(result, "metrics/adoption")
    assert meta["window_months_n"] == 2  # min(12, 2 complete post months, 4 months of data before 2024-03)
    assert (meta["first_data_month"], meta["adoption_month"]) == ("2023-11", "2024-03")
    assert meta["pre_window"] == "2024-01 … 2024-02"
    assert meta["post_window"] == "2024-05 … 2024-06"
    # Leads created less than 90 days before as_of 2024-07-10 (after 2024-04-11): all 5 post-window leads.
    assert "pre window 0, post window 5" in meta["leads_too_recent_to_convert"]


# metrics.lead_sources, N = 2, per (window, source). Deals by resolved source (see MAIN_DEALS):
# pre  Web: created D03 D06 D09; won D03 (2000, acquires Beta) D06 (800); leads L01 L02 (L01 converted)
#      Referral: created D02 D08 D10; won D02 (500) D08 (700, acquires Gamma), lost D10; leads L03 L06 (none)
#      Partner: created D04 D05 D12; won D04 (300, no account, new_business) D12 (400), lost D05;
#               leads L05 L07 (L07 converted)
#      Unknown: created D07 D11; won D07 (1500, acquires Delta); lead L04 (converted)
#      no spend rows in the window: spend and cac null for every source.
# post Web: created D15 D18 D20 D21; won D15 (2500, acquires) D20 (4000) D21 (300, acquires), lost D18;
#           leads L12 (converted) L13; spend 1000 + 500
#      Referral: created D16 D22 D24; won D16 (600) D22 (900), lost D24; lead L10 (converted); spend row of 0
#      Partner: created D17 D19 D25; won D17 (0) D19 (1200, acquires Eta) D25 (100); lead L11; no Partner spend
#      Unknown: created D23, lost D23; lead L14
#      Trade Show: only spend, 300. The 3000 of sales spend without a channel is in no row.
def ls(leads, converted, rate, deals, wins, win_rate, revenue, avg, spend, new, cac) -> dict:
    return dict(zip(LEAD_SOURCE_COLUMNS, (leads, converted, rate, deals, wins, win_rate, revenue, avg, spend, new, cac)))


MAIN_LEAD_SOURCES = {
    # (leads_created, leads_converted, lead_conversion_rate, deals_created, win_count, win_rate, won_revenue,
    #  avg_deal_size, spend, new_customers, cac); counts and sums / 2, rates pooled over the window
    ("pre", "Partner"): ls(2 / 2, 1 / 2, 1 / 2, 3 / 2, 2 / 2, 2 / 3, (300 + 400) / 2, 700 / 2, None, 1 / 2, None),
    ("pre", "Referral"): ls(2 / 2, 0 / 2, 0 / 2, 3 / 2, 2 / 2, 2 / 3, (500 + 700) / 2, 1200 / 2, None, 1 / 2, None),
    ("pre", "Trade Show"): ls(0.0, 0.0, None, 0.0, 0.0, None, 0.0, None, None, 0.0, None),
    ("pre", "Unknown"): ls(1 / 2, 1 / 2, 1 / 1, 2 / 2, 1 / 2, 1 / 1, 1500 / 2, 1500 / 1, None, 1 / 2, None),
    ("pre", "Web"): ls(2 / 2, 1 / 2, 1 / 2, 3 / 2, 2 / 2, 2 / 2, (2000 + 800) / 2, 2800 / 2, None, 1 / 2, None),
    ("post", "Partner"): ls(1 / 2, 0 / 2, 0 / 1, 3 / 2, 3 / 2, 3 / 3, (0 + 1200 + 100) / 2, 1300 / 3, 0 / 2, 1 / 2, 0 / 1),
    ("post", "Referral"): ls(1 / 2, 1 / 2, 1 / 1, 3 / 2, 2 / 2, 2 / 3, (600 + 900) / 2, 1500 / 2, 0 / 2, 0 / 2, None),
    ("post", "Trade Show"): ls(0 / 2, 0 / 2, None, 0 / 2, 0 / 2, None, 0 / 2, None, 300 / 2, 0 / 2, None),
    ("post", "Unknown"): ls(1 / 2, 0 / 2, 0 / 1, 1 / 2, 0 / 2, 0 / 1, 0 / 2, None, 0 / 2, 0 / 2, None),
    ("post", "Web"): ls(2 / 2, 1 / 2, 1 / 2, 4 / 2, 3 / 2, 3 / 4, (2500 + 4000 + 300) / 2, 6800 / 3, (1000 + 500) / 2, 2 / 2, 1500 / 2),
}


def test_main_lead_sources(main):
    project, _ = main
    actual = {(r["period"], r["lead_source"]): r for r in table(project, "SELECT * FROM metrics.lead_sources")}
    assert_rows(actual, MAIN_LEAD_SOURCES, LEAD_SOURCE_COLUMNS)


# --- no leads, no spend ---------------------------------------------------------------------------------
# Adoption 2024-03-01 (on the 1st: 2024-03 is the first post month), transition 0, window_months 2,
# as_of 2024-06-01 (2024-05 ends on 05-31, before it: complete; 2024-06 is not). First month with data
# 2023-10: 5 months before 2024-03; complete post months 2024-03 .. 2024-05: 3; N = min(2, 3, 5) = 2.
# Pre window 2024-01 .. 2024-02, post window 2024-03 .. 2024-04. Accounts K1 .. K6 by name.

BARE_DEALS = """
deal_id,account_id,account_name,stage,is_closed,is_won,amount,currency,deal_type,lead_source,lead_id,created_at,closed_at
B01,K1,Kappa,Closed Won,true,true,1000,USD,,,,2023-10-02T00:00:00Z,2023-10-12T00:00:00Z
B05,K4,Lambda,Closed Won,true,true,400,USD,,,,2023-12-01T00:00:00Z,2023-12-03T00:00:00Z
B02,K2,Mu,Closed Won,true,true,200,USD,,,,2024-01-03T00:00:00Z,2024-01-13T00:00:00Z
B03,K3,Nu,Closed Lost,true,false,50,USD,,,,2024-01-04T00:00:00Z,2024-02-01T00:00:00Z
B04,K1,Kappa,Closed Won,true,true,300,USD,,,,2024-02-01T00:00:00Z,2024-02-05T00:00:00Z
B06,K5,Xi,Closed Won,true,true,500,USD,,,,2024-03-01T00:00:00Z,2024-03-11T00:00:00Z
B07,,,Closed Won,true,true,100,USD,,,,2024-04-01T00:00:00Z,2024-04-03T00:00:00Z
B08,K6,Omicron,Closed Won,true,true,600,USD,,,,2024-05-01T00:00:00Z,2024-05-06T00:00:00Z
"""
# Days: B01 10, B05 2, B02 10, B04 4, B06 10, B07 2, B08 5. B04 is Kappa's second win -> expansion; B07 has
# no account -> new_business, a new customer; every other win is its account's acquisition. No lead sources:
# every deal is Unknown.
BARE_ACTIVITIES = """
activity_id,type,status,occurred_at,deal_id
BA1,call,completed,2024-03-05T00:00:00Z,B06
BA2,task,open,2024-04-10T00:00:00Z,B07
BA3,email,completed,2024-04-11T00:00:00Z,B07
BA4,call,completed,2024-05-02T00:00:00Z,B08
"""
# No activity row of any status in the pre window: its activities and activities_per_win are null.

NO_LEADS_NO_SPEND = dict(spend=None, cac=None, leads_created=None, leads_converted=None, lead_conversion_rate=None)


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    project = Project(tmp_path_factory.mktemp("bare"))
    project.write("deals.csv", BARE_DEALS)
    project.write("activities.csv", BARE_ACTIVITIES)
    project.assumptions.write_text(
        assumptions(adoption_date="2024-03-01", transition_months=0, window_months=2, as_of="2024-06-01")
    )
    with planned_events_as_ranges():
        project.stage(*MONTHS)
    publish(project)
    return project


def _won(amount, days, new_business=True, activities=0):
    """A month whose only deal is one win of `amount` closed after `days` (new_business and a new customer,
    or else expansion), with `activities` completed activities."""
    return dict(
        win_count=1, loss_count=0, win_rate=1 / 1, won_revenue=amount, avg_deal_size=amount / 1,
        median_days_to_close=days, new_customers=1 if new_business else 0,
        new_business_revenue=amount if new_business else 0, expansion_revenue=0 if new_business else amount,
        net_new_revenue=amount, upsell_rate=(0 if new_business else 1) / 1,
        deals_created=1, activities=activities, activities_per_win=activities / 1, **NO_LEADS_NO_SPEND,
    )


EMPTY_MONTH = dict(
    win_count=0, loss_count=0, win_rate=None, won_revenue=0, avg_deal_size=None, median_days_to_close=None,
    new_customers=0, new_business_revenue=0, expansion_revenue=0, net_new_revenue=0, upsell_rate=None,
    deals_created=0, activities=0, activities_per_win=None, **NO_LEADS_NO_SPEND,
)


def test_bare_monthly_without_leads_or_spend(bare):
    """crm.leads and crm.spend hold no rows: spend, cac and the lead figures are null in every month;
    crm.activities holds rows, so a month without any has 0 activities."""
    actual = {r["month"]: r for r in table(bare, "SELECT * FROM metrics.monthly")}
    d = dt.date
    expected = {
        d(2023, 10, 1): m("pre", True, **_won(1000, 10)),  # B01
        d(2023, 11, 1): m("pre", True, **EMPTY_MONTH),
        d(2023, 12, 1): m("pre", True, **_won(400, 2)),  # B05
        d(2024, 1, 1): m("pre", True, **{**_won(200, 10), "deals_created": 2}),  # B02 won; B03 created
        d(2024, 2, 1): m(
            "pre", True,
            win_count=1, loss_count=1, win_rate=1 / (1 + 1),  # B04 won, B03 lost (closed 02-01)
            won_revenue=300, avg_deal_size=300 / 1, median_days_to_close=4,
            new_customers=0, new_business_revenue=0, expansion_revenue=300, net_new_revenue=0 + 300,
            upsell_rate=1 / 1, deals_created=1, activities=0, activities_per_win=0 / 1, **NO_LEADS_NO_SPEND,
        ),
        d(2024, 3, 1): m("post", True, **_won(500, 10, activities=1)),  # B06; BA1
        d(2024, 4, 1): m("post", True, **_won(100, 2, activities=1)),  # B07 (no account); BA3 (BA2 open)
        d(2024, 5, 1): m("post", True, **_won(600, 5, activities=1)),  # B08; BA4
        d(2024, 6, 1): m("post", False, **EMPTY_MONTH),  # the month of as_of
    }
    assert_rows(actual, expected, MONTHLY_COLUMNS)


# pre  2024-01 + 02: wins B02 B04 = 2, loss B03 = 1, revenue 200 + 300 = 500, days 10, 4 -> (4 + 10) / 2 = 7,
#      new customers B02 = 1, new_business 200, expansion 300 (1 of 2 non-renewal wins), deals created 3,
#      no activity rows at all.
# post 2024-03 + 04: wins B06 B07 = 2, no loss, revenue 500 + 100 = 600, days 10, 2 -> 6, new customers 2,
#      new_business 600, expansion 0, deals created 2, completed activities BA1 BA3 = 2.
BARE_ADOPTION = {
    "win_count": (2 / 2, 2 / 2, 0.0, 0.0),
    "loss_count": (1 / 2, 0 / 2, -0.5, -0.5 / 0.5),
    "win_rate": (2 / 3, 2 / 2, 1 - 2 / 3, (1 / 3) / (2 / 3)),
    "won_revenue": (500 / 2, 600 / 2, 50.0, 50 / 250),
    "avg_deal_size": (500 / 2, 600 / 2, 50.0, 50 / 250),
    "median_days_to_close": ((4 + 10) / 2, (2 + 10) / 2, 6 - 7, -1 / 7),
    "new_customers": (1 / 2, 2 / 2, 0.5, 0.5 / 0.5),
    "new_business_revenue": (200 / 2, 600 / 2, 200.0, 200 / 100),
    "expansion_revenue": (300 / 2, 0 / 2, -150.0, -150 / 150),
    "net_new_revenue": (500 / 2, 600 / 2, 50.0, 50 / 250),
    "upsell_rate": (1 / 2, 0 / 2, -0.5, -0.5 / 0.5),
    "spend": (None, None, None, None),
    "cac": (None, None, None, None),
    "leads_created": (None, None, None, None),
    "leads_converted": (None, None, None, None),
    "lead_conversion_rate": (None, None, None, None),
    "deals_created": (3 / 2, 2 / 2, -0.5, -0.5 / 1.5),
    "activities": (None, 2 / 2, None, None),  # no activity row in the pre window: null, not a fake lift
    "activities_per_win": (None, 2 / 2, None, None),
}


def test_bare_adoption_without_leads_or_spend(bare):
    rows = table(bare, "SELECT * FROM metrics.adoption")
    assert [r["metric"] for r in rows] == ADOPTION_METRICS
    actual = {r["metric"]: r for r in rows if r["metric"] in FIGURES}
    expected = {
        name: {"pre_value": pre, "post_value": post, "change": change, "pct_change": pct, "pre_months": 2, "post_months": 2}
        for name, (pre, post, change, pct) in BARE_ADOPTION.items()
    }
    assert_rows(actual, expected, ["pre_value", "post_value", "change", "pct_change", "pre_months", "post_months"])


def test_bare_lead_sources_without_leads_or_spend(bare):
    actual = {(r["period"], r["lead_source"]): r for r in table(bare, "SELECT * FROM metrics.lead_sources")}
    expected = {
        # every deal is Unknown; the figures as in BARE_ADOPTION, leads and spend null
        ("pre", "Unknown"): ls(None, None, None, 3 / 2, 2 / 2, 2 / 3, 500 / 2, 500 / 2, None, 1 / 2, None),
        ("post", "Unknown"): ls(None, None, None, 2 / 2, 2 / 2, 2 / 2, 600 / 2, 600 / 2, None, 2 / 2, None),
    }
    assert_rows(actual, expected, LEAD_SOURCE_COLUMNS)


# --- an empty comparison window -------------------------------------------------------------------------

SPARSE_DEALS = """
deal_id,account_id,account_name,stage,is_closed,is_won,amount,currency,deal_type,lead_source,lead_id,created_at,closed_at
S01,P1,Pi,Closed Won,true,true,100,USD,,Web,,2023-10-02T00:00:00Z,2023-09-28T00:00:00Z
S02,P2,Rho,Closed Won,true,true,200,USD,,Web,,2024-07-03T00:00:00Z,2024-07-08T00:00:00Z
"""
# S01 closes (2023-09-28) before its creation (2023-10-02): the first month with data is 2023-09, from a
# closed_at alone. S02 closes in 2024-07.
SPARSE_LEADS = """
lead_id,lead_source,status,created_at,is_converted,converted_at,converted_deal_id
M01,Web,Open,2024-01-10T00:00:00Z,false,,
"""


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    project = Project(tmp_path_factory.mktemp("sparse"))
    project.write("deals.csv", SPARSE_DEALS)
    project.write("leads.csv", SPARSE_LEADS)
    with planned_events_as_ranges():
        project.stage(*MONTHS)
    return project


@pytest.mark.parametrize(
    "adoption_date, empty, adoption_month, periods",
    [
        # Adoption 2024-06-20: 2024-06 is transition, the first post month 2024-07 ends on 07-31, which is not
        # before as_of 2024-07-31: no complete post month.
        ("2024-06-20", "post window is empty", "2024-06", {"2024-05": "pre", "2024-06": "transition", "2024-07": "post"}),
        # Adoption in the first month with data: no month of data before it.
        ("2023-09-01", "pre window is empty", "2023-09", {"2023-09": "post", "2024-07": "post"}),
    ],
)
def test_empty_window_fails_the_comparison_not_the_monthly_series(sparse, adoption_date, empty, adoption_month, periods):
    sparse.assumptions.write_text(
        assumptions(adoption_date=adoption_date, transition_months=0, window_months=12, as_of="2024-07-31")
    )
    result = publish(sparse, raise_on_error=False)
    assert not result.success
    messages = {msg.split(":", 1)[0]: msg for msg in failure_messages(result)}
    assert set(messages) == {"metrics/adoption", "metrics/lead_sources"}
    assert failure_message(result) in messages.values()
    for message in messages.values():
        assert empty in message
        assert "First month with data: 2023-09" in message
        assert f"adoption month: {adoption_month}" in message
    # metrics.monthly is still published: 2023-09 .. 2024-07 (the month of as_of, not complete).
    assert [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()] == ["metrics/monthly"]
    rows = table(sparse, "SELECT strftime(month, '%Y-%m') AS month, period, is_complete, win_count, leads_created FROM metrics.monthly")
    assert [r["month"] for r in rows] == [f"2023-{n:02d}" for n in range(9, 13)] + [f"2024-{n:02d}" for n in range(1, 8)]
    by_month = {r["month"]: r for r in rows}
    assert {k: by_month[k]["period"] for k in periods} == periods
    assert [r["is_complete"] for r in rows] == [True] * 10 + [False]  # 2024-07-31 is not before as_of 2024-07-31
    assert [by_month[k]["win_count"] for k in ("2023-09", "2023-10", "2024-07")] == [1, 0, 1]  # S01 (closed), S02
    assert (by_month["2024-01"]["leads_created"], by_month["2024-02"]["leads_created"]) == (1, 0)  # M01
    assert sparse.query(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'metrics' AND table_name <> 'monthly'"
    ) == [(0,)]

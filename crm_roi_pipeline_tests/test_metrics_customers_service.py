"""Retention and customer value, and service (tickets): every figure of those two sections of METRICS.md,
worked out by hand on small datasets, and the interval of every new figure's change.

The expected values come from /work/shared/METRICS.md and the arithmetic written beside them, never from the
code's output. Deals are staged through the real pipeline (deals only, over 2023-12 … 2024-06); tickets are
INSERTed into crm.tickets directly, so these tests do not depend on how tickets are staged.

Every dataset has the same periods: adoption 2024-03-01 (the 1st, so 2024-03 is the first post month),
transition 0, window_months 2, as_of 2024-06-01 (2024-05 ends before it: complete; 2024-06 is not). First
month with data 2023-12: 3 months before the adoption month, 3 complete post months, so N = min(2, 3, 3) = 2.
Pre window 2024-01 … 2024-02, post window 2024-03 … 2024-04. gross_margin 0.6.

* `main`: renewals won and lost (with amounts) in both windows, new and repeat customers, and tickets with
  every case of the service section.
* `legacy`: no deal closed in the pre window carries a deal_type (null renewal figures there), and no ticket
  is created in the pre window (null ticket figures there although one is closed in it).
* `plain`: deal types but no renewal at all, and no tickets at all: those figures null everywhere.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from dagster import materialize

from crm_roi_pipeline.metrics import compute, labels
from crm_roi_pipeline.metrics.assets import metrics_adoption, metrics_facts, metrics_lead_sources, metrics_monthly
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline.statistics.intervals import bootstrap_paired_difference, ratio_of_ratios_statistic, sum_statistic
from crm_roi_pipeline_tests.conftest import Project, planned_events_as_ranges
from crm_roi_pipeline_tests.test_metrics_figures import table

RENEWAL = ["renewals_won", "renewals_lost", "renewal_rate", "churn_rate", "renewal_revenue_rate"]
CUSTOMERS = ["active_customers", "repeat_customers", "repeat_customer_rate", "revenue_per_customer"]
TICKETS = [
    "tickets_created", "tickets_closed", "first_response_rate", "median_first_response_hours",
    "median_resolution_hours", "csat_rate",
]
NEW_FIGURES = [*RENEWAL, *CUSTOMERS, *TICKETS]
PER_MONTH = {"renewals_won", "renewals_lost", "active_customers", "repeat_customers", "tickets_created", "tickets_closed"}
MONTHS = ("2023-12-01", "2024-06-01")

ASSUMPTIONS = """\
adoption_date: 2024-03-01
transition_months: 0
window_months: 2
as_of: 2024-06-01
reporting_currency: USD
gross_margin: 0.6
discount_rate: 0.1
horizon_years: 3
costs:
  - {name: Licences, category: software, recurring: true, amount: 12000}
"""

DEALS_HEADER = "deal_id,account_id,account_name,stage,is_closed,is_won,amount,currency,deal_type,lead_source,lead_id,created_at,closed_at\n"


def deal(deal_id, account, won, amount, deal_type, source, closed) -> str:
    """A closed deal created 5 days before its close (at noon UTC)."""
    closed_at = dt.datetime.fromisoformat(closed).replace(hour=12)
    created = closed_at - dt.timedelta(days=5)
    stage = "Closed Won" if won else "Closed Lost"
    return (f"{deal_id},{account or ''},{account or ''},{stage},true,{str(won).lower()},{amount},USD,{deal_type},"
            f"{source},,{created:%Y-%m-%dT%H:%M:%SZ},{closed_at:%Y-%m-%dT%H:%M:%SZ}\n")


def insert_tickets(project: Project, rows: list[tuple]) -> None:
    """rows: (ticket_id, created_at, first_response_at, closed_at, csat_score, csat_scale_max)."""
    if not rows:
        return
    with project.connect() as conn:
        conn.executemany(
            "INSERT INTO crm.tickets (ticket_id, source_system, loaded_from, status, created_at, first_response_at, "
            "closed_at, csat_score, csat_scale_max) VALUES (?, 'csv', 'csv', ?, ?, ?, ?, ?, ?)",
            [(t, "closed" if closed else "open", created, response, closed, score, scale)
             for t, created, response, closed, score, scale in rows],
        )


def build(tmp_path_factory, name: str, deals: str, tickets: list[tuple]) -> tuple[Project, object]:
    project = Project(tmp_path_factory.mktemp(name))
    project.write("deals.csv", DEALS_HEADER + deals)
    project.assumptions.write_text(ASSUMPTIONS)
    with planned_events_as_ranges():
        project.stage(*MONTHS, entities=["deals"])
    insert_tickets(project, tickets)
    result = materialize(
        [metrics_monthly, metrics_adoption, metrics_lead_sources],
        resources={**project.resources(), "reports": Reports(dir=str(project.root / "reports"))},
        instance=project.instance,
    )
    return project, result


def _same(got, want) -> bool:
    if want is None:
        return got is None
    return got is not None and got == pytest.approx(want, rel=1e-9, abs=1e-9)


def assert_cells(actual: dict, expected: dict) -> None:
    """expected: key -> {column: value}; every cell compared, all mismatches reported at once."""
    assert set(expected) <= set(actual), f"missing rows: {set(expected) - set(actual)}"
    problems = [
        f"{key} {col}: expected {want!r}, got {actual[key][col]!r}"
        for key, row in expected.items() for col, want in row.items() if not _same(actual[key][col], want)
    ]
    assert not problems, "\n".join(problems)


def monthly(project: Project) -> dict:
    return {r["month"]: r for r in table(project, "SELECT * FROM metrics.monthly")}


def adoption(project: Project) -> dict:
    return {r["metric"]: r for r in table(project, "SELECT * FROM metrics.adoption")}


def window_rows(figures: dict[str, tuple]) -> dict:
    """metric -> (pre, post) as metrics.adoption publishes them, with change and pct_change by METRICS.md."""
    out = {}
    for name, (pre, post) in figures.items():
        change = None if pre is None or post is None else post - pre
        pct = None if change is None or not pre else change / abs(pre)
        out[name] = {"pre_value": pre, "post_value": post, "change": change, "pct_change": pct}
    return out


d = dt.date

# --- main -------------------------------------------------------------------------------------------------
# Accounts by name: Acme, Bolt, Cora, Dune, Echo, Fern, Gale. R04 has no account.
MAIN_DEALS = "".join([
    deal("X01", "Acme", True, 1000, "new_business", "Web", "2023-12-10"),  # Acme acquired 2023-12
    deal("X02", "Bolt", True, 500, "", "Web", "2023-12-20"),  # Bolt acquired 2023-12; no deal_type
    deal("R01", "Acme", True, 1200, "renewal", "Web", "2024-01-15"),
    deal("R02", "Bolt", False, 800, "renewal", "Web", "2024-01-20"),
    deal("N01", "Cora", True, 2000, "new_business", "Web", "2024-01-25"),  # Cora acquired 2024-01
    deal("E01", "Cora", True, 600, "expansion", "Partner", "2024-02-10"),
    deal("R03", "Dune", False, 300, "renewal", "Partner", "2024-02-12"),  # Dune never won in the data
    deal("R04", "", True, 400, "renewal", "Partner", "2024-02-14"),  # a renewal without an account
    deal("A02", "Acme", True, 100, "", "Web", "2024-02-20"),
    deal("R05", "Acme", True, 1500, "renewal", "Web", "2024-03-05"),
    deal("R06", "Cora", True, 900, "renewal", "Partner", "2024-03-15"),
    deal("R07", "Echo", False, 700, "renewal", "Partner", "2024-03-25"),  # Echo never won
    deal("N02", "Fern", True, 3000, "new_business", "Partner", "2024-04-02"),  # Fern acquired 2024-04
    deal("R08", "Bolt", True, 500, "renewal", "Web", "2024-04-10"),
    deal("L01", "Gale", False, 200, "new_business", "Web", "2024-04-12"),
    deal("U01", "Acme", True, 250, "", "Web", "2024-05-05"),  # the only deal closed in 2024-05: untyped
])

T = dt.datetime
MAIN_TICKETS = [
    # id, created_at, first_response_at, closed_at, csat_score, csat_scale_max
    ("T06", T(2023, 12, 28), T(2023, 12, 28, 2), T(2024, 1, 5), 6, 5),  # fr 2 h; res 8 days = 192 h; 6 of 5: unrated
    ("T01", T(2024, 1, 2, 9), T(2024, 1, 2, 10, 30), T(2024, 1, 3, 9), 5, 5),  # fr 1.5 h; res 24 h; satisfied
    ("T02", T(2024, 1, 10, 8), None, T(2024, 1, 12, 8), 3, 5),  # unanswered; res 48 h; rated, not satisfied
    ("T03", T(2024, 1, 20, 12), T(2024, 1, 20, 11), None, None, None),  # answered at -1 h (left out of median); open
    ("T04", T(2024, 2, 5), T(2024, 2, 5, 6), T(2024, 2, 4), 8, 10),  # fr 6 h; res -24 h (left out); 8 of 10 satisfied
    ("T05", T(2024, 2, 10), T(2024, 2, 10, 0, 45), T(2024, 2, 11, 12), 7, 10),  # fr 0.75 h; res 36 h; 7/10 not
    ("T07", T(2024, 3, 1, 8), T(2024, 3, 1, 8, 30), T(2024, 3, 1, 10), 4, 5),  # fr 0.5 h; res 2 h; 4/5 satisfied
    ("T08", T(2024, 3, 5), T(2024, 3, 5, 1), T(2024, 3, 6), 10, 10),  # fr 1 h; res 24 h; 10/10 satisfied
    ("T09", T(2024, 3, 20), T(2024, 3, 20, 3), T(2024, 4, 2), 9, 10),  # fr 3 h; res 13 days = 312 h; satisfied
    ("T10", T(2024, 4, 10), None, None, None, None),  # unanswered, open
    ("T11", T(2024, 4, 15, 6), T(2024, 4, 15, 8, 15), T(2024, 4, 15, 18), 2, 3),  # fr 2.25 h; res 12 h; 2/3 not
    ("T12", T(2024, 4, 20), T(2024, 4, 20, 0, 20), T(2024, 5, 1), -1, 5),  # fr 1/3 h; res 264 h; -1: unrated
    ("T13", T(2024, 4, 25), None, T(2024, 4, 26), 5, None),  # unanswered; res 24 h; no scale: unrated
    ("T14", T(2024, 5, 10), T(2024, 5, 10, 1, 30), T(2024, 5, 10, 4), 4.5, 5),  # fr 1.5 h; res 4 h; 4.5/5 satisfied
]
# Satisfied is score >= 0.8 x max: 4 of 5 (4 >= 4), 8 of 10 (8 >= 8), 4.5 of 5; not 3 of 5, 7 of 10, 2 of 3
# (2 < 2.4). T09: 2024-03-20 -> 2024-04-02 is 11 days to March's end + 2 = 13 days. T12: 04-20 -> 05-01 is
# 11 days = 264 h.


@pytest.fixture(scope="module")
def main(tmp_path_factory):
    return build(tmp_path_factory, "main", MAIN_DEALS, MAIN_TICKETS)


def test_main_inputs_as_the_expectations_assume(main):
    project, _ = main
    assert project.query("SELECT count(*) FROM crm.rejects") == [(0,)]
    deals = {r["deal_id"]: r for r in table(project, "SELECT deal_id, deal_type, account_key FROM crm.deals")}
    assert len(deals) == 16
    assert sorted(x for x, r in deals.items() if r["deal_type"] == "renewal") == [f"R0{i}" for i in range(1, 9)]
    assert [deals[x]["deal_type"] for x in ("X02", "A02", "U01")] == [None] * 3
    assert deals["R04"]["account_key"] is None
    assert len({deals[x]["account_key"] for x in ("X01", "R01", "A02", "R05", "U01")}) == 1  # all Acme
    assert project.query("SELECT count(*) FROM crm.tickets") == [(14,)]


def test_main_monthly(main):
    project, _ = main
    expected = {
        d(2023, 12, 1): dict(
            # X01 is typed (new_business): renewal data; no renewal closed: 0, 0 and 0 / 0 rates
            renewals_won=0, renewals_lost=0, renewal_rate=None, churn_rate=None, renewal_revenue_rate=None,
            active_customers=2, repeat_customers=0,  # Acme, Bolt: both acquired this month, not before it
            repeat_customer_rate=0 / 2, revenue_per_customer=(1000 + 500) / 2,
            tickets_created=1, tickets_closed=0,  # T06
            first_response_rate=1 / 1, median_first_response_hours=2.0, median_resolution_hours=None, csat_rate=None,
        ),
        d(2024, 1, 1): dict(
            renewals_won=1, renewals_lost=1, renewal_rate=1 / 2, churn_rate=1 - 1 / 2,  # R01 won, R02 lost
            renewal_revenue_rate=1200 / (1200 + 800),
            active_customers=2,  # Acme (R01), Cora (N01); Bolt only lost
            repeat_customers=1,  # Acme (acquired 2023-12); Cora acquired this month
            repeat_customer_rate=1 / 2, revenue_per_customer=(1200 + 2000) / 2,
            tickets_created=3, tickets_closed=3,  # created T01 T02 T03; closed T06 T01 T02
            first_response_rate=2 / 3,  # T01, T03 answered (T03's negative time still has a first response)
            median_first_response_hours=1.5,  # T01 only: T03's -1 h left out
            median_resolution_hours=48.0,  # 24, 48, 192
            csat_rate=1 / 2,  # T01 5/5 satisfied, T02 3/5 not; T06 6 of 5 unrated
        ),
        d(2024, 2, 1): dict(
            renewals_won=1, renewals_lost=1, renewal_rate=1 / 2, churn_rate=1 / 2,  # R04 won, R03 lost
            renewal_revenue_rate=400 / (400 + 300),
            active_customers=2,  # Cora (E01), Acme (A02); R04 has no account
            repeat_customers=2,  # Cora acquired 2024-01, Acme 2023-12: both before February
            repeat_customer_rate=2 / 2, revenue_per_customer=(600 + 100) / 2,
            tickets_created=2, tickets_closed=2,  # T04 T05; T04 (closed 02-04) T05
            first_response_rate=2 / 2, median_first_response_hours=(0.75 + 6) / 2,
            median_resolution_hours=36.0,  # T05; T04's -24 h left out
            csat_rate=1 / 2,  # T04 8/10 satisfied, T05 7/10 not
        ),
        d(2024, 3, 1): dict(
            renewals_won=2, renewals_lost=1, renewal_rate=2 / 3, churn_rate=1 - 2 / 3,  # R05 R06 won, R07 lost
            renewal_revenue_rate=(1500 + 900) / (1500 + 900 + 700),
            active_customers=2, repeat_customers=2,  # Acme, Cora
            repeat_customer_rate=2 / 2, revenue_per_customer=(1500 + 900) / 2,
            tickets_created=3, tickets_closed=2,  # T07 T08 T09; T07 T08
            first_response_rate=3 / 3, median_first_response_hours=1.0,  # 0.5, 1, 3
            median_resolution_hours=(2 + 24) / 2, csat_rate=2 / 2,
        ),
        d(2024, 4, 1): dict(
            renewals_won=1, renewals_lost=0, renewal_rate=1 / 1, churn_rate=0.0,  # R08 won
            renewal_revenue_rate=500 / 500,
            active_customers=2, repeat_customers=1,  # Fern (acquired this month), Bolt (2023-12); Gale lost
            repeat_customer_rate=1 / 2, revenue_per_customer=(3000 + 500) / 2,
            tickets_created=4, tickets_closed=3,  # T10 T11 T12 T13; T09 T11 T13
            first_response_rate=2 / 4,  # T11, T12
            median_first_response_hours=(2.25 + 1 / 3) / 2,
            median_resolution_hours=24.0,  # 12, 24, 312
            csat_rate=1 / 2,  # T09 9/10 satisfied, T11 2/3 not; T13 (no scale) unrated
        ),
        d(2024, 5, 1): dict(
            # U01, the only deal closed this month, carries no deal_type: the renewal figures cannot be known
            renewals_won=None, renewals_lost=None, renewal_rate=None, churn_rate=None, renewal_revenue_rate=None,
            active_customers=1, repeat_customers=1, repeat_customer_rate=1 / 1, revenue_per_customer=250 / 1,
            tickets_created=1, tickets_closed=2,  # T14; T12 T14
            first_response_rate=1 / 1, median_first_response_hours=1.5,
            median_resolution_hours=(4 + 264) / 2,
            csat_rate=1 / 1,  # T14 4.5/5 satisfied; T12's -1 unrated
        ),
        d(2024, 6, 1): dict(
            # nothing closed: no typed deal closed in it -> null renewal figures
            renewals_won=None, renewals_lost=None, renewal_rate=None, churn_rate=None, renewal_revenue_rate=None,
            active_customers=0, repeat_customers=0, repeat_customer_rate=None, revenue_per_customer=None,
            # crm.tickets has rows: a month without tickets has 0 tickets and null rates and medians
            tickets_created=0, tickets_closed=0, first_response_rate=None, median_first_response_hours=None,
            median_resolution_hours=None, csat_rate=None,
        ),
    }
    actual = monthly(project)
    assert sorted(actual) == sorted(expected)
    assert_cells(actual, expected)
    # the contract's column order: the new figures after activities_per_win
    columns = [r[0] for r in project.query("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                           "'metrics' AND table_name = 'monthly' ORDER BY ordinal_position")]
    assert columns[columns.index("activities_per_win") + 1:] == NEW_FIGURES


# Windows, N = 2:
# pre  renewals R01 won 1200, R02 lost 800, R03 lost 300, R04 won 400: won 2, lost 2.
#      Accounts with a won deal: Acme (R01, A02), Cora (N01, E01) = 2, counted once over the window (the
#      months' sum would be 2 + 2 = 4). Repeat: Acme (acquired 2023-12, before 2024-01); Cora was acquired in
#      the window itself (2024-01), so not repeat, though February's monthly row counts her. Revenue of
#      account deals 1200 + 2000 + 600 + 100 = 3900.
#      Tickets created T01..T05 = 5, closed T06 T01 T02 T04 T05 = 5, answered 4 (T01 T03 T04 T05),
#      first response hours 1.5, 6, 0.75 -> 1.5; resolution 192, 24, 48, 36 -> (36 + 48) / 2 = 42;
#      CSAT satisfied T01 T04 of rated T01 T02 T04 T05 = 2 / 4.
#      customer_lifetime_value: the 12 months 2023-03 … 2024-02 hold account wins X01 1000, X02 500, R01 1200,
#      N01 2000, E01 600, A02 100 = 5400 over Acme, Bolt, Cora = 3: 1800 per customer; churn 2 / 4 = 0.5;
#      1800 x 0.6 / 0.5 = 2160.
# post renewals R05 won 1500, R06 won 900, R07 lost 700, R08 won 500: won 3, lost 1.
#      Accounts: Acme, Cora, Fern, Bolt = 4; repeat Acme, Cora, Bolt (all acquired before 2024-03) = 3.
#      Revenue 1500 + 900 + 3000 + 500 = 5900.
#      Tickets created T07..T13 = 7, closed T07 T08 T09 T11 T13 = 5 (T12 closes in May), answered 5
#      (T07 T08 T09 T11 T12), first response 0.5, 1, 3, 2.25, 1/3 -> 1; resolution 2, 24, 312, 12, 24 -> 24;
#      CSAT satisfied T07 T08 T09 of rated T07 T08 T09 T11 = 3 / 4.
#      customer_lifetime_value: 2023-05 … 2024-04 holds 5400 + 5900 = 11300 over Acme, Bolt, Cora, Fern = 4:
#      2825 per customer; churn 1 / 4; 2825 x 0.6 / 0.25 = 6780.
MAIN_WINDOWS = {
    "renewals_won": (2 / 2, 3 / 2),
    "renewals_lost": (2 / 2, 1 / 2),
    "renewal_rate": (2 / 4, 3 / 4),
    "churn_rate": (2 / 4, 1 / 4),
    "renewal_revenue_rate": ((1200 + 400) / (1200 + 800 + 300 + 400), (1500 + 900 + 500) / (1500 + 900 + 700 + 500)),
    "active_customers": (2 / 2, 4 / 2),
    "repeat_customers": (1 / 2, 3 / 2),
    "repeat_customer_rate": (1 / 2, 3 / 4),
    "revenue_per_customer": (3900 / 2, 5900 / 4),
    "tickets_created": (5 / 2, 7 / 2),
    "tickets_closed": (5 / 2, 5 / 2),
    "first_response_rate": (4 / 5, 5 / 7),
    "median_first_response_hours": (1.5, 1.0),
    "median_resolution_hours": ((36 + 48) / 2, 24.0),
    "csat_rate": (2 / 4, 3 / 4),
    "customer_lifetime_value": (1800 * 0.6 / 0.5, 2825 * 0.6 / 0.25),
}


def test_main_adoption(main):
    project, _ = main
    actual = adoption(project)
    names = list(actual)
    # every figure of metrics.monthly, in its order, then customer_lifetime_value
    assert names[names.index("activities_per_win") + 1:] == [*NEW_FIGURES, "customer_lifetime_value"]
    assert_cells(actual, window_rows(MAIN_WINDOWS))
    for name in MAIN_WINDOWS:
        assert actual[name]["basis"] == ("per_month" if name in PER_MONTH else "pooled"), name
        assert (actual[name]["pre_months"], actual[name]["post_months"]) == (2, 2)


def test_main_lead_sources_renewal_rate(main):
    project, _ = main
    actual = {(r["period"], r["lead_source"]): r for r in table(project, "SELECT * FROM metrics.lead_sources")}
    expected = {
        ("pre", "Web"): {"renewal_rate": 1 / 2},  # R01 won, R02 lost
        ("pre", "Partner"): {"renewal_rate": 1 / 2},  # R04 won, R03 lost
        ("post", "Web"): {"renewal_rate": 2 / 2},  # R05, R08 won
        ("post", "Partner"): {"renewal_rate": 1 / 2},  # R06 won, R07 lost
    }
    assert sorted(actual) == sorted(expected)
    assert_cells(actual, expected)


# Expected interval methods, by METRICS.md's kind of each figure (docs/how-sure-are-we.md).
METHODS = {
    "renewals_won": "month_bootstrap", "renewals_lost": "month_bootstrap",
    "tickets_created": "month_bootstrap", "tickets_closed": "month_bootstrap",
    "renewal_rate": "newcombe", "churn_rate": "newcombe", "repeat_customer_rate": "newcombe",
    "first_response_rate": "newcombe", "csat_rate": "newcombe",
    "renewal_revenue_rate": "renewal_deal_bootstrap",
    "active_customers": "account_bootstrap", "repeat_customers": "account_bootstrap",
    "revenue_per_customer": "account_bootstrap",
    "median_first_response_hours": "ticket_bootstrap", "median_resolution_hours": "ticket_bootstrap",
}


def test_main_intervals_hold_the_change_and_name_their_method(main):
    project, _ = main
    actual = adoption(project)
    for name, method in METHODS.items():
        row = actual[name]
        assert row["method"].startswith(method), (name, row["method"])
        assert row["ci_low"] is not None and row["ci_high"] is not None, name
        assert row["ci_low"] - 1e-9 <= row["change"] <= row["ci_high"] + 1e-9, (name, row)
    # The accounts active in either window: Acme and Cora in both, Fern and Bolt after only (R04 has no
    # account: no customer). Each of the 4 drawn accounts changes the count by 0 or +1/2 per month, so every
    # resample's change lies in [0, 2], and so does the interval.
    assert 0 <= actual["active_customers"]["ci_low"] and actual["active_customers"]["ci_high"] <= 2
    # customer_lifetime_value: of the 7 units (Acme, Bolt, Cora, Fern, Dune, Echo and the account-less R04),
    # only Echo lost a renewal in the post window; a resample leaves Echo out with probability (6/7)^7 = 0.34,
    # and then the post churn is 0 and the lifetime value unbounded: no 95% interval, and the method says why.
    clv = actual["customer_lifetime_value"]
    assert (clv["ci_low"], clv["ci_high"]) == (None, None)
    assert clv["method"].startswith("none:") and "churn 0" in clv["method"]


def test_newcombe_interval_of_the_first_response_rate_by_hand(main):
    project, _ = main
    row = adoption(project)["first_response_rate"]
    # Wilson score intervals at z = 1.959964: centre (x + z²/2) / (n + z²), half-width
    # z / (n + z²) · √(x (n − x) / n + z²/4).
    z = 1.959963984540054

    def wilson(x, n):
        centre = (x + z * z / 2) / (n + z * z)
        half = z / (n + z * z) * math.sqrt(x * (n - x) / n + z * z / 4)
        return centre - half, centre + half

    # pre 4 of 5 answered: (0.37553, 0.96378); post 5 of 7: (0.35893, 0.91778). Newcombe's method 10 for
    # post − pre = 5/7 − 4/5 = −0.085714: low = d − √((p_post − l_post)² + (u_pre − p_pre)²) = −0.47699,
    # high = d + √((u_post − p_post)² + (p_pre − l_pre)²) = 0.38501.
    (l1, u1), (l2, u2) = wilson(4, 5), wilson(5, 7)
    p1, p2 = 4 / 5, 5 / 7
    low = (p2 - p1) - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = (p2 - p1) + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    assert (round(low, 5), round(high, 5)) == (-0.47699, 0.38501)
    assert row["method"] == "newcombe"
    assert row["ci_low"] == pytest.approx(low, abs=1e-9) and row["ci_high"] == pytest.approx(high, abs=1e-9)
    # churn_rate = 1 − renewal_rate: its interval is renewal_rate's mirrored
    rows = adoption(project)
    assert rows["churn_rate"]["ci_low"] == pytest.approx(-rows["renewal_rate"]["ci_high"])
    assert rows["churn_rate"]["ci_high"] == pytest.approx(-rows["renewal_rate"]["ci_low"])


def test_labels_of_the_new_figures():
    for name in [*NEW_FIGURES, "customer_lifetime_value"]:
        assert name in labels.FIGURES, name
        assert "_" not in labels.label(name, "per_month", "USD")
    assert labels.FIGURES["median_resolution_hours"][1] == "hours"
    assert labels.value("median_resolution_hours", 41.96) == "42.0"
    assert labels.value("median_first_response_hours", -0.5, change=True) == "−0.5"
    assert labels.value("churn_rate", 0.25) == "25.0%"
    assert labels.value("renewal_rate", 0.25, change=True) == "+25.0 pt"
    assert labels.label("active_customers", "per_month") == "Active customers (per\u00a0month)"
    assert labels.label("customer_lifetime_value", "pooled", "USD") == "Customer lifetime value (USD)"


def test_a_restage_of_tickets_makes_the_facts_stale(project, main):
    from crm_roi_pipeline.staging.assets import stamp_staged

    staged, _ = main
    project.assumptions.write_text(ASSUMPTIONS)
    project.use_database(staged.db_path)
    resources = {**project.resources(), "reports": Reports(dir=str(project.root / "reports"))}
    assert materialize([metrics_facts], resources=resources, instance=project.instance).success
    # one row per ticket, hours fractional from the timestamps, negatives left out (NULL)
    assert project.query("SELECT count(*), sum(first_response_hours IS NULL), sum(resolution_hours IS NULL) "
                         "FROM metrics.fact_tickets") == [(14, 4, 3)]  # no fr: T02 T10 T13, T03 (-1 h); T03 T10 open, T04 -24 h
    assert project.query("SELECT first_response_hours FROM metrics.fact_tickets WHERE created_month = DATE '2024-04-01' "
                         "AND first_response_hours < 1")[0][0] == pytest.approx(1 / 3)  # T12: 20 minutes
    with project.connect() as conn:
        assert compute.facts_are_current(conn)
        conn.execute("UPDATE crm.tickets SET csat_score = 1 WHERE ticket_id = 'T01'")
        stamp_staged(conn, "tickets", "a-restage")  # as a staging write of crm.tickets does
        assert not compute.facts_are_current(conn)


# --- legacy: no deal type in the pre window, no ticket created in it ----------------------------------------
LEGACY_DEALS = "".join([
    deal("P01", "Kilo", True, 1000, "", "Web", "2023-12-15"),  # Kilo acquired 2023-12
    deal("P02", "Kilo", True, 700, "", "Web", "2024-01-20"),
    deal("P03", "Lima", False, 400, "", "Web", "2024-02-10"),
    deal("Q01", "Kilo", True, 900, "renewal", "Web", "2024-03-10"),
    deal("Q02", "Lima", False, 300, "renewal", "Web", "2024-04-05"),
    deal("Q03", "Mike", True, 2000, "new_business", "Web", "2024-04-20"),  # Mike acquired 2024-04
])
LEGACY_TICKETS = [
    ("V01", T(2023, 12, 20), T(2023, 12, 20, 1), T(2024, 1, 10), 5, 5),  # created before the pre window, closed in it
    ("V02", T(2024, 3, 4), T(2024, 3, 4, 2), T(2024, 3, 4, 6), 1, 2),  # fr 2 h, res 6 h; 1 of 2 (HubSpot): not satisfied
    ("V03", T(2024, 4, 8), None, None, None, None),  # unanswered, open
]


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    return build(tmp_path_factory, "legacy", LEGACY_DEALS, LEGACY_TICKETS)


def test_legacy_monthly(legacy):
    project, _ = legacy
    unknown = dict.fromkeys(RENEWAL)  # no deal closed in the month carries a deal_type
    expected = {
        d(2023, 12, 1): unknown, d(2024, 1, 1): unknown, d(2024, 2, 1): unknown,
        d(2024, 3, 1): dict(renewals_won=1, renewals_lost=0, renewal_rate=1.0, churn_rate=0.0, renewal_revenue_rate=900 / 900),
        # Q03 is typed new_business, Q02 a lost renewal
        d(2024, 4, 1): dict(renewals_won=0, renewals_lost=1, renewal_rate=0.0, churn_rate=1.0, renewal_revenue_rate=0 / 300),
        d(2024, 5, 1): unknown, d(2024, 6, 1): unknown,
    }
    actual = monthly(project)
    assert_cells(actual, expected)
    # crm.tickets holds rows, so January (no ticket created, V01 closed: 2023-12-20 -> 2024-01-10 = 21 days)
    # has counts, not nulls
    assert_cells(actual, {d(2024, 1, 1): dict(
        tickets_created=0, tickets_closed=1, first_response_rate=None, median_first_response_hours=None,
        median_resolution_hours=21 * 24.0, csat_rate=1 / 1)})


# pre: no deal closed in 2024-01 … 02 carries a deal_type: the renewal figures and customer_lifetime_value are
#      null (a legacy source that does not say). No ticket created in the window: every ticket figure is null,
#      tickets_closed too, although V01 closed in January. The customer figures do not depend on deal types:
#      active Kilo (P02) = 1, repeat Kilo (acquired 2023-12) = 1, revenue 700.
# post: Q01 won 900, Q02 lost 300: won 1, lost 1; active Kilo, Mike = 2, repeat Kilo = 1, revenue 900 + 2000.
#      Tickets created V02 V03 = 2, closed V02 = 1; answered 1 of 2; CSAT 0 of 1 rated.
#      customer_lifetime_value: 2023-05 … 2024-04 holds Kilo 1000 + 700 + 900 and Mike 2000 = 4600 over 2
#      accounts = 2300; churn 1 / 2; 2300 x 0.6 / 0.5 = 2760.
LEGACY_WINDOWS = {
    "renewals_won": (None, 1 / 2),
    "renewals_lost": (None, 1 / 2),
    "renewal_rate": (None, 1 / 2),
    "churn_rate": (None, 1 / 2),
    "renewal_revenue_rate": (None, 900 / 1200),
    "active_customers": (1 / 2, 2 / 2),
    "repeat_customers": (1 / 2, 1 / 2),
    "repeat_customer_rate": (1 / 1, 1 / 2),
    "revenue_per_customer": (700 / 1, 2900 / 2),
    "tickets_created": (None, 2 / 2),
    "tickets_closed": (None, 1 / 2),
    "first_response_rate": (None, 1 / 2),
    "median_first_response_hours": (None, 2.0),
    "median_resolution_hours": (None, 6.0),
    "csat_rate": (None, 0 / 1),
    "customer_lifetime_value": (None, 2300 * 0.6 / 0.5),
}


def test_legacy_adoption(legacy):
    project, _ = legacy
    actual = adoption(project)
    assert_cells(actual, window_rows(LEGACY_WINDOWS))
    for name, (pre, _) in LEGACY_WINDOWS.items():
        if pre is None:  # no interval without both values
            assert (actual[name]["ci_low"], actual[name]["ci_high"]) == (None, None), name
            assert actual[name]["method"].startswith("none"), name


# --- plain: deal types, but no renewal at all; no tickets at all ---------------------------------------------
PLAIN_DEALS = "".join([
    deal("C01", "Oscar", True, 1000, "new_business", "Web", "2023-12-10"),
    deal("C02", "Oscar", True, 500, "expansion", "Web", "2024-01-15"),
    deal("C03", "Papa", False, 200, "new_business", "Web", "2024-02-15"),
    deal("C04", "Papa", True, 800, "new_business", "Web", "2024-03-20"),
    deal("C05", "Oscar", True, 300, "expansion", "Web", "2024-04-15"),
])


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return build(tmp_path_factory, "plain", PLAIN_DEALS, [])


def test_plain_renewal_and_ticket_figures_are_null_everywhere(plain):
    project, _ = plain
    rows = monthly(project)
    assert len(rows) == 7  # 2023-12 … 2024-06
    for month, row in rows.items():
        # every month has typed deals or none closed; no deal is a renewal anywhere, and crm.tickets is empty
        assert all(row[name] is None for name in [*RENEWAL, *TICKETS]), month
    assert_cells(rows, {
        d(2024, 1, 1): dict(active_customers=1, repeat_customers=1, repeat_customer_rate=1.0, revenue_per_customer=500.0),
        d(2024, 2, 1): dict(active_customers=0, repeat_customers=0, repeat_customer_rate=None, revenue_per_customer=None),
    })
    windows = {name: (None, None) for name in [*RENEWAL, *TICKETS, "customer_lifetime_value"]}
    # pre: Oscar (C02, acquired 2023-12) = 1 active and repeat, revenue 500. post: Papa (C04, acquired 2024-03,
    # in the window) and Oscar (C05) = 2 active, 1 repeat, revenue 800 + 300.
    windows |= {"active_customers": (1 / 2, 2 / 2), "repeat_customers": (1 / 2, 1 / 2),
                "repeat_customer_rate": (1 / 1, 1 / 2), "revenue_per_customer": (500 / 1, 1100 / 2)}
    actual = adoption(project)
    assert_cells(actual, window_rows(windows))
    for name in [*RENEWAL, *TICKETS, "customer_lifetime_value"]:
        assert actual[name]["method"] == "none: a window has no value", name
    lead_sources = table(project, "SELECT period, renewal_rate FROM metrics.lead_sources")
    assert lead_sources and all(r["renewal_rate"] is None for r in lead_sources)


# --- the paired account bootstrap, by hand ---------------------------------------------------------------------


def test_paired_account_bootstrap_of_counts():
    # Every account active in both windows: each resample draws the same accounts for both, so the count
    # changes by exactly 0 in every resample and the interval is (0, 0).
    both = np.ones(5)
    result = bootstrap_paired_difference(both, both, sum_statistic, unit="account", seed=1)
    assert (result.low, result.high) == (0.0, 0.0) and result.method.startswith("account_bootstrap")
    # 3 accounts only before, 3 only after: a resample of 6 draws k "before" accounts and 6 − k "after" ones,
    # k ~ Binomial(6, 1/2), difference 6 − 2k ∈ {−6, …, 6}; the observed 0 lies inside, and the 95% ends are
    # within ±6 (P(k = 0) = P(k = 6) = 1/64 each, under 2.5%: the ends are at most ±4).
    pre, post = np.array([1, 1, 1, 0, 0, 0.0]), np.array([0, 0, 0, 1, 1, 1.0])
    result = bootstrap_paired_difference(pre, post, sum_statistic, unit="account", seed=1)
    assert -4 <= result.low <= 0 <= result.high <= 4
    with pytest.raises(ValueError):
        bootstrap_paired_difference(pre, post[:5], sum_statistic, unit="account")


def test_ratio_of_ratios_statistic():
    # (Σ revenue / Σ customers) / (Σ lost / Σ decisions): (300 / 3) / (1 / 4) = 400
    values = np.array([[100, 200, 0.0], [1, 2, 0], [0, 1, 0], [2, 1, 1]])
    assert ratio_of_ratios_statistic(values) == pytest.approx(400)
    # no lost renewal: unbounded
    assert ratio_of_ratios_statistic(np.array([[1.0], [1], [0], [1]])) == np.inf

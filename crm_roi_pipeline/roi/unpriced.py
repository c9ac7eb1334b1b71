"""Benefits the report measures but does not count in the ROI, as Forrester's Total Economic Impact lists
"unquantified" benefits beside the ROI: customers (renewals, churn, repeat purchases, customer value) and
service (tickets, response and resolution times, satisfaction). Each figure is shown pre and post with the
interval of its change, and every sentence about a change says what that interval says (METRICS.md: retention
is reported beside the ROI, never added to it)."""

from __future__ import annotations

from dataclasses import dataclass

from crm_roi_pipeline.metrics import labels
from crm_roi_pipeline.metrics.charts import Panel, as_percent


def _same(value: float | None) -> float | None:
    return value


@dataclass(frozen=True)
class Section:
    title: str
    figures: tuple[str, ...]  # in the order of metrics.adoption
    key_figures: tuple[str, ...]  # said in a sentence each
    why_not_counted: str
    missing: str  # why a figure is empty, when it is
    panels: tuple[Panel, ...]  # the monthly series charted


CUSTOMERS = Section(
    title="Customers",
    figures=("renewals_won", "renewals_lost", "renewal_rate", "churn_rate", "renewal_revenue_rate",
             "active_customers", "repeat_customers", "repeat_customer_rate", "revenue_per_customer",
             "customer_lifetime_value"),
    key_figures=("churn_rate", "repeat_customer_rate", "revenue_per_customer"),
    why_not_counted="their money is already in won revenue: a kept customer's renewal is a won deal, and revenue "
    "per customer is won revenue shared among customers, so adding them would count that revenue twice",
    missing="An empty renewal figure means no deal closed in that window says it is a renewal (deal_type), which is "
    "how a CRM records a customer staying or leaving.",
    panels=(("renewal_rate", "Renewal rate (%)", as_percent, "line"),
            ("repeat_customer_rate", "Repeat customers (%)", as_percent, "line"),
            ("revenue_per_customer", "Revenue per customer", _same, "bar")),
)
SERVICE = Section(
    title="Service",
    figures=("tickets_created", "tickets_closed", "first_response_rate", "median_first_response_hours",
             "median_resolution_hours", "csat_rate"),
    key_figures=("median_first_response_hours", "median_resolution_hours", "csat_rate"),
    why_not_counted="the data holds no price for them: what a faster reply or a more satisfied customer is worth "
    "is not recorded, and whatever it is worth in sales shows in won revenue and renewals already",
    missing="An empty service figure means the window has no tickets (crm.tickets), as for a helpdesk that started "
    "with the CRM.",
    panels=(("tickets_created", "Tickets created", _same, "bar"),
            ("median_first_response_hours", "Median hours to first response", _same, "line"),
            ("csat_rate", "Satisfied (% of rated)", as_percent, "line")),
)
SECTIONS = (CUSTOMERS, SERVICE)
UNPRICED = frozenset(f for section in SECTIONS for f in section.figures)


def change_sentence(name: str, pre: float | None, post: float | None, low: float | None, high: float | None,
                    level: float, currency: str = "") -> str:
    """A figure's change in words that agree with its interval: "rose"/"fell" only when the interval of the
    change lies wholly on one side of zero (the verdict rule of METRICS.md, applied to this figure)."""
    label = labels.label(name, "pooled", currency)
    if pre is None or post is None:
        return f"{label}: not measured in both windows."
    before, after = labels.value(name, pre), labels.value(name, post)
    if low is None or high is None:
        return f"{label}: {before} before, {after} after; no interval, so no claim of a change."
    span = f"{level:.0%} interval of the change {labels.value(name, low, change=True)} to " \
           f"{labels.value(name, high, change=True)}"
    if low > 0:
        return f"{label} rose from {before} to {after} ({span})."
    if high < 0:
        return f"{label} fell from {before} to {after} ({span})."
    return f"{label}: no clear change, {before} before and {after} after (the {span} includes no change)."


# metrics.adoption's `method` codes in words.
_METHODS = {
    "newcombe": "Newcombe's interval for a difference of proportions",
    "bootstrap_bca": "bootstrap (BCa)",
    "bootstrap_percentile": "bootstrap (percentile)",
    "month_bootstrap_bca": "bootstrap over months (BCa)",
    "account_bootstrap_bca": "bootstrap over accounts (BCa)",
    "ticket_bootstrap_bca": "bootstrap over tickets (BCa)",
    "renewal_deal_bootstrap_bca": "bootstrap over renewal deals (BCa)",
}


def method_words(code: str | None) -> str:
    if not code:
        return "no interval"
    if code.startswith("none"):
        return "no interval" + code[len("none"):]
    return _METHODS.get(code, code.replace("_", " "))


# The pre window is "much thinner" in deal types under half the post window's share, as for records (completeness).
THIN_TYPES = 0.5


def deal_type_coverage(conn, windows) -> tuple[float | None, float | None]:
    """The share of deals closed in each window that say their type (deal_type): renewals can only be counted
    among those. A legacy system that rarely said makes the pre window's renewal counts small for that reason
    alone."""
    shares = []
    for first, last in (windows.pre, windows.post):
        shares.append(conn.execute(
            "SELECT avg((deal_type IS NOT NULL)::INTEGER) FROM crm.deals "
            "WHERE (is_closed OR is_won) AND closed_at >= ? AND closed_at < ? + INTERVAL 1 MONTH",
            [first, last],
        ).fetchone()[0])
    return shares[0], shares[1]


def coverage_note(pre: float | None, post: float | None) -> str | None:
    """A sentence when the pre window's deals say their type far less often than the post window's."""
    if pre is None or not post or pre >= THIN_TYPES * post:
        return None
    return (f"Before the CRM {pre:.0%} of the deals closed in the window said their type, after it {post:.0%}: the "
            "renewal counts per month compare unlike records (the old system rarely said), so read the rates, "
            "which compare the deals that say.")


def section_rows(section: Section, adoption: list[tuple]) -> list[tuple]:
    """The metrics.adoption rows of the section's figures, in its order."""
    by_name = {row[0]: row for row in adoption}
    return [by_name[name] for name in section.figures if name in by_name]

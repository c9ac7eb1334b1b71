"""Figures in words, and their values formatted one way wherever a person reads them (report, UI, CLI):
money in whole units from 1,000 up, rates as percentages with one decimal (their changes in points),
never scientific notation. The unit is said once, in the label."""

from __future__ import annotations

# figure -> (label, kind); kinds: money, count (per month), rate, days, hours, ratio
FIGURES: dict[str, tuple[str, str]] = {
    "win_count": ("Deals won", "count"),
    "loss_count": ("Deals lost", "count"),
    "win_rate": ("Win rate", "rate"),
    "won_revenue": ("Won revenue", "money"),
    "avg_deal_size": ("Average won deal", "money"),
    "median_days_to_close": ("Median days to close", "days"),
    "new_customers": ("New customers", "count"),
    "new_business_revenue": ("New-business revenue", "money"),
    "expansion_revenue": ("Expansion revenue", "money"),
    "net_new_revenue": ("Net new revenue", "money"),
    "upsell_rate": ("Upsell rate", "rate"),
    "spend": ("Sales and marketing spend", "money"),
    "cac": ("Customer acquisition cost", "money"),
    "leads_created": ("Leads created", "count"),
    "leads_converted": ("Leads converted", "count"),
    "lead_conversion_rate": ("Lead conversion rate", "rate"),
    "deals_created": ("Deals created", "count"),
    "activities": ("Activities logged", "count"),
    "activities_per_win": ("Activities per won deal", "ratio"),
    "renewals_won": ("Renewals won", "count"),
    "renewals_lost": ("Renewals lost", "count"),
    "renewal_rate": ("Renewal rate", "rate"),
    "churn_rate": ("Churn rate (renewals lost)", "rate"),
    "renewal_revenue_rate": ("Renewal revenue rate", "rate"),
    "active_customers": ("Active customers", "count"),
    "repeat_customers": ("Repeat customers", "count"),
    "repeat_customer_rate": ("Repeat customer rate", "rate"),
    "revenue_per_customer": ("Revenue per customer", "money"),
    "customer_lifetime_value": ("Customer lifetime value", "money"),
    "tickets_created": ("Tickets created", "count"),
    "tickets_closed": ("Tickets closed", "count"),
    "first_response_rate": ("First response rate", "rate"),
    "median_first_response_hours": ("Median hours to first response", "hours"),
    "median_resolution_hours": ("Median hours to resolution", "hours"),
    "csat_rate": ("Customer satisfaction (CSAT)", "rate"),
}


def label(name: str, basis: str | None = None, currency: str = "") -> str:
    """"Won revenue (USD per month)": the unit once, per month where the figure is the window's total / N."""
    text, kind = FIGURES.get(name, (name.replace("_", " ").capitalize(), "ratio"))
    per_month = basis == "per_month"
    if kind == "money":
        unit = f"{currency} per month" if per_month and currency else ("per month" if per_month else currency)
    elif kind == "count":
        unit = "per month" if per_month else ""
    else:  # rates and ratios have none; "days" and "hours" are already in the label
        unit = ""
    # A non-breaking space keeps "per month" on one line in every table.
    return (f"{text} ({unit})" if unit and not text.lower().endswith(unit) else text).replace("per month", "per\u00a0month")


def value(name: str, number: float | None, *, change: bool = False) -> str:
    """A figure's value (or, `change`, the change of it) without its unit, which the label carries."""
    if number is None:
        return "—"
    kind = FIGURES.get(name, ("", "ratio"))[1]
    sign = "+" if change and number > 0 else ("−" if number < 0 else "")
    size = abs(number)
    if kind == "rate":
        return f"{sign}{size * 100:,.1f} pt" if change else f"{sign}{size * 100:,.1f}%"
    if kind == "money":
        return f"{sign}{size:,.0f}" if size >= 1000 else f"{sign}{size:,.2f}"
    if kind in ("days", "hours"):
        return f"{sign}{size:,.1f}"
    return f"{sign}{size:,.1f}" if size >= 100 else f"{sign}{size:,.2f}"


def percent_change(number: float | None) -> str:
    if number is None:
        return "—"
    sign = "+" if number > 0 else ("−" if number < 0 else "")
    return f"{sign}{abs(number) * 100:,.1f}%"


def money(value: float | None, currency: str = "") -> str:
    """Whole units from 1,000 up, cents below; a true minus sign; never scientific notation."""
    if value is None:
        return "—"
    digits = 0 if abs(value) >= 1000 or float(value).is_integer() else 2
    text = ("−" if value < 0 else "") + f"{abs(value):,.{digits}f}"
    return f"{currency} {text}" if currency else text


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    return ("−" if value < 0 else "") + f"{abs(value):,.1f}%"

"""The report for a finance lead: one self-contained HTML file (chart embedded), readable without Dagster."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass, field

from crm_roi_pipeline.metrics.charts import pyplot, set_margins
from crm_roi_pipeline.metrics.windows import Windows
from crm_roi_pipeline.roi.model import RoiModel
from crm_roi_pipeline.settings import Assumptions


def money(value: float | None, currency: str = "") -> str:
    if value is None:
        return "—"
    text = ("−" if value < 0 else "") + f"{abs(value):,.0f}"
    return f"{currency} {text}" if currency else text


def number(value: float | None, unit: str) -> str:
    """A figure as the report and the UI show it; the same function serves both, so they agree."""
    if value is None:
        return "—"
    if unit == "%":
        return f"{value:,.1f}%"
    if unit == "months":
        return f"{value:,.1f} months"
    if unit == "fraction":
        return f"{value:.4g}"
    if unit == "years":
        return f"{value:.0f}"
    return money(value, unit)


def cashflow_table(model: RoiModel) -> tuple[list[str], list[tuple[str, list[float]]]]:
    """TEI layout: Initial, Year 1..H, Total, Present value; rows costs, benefits, net."""
    header = ["", "Initial"] + [f"Year {f.year}" for f in model.flows[1:]] + ["Total", "Present value"]
    rows = []
    for label, values, pv in (
        ("Total costs", [f.costs for f in model.flows], model.pv_costs),
        ("Total benefits", [f.benefits for f in model.flows], model.pv_benefits),
        ("Net benefits", [f.net for f in model.flows], model.npv),
    ):
        rows.append((label, values + [sum(values), pv]))
    return header, rows


def cashflow_markdown(model: RoiModel) -> str:
    header, rows = cashflow_table(model)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, values in rows:
        lines.append(f"| {label} | " + " | ".join(money(v) for v in values) + " |")
    return "\n".join(lines)


def headline_markdown(model: RoiModel) -> str:
    ccy = model.currency
    return "\n".join([
        "| ROI | discounted ROI (TEI) | NPV | payback |",
        "|---|---|---|---|",
        f"| {number(model.roi_pct, '%')} | {number(model.discounted_roi_pct, '%')} | {money(model.npv, ccy)} | "
        f"{number(model.payback_months, 'months')} |",
    ])


def cumulative_chart_png(model: RoiModel) -> bytes:
    """Cumulative net benefit month by month: the one-time costs at month 0, then the monthly net."""
    plt, StrMethodFormatter = pyplot()
    monthly_net = (model.benefits.annual - model.annual_recurring_costs) / 12
    months = list(range(0, 12 * model.horizon_years + 1))
    values = [-model.one_time_costs + monthly_net * m for m in months]
    fig, ax = plt.subplots(figsize=(9, 3.8))
    set_margins(fig, left=1.25)  # a y-axis label beside the tick labels
    ax.plot(months, values, color="#4c72b0")
    ax.fill_between(months, values, 0, where=[v >= 0 for v in values], color="#55a868", alpha=0.2)
    ax.fill_between(months, values, 0, where=[v < 0 for v in values], color="#c44e52", alpha=0.2)
    ax.axhline(0, color="black", linewidth=0.8)
    if model.payback_months is not None and model.payback_months <= months[-1]:
        ax.axvline(model.payback_months, color="#c44e52", linestyle="--", label=f"payback {model.payback_months:.1f} months")
        ax.legend(loc="upper left")
    ax.set_xlabel("months after go-live")
    ax.set_ylabel(f"cumulative net benefit ({model.currency})")
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


@dataclass(frozen=True)
class Evidence:
    """What "How sure are we?" shows: metrics.uplift (estimate -> value, ci_low, ci_high, p_value, note),
    metrics.time_to_close rows, the confidence level, and the two charts of metrics/uplift."""

    uplift: dict[str, tuple] = field(default_factory=dict)
    time_to_close: list[tuple] = field(default_factory=list)
    level: float = 0.95
    counterfactual_png: bytes | None = None
    placebo_png: bytes | None = None


_ESTIMATES = {
    "before_after": "Before/after (METRICS.md): post minus pre window",
    "its": "Interrupted time series: above the pre-CRM trend and season",
    "placebo": "Placebo test: the same estimate at fake adoption months",
    "staggered": "Staggered rollout: teams that adopted vs teams not yet",
}


def how_sure_html(model: RoiModel, evidence: Evidence) -> str:
    """The section "How sure are we?": verdict, the revenue effect by method, time to close, the charts."""
    if not evidence.uplift:
        return "<p>metrics/uplift has not been published: materialize it for intervals and the counterfactual.</p>"
    ccy, pct = model.currency, f"{evidence.level:.0%}"
    verdict = evidence.uplift.get("verdict", (None, None, None, None, ""))[4]
    rows = []
    for key, label in _ESTIMATES.items():
        if key not in evidence.uplift:
            continue
        value, low, high, p, note = evidence.uplift[key]
        rows.append([label, money(value, ccy), "—" if low is None else f"{money(low)} … {money(high)}",
                     "—" if p is None else f"{p:.3f}", note or ""])
    used = (f"The ROI above credits {money(model.revenue_lift, ccy)} of won revenue a month to the CRM, from "
            f"<b>{html.escape(model.benefit_method.replace('_', '/'))}</b>: {html.escape(model.benefit_why)}.")
    parts = [f'<p class="verdict">{html.escape(verdict)}</p>', f"<p>{used}</p>",
             _table(["Revenue effect per month", ccy, f"{pct} interval", "p-value", "Note"], rows)]
    if evidence.counterfactual_png:
        parts.append('<img alt="won revenue against the counterfactual" src="data:image/png;base64,'
                     f'{base64.b64encode(evidence.counterfactual_png).decode()}">')
    if evidence.placebo_png:
        parts.append('<img alt="placebo estimates" src="data:image/png;base64,'
                     f'{base64.b64encode(evidence.placebo_png).decode()}">')
    if evidence.time_to_close:
        ttc = [[period, f"{deals:,}", f"{censored:,}", _days(closed), _days(km),
                "—" if low is None and high is None else f"{_days(low)} … {_days(high)}"]
               for period, deals, censored, closed, km, low, high, _ in evidence.time_to_close]
        p = evidence.time_to_close[0][-1]
        parts += ["<h3>Days to close, counting deals still open</h3>",
                  _table(["Window (deals created in it)", "Deals", "Still open at as_of", "Median, won deals closed (METRICS.md)",
                          "Kaplan-Meier median, all closes", f"{pct} interval"], ttc),
                  f'<p class="note">Open deals are censored at as_of rather than dropped. Log-rank test of pre versus post: '
                  f'p = {"—" if p is None else f"{p:.3g}"}.</p>']
    parts.append(f'<p class="note">Intervals are {pct} and bound the change post − pre: bootstrap (seeded) for medians, '
                 "means and per-month figures, Newcombe's interval for differences of rates. Coverage of each method is "
                 "measured by benchmarks/coverage_intervals.py and benchmarks/coverage_uplift.py.</p>")
    return "\n".join(parts)


def _days(value) -> str:
    return "—" if value is None else f"{value:,.0f}"


def render(
    model: RoiModel,
    assumptions: Assumptions,
    windows: Windows,
    adoption: list[tuple],
    sensitivity: list[tuple],
    generated: dt.datetime,
    evidence: Evidence | None = None,
) -> str:
    ccy = model.currency
    header, flows = cashflow_table(model)
    chart = base64.b64encode(cumulative_chart_png(model)).decode()
    summary_rows = [[figure, number(value, unit), unit] for figure, value, unit in model.summary()]
    costs = [[c, money(one, ccy), money(rec, ccy), money(total, ccy)] for c, one, rec, total in model.costs_by_category()]
    cost_lines = [[n, c, "every year" if r else "once (year 0)", money(a, ccy)] for n, c, r, a in model.cost_lines]
    benefits = [
        ["Revenue uplift at gross margin (measured)", money(model.benefits.revenue, ccy)],
        ["Acquisition cost saved (measured)", money(model.benefits.acquisition_cost, ccy)],
        *[[f"{name} (estimated)", money(value, ccy)] for name, value in model.benefits.estimate_lines],
        ["Annual benefits", money(model.benefits.annual, ccy)],
    ]
    comparison = [
        [m, _fmt_metric(pre, m), _fmt_metric(post, m), _fmt_metric(change, m, change=True),
         "—" if low is None else f"{_fmt_metric(low, m, change=True)} … {_fmt_metric(high, m, change=True)}",
         "—" if pct is None else f"{pct * 100:+.1f}%", basis.replace("_", " ")]
        for m, pre, post, change, pct, _, _, basis, low, high, _ in adoption
    ]
    level = (evidence or Evidence()).level
    sens = [
        [name, setting, f"{value:,.4g}", number(r, "%"), number(d, "%"), number(p, "months")]
        for name, setting, value, r, d, p in sensitivity
    ]
    assumption_rows = [[k, str(v)] for k, v in assumptions.model_dump(mode="json").items()]
    pre, post = windows.pre, windows.post
    window_text = (
        f"Pre window {pre[0]:%Y-%m} … {pre[1]:%Y-%m}, post window {post[0]:%Y-%m} … {post[1]:%Y-%m} "
        f"(N = {windows.n} months each); adoption month {windows.adoption_month:%Y-%m}; as_of {windows.as_of}; "
        f"first month with data {windows.first_data_month:%Y-%m}."
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Did the CRM pay off? ROI report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.headline td {{ font-size: 1.4em; }}
.note {{ color: #555; font-size: 0.9em; }}
.verdict {{ font-size: 1.15em; font-weight: 600; }}
</style></head><body>
<h1>Did the CRM pay off?</h1>
<p class="note">Generated {generated:%Y-%m-%d %H:%M} UTC by crm_roi_pipeline. {html.escape(window_text)}</p>
<h2>Headline</h2>
{_table(["ROI", "Discounted ROI (TEI)", "NPV", "Payback"], [[number(model.roi_pct, "%"), number(model.discounted_roi_pct, "%"), money(model.npv, ccy), number(model.payback_months, "months")]], "headline")}
<p class="note">ROI = (total benefits − total costs) / total costs over {model.horizon_years} years. Discounted ROI = NPV /
present value of costs at {assumptions.discount_rate:.1%} a year (Forrester TEI). Payback = one-time costs /
monthly net benefit.</p>
<h2>Cash flows ({html.escape(ccy)})</h2>
{_table(header, [[label] + [money(v) for v in values] for label, values in flows])}
<h2>Cumulative net benefit</h2>
<img alt="cumulative net benefit by month" src="data:image/png;base64,{chart}">
<h2>Costs (total cost of ownership)</h2>
{_table(["Category", "One-time", "Recurring per year", f"Total over {model.horizon_years} years"], costs)}
{_table(["Cost line", "Category", "When", "Amount"], cost_lines)}
<h2>Annual benefits (after risk haircuts)</h2>
{_table(["Benefit", "Per year"], benefits)}
<h2>Before and after adoption</h2>
{_table(["Figure", "Pre", "Post", "Change", f"{level:.0%} interval of the change", "% change", "Basis"], comparison)}
<p class="note">Counts and sums are per month (the window's total / N); rates, averages and medians are pooled over
each window. A before/after comparison credits the CRM with every other change in the business in that time.
CRM deals show no churn, so net new revenue subtracts nothing.</p>
<h2>How sure are we?</h2>
{how_sure_html(model, evidence or Evidence())}
<h2>Sensitivity</h2>
{_table(["Assumption", "Setting", "Value", "ROI", "Discounted ROI", "Payback"], sens)}
<h2>Every figure</h2>
{_table(["Figure", "Value", "Unit"], summary_rows)}
<h2>Assumptions used</h2>
{_table(["Key", "Value"], assumption_rows)}
</body></html>
"""


def _fmt_metric(value, name: str, change: bool = False) -> str:
    if value is None:
        return "—"
    if name.endswith("_rate") and change:
        return f"{value * 100:+.1f} pt"  # a change of a rate is in percentage points
    if name.endswith("_rate"):
        return f"{value * 100:.1f}%"
    return f"{value:,.2f}"

"""The report for a finance lead: one self-contained HTML file (charts embedded), readable without Dagster,
printable to clean A4 pages. Every sentence about the CRM's effect comes from `roi.headline` and
`metrics.lift`, so the report says what the CLI and the UI say."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass, field

from crm_roi_pipeline.metrics import labels
from crm_roi_pipeline.metrics.charts import panels_png, pyplot, set_margins
from crm_roi_pipeline.metrics.lift import METHOD_LABELS, table_note
from crm_roi_pipeline.metrics.uplift_assets import MIN_PLACEBO_CHART
from crm_roi_pipeline.metrics.windows import Windows
from crm_roi_pipeline.roi.headline import Headline, money, months, percent
from crm_roi_pipeline.roi.model import RoiModel
from crm_roi_pipeline.roi.quality import Quality
from crm_roi_pipeline.roi.unpriced import (
    CUSTOMERS,
    SECTIONS,
    UNPRICED,
    Section,
    change_sentence,
    coverage_note,
    method_words,
    section_rows,
)
from crm_roi_pipeline.settings import Assumptions



def number(value: float | None, unit: str | None) -> str:
    """A roi.summary figure as the report and the UI show it."""
    if value is None:
        return "—"
    if unit == "%":
        return percent(value)
    if unit == "months":
        return f"{value:,.1f} months"
    if unit == "fraction":
        return f"{value * 100:,.1f}%"
    if unit in ("years", "flag"):
        return f"{value:,.0f}"
    return money(value, unit or "")


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


def cumulative_chart_png(model: RoiModel) -> bytes:
    """Cumulative net benefit month by month: the one-time costs at month 0, then the monthly net."""
    plt, StrMethodFormatter = pyplot()
    monthly_net = (model.benefits.annual - model.annual_recurring_costs) / 12
    steps = list(range(0, 12 * model.horizon_years + 1))
    values = [-model.one_time_costs + monthly_net * m for m in steps]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    set_margins(fig, left=1.35)  # a y-axis label beside the tick labels
    ax.plot(steps, values, color="#4c72b0")
    ax.fill_between(steps, values, 0, where=[v >= 0 for v in values], color="#55a868", alpha=0.2)
    ax.fill_between(steps, values, 0, where=[v < 0 for v in values], color="#c44e52", alpha=0.2)
    ax.axhline(0, color="black", linewidth=0.8)
    if model.payback_months is not None and model.payback_months <= steps[-1]:
        ax.axvline(model.payback_months, color="#c44e52", linestyle="--", label=f"payback {model.payback_months:.1f} months")
        ax.legend(loc="upper left")
    ax.set_xlabel("Months after go-live")
    ax.set_ylabel(f"Cumulative net benefit ({model.currency})")
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


def _img(alt: str, png: bytes) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


@dataclass(frozen=True)
class Evidence:
    """What "How sure are we?" shows: metrics.uplift (estimate -> value, ci_low, ci_high, p_value, months,
    note), metrics.time_to_close rows, the confidence level, and the two charts of metrics/uplift."""

    uplift: dict[str, tuple] = field(default_factory=dict)
    time_to_close: list[tuple] = field(default_factory=list)
    level: float = 0.95
    counterfactual_png: bytes | None = None
    placebo_png: bytes | None = None


_ESTIMATES = {
    "before_after": "Before/after: post window minus pre window (not adjusted for trend or season)",
    "its": "Interrupted time series: above the pre-CRM trend and season",
    "second_opinion": "Second opinion: Bayesian structural time series (CausalImpact's model), same months",
    "staggered": "Staggered rollout: teams that adopted against teams not yet live",
}


def headline_html(top: Headline) -> str:
    parts = [f'<p class="lead">{html.escape(top.lead)}</p>'] if top.lead else []
    rows = [[value for _, value, _ in top.figures]]
    if any(span for _, _, span in top.figures):
        rows.append([span for _, _, span in top.figures])
    parts.append(_table([label for label, _, _ in top.figures], rows, "headline"))
    parts.append(f'<p class="verdict">{html.escape(top.verdict)}</p>')
    parts.append(f"<p>{html.escape(top.method)}</p>")
    for extra in (top.naive, top.second_opinion, top.placebo):
        if extra:
            parts.append(f'<p class="note">{html.escape(extra)}</p>')
    for warning in top.warnings:
        parts.append(f'<p class="warning">{html.escape(warning)}</p>')
    return "\n".join(parts)


def how_sure_html(model: RoiModel, evidence: Evidence, top: Headline) -> str:
    """The section "How sure are we?": verdict, the revenue effect by method, time to close, the charts."""
    if not evidence.uplift:
        return "<p>metrics/uplift has not been published: materialize it for intervals and the counterfactual.</p>"
    ccy, pct = model.currency, f"{evidence.level:.0%}"
    rows = []
    for key, label in _ESTIMATES.items():
        if key not in evidence.uplift:
            continue
        value, low, high, p, _, note = evidence.uplift[key]
        note = table_note(key, value, note)  # a second opinion's sentence is the paragraph under the table
        used = " ← used for the ROI" if model.lift and key == model.lift.method else ""
        rows.append([label + used, money(value), "—" if low is None else f"{money(low)} to {money(high)}",
                     "—" if p is None else f"{p:.3f}", note])
    lift = model.lift
    parts = [f'<p class="verdict">{html.escape(top.verdict)}</p>',
             f"<p>The ROI credits {html.escape(money(model.revenue_lift, ccy))} of won revenue a month to the CRM, "
             f"from the <b>{html.escape(METHOD_LABELS[lift.method] if lift else '—')}</b>: "
             f"{html.escape(model.benefit_why)}.</p>",
             _table(["Revenue effect", f"{ccy} per month", f"{pct} interval", "p-value", "Note"], rows, "notes")]
    if top.second_opinion:
        parts.append(f"<p>{html.escape(top.second_opinion)}</p>")
    if evidence.counterfactual_png:
        parts.append(_img("won revenue against the counterfactual", evidence.counterfactual_png))
    placebo = evidence.uplift.get("placebo")
    if top.placebo:
        parts.append(f"<p>{html.escape(top.placebo)}</p>")
    fakes = (placebo[4] or 0) if placebo else 0
    if evidence.placebo_png and fakes >= MIN_PLACEBO_CHART:
        parts.append(_img("placebo estimates", evidence.placebo_png))
    elif placebo:
        parts.append(f'<p class="note">No placebo chart: {fakes} fake adoption date(s) fit inside the pre-CRM '
                     f"months, and a chart needs at least {MIN_PLACEBO_CHART} to show anything. With more history "
                     "before adoption there are more fake dates.</p>")
    if evidence.time_to_close:
        ttc = [[period, f"{deals:,}", f"{censored:,}", _days(closed), _days(km),
                "—" if low is None and high is None else f"{_days(low)} to {_days(high)}"]
               for period, deals, censored, closed, km, low, high, _ in evidence.time_to_close]
        p = evidence.time_to_close[0][-1]
        parts += ["<h3>Days to close, counting deals still open</h3>",
                  _table(["Window (deals created in it)", "Deals", "Still open at as_of",
                          "Median days, won deals closed (METRICS.md)", "Kaplan-Meier median days, all closes",
                          f"{pct} interval"], ttc),
                  f'<p class="note">Open deals are censored at as_of rather than dropped. Log-rank test of pre versus '
                  f'post: p = {"—" if p is None else f"{p:.3g}"}.</p>']
    parts.append(f'<p class="note">Intervals are {pct} and bound the change post − pre: bootstrap (seeded) for medians, '
                 "means and per-month figures, Newcombe's interval for differences of rates. Coverage of each method is "
                 "measured by benchmarks/coverage_intervals.py and benchmarks/coverage_uplift.py.</p>")
    return "\n".join(parts)


def quality_html(checked: Quality | None, windows: Windows) -> str:
    """The section "Data quality": every check, the rejects by reason, and how full each window is."""
    if checked is None:
        return "<p>Not assessed.</p>"
    checks = [[c.label, c.severity, "passed" if c.passed else "failed", f"{c.count:,}",
               "—" if c.passed else f"{c.effect} Fix: {c.fix}"] for c in checked.checks]
    rejects = [[entity, kind, f"{n:,}", example] for entity, kind, n, example in checked.rejects]
    fills = [[w.entity, f"{w.pre_per_month:,.1f}", f"{w.post_per_month:,.1f}",
              {"pre": "pre window thin", "post": "post window thin"}.get(w.thin, "comparable")] for w in checked.windows]
    parts = [
        '<p class="note">ERROR checks stop the metrics and the ROI (a published figure would be wrong), so this report '
        "only exists when every one passed; WARN checks leave the figures standing, and say what a reader should "
        "know.</p>",
        _table(["Check", "Severity", "Result", "Rows", "What a failure does to the figures"], checks, "quality notes"),
        "<h3>Rows left out (crm.rejects), by reason</h3>",
        _table(["Table", "Reason", "Rows", "Example"], rejects, "notes rejects") if rejects else "<p>No row was rejected.</p>",
    ]
    if fills and windows.pre:
        parts += [f"<h3>Records per month in each window ({windows.pre[0]:%Y-%m} … {windows.pre[1]:%Y-%m} against "
                  f"{windows.post[0]:%Y-%m} … {windows.post[1]:%Y-%m})</h3>",
                  _table(["Table", "Pre window", "Post window", "Completeness"], fills),
                  '<p class="note">A window with under half the other\'s records a month is named beside the headline: '
                  "figures built on that table compare unlike data.</p>"]
    return "\n".join(parts)


def _comparison_rows(adoption: list[tuple], currency: str) -> list[list[str]]:
    """metrics.adoption rows as the "Before and after" tables show them."""
    return [
        [labels.label(m, basis, currency), labels.value(m, pre), labels.value(m, post), labels.value(m, change, change=True),
         "—" if low is None else f"{labels.value(m, low, change=True)} to {labels.value(m, high, change=True)}",
         labels.percent_change(pct)]
        for m, pre, post, change, pct, _, _, basis, low, high, _ in adoption
    ]


def unpriced_html(section: Section, adoption: list[tuple], monthly: list[dict], windows: Windows, level: float,
                  currency: str, note: str | None = None) -> str:
    """A section of benefits measured but not counted in the ROI: why not, the key changes in words that agree
    with their intervals, every figure pre and post, and a small chart of the monthly series."""
    rows = section_rows(section, adoption)
    if not rows:
        return "<p>Not measured: metrics.adoption has none of these figures.</p>"
    by_name = {row[0]: row for row in rows}
    sentences = [change_sentence(name, row[1], row[2], row[8], row[9], level, currency)
                 for name in section.key_figures if (row := by_name.get(name))]
    parts = [f'<p class="note">Measured, not counted in the ROI: {html.escape(section.why_not_counted)}.</p>',
             "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in sentences) + "</ul>",
             _table(["Figure", "Pre", "Post", "Change", f"{level:.0%} interval of the change", "% change"],
                    _comparison_rows(rows, currency)),
             f'<p class="note">Intervals, by figure: {html.escape(_methods(rows))}. {html.escape(section.missing)}</p>']
    if note:
        parts.insert(1, f'<p class="warning">{html.escape(note)}</p>')
    png = panels_png(monthly, windows, list(section.panels), f"{section.title} by month") if monthly else None
    if png:
        parts.append(_img(f"{section.title.lower()} by month", png))
    return "\n".join(parts)


def _methods(rows: list[tuple]) -> str:
    """"method (figures)" for each interval method the rows use, in the order met."""
    by_method: dict[str, list[str]] = {}
    for row in rows:
        by_method.setdefault(method_words(row[10]), []).append(labels.label(row[0]))
    return "; ".join(f"{method} ({', '.join(names)})" for method, names in by_method.items())


def _benefit_rows(model: RoiModel) -> list[list[str]]:
    """Measured and estimated benefits per year; a negative one is named as the cost it is."""
    ccy = model.currency

    def line(gain: str, loss: str, value: float) -> list[str]:
        return [gain, money(value)] if value >= 0 else [f"{loss}: {money(-value, ccy)} a year", money(value)]

    rows = [
        line("Revenue uplift at gross margin (measured)", "Revenue fell, at gross margin (measured)", model.benefits.revenue),
        line("Acquisition cost saved (measured)", "Acquisition cost rose (measured)", model.benefits.acquisition_cost),
    ]
    rows += [line(f"{name} (estimated)", f"{name}, a cost (estimated)", value) for name, value in model.benefits.estimate_lines]
    rows.append(["Annual benefits, net", money(model.benefits.annual)])
    rows.append(["Measured, not counted: customers (renewals, churn, customer value) and service (response, "
                 "resolution, satisfaction); see their sections", "—"])
    return rows


def _assumption_tables(assumptions: Assumptions) -> str:
    """The assumptions as tables a finance lead can check line by line, not as a data dump."""
    a = assumptions
    scalars = [
        ["Adoption date", str(a.adoption_date)], ["Transition months left out", str(a.transition_months)],
        ["Window (months each side)", str(a.window_months)], ["As of", str(a.as_of or "today (UTC)")],
        ["Conversion window (days)", str(a.conversion_window_days)], ["Reporting currency", a.reporting_currency],
        ["Gross margin", f"{a.gross_margin:.1%}"], ["Discount rate (a year)", f"{a.discount_rate:.1%}"],
        ["Horizon (years)", str(a.horizon_years)], ["Confidence level", f"{a.confidence_level:.0%}"],
        ["Benefit method", a.benefit_method], ["Risk haircut on the revenue benefit", f"{a.risk.revenue:.0%}"],
        ["Risk haircut on the acquisition-cost benefit", f"{a.risk.acquisition_cost:.0%}"],
    ]
    parts = [_table(["Assumption", "Value"], scalars)]
    parts.append(_table(["Cost line", "Category", "When", f"Amount ({a.reporting_currency})"],
                        [[c.name, c.category.replace("_", " "), "every year" if c.recurring else "once (year 0)",
                          money(c.amount)] for c in a.costs]))
    if a.benefits:
        parts.append(_table(["Estimated benefit", "Hours per user a week", "Users", f"Hourly cost ({a.reporting_currency})",
                             "Risk haircut"],
                            [[b.name, f"{b.hours_per_user_per_week:g}", f"{b.users:g}", money(b.hourly_cost), f"{b.risk:.0%}"]
                             for b in a.benefits]))
    if a.deal_types:
        parts.append(_table(["CRM deal type", "Counted as"], [[k, v.replace("_", " ")] for k, v in a.deal_types.items()]))
    if a.team_adoption_dates:
        parts.append(_table(["Team", "Went live"], [[k, str(v)] for k, v in a.team_adoption_dates.items()]))
    return "\n".join(parts)


def _sensitivity_name(name: str) -> str:
    """roi.sensitivity's assumption keys in words."""
    fixed = {"gross_margin": "Gross margin", "discount_rate": "Discount rate", "risk.revenue": "Risk haircut, revenue",
             "risk.acquisition_cost": "Risk haircut, acquisition cost", "benefit_method": "Benefit method"}
    if name in fixed:
        return fixed[name]
    kind, _, rest = name.partition(".")
    if kind == "costs":
        return f"Cost line: {rest}"
    if kind == "benefits":
        return f"Risk haircut, {rest.rsplit('.', 1)[0]}"
    if kind == "revenue_lift":
        return f"Revenue lift per month ({METHOD_LABELS.get(rest, rest)}, its interval)"
    return name


def _sensitivity_value(name: str, setting: str, value: float) -> str:
    if name in ("gross_margin", "discount_rate") or name.startswith("risk.") or name.endswith(".risk"):
        return f"{value:.0%}"
    return money(value)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
table.quality td:last-child, table.quality td:nth-child(3) { text-align: left; }
td { white-space: nowrap; }
td:first-child, table.notes td:last-child, table.summary td, .headline td { white-space: normal; }
.headline th, .headline td, table.notes td:last-child, table.notes th:last-child, table.rejects td:nth-child(2) { text-align: left; }
.headline td { font-size: 1.5em; font-weight: 600; min-width: 9em; }
.headline tr + tr td { font-size: 0.9em; font-weight: normal; color: #555; }
.lead { font-size: 1.15em; font-weight: 600; color: #8a5a00; }
.warning { color: #8a5a00; }
.note { color: #555; font-size: 0.9em; }
.verdict { font-size: 1.15em; font-weight: 600; }
img { max-width: 100%; height: auto; }
@page { size: A4; margin: 14mm; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  thead { display: table-header-group; }
  table, img, .verdict, .lead { break-inside: avoid; page-break-inside: avoid; }
  td { white-space: normal; }
}
"""


def render(
    model: RoiModel,
    assumptions: Assumptions,
    windows: Windows,
    adoption: list[tuple],
    sensitivity: list[tuple],
    generated: dt.datetime,
    evidence: Evidence | None,
    top: Headline,
    checked: Quality | None = None,
    monthly: list[dict] | None = None,
    deal_types: tuple[float | None, float | None] = (None, None),
) -> str:
    ccy = model.currency
    evidence = evidence or Evidence()
    header, flows = cashflow_table(model)
    chart = cumulative_chart_png(model)
    summary_rows = [[figure, text if text is not None else number(value, unit), unit or ""]
                    for figure, value, unit, text in model.summary()]
    costs = [[c.replace("_", " "), money(one), money(rec), money(total)]
             for c, one, rec, total in model.costs_by_category()]
    # Customers and service have sections of their own: each figure is shown once.
    comparison = _comparison_rows([row for row in adoption if row[0] not in UNPRICED], ccy)
    level = evidence.level
    unpriced = "\n".join(
        f"<h2>{section.title} (measured, not counted in the ROI)</h2>\n"
        + unpriced_html(section, adoption, monthly or [], windows, level, ccy,
                        coverage_note(*deal_types) if section is CUSTOMERS else None)
        for section in SECTIONS
    )
    sens = [
        [_sensitivity_name(name), setting.replace("_", " "), _sensitivity_value(name, setting, value), percent(r),
         percent(d), months(p)]
        for name, setting, value, r, d, p in sensitivity
    ]
    pre, post = windows.pre, windows.post
    window_text = (
        f"Pre window {pre[0]:%Y-%m} … {pre[1]:%Y-%m}, post window {post[0]:%Y-%m} … {post[1]:%Y-%m} "
        f"(N = {windows.n} months each); adoption month {windows.adoption_month:%Y-%m}; as_of {windows.as_of}; "
        f"first month with data {windows.first_data_month:%Y-%m}."
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Did the CRM pay off? ROI report</title>
<style>{_CSS}</style></head><body>
<h1>Did the CRM pay off?</h1>
<p class="note">Generated {generated:%Y-%m-%d %H:%M} UTC by crm_roi_pipeline. {html.escape(window_text)}</p>
<h2>Headline</h2>
{headline_html(top)}
<p class="note">ROI = (total benefits − total costs) / total costs over {model.horizon_years} years; the range is the
ROI with the revenue lift at either end of its {level:.0%} interval, all else equal. NPV at {assumptions.discount_rate:.1%}
a year. Payback = one-time costs / monthly net benefit. Discounted ROI (Forrester TEI, NPV / present value of costs):
{html.escape(percent(model.discounted_roi_pct))}.</p>
<h2>Cash flows ({html.escape(ccy)})</h2>
{_table(header, [[label] + [money(v) for v in values] for label, values in flows])}
<h2>Cumulative net benefit</h2>
{_img("cumulative net benefit by month", chart)}
<h2>Costs (total cost of ownership)</h2>
{_table(["Category", f"One-time ({ccy})", f"Recurring per year ({ccy})", f"Total over {model.horizon_years} years ({ccy})"], costs)}
<h2>Annual benefits (after risk haircuts)</h2>
{_table(["Benefit", f"Per year ({ccy})"], _benefit_rows(model))}
<h2>Before and after adoption</h2>
{_table(["Figure", "Pre", "Post", "Change", f"{level:.0%} interval of the change", "% change"], comparison)}
<p class="note">Per-month figures are the window's total / N; rates, averages and medians are pooled over each window.
Rates change in percentage points (pt). A before/after comparison credits the CRM with every other change in the
business in that time; "How sure are we?" below takes the trend and season out.</p>
{unpriced}
<h2>How sure are we?</h2>
{how_sure_html(model, evidence, top)}
<h2>Data quality</h2>
{quality_html(checked, windows)}
<h2>Sensitivity</h2>
{_table(["Assumption", "Setting", "Value", "ROI", "Discounted ROI", "Payback"], sens)}
<h2>Every figure (roi.summary)</h2>
{_table(["Figure", "Value", "Unit"], summary_rows, "summary")}
<h2>Assumptions used</h2>
{_assumption_tables(assumptions)}
</body></html>
"""


def _days(value) -> str:
    return "—" if value is None else f"{value:,.0f}"

"""The ROI model against hand-worked figures, and the roi assets and report end to end."""

from __future__ import annotations

import html
import re
import shutil

import pytest
from dagster import materialize

from crm_roi_pipeline.metrics.assets import metrics_assets
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline.roi.assets import REPORT_FILE, roi_assets
from crm_roi_pipeline.roi.model import Measured, build_model, sensitivity
from crm_roi_pipeline.settings import Assumptions
from crm_roi_pipeline_tests.conftest import REPO

BASE = dict(
    adoption_date="2024-01-01", transition_months=0, window_months=12, reporting_currency="USD",
    gross_margin=0.5, discount_rate=0.1, horizon_years=2,
    costs=[
        {"name": "Implementation", "category": "implementation", "amount": 10_000},
        {"name": "Licences", "category": "software", "recurring": True, "amount": 2_000},
    ],
    benefits=[{"name": "Admin time", "hours_per_user_per_week": 1, "users": 10, "hourly_cost": 50, "risk": 0.25}],
    risk={"revenue": 0.2, "acquisition_cost": 0.5},
)
MEASURED = Measured(pre_won_revenue=10_000, post_won_revenue=11_000, pre_cac=1_000, post_cac=800, post_new_customers=2)


def _assumptions(**changes) -> Assumptions:
    return Assumptions.model_validate({**BASE, **changes})


def test_model_against_hand_arithmetic():
    model = build_model(_assumptions(), MEASURED)
    # Revenue: (11,000 − 10,000) × 12 × 0.5 margin × (1 − 0.2) = 4,800.
    assert model.benefits.revenue == pytest.approx(4_800)
    # Acquisition: (1,000 − 800) × 2 customers/month × 12 × (1 − 0.5) = 2,400.
    assert model.benefits.acquisition_cost == pytest.approx(2_400)
    # Estimate: 1 h × 10 users × 50 × 52 × (1 − 0.25) = 19,500.
    assert model.benefits.estimates == pytest.approx(19_500)
    # Year 0: one-time 10,000, no benefit; years 1 and 2: 2,000 costs, 26,700 benefits, net 24,700.
    assert [(f.year, f.costs, f.benefits, f.net) for f in model.flows] == [
        (0, 10_000, 0, -10_000), (1, 2_000, pytest.approx(26_700), pytest.approx(24_700)),
        (2, 2_000, pytest.approx(26_700), pytest.approx(24_700)),
    ]
    assert [f.cumulative_net for f in model.flows] == [-10_000, pytest.approx(14_700), pytest.approx(39_400)]
    rows = model.summary()
    summary = {figure: value for figure, value, _, _ in rows}
    # No ITS and no interval: auto falls back to the before/after, whose verdict without an interval is unclear.
    texts = {figure: text for figure, value, unit, text in rows if text is not None}
    assert texts["benefit_method"] == "before_after" and texts["verdict"] == "unclear"
    assert "cannot be fitted" in texts["benefit_method_reason"]
    assert all(value is None and unit is None for figure, value, unit, text in rows if text is not None)
    assert summary["revenue_lift_low"] is None and summary["roi_pct_low"] is None and summary["npv_high"] is None
    assert summary["total_costs"] == 14_000
    assert summary["total_benefits"] == pytest.approx(53_400)
    assert summary["roi_pct"] == pytest.approx((53_400 - 14_000) / 14_000 * 100)  # 281.43
    npv = -10_000 + 24_700 / 1.1 + 24_700 / 1.21  # 32,867.77
    assert summary["npv"] == pytest.approx(npv)
    assert summary["discounted_roi_pct"] == pytest.approx(npv / (10_000 + 2_000 / 1.1 + 2_000 / 1.21) * 100)
    assert summary["payback_months"] == pytest.approx(10_000 / (24_700 / 12))  # 4.86 months


def test_auto_uses_the_its_and_the_ranges_are_the_roi_at_the_interval_ends():
    from crm_roi_pipeline.metrics.lift import Estimate

    measured = Measured(10_000, 11_000, 1_000, 800, 2, before_after_interval=(-500.0, 2_500.0),
                        its=Estimate(600.0, 100.0, 1_100.0))
    model = build_model(_assumptions(), measured)  # benefit_method: auto, the default
    assert (model.benefit_method, model.revenue_lift, model.verdict) == ("its", 600.0, "gain")
    summary = {figure: value for figure, value, _, _ in model.summary()}
    assert (summary["revenue_lift_low"], summary["revenue_lift_high"]) == (100.0, 1_100.0)
    # By hand: revenue benefit = lift × 12 × 0.5 × 0.8 = 4.8 × lift a year; the rest as in the test above
    # (acquisition 2,400, estimates 19,500, costs 10,000 once and 2,000 a year over 2 years).
    def roi(lift):
        benefits = 2 * (4.8 * lift + 2_400 + 19_500)
        return (benefits - 14_000) / 14_000 * 100

    def npv(lift):
        net = 4.8 * lift + 2_400 + 19_500 - 2_000
        return -10_000 + net / 1.1 + net / 1.21

    assert summary["roi_pct"] == pytest.approx(roi(600))
    assert (summary["roi_pct_low"], summary["roi_pct_high"]) == (pytest.approx(roi(100)), pytest.approx(roi(1_100)))
    assert (summary["npv_low"], summary["npv_high"]) == (pytest.approx(npv(100)), pytest.approx(npv(1_100)))
    assert summary["benefit_method_its"] == 1.0
    # The same data with benefit_method: before_after credit post − pre, with the before/after interval.
    plain = build_model(_assumptions(benefit_method="before_after"), measured)
    assert (plain.revenue_lift, plain.verdict, plain.roi_pct_range) == (
        1_000, "unclear", (pytest.approx(roi(-500)), pytest.approx(roi(2_500))))


def test_a_negative_uplift_is_reported_as_it_is():
    measured = Measured(pre_won_revenue=10_000, post_won_revenue=9_000, pre_cac=None, post_cac=800, post_new_customers=2)
    model = build_model(_assumptions(benefits=[]), measured)
    # (9,000 − 10,000) × 12 × 0.5 × 0.8 = −4,800; no pre CAC, so no acquisition benefit.
    assert model.benefits.revenue == pytest.approx(-4_800)
    assert model.benefits.acquisition_cost == 0
    assert model.payback_months is None  # monthly net (−4,800 − 2,000) / 12 is negative
    assert model.roi_pct == pytest.approx((-9_600 - 14_000) / 14_000 * 100)


def test_payback_is_null_when_the_monthly_net_is_zero():
    # Benefits exactly equal to recurring costs: revenue 0, acquisition 0, estimate 2,000 a year.
    measured = Measured(10_000, 10_000, None, None, None)
    model = build_model(_assumptions(benefits=[{"name": "x", "hours_per_user_per_week": 1, "users": 1,
                                                 "hourly_cost": 2_000 / 52, "risk": 0}]), measured)
    assert model.benefits.annual == pytest.approx(2_000)
    assert model.payback_months is None


def test_recurring_only_and_one_time_only_costs():
    recurring_only = build_model(_assumptions(costs=[{"name": "L", "category": "software", "recurring": True, "amount": 2_000}]), MEASURED)
    assert recurring_only.flows[0].costs == 0 and recurring_only.one_time_costs == 0
    assert recurring_only.payback_months == 0  # nothing to pay back; the monthly net is positive
    one_time_only = build_model(_assumptions(costs=[{"name": "I", "category": "implementation", "amount": 10_000}]), MEASURED)
    assert [f.costs for f in one_time_only.flows] == [10_000, 0, 0]
    assert one_time_only.payback_months == pytest.approx(10_000 / (26_700 / 12))


def test_sensitivity_moves_one_assumption_at_a_time():
    rows = sensitivity(_assumptions(), MEASURED)
    # gross margin, discount rate, 2 risk haircuts, 1 estimate's risk, 2 cost lines: 7 assumptions × 3 settings,
    # plus the ROI under the one benefit method MEASURED allows (before/after; it has no ITS and no interval).
    assert len(rows) == 22
    assert rows[-1][:3] == ("benefit_method", "before_after", 1_000)
    base = build_model(_assumptions(), MEASURED)
    for name, setting, value, roi_pct, discounted, payback in rows:
        if setting == "base":
            assert roi_pct == pytest.approx(base.roi_pct) and payback == pytest.approx(base.payback_months)
    by_key = {(r[0], r[1]): r for r in rows}
    assert by_key[("gross_margin", "low")][2] == pytest.approx(0.4)
    assert by_key[("costs.Licences", "+20%")][2] == pytest.approx(2_400)
    # Dearer licences lower the ROI; a higher margin raises it; the discount rate leaves the undiscounted ROI alone.
    assert by_key[("costs.Licences", "+20%")][3] < base.roi_pct < by_key[("gross_margin", "high")][3]
    assert by_key[("discount_rate", "high")][3] == pytest.approx(base.roi_pct)
    assert by_key[("discount_rate", "high")][4] < base.discounted_roi_pct


def _sample_project(project, staged_sample):
    for file in (REPO / "data" / "sample").glob("*.csv"):
        shutil.copy(file, project.csv_dir / file.name)
    project.assumptions.write_text((REPO / "data" / "roi_assumptions.yaml").read_text())
    project.use_database(staged_sample.database)  # the same files staged over every month
    return {**project.resources(), "reports": Reports(dir=str(project.root / "reports"))}


def _number(cell: str) -> float | None:
    if cell == "—":
        return None
    text = cell.replace("−", "-").replace(",", "")
    return float(re.search(r"-?\d+(\.\d+)?", text).group())


def test_roi_assets_publish_tables_and_a_report_with_every_figure(project, staged_sample):
    resources = _sample_project(project, staged_sample)
    result = materialize([*metrics_assets, *roi_assets], resources=resources, instance=project.instance)
    assert result.success
    summary = project.query("SELECT figure, value, unit FROM roi.summary")
    assert {f for f, _, _ in summary} >= {
        "total_costs", "total_benefits", "roi_pct", "npv", "discounted_roi_pct", "payback_months",
        "annual_benefit_revenue", "annual_benefit_acquisition_cost", "annual_benefit_estimates",
    }
    # The sample's costs: one-time 60,000 + 15,000 + 12,000 + 20,000 = 107,000; recurring 72,000 + 18,000 =
    # 90,000 a year for 3 years: TCO 377,000. Estimates: 2 h × 25 users × 45 × 52 × (1 − 0.2) = 93,600.
    values = {f: v for f, v, _ in summary}
    assert values["total_costs"] == 377_000
    assert values["annual_benefit_estimates"] == pytest.approx(93_600)
    # roi.cashflows: year 0 holds the one-time costs and no benefit; cumulative net is the running sum.
    flows = project.query("SELECT year, costs, benefits, net, cumulative_net FROM roi.cashflows ORDER BY year")
    assert flows[0][:3] == (0, 107_000, 0)
    assert [f[4] for f in flows] == pytest.approx([sum(g[3] for g in flows[: i + 1]) for i in range(len(flows))])
    # Revenue benefit from metrics.adoption by METRICS.md's formula (margin 0.7, revenue haircut 0.1).
    pre, post = project.query("SELECT pre_value, post_value FROM metrics.adoption WHERE metric = 'won_revenue'")[0]
    assert values["annual_benefit_revenue"] == pytest.approx((post - pre) * 12 * 0.7 * 0.9)

    report = (project.root / "reports" / REPORT_FILE).read_text()
    # The report's "Every figure" table shows each roi.summary figure with the same value (as rounded).
    section = report.split("<h2>Every figure (roi.summary)</h2>", 1)[1].split("</table>", 1)[0]
    cells = {m[0]: html.unescape(m[1]) for m in re.findall(r"<tr><td>([a-z_]+)</td><td>([^<]*)</td>", section)}
    assert set(cells) == set(values)
    texts = dict(project.query("SELECT figure, text FROM roi.summary WHERE text IS NOT NULL"))
    for figure, value, unit in summary:
        if figure in texts:  # text rows show their text
            assert cells[figure] == texts[figure]
            continue
        shown = _number(cells[figure])
        if value is None:
            assert shown is None
        elif unit == "fraction":  # shown as a percentage with one decimal
            assert shown == pytest.approx(value * 100, abs=0.05), figure
        else:
            tolerance = 0.5 if unit == "USD" else 0.05 if unit in ("%", "months") else 1e-4
            assert shown == pytest.approx(value, abs=tolerance), figure
    for needle in ("Headline", "Cash flows", "Initial", "Year 3", "Present value", "Sensitivity", "Assumptions used",
                   "as_of 2025-06-30", "Pre window 2023-01", "data:image/png;base64,"):
        assert needle in report
    meta = result.asset_materializations_for_node("roi")[0].metadata
    assert meta["report"].value.endswith(REPORT_FILE)
    assert "| ROI | NPV | Payback |" in meta["headline"].value and "Present value" in meta["cash_flows"].value


def test_roi_fails_with_the_window_message_when_a_window_is_empty(project, staged_sample):
    resources = _sample_project(project, staged_sample)
    project.assumptions.write_text(
        (REPO / "data" / "roi_assumptions.yaml").read_text().replace("adoption_date: 2024-01-01", "adoption_date: 2019-06-01")
    )
    result = materialize([*metrics_assets, *roi_assets], resources=resources, instance=project.instance, raise_on_error=False)
    assert not result.success
    messages = [e.step_failure_data.user_failure_data.description for e in result.all_events
                if e.is_step_failure and e.step_failure_data.user_failure_data]
    assert any("the pre window is empty" in m and "adoption month: 2019-06" in m and "First month with data: 2020-01" in m
               for m in messages)
    # metrics.monthly still publishes.
    assert project.query("SELECT count(*) > 0 FROM metrics.monthly") == [(True,)]


def _noisy_history(project, step: float, warn: bool) -> None:
    """36 months (24 pre, 12 post) of one won and one lost deal a month: won amounts on a trend of +10 a month
    with a fixed wiggle (±150), plus `step` from 2024-01; `warn` adds a deal closed before it was created."""
    import datetime as dt

    from crm_roi_pipeline.months import add_months

    lines = ["deal_id,is_closed,is_won,amount,created_at,closed_at"]
    for i in range(36):
        month = add_months(dt.date(2022, 1, 1), i)
        amount = 1_000 + 10 * i + 150 * ((-1) ** i) * (1 + (i % 3)) / 2 + (step if i >= 24 else 0)
        lines.append(f"W{i},true,true,{amount:.2f},{month}T09:00:00Z,{month + dt.timedelta(days=9)}T09:00:00Z")
        lines.append(f"L{i},true,false,100,{month}T09:00:00Z,{month + dt.timedelta(days=20)}T09:00:00Z")
    if warn:
        lines.append("X1,true,false,50,2024-03-10T09:00:00Z,2024-03-01T09:00:00Z")
    project.write("deals.csv", "\n".join(lines) + "\n")


def test_an_unclear_verdict_leads_the_headline_and_data_quality_is_in_the_report(project):
    from crm_roi_pipeline.metrics.uplift_assets import uplift_assets
    from crm_roi_pipeline_tests.conftest import HISTORY_ASSUMPTIONS

    _noisy_history(project, step=0, warn=True)
    project.assumptions.write_text(HISTORY_ASSUMPTIONS.format(method="auto", extra=""))
    project.stage("2022-01-01", "2024-12-01", checks=True)  # WARN checks fail; the run does not
    resources = {**project.resources(), "reports": Reports(dir=str(project.root / "reports"))}
    result = materialize([*metrics_assets, *uplift_assets, *roi_assets], resources=resources, instance=project.instance)
    assert result.success
    its = project.query("SELECT value, ci_low, ci_high FROM metrics.uplift WHERE estimate = 'its'")[0]
    naive = project.query("SELECT value FROM metrics.uplift WHERE estimate = 'before_after'")[0][0]
    assert its[1] < 0 < its[2]  # no effect was planted: the ITS interval straddles 0, so the verdict is unclear
    texts = dict(project.query("SELECT figure, text FROM roi.summary WHERE text IS NOT NULL"))
    assert (texts["benefit_method"], texts["verdict"]) == ("its", "unclear")

    report = html.unescape((project.root / "reports" / REPORT_FILE).read_text())
    top = report.split("<h2>Headline</h2>", 1)[1].split("<h2>", 1)[0]
    # The headline says "unclear" before the numbers, then what the before/after would have credited, labelled.
    assert top.index("No clear evidence either way that the CRM changed won revenue") < top.index("<table")
    assert f"The before/after comparison would have credited USD {naive:,.0f} a month" in top
    assert "not adjusted for trend or season" in top
    assert "1 data-quality warning(s): crm/deals closed_after_created (1)" in top
    # The data-quality section: every check, its result and count; the failed WARN check with its effect.
    quality = report.split("<h2>Data quality</h2>", 1)[1].split("<h2>", 1)[0]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(ERROR|WARN)</td><td>(passed|failed)</td><td>([\d,]+)</td>", quality)
    assert ("crm/deals closed_after_created", "WARN", "failed", "1") in rows
    assert ("crm/deals amounts_not_negative", "ERROR", "passed", "0") in rows
    assert len(rows) == 21  # 16 SQL checks, 4 completeness checks, and customer_history_long_enough
    assert "left out of the median days to close" in quality

    # The UI's metadata: the same headline and verdict, numbers rounded as the report rounds them.
    meta = result.asset_materializations_for_node("roi")[0].metadata
    values = dict(project.query("SELECT figure, value FROM roi.summary"))
    assert meta["roi_pct"].value == round(values["roi_pct"], 1) and meta["npv"].value == round(values["npv"])
    assert meta["verdict"].value == "unclear"
    verdict = re.search(r'<p class="verdict">([^<]+)</p>', top).group(1)
    assert verdict in meta["headline_text"].value.splitlines()
    assert meta["headline_text"].value.splitlines()[0].startswith("No clear evidence either way")

"""How sure are we, end to end: intervals in metrics.adoption, metrics.uplift and its tables, the ROI fed by
the counterfactual, and the report, on made-up histories whose true effect is known by construction."""

from __future__ import annotations

import datetime as dt
import html
import math

import numpy as np
import pytest
from dagster import materialize
from statsmodels.stats.proportion import confint_proportions_2indep

from crm_roi_pipeline.metrics.assets import metrics_assets
from crm_roi_pipeline.metrics.uplift_assets import uplift_assets
from crm_roi_pipeline.metrics.labels import money
from crm_roi_pipeline.months import add_months
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline.roi.assets import REPORT_FILE, roi_assets
from crm_roi_pipeline_tests.conftest import HISTORY_ASSUMPTIONS as ASSUMPTIONS
from crm_roi_pipeline_tests.conftest import Project, planned_events_as_ranges

FIRST = dt.date(2021, 1, 1)
ADOPTION = dt.date(2024, 1, 1)
MONTHS = [add_months(FIRST, i) for i in range(48)]  # 36 pre months (2021-01 … 2023-12), 12 post (2024)
STEP, TREND = 500.0, 50.0



def _won_amounts(seed: int = 3) -> list[float]:
    """Won revenue per month: a trend of +50 a month, a December peak, noise (sd 20), and +500 from adoption."""
    noise = np.random.default_rng(seed).normal(0, 20, len(MONTHS))
    return [
        1_000 + TREND * i + (300 if m.month == 12 else 0) + noise[i] + (STEP if m >= ADOPTION else 0)
        for i, m in enumerate(MONTHS)
    ]


def _write_history(project) -> list[float]:
    """Per month one won deal (14 days to close before adoption, 7 after); in the pre window (2023) one lost
    deal a month as well; 13 deals created 2024-06-01 still open at as_of."""
    amounts = _won_amounts()
    lines = ["deal_id,is_closed,is_won,amount,created_at,closed_at"]
    for i, (month, amount) in enumerate(zip(MONTHS, amounts)):
        days = 7 if month >= ADOPTION else 14
        lines.append(f"W{i},true,true,{amount:.2f},{month}T09:00:00Z,{month + dt.timedelta(days=days)}T09:00:00Z")
        if month.year == 2023:
            lines.append(f"L{i},true,false,100,{month}T09:00:00Z,{month + dt.timedelta(days=20)}T09:00:00Z")
    lines += [f"O{i},false,false,100,2024-06-01T09:00:00Z," for i in range(13)]
    project.write("deals.csv", "\n".join(lines) + "\n")
    return amounts


def _run(project, method: str = "its", extra: str = ""):
    project.assumptions.write_text(ASSUMPTIONS.format(method=method, extra=extra))
    project.stage(first="2021-01-01", last="2025-01-01")
    resources = {**project.resources(), "reports": Reports(dir=str(project.root / "reports"))}
    result = materialize([*metrics_assets, *uplift_assets, *roi_assets], resources=resources, instance=project.instance)
    assert result.success
    return result


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """The made-up history of `_write_history` through every asset with benefit_method its, once: the tests
    that read it each check their own part of the same run (project, run result, the amounts written)."""
    project = Project(tmp_path_factory.mktemp("history"))
    amounts = _write_history(project)
    with planned_events_as_ranges():
        result = _run(project)
    return project, result, amounts


def _uplift(project) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in project.query("SELECT estimate, value, ci_low, ci_high, p_value, months, method, note FROM metrics.uplift")}


def test_counterfactual_removes_the_trend_that_before_after_counts_as_uplift(history):
    project, _, amounts = history
    uplift = _uplift(project)
    # Before/after by METRICS.md: mean won revenue of 2024 minus that of 2023, from the amounts written.
    expected_naive = np.mean(amounts[36:]) - np.mean(amounts[24:36])
    assert uplift["before_after"][0] == pytest.approx(expected_naive)
    # ... which is the step plus 12 months of trend (+600), give or take the noise.
    assert expected_naive == pytest.approx(STEP + 12 * TREND, abs=40)
    value, low, high, p_value, months, method, _ = uplift["its"]
    assert method == "its_segmented_ar1_bootstrap_t" and months == 12
    # Within two noise sds of the true step; the interval's coverage over many seeds is what
    # test_uplift_its.py and benchmarks/coverage_uplift.py measure, not one draw.
    assert value == pytest.approx(STEP, abs=40)
    assert 0 < low < value < high and p_value < 0.01
    # The counterfactual: one row per post month; actual is what was written, expected sits near the
    # trend line without the step (1,000 + 50 t, + 300 in December).
    rows = project.query("SELECT month, actual, expected, expected_low, expected_high FROM metrics.counterfactual ORDER BY month")
    assert [r[0] for r in rows] == MONTHS[36:]
    for (month, actual, expected, lo, hi), t in zip(rows, range(36, 48)):
        assert actual == pytest.approx(amounts[t], abs=0.01)
        assert expected == pytest.approx(1_000 + TREND * t + (300 if month.month == 12 else 0), abs=60)
        assert lo <= expected <= hi
    # Placebo: 13 fake adoption months (2022-01 … 2023-01 leave 12 months before them and a 12-month fake
    # post window before the real adoption); a true step of 25 noise sds beats every one of them.
    placebo = project.query("SELECT adoption_month, is_real FROM metrics.placebo_tests ORDER BY adoption_month")
    fakes = [m for m, real in placebo if not real]
    assert fakes == [add_months(dt.date(2022, 1, 1), i) for i in range(13)]
    assert uplift["placebo"][3] == pytest.approx(1 / 14)  # p = (1 + 0) / (1 + 13)
    assert uplift["placebo"][6] == ("the real adoption date ranks 1 of 14 dates by the size of the effect; every date "
                                    "fitted by OLS, real and fake alike")
    assert uplift["placebo"][0] is None  # the placebo is a rank, not a second uplift figure
    # The verdict row: the lift the ROI credits (benefit_method its here) and a sentence that agrees with its
    # interval, which lies above 0.
    assert uplift["verdict"][:3] == uplift["its"][:3] and uplift["verdict"][5] == "its"
    assert uplift["verdict"][6].startswith(f"Won revenue rose: USD {value:,.2f} a month above what the pre-CRM trend")


def test_the_second_opinion_sits_beside_the_its_in_the_table_the_headline_and_the_report(history):
    project, result, _ = history
    uplift = _uplift(project)
    value, low, high, p_value, months, method, note = uplift["second_opinion"]
    assert method == "bsts_causalimpact" and months == 12
    # A step of 25 noise sds: the BSTS finds it near the truth and its interval holds it and not zero.
    assert value == pytest.approx(STEP, abs=60)
    assert 0 < low < STEP < high
    assert note.startswith(f"A second method agrees: CausalImpact's Bayesian structural time series puts the effect "
                           f"at {money(value, 'USD')} a month (95% interval {money(low, 'USD')} to {money(high, 'USD')}); its "
                           "interval is also entirely above zero.")
    # The same sentence in the headline the CLI prints and in the report's "How sure are we?".
    meta = result.asset_materializations_for_node("roi")[0].metadata
    assert note in meta["headline_text"].value.splitlines()
    page = (project.root / "reports" / REPORT_FILE).read_text()
    assert html.escape(note) in page.split("<h2>How sure are we?</h2>")[1]
    assert "Second opinion: Bayesian structural time series" in page


def test_the_roi_takes_its_revenue_benefit_from_the_chosen_method(history):
    project, result, _ = history  # benefit_method: its
    its = _uplift(project)["its"][0]
    summary = dict(project.query("SELECT figure, value FROM roi.summary"))
    # METRICS.md's formula with the ITS uplift in place of post − pre: × 12 × margin 0.7 × (1 − risk 0).
    assert summary["revenue_lift_per_month"] == pytest.approx(its)
    assert summary["annual_benefit_revenue"] == pytest.approx(its * 12 * 0.7)
    assert summary["benefit_method_its"] == 1.0
    # Sensitivity shows the ROI under both methods and at either end of the ITS interval.
    sens = {(a, s): v for a, s, v in project.query(
        "SELECT assumption, setting, value FROM roi.sensitivity WHERE assumption LIKE 'benefit_method%' OR assumption LIKE 'revenue_lift%'")}
    assert set(sens) == {("benefit_method", "before_after"), ("benefit_method", "its"),
                         ("revenue_lift.its", "ci_low"), ("revenue_lift.its", "estimate"), ("revenue_lift.its", "ci_high")}
    assert sens[("benefit_method", "its")] == pytest.approx(its)
    meta = result.asset_materializations_for_node("roi")[0].metadata
    assert meta["benefit_method"].value.startswith("its: benefit_method: its")
    assert meta["verdict"].value == "gain"
    report = (project.root / "reports" / REPORT_FILE).read_text()
    assert "How sure are we?" in report and "Won revenue rose" in report
    assert report.count("data:image/png;base64,") >= 3  # cash-flow chart, counterfactual, placebo


def test_its_falls_back_to_before_after_with_the_reason_when_the_history_is_short(project):
    project.write("deals.csv", "deal_id,is_closed,is_won,amount,created_at,closed_at\n" + "".join(
        f"W{i},true,true,{1_000 + 10 * i},{m}T09:00:00Z,{m + dt.timedelta(days=3)}T09:00:00Z\n"
        for i, m in enumerate(add_months(dt.date(2022, 7, 1), k) for k in range(30))
    ))
    _run(project, method="its")
    uplift = _uplift(project)
    assert uplift["its"][0] is None
    assert "needs 24 months before adoption; the data has 18" in uplift["its"][6]
    assert project.query("SELECT count(*) FROM metrics.counterfactual") == [(0,)]
    summary = dict(project.query("SELECT figure, value FROM roi.summary"))
    assert summary["benefit_method_its"] == 0.0
    # Without an ITS the placebo repeats the before/after estimate. A fake month needs 12 months before it
    # (2023-07 at the earliest) and its 12-month fake post window before 2024-01: none fits in 18 months.
    assert uplift["placebo"][5] == "placebo_before_after" and uplift["placebo"][4] == 0
    assert uplift["placebo"][6] == "no fake adoption month fits inside the pre period"
    # Both windows: one deal a month, +10 a month: before/after is 12 months of trend, 120, exactly.
    assert uplift["before_after"][0] == pytest.approx(120)
    # The verdict is read off the before/after's own interval (METRICS.md's table) and says it is not
    # adjusted for trend or season.
    _, low, high = uplift["verdict"][:3]
    assert uplift["verdict"][5] == "before_after" and (low, high) == uplift["before_after"][1:3]
    opening = "Won revenue rose" if low > 0 else "No clear evidence either way"
    assert uplift["verdict"][6].startswith(opening) and "not adjusted for trend or season" in uplift["verdict"][6]
    texts = dict(project.query("SELECT figure, text FROM roi.summary WHERE text IS NOT NULL"))
    assert texts["benefit_method"] == "before_after" and "cannot be fitted" in texts["benefit_method_reason"]


def test_every_adoption_figure_carries_an_interval(history):
    project, _, _ = history
    rows = {r[0]: r[1:] for r in project.query(
        "SELECT metric, pre_value, post_value, change, ci_low, ci_high, method, ci_level FROM metrics.adoption")}
    # Win rate: 12 won of 24 closed in 2023, 12 of 12 in 2024; Newcombe's interval for 12/12 − 12/24.
    low, high = confint_proportions_2indep(12, 12, 12, 24, method="newcomb", compare="diff", alpha=0.05)
    assert rows["win_rate"][2] == pytest.approx(0.5)
    assert rows["win_rate"][3:6] == (pytest.approx(low), pytest.approx(high), "newcombe")
    # Median days to close is 14 in every pre month and 7 in every post month: every resample gives −7.
    assert rows["median_days_to_close"][2:5] == (-7, -7, -7)
    assert rows["median_days_to_close"][5].startswith("bootstrap")
    # Per-month figures resample months; the interval holds the change.
    pre, post, change, lo, hi, method, level = rows["won_revenue"]
    assert method.startswith("month_bootstrap") and lo < change < hi and level == 0.95
    # No leads, activities or spend: those figures have no value and no interval.
    assert rows["leads_created"][3:6] == (None, None, "none: a window has no value")


def test_time_to_close_counts_open_deals_as_censored(history):
    project, _, _ = history
    ttc = {r[0]: r[1:] for r in project.query(
        "SELECT period, deals, closed, censored, closed_deals_median, km_median FROM metrics.time_to_close")}
    # Pre cohort (created in 2023): 12 won at 14 days, 12 lost at 20 days; nothing open. The median of
    # all 24 closes is between the 12th (14) and 13th (20) values: S(t) is exactly 1/2 from 14 to 20, so 17.
    assert ttc["pre"] == (24, 24, 0, 14, 17)
    # Post cohort: 12 won at 7 days and 13 still open (created 2024-06-01). The naive median of closed won
    # deals is 7; with the open deals counted, S(7) = 13/25 > 1/2 and never falls further: not reached.
    assert ttc["post"] == (25, 12, 13, 7, None)


def test_staggered_rollout_recovers_the_team_effect(project):
    """Three teams with their own levels, a shared month shock, and +300 a month from each team's go-live
    (A 2024-01, B 2024-07; C never): the not-yet-treated comparison gives exactly 300 with no noise."""
    go_live = {"A": dt.date(2024, 1, 1), "B": dt.date(2024, 7, 1)}
    base = {"A": 1_000, "B": 2_000, "C": 1_500}
    lines = ["deal_id,team,is_closed,is_won,amount,created_at,closed_at"]
    for i, month in enumerate(MONTHS):
        shock = 100 * math.sin(i)
        for team in "ABC":
            amount = base[team] + shock + (300 if team in go_live and month >= go_live[team] else 0)
            lines.append(f"{team}{i},{team},true,true,{amount:.6f},{month}T09:00:00Z,{month + dt.timedelta(days=5)}T09:00:00Z")
    project.write("deals.csv", "\n".join(lines) + "\n")
    _run(project, extra="team_adoption_dates: {A: 2024-01-01, B: 2024-07-01}\n")
    value, low, high, *_ = _uplift(project)["staggered"]
    assert value == pytest.approx(300, abs=1e-6)
    cells = project.query("SELECT cohort, month, event_time, att, n_treated, n_controls FROM metrics.staggered_effects "
                          "WHERE event_time >= 0 ORDER BY cohort, month")
    assert cells and all(att == pytest.approx(300, abs=1e-6) for *_, att, _, _ in cells)
    # Cohort A's controls are B and C until B goes live in 2024-07, then C alone; cohort B's is C alone.
    assert {(c, n) for c, *_, n in cells} == {(dt.date(2024, 1, 1), 2), (dt.date(2024, 1, 1), 1), (dt.date(2024, 7, 1), 1)}

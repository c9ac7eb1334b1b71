"""The report's Customers and Service sections: benefits measured beside the ROI, never in it, each sentence
agreeing with its interval, each section with its chart."""

from __future__ import annotations

import html
import re
import shutil

import pytest
from dagster import materialize

from crm_roi_pipeline.metrics.assets import metrics_assets
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline.roi.assets import REPORT_FILE, roi_assets
from crm_roi_pipeline.roi.unpriced import CUSTOMERS, SERVICE, change_sentence, coverage_note
from crm_roi_pipeline_tests.conftest import REPO


@pytest.mark.parametrize(
    ("low", "high", "words"),
    [
        # Median hours to first response 10 -> 5: the interval of the change wholly below zero says "fell".
        (-6.5, -4.4, "Median hours to first response fell from 10.0 to 5.0 (95% interval of the change −6.5 to −4.4)."),
        (1.0, 9.0, "Median hours to first response rose from 10.0 to 5.0 (95% interval of the change +1.0 to +9.0)."),
        # An interval across zero is no change, whatever the point estimate says.
        (-7.0, 0.5, "Median hours to first response: no clear change, 10.0 before and 5.0 after (the 95% interval of "
                    "the change −7.0 to +0.5 includes no change)."),
        (None, None, "Median hours to first response: 10.0 before, 5.0 after; no interval, so no claim of a change."),
    ],
)
def test_a_change_is_said_as_its_interval_says(low, high, words):
    assert change_sentence("median_first_response_hours", 10.0, 5.0, low, high, 0.95) == words


def test_rates_are_said_in_points_and_a_missing_window_is_no_claim():
    assert change_sentence("churn_rate", 0.2, 0.1, -0.15, -0.05, 0.9) == (
        "Churn rate (renewals lost) fell from 20.0% to 10.0% (90% interval of the change −15.0 pt to −5.0 pt).")
    assert change_sentence("csat_rate", None, 0.8, None, None, 0.95).endswith("not measured in both windows.")


def test_a_pre_window_whose_deals_rarely_say_their_type_is_named():
    assert coverage_note(0.12, 0.95).startswith("Before the CRM 12% of the deals closed in the window said their type")
    assert coverage_note(0.6, 0.95) is None  # more than half as often: comparable
    assert coverage_note(None, 0.95) is None


def _section(report: str, title: str) -> str:
    return report.split(f"<h2>{title} (measured, not counted in the ROI)</h2>", 1)[1].split("<h2>", 1)[0]


def _run(project, staged_sample, *, tickets: bool = True):
    for file in (REPO / "data" / "sample").glob("*.csv"):
        if tickets or file.name != "tickets.csv":
            shutil.copy(file, project.csv_dir / file.name)
    project.assumptions.write_text((REPO / "data" / "roi_assumptions.yaml").read_text())
    project.use_database(staged_sample.database)
    if not tickets:
        with project.connect() as conn:
            conn.execute("DELETE FROM crm.tickets")
    resources = {**project.resources(), "reports": Reports(dir=str(project.root / "reports"))}
    result = materialize([*metrics_assets, *roi_assets], resources=resources, instance=project.instance)
    assert result.success
    return html.unescape((project.root / "reports" / REPORT_FILE).read_text())


def test_customers_and_service_are_reported_beside_the_roi_never_in_it(project, staged_sample, tmp_path_factory):
    report = _run(project, staged_sample)
    adoption = {row[0]: row[1:] for row in project.query(
        "SELECT metric, pre_value, post_value, ci_low, ci_high FROM metrics.adoption")}
    summary = dict(project.query("SELECT figure, value FROM roi.summary WHERE value IS NOT NULL"))
    for section in (CUSTOMERS, SERVICE):
        text = _section(report, section.title)
        assert "Measured, not counted in the ROI: " + section.why_not_counted in text
        assert text.count("<img") == 1  # its monthly chart
        # Each key figure's sentence is the one its interval gives (checked against the table, not the code).
        for name in section.key_figures:
            pre, post, low, high = adoption[name]
            assert change_sentence(name, pre, post, low, high, 0.95, "USD") in text
            sentence = next(s for s in re.findall(r"<li>([^<]+)</li>", text) if s.startswith(
                change_sentence(name, pre, post, low, high, 0.95, "USD")[:20]))
            if low is not None and low > 0:
                assert " rose from " in sentence
            elif high is not None and high < 0:
                assert " fell from " in sentence
            else:
                assert " rose " not in sentence and " fell " not in sentence
        # Every figure of the section is in its table, and only there: not in "Before and after adoption".
        before_after = report.split("<h2>Before and after adoption</h2>", 1)[1].split("<h2>", 1)[0]
        for name in section.figures:
            assert name in adoption
    assert "Renewal rate" not in before_after and "Tickets created" not in before_after
    assert "Won revenue" in before_after
    # On the sample the helpdesk got faster (planted: ~10 h -> ~5 h), which the interval confirms.
    assert "Median hours to first response fell from" in _section(report, "Service")
    assert "Measured, not counted: customers" in report.split("<h2>Annual benefits", 1)[1].split("<h2>", 1)[0]

    # Retention and service are never added to the ROI: without any ticket, the ROI is the same (to the last
    # digits DuckDB's parallel sums may order differently).
    other = type(project)(tmp_path_factory.mktemp("no_tickets"))
    without = _run(other, staged_sample, tickets=False)
    again = dict(other.query("SELECT figure, value FROM roi.summary WHERE value IS NOT NULL"))
    assert again == {figure: pytest.approx(value, rel=1e-12) for figure, value in summary.items()}
    service = _section(without, "Service")
    assert "Median hours to first response: not measured in both windows." in service
    assert "<img" not in service  # no series to chart
    other.give_back_instance()

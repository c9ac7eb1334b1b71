"""How figures read wherever a person sees them: in words, units once, no scientific notation, money in
whole units from 1,000 up, percentages with one decimal; and the headline's order when the verdict is unclear."""

from __future__ import annotations

import pytest

from crm_roi_pipeline.metrics import labels
from crm_roi_pipeline.metrics.lift import Estimate
from crm_roi_pipeline.roi import headline
from crm_roi_pipeline.roi.model import Measured, build_model
from crm_roi_pipeline.roi.report import _benefit_rows, _sensitivity_name, _sensitivity_value
from crm_roi_pipeline.settings import Assumptions


@pytest.mark.parametrize(("value", "text"), [
    (1_412_915.49, "1,412,915"), (72_000.0, "72,000"), (999.5, "999.50"), (12.0, "12"), (-35_378.2, "−35,378"),
    (1e308, f"{10**308:,}"[:5]), (0.0, "0"),
])
def test_money(value, text):
    assert labels.money(value).startswith(text)
    assert "e+" not in labels.money(value) and "e-" not in labels.money(value)


def test_percent_and_rates():
    assert labels.percent(457.9684107424913) == "458.0%"
    assert labels.percent(-6.66) == "−6.7%"
    assert labels.value("win_rate", 0.2253) == "22.5%"
    assert labels.value("win_rate", 0.028, change=True) == "+2.8 pt"
    assert labels.value("won_revenue", 85_243.4, change=True) == "+85,243"
    assert labels.percent_change(0.4175) == "+41.8%"


def test_figure_names_are_words_with_the_unit_once():
    assert labels.label("win_rate", "pooled", "USD") == "Win rate"
    assert labels.label("won_revenue", "per_month", "USD") == "Won revenue (USD per\u00a0month)"
    assert labels.label("median_days_to_close", "pooled") == "Median days to close"
    assert labels.label("win_count", "per_month") == "Deals won (per\u00a0month)"
    assert "_" not in "".join(labels.label(name, "per_month", "USD") for name in labels.FIGURES)


def test_sensitivity_rows_in_words_and_without_scientific_notation():
    assert _sensitivity_name("costs.Licences") == "Cost line: Licences"
    assert _sensitivity_name("benefits.Admin time saved.risk") == "Risk haircut, Admin time saved"
    assert _sensitivity_name("revenue_lift.its").startswith("Revenue lift per month (interrupted time series")
    assert _sensitivity_value("costs.Licences", "+20%", 86_400.0) == "86,400"
    assert _sensitivity_value("gross_margin", "low", 0.6) == "60%"


BASE = dict(adoption_date="2024-01-01", transition_months=0, window_months=12, reporting_currency="USD",
            gross_margin=0.5, discount_rate=0.1, horizon_years=2,
            costs=[{"name": "Licences", "category": "software", "recurring": True, "amount": 2_000}])


def test_a_negative_benefit_is_named_as_a_cost():
    # CAC rose from 800 to 1,000 with 2 new customers a month: (800 − 1,000) × 2 × 12 = −4,800 a year.
    model = build_model(Assumptions.model_validate(BASE), Measured(10_000, 10_000, 800, 1_000, 2))
    rows = dict(_benefit_rows(model))
    assert rows["Acquisition cost rose (measured): USD 4,800 a year"] == "−4,800"
    assert not any(label.startswith("Acquisition cost saved") for label in rows)


def test_an_unclear_headline_says_so_first_and_shows_the_before_after_labelled():
    measured = Measured(10_000, 11_000, None, None, None, before_after_interval=(200.0, 1_800.0),
                        its=Estimate(100.0, -500.0, 700.0))
    assumptions = Assumptions.model_validate(BASE)
    model = build_model(assumptions, measured)
    naive = build_model(assumptions.model_copy(update={"benefit_method": "before_after"}), measured)
    top = headline.build(model, level=0.95, before_after=naive)
    lines = top.lines()
    assert lines[0].startswith("No clear evidence either way")
    assert lines[1].startswith("ROI ") and "95% range" in lines[1]
    # The before/after credited post − pre = 1,000 a month, not adjusted for trend or season.
    assert top.naive.startswith("The before/after comparison would have credited USD 1,000 a month (ROI ")
    assert "not adjusted for trend or season" in top.naive
    # A clear verdict has no lead and no before/after line.
    clear = build_model(assumptions, Measured(10_000, 11_000, None, None, None, its=Estimate(900.0, 100.0, 1_700.0)))
    top = headline.build(clear, level=0.95, before_after=naive)
    assert top.lead is None and top.naive is None and top.lines()[0].startswith("ROI ")

"""METRICS.md, "The revenue lift and the verdict": which lift feeds the ROI, and the verdict's words checked
against its interval, case by case."""

from __future__ import annotations

import pytest

from crm_roi_pipeline.metrics.lift import Estimate, choose_lift, placebo_sentence, verdict_code, verdict_sentence

BEFORE_AFTER = Estimate(85_000, 40_000, 130_000)
ITS = Estimate(8_000, -110_000, 126_000)
NO_ITS = Estimate(None, unavailable="interrupted time series needs 24 months before adoption; the data has 12")


@pytest.mark.parametrize(("low", "high", "code"), [
    (1, 10, "gain"),
    (0.001, 0.002, "gain"),
    (-10, -1, "loss"),
    (-1, 1, "unclear"),
    (0, 10, "unclear"),  # low is not above 0
    (-10, 0, "unclear"),  # high is not below 0
    (None, None, "unclear"),  # no interval
    (None, 5, "unclear"),
])
def test_verdict_follows_the_table(low, high, code):
    assert verdict_code(low, high) == code


def test_auto_takes_the_its_when_it_could_be_fitted_and_says_why():
    lift = choose_lift("auto", BEFORE_AFTER, ITS)
    assert (lift.method, lift.value, lift.low, lift.high) == ("its", 8_000, -110_000, 126_000)
    assert "auto" in lift.reason and "interrupted time series could be fitted" in lift.reason
    assert lift.verdict == "unclear"


def test_auto_falls_back_to_before_after_naming_the_reason():
    lift = choose_lift("auto", BEFORE_AFTER, NO_ITS)
    assert (lift.method, lift.value, lift.low, lift.high) == ("before_after", 85_000, 40_000, 130_000)
    assert "cannot be fitted" in lift.reason and "the data has 12" in lift.reason
    assert lift.verdict == "gain"


def test_its_asked_for_but_not_possible_falls_back_and_says_so():
    lift = choose_lift("its", BEFORE_AFTER, NO_ITS)
    assert lift.method == "before_after"
    assert lift.reason.startswith("benefit_method is its, but the interrupted time series cannot be fitted")


def test_before_after_asked_for_is_used_even_with_an_its():
    lift = choose_lift("before_after", BEFORE_AFTER, ITS)
    assert (lift.method, lift.value) == ("before_after", 85_000)


@pytest.mark.parametrize(("estimate", "method", "opening"), [
    (Estimate(50_000, 10_000, 90_000), "its", "Won revenue rose: USD 50,000 a month above what the pre-CRM trend"),
    (Estimate(-50_000, -90_000, -10_000), "its", "Won revenue fell: USD 50,000 a month below what the pre-CRM trend"),
    (Estimate(8_000, -110_000, 126_000), "its", "No clear evidence either way: the change in won revenue, USD 8,000"),
    (Estimate(50_000, 10_000, 90_000), "before_after", "Won revenue rose: USD 50,000 a month more after adoption"),
    (Estimate(-50_000, -90_000, -10_000), "before_after", "Won revenue fell: USD 50,000 a month less after adoption"),
    (Estimate(8_000, -110_000, 126_000), "before_after", "No clear evidence either way"),
])
def test_the_words_agree_with_the_interval(estimate, method, opening):
    other = Estimate(1, 0.5, 2)
    lift = choose_lift(method, estimate if method == "before_after" else other,
                       estimate if method == "its" else NO_ITS)
    sentence = verdict_sentence(lift, "USD", 0.95)
    assert sentence.startswith(opening)
    # The interval quoted is the one the verdict was read from.
    assert f"95% interval USD {'−' if estimate.low < 0 else ''}{abs(estimate.low):,.0f} to " in sentence
    words = sentence.lower()
    if lift.verdict == "gain":
        assert "rose" in words and "fell" not in words and "no clear" not in words
    elif lift.verdict == "loss":
        assert "fell" in words and "rose" not in words and "no clear" not in words
    else:
        assert "no clear evidence" in words and "rose" not in words and "fell" not in words
    assert ("not adjusted for trend or season" in sentence) == (method == "before_after")


def test_a_negative_interval_on_the_fixture_reads_as_a_fall():
    # The data_cloud_workshop export's ITS: −958,415 a month (−1,521,726 to −527,029). The interval excludes
    # zero below it, so the words must say "fell", never "no clear evidence".
    lift = choose_lift("auto", Estimate(-100, -200, 0), Estimate(-958_415, -1_521_726, -527_029))
    assert lift.verdict == "loss"
    sentence = verdict_sentence(lift, "USD", 0.95)
    assert sentence.startswith("Won revenue fell: USD 958,415 a month below")
    assert "USD −1,521,726 to USD −527,029" in sentence


def test_no_interval_is_unclear_and_says_there_is_none():
    lift = choose_lift("before_after", Estimate(1_000, None, None), NO_ITS)
    assert lift.verdict == "unclear"
    assert "no interval could be computed" in verdict_sentence(lift, "EUR", 0.9)


def test_placebo_sentence_never_carries_a_verdict():
    sentence = placebo_sentence(rank=3, fakes=23, p_value=3 / 24)
    assert sentence.startswith("Placebo test: 2 of 23 fake adoption dates")
    assert "does not change it" in sentence
    assert "no fake adoption date" in placebo_sentence(None, 0, None)


@pytest.mark.parametrize(("pre_months", "method"), [(24, "its"), (23, "before_after")])
def test_auto_takes_the_its_from_24_pre_months_and_the_before_after_below(pre_months, method):
    """The ITS itself decides whether it can be fitted (fit_its: at least 24 complete pre months); auto
    follows it, and says why either way."""
    import datetime as dt

    import numpy as np
    import pandas as pd

    from crm_roi_pipeline.months import add_months
    from crm_roi_pipeline.statistics.its import ItsResult, fit_its

    adoption = dt.date(2024, 1, 1)
    months = [add_months(adoption, i - pre_months) for i in range(pre_months + 12)]
    noise = np.random.default_rng(1).normal(0, 5, len(months))
    series = pd.DataFrame({"month": months, "value": [100 + 2 * i + noise[i] + (50 if m >= adoption else 0)
                                                      for i, m in enumerate(months)]})
    its = fit_its(series, adoption)
    estimate = (Estimate(its.uplift_per_month, its.uplift_low, its.uplift_high) if isinstance(its, ItsResult)
                else Estimate(None, unavailable=its.reason))
    lift = choose_lift("auto", Estimate(74.0, 60.0, 88.0), estimate)
    assert lift.method == method
    if method == "its":
        assert lift.value == pytest.approx(50, abs=10) and "could be fitted" in lift.reason
    else:
        assert "needs 24 months before adoption; the data has 23" in lift.reason and lift.value == 74.0

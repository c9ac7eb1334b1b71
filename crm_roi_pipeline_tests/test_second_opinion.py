"""The second opinion beside the interrupted time series: CausalImpact's Bayesian structural time series
(`uplift/bsts.py`, the real bsts-causalimpact sampler) and the sentence saying whether the two agree."""

from __future__ import annotations

import datetime as dt
import sys

import numpy as np
import pandas as pd
import pytest

from crm_roi_pipeline.metrics.lift import Estimate, agree, second_opinion_sentence
from crm_roi_pipeline.months import add_months
from crm_roi_pipeline.statistics.bsts import BstsResult, BstsUnavailable, fit_bsts

START, PRE, POST = dt.date(2020, 1, 1), 48, 12
MONTHS = [add_months(START, i) for i in range(PRE + POST)]


def _series(seed: int | None, step: float = 20.0, sd: float = 10.0) -> pd.DataFrame:
    """The ITS's own model: trend +2 a month, a ±30 seasonal wave, `step` from the first post month."""
    t = np.arange(PRE + POST)
    calendar = np.array([m.month for m in MONTHS])
    noise = np.zeros(len(t)) if seed is None else np.random.default_rng(seed).normal(0, sd, len(t))
    values = 100 + 2 * t + 30 * np.sin(2 * np.pi * calendar / 12) + np.where(t >= PRE, step, 0.0) + noise
    return pd.DataFrame({"month": MONTHS, "value": values})


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_on_a_clean_level_shift_the_estimate_is_near_the_truth_and_its_interval_holds_it(seed):
    result = fit_bsts(_series(seed), MONTHS[PRE])
    assert isinstance(result, BstsResult)
    assert (result.n_pre, result.n_post, result.level) == (PRE, POST, 0.95)
    assert result.low <= 20.0 <= result.high
    # The mean of 12 post months' noise has s.d. 10/√12 ≈ 2.9, the counterfactual's uncertainty about as much
    # again: within 12 of the truth is more than 2.5 s.d.s of the two together.
    assert result.estimate == pytest.approx(20.0, abs=12)
    assert result.low > 0  # a shift of 2 noise s.d.s is a gain for it as for the ITS


def test_without_noise_the_shift_is_found_almost_exactly():
    result = fit_bsts(_series(None), MONTHS[PRE])
    assert isinstance(result, BstsResult)
    assert result.estimate == pytest.approx(20.0, abs=1.0)
    assert result.low <= 20.0 <= result.high


def test_a_fall_is_below_zero():
    result = fit_bsts(_series(7, step=-40.0), MONTHS[PRE])
    assert isinstance(result, BstsResult)
    assert result.high < 0 and result.low <= -40.0 <= result.high


def test_transition_months_are_left_out_and_the_calendar_kept():
    # Adoption two months before the step, both transition months left out: the shift is still recovered.
    result = fit_bsts(_series(3), MONTHS[PRE - 2], transition_months=2)
    assert isinstance(result, BstsResult)
    assert (result.n_pre, result.n_post) == (PRE - 2, POST)
    assert result.low <= 20.0 <= result.high


def test_the_same_data_give_the_same_answer():
    assert fit_bsts(_series(1), MONTHS[PRE]) == fit_bsts(_series(1), MONTHS[PRE])


def test_too_little_history_says_why():
    result = fit_bsts(_series(1).iloc[:32], MONTHS[20])
    assert result == BstsUnavailable("needs 24 months before adoption; the data has 20")


def test_without_the_package_it_says_how_to_turn_it_on(monkeypatch):
    monkeypatch.setitem(sys.modules, "causal_impact", None)  # as if not installed: the import fails
    result = fit_bsts(_series(1), MONTHS[PRE])
    assert isinstance(result, BstsUnavailable)
    assert "pip install 'crm-roi-pipeline[causal]'" in result.reason


ITS_GAIN = Estimate(100.0, 40.0, 160.0)


def test_agreement_is_the_same_verdict():
    assert agree(ITS_GAIN, Estimate(80.0, 10.0, 150.0)) is True
    assert agree(ITS_GAIN, Estimate(80.0, -10.0, 170.0)) is False
    assert agree(Estimate(5.0, -50.0, 60.0), Estimate(-5.0, -70.0, 40.0)) is True
    assert agree(ITS_GAIN, Estimate(None, unavailable="x")) is None


def test_the_sentence_says_whether_they_agree():
    assert second_opinion_sentence(ITS_GAIN, Estimate(80.0, 10.0, 150.0), "USD", 0.95) == (
        "A second method agrees: CausalImpact's Bayesian structural time series puts the effect at USD 80 a month "
        "(95% interval USD 10 to USD 150); its interval is also entirely above zero.")
    assert second_opinion_sentence(ITS_GAIN, Estimate(80.0, -10.0, 170.0), "EUR", 0.9) == (
        "A second method does not agree: CausalImpact's Bayesian structural time series puts the effect at EUR 80 "
        "a month (90% interval EUR −10 to EUR 170); its interval includes zero, while the interrupted time "
        "series' is entirely above zero. Read the verdict with that in mind.")
    assert second_opinion_sentence(ITS_GAIN, Estimate(None, unavailable="needs 24 months"), "USD", 0.95) == (
        "Second opinion (CausalImpact's Bayesian structural time series): not computed; needs 24 months.")

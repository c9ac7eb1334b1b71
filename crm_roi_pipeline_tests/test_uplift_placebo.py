"""Placebo tests: fake adoption dates in the pre period, the permutation p-value, and the charts."""

from __future__ import annotations

import datetime as dt
import struct

import numpy as np
import pandas as pd
import pytest

from crm_roi_pipeline.metrics.uplift_charts import counterfactual_chart, placebo_chart
from crm_roi_pipeline.months import add_months
from crm_roi_pipeline.statistics.its import fit_its
from crm_roi_pipeline.statistics.placebo import before_after_estimator, its_estimator, placebo_test

START = dt.date(2019, 1, 1)


def series_with(n_pre: int, n_post: int, *, step: float, noise: float, seed: int) -> tuple[pd.DataFrame, dt.date]:
    """100 + 2t + 30·sin(2π·month/12) + step after adoption + noise."""
    n = n_pre + n_post
    months = [add_months(START, i) for i in range(n)]
    t = np.arange(n)
    values = (
        100 + 2 * t + 30 * np.sin(2 * np.pi * np.array([m.month for m in months]) / 12)
        + np.where(t >= n_pre, step, 0.0)
        + noise * np.random.default_rng(seed).standard_normal(n)
    )
    return pd.DataFrame({"month": months, "value": values}), months[n_pre]


@pytest.mark.parametrize("seed", range(3))
def test_a_large_true_effect_ranks_first(seed):
    series, adoption = series_with(48, 12, step=50, noise=5.0, seed=seed)
    result = placebo_test(series, adoption, estimator=its_estimator())
    # Fake month f (index) needs 12 months before it and 12 fake post months before month 48:
    # f = 12 … 36, so 25 placebos and the smallest possible p-value is 1/26.
    assert result.n == 25
    assert result.rank == 1
    assert result.p_value == pytest.approx(1 / 26)
    assert result.real == pytest.approx(50, abs=8)


@pytest.mark.parametrize("seed", range(4))
def test_no_effect_is_not_significant(seed):
    series, adoption = series_with(48, 12, step=0, noise=5.0, seed=seed)
    result = placebo_test(series, adoption, estimator=its_estimator())
    assert result.n == 25
    assert result.p_value > 0.2


def test_the_placebo_test_exposes_the_naive_comparison_on_a_trend():
    # No noise, no effect: every 12-month before/after difference is the trend over 12 months, 2 × 12 = 24
    # (whole-year windows cancel the wave), at the real date and at every fake date alike: all 25 placebos
    # tie with the real estimate, so it ranks last and p = 26/26.
    series, adoption = series_with(48, 12, step=0, noise=0.0, seed=0)
    result = placebo_test(series, adoption, estimator=before_after_estimator(window_months=12))
    assert result.real == pytest.approx(24)
    assert all(e == pytest.approx(24) for _, e in result.placebos)
    assert (result.n, result.rank, result.p_value) == (25, 26, 1.0)


def test_fake_dates_respect_min_pre_min_post_and_the_transition():
    # 30 pre months, 1 transition month, 6 post months (37 months). Each fake post window is at most as
    # long as the real one (6) and must end before the real adoption (index 30):
    # default min_post = 6: f ≥ 12 and f + 1 + 6 ≤ 30, so f = 12 … 23 (12 dates);
    # min_post = 3:          f + 1 + 3 ≤ 30, so f = 12 … 26 (15 dates).
    months = [add_months(START, i) for i in range(37)]
    series = pd.DataFrame({"month": months, "value": np.arange(37, dtype=float)})
    seen: list[tuple[dt.date, int, dt.date, int]] = []

    def recording(frame: pd.DataFrame, adoption: dt.date, transition: int) -> float:
        seen.append((adoption, transition, frame["month"].iloc[-1], len(frame)))
        return 1.0

    result = placebo_test(series, months[30], estimator=recording, transition_months=1)
    assert [m for m, _ in result.placebos] == months[12:24]
    real_call, fake_calls = seen[0], seen[1:]
    assert real_call == (months[30], 1, months[36], 37)  # the real estimate sees the whole series
    for (fake, transition, last, _), index in zip(fake_calls, range(12, 24)):
        assert (fake, transition) == (months[index], 1)
        assert last == months[index + 6]  # transition month index + 1, then 6 fake post months
    seen.clear()
    result = placebo_test(series, months[30], estimator=recording, transition_months=1, min_post_months=3)
    assert [m for m, _ in result.placebos] == months[12:27]
    assert max(last for _, _, last, _ in seen[1:]) == months[29]  # never past the real adoption


def test_ties_count_against_the_real_estimate():
    months = [add_months(START, i) for i in range(30)]
    series = pd.DataFrame({"month": months, "value": np.zeros(30)})
    estimates = {months[24]: 5.0, months[12]: -5.0, months[13]: 4.0, months[14]: 6.0}

    def lookup(frame: pd.DataFrame, adoption: dt.date, transition: int) -> float:
        return estimates.get(adoption, float("nan"))  # NaN: a date the estimator cannot use

    result = placebo_test(series, months[24], estimator=lookup, min_post_months=1)
    # Placebos -5, 4, 6: |−5| and |6| are ≥ |5|: rank 3, p = (1 + 2) / (1 + 3).
    assert result.n == 3
    assert (result.rank, result.p_value) == (3, 0.75)


def test_no_fake_date_fits():
    series, adoption = series_with(14, 12, step=50, noise=1.0, seed=0)
    result = placebo_test(series, adoption, estimator=its_estimator())
    assert (result.n, result.p_value, result.rank) == (0, None, None)
    assert result.real == pytest.approx(50, abs=5)
    assert placebo_chart(result).startswith(b"\x89PNG")


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_charts_are_small_pngs():
    series, adoption = series_with(36, 12, step=50, noise=5.0, seed=1)
    placebo = placebo_test(series, adoption, estimator=before_after_estimator())
    assert png_size(placebo_chart(placebo)) == (800, 300)
    its = fit_its(series, adoption, transition_months=1)
    chart = counterfactual_chart(its, "USD per month")
    assert png_size(chart) == (800, 350)
    assert len(chart) < 150_000

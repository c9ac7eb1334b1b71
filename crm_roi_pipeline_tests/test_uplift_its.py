"""The interrupted time series against simulated series whose truth is known, and the naive before/after."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crm_roi_pipeline.months import add_months
from crm_roi_pipeline.statistics.its import ItsResult, ItsUnavailable, before_after, fit_its

START = dt.date(2020, 1, 1)


def seasonal_series(
    n_pre: int = 36,
    n_post: int = 12,
    *,
    step: float = 0.0,
    slope: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
    transition: int = 0,
) -> tuple[pd.DataFrame, dt.date, np.ndarray]:
    """100 + 2t + 30·sin(2π·month/12) (+ step, + slope × months since the first post month) + noise.

    Returns the series, the adoption month and the no-CRM truth for every month.
    """
    n = n_pre + transition + n_post
    months = [add_months(START, i) for i in range(n)]
    t = np.arange(n)
    baseline = 100 + 2 * t + 30 * np.sin(2 * np.pi * np.array([m.month for m in months]) / 12)
    first_post = n_pre + transition
    effect = np.where(t >= first_post, step + slope * (t - first_post), 0.0)
    effect[n_pre:first_post] = step / 2  # a ramp-up during the transition, which the fit must ignore
    values = baseline + effect + noise * np.random.default_rng(seed).standard_normal(n)
    return pd.DataFrame({"month": months, "value": values}), months[n_pre], baseline


def test_trend_and_seasonality_without_uplift_exactly():
    series, adoption, _ = seasonal_series()
    result = fit_its(series, adoption)
    assert isinstance(result, ItsResult)
    assert result.uplift_per_month == pytest.approx(0, abs=1e-8)
    assert (result.n_pre, result.n_post, result.seasonal) == (36, 12, "dummies")
    # Naive: post months 36..47 vs pre months 24..35; each window is a whole year so the wave cancels and
    # what is left is the trend over the 12-month gap between the windows: 2 × 12 = 24.
    assert before_after(series, adoption) == pytest.approx(24, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_trend_and_seasonality_without_uplift_with_noise(seed):
    series, adoption, _ = seasonal_series(noise=2.0, seed=seed)
    result = fit_its(series, adoption, level=0.99)
    assert result.uplift_low <= 0 <= result.uplift_high
    assert abs(result.uplift_per_month) < 3  # noise sd 2 (uplift se ≈ 1); the naive comparison is off by ~24
    # The noise moves a difference of two 12-month means by about 2·√(2/12) ≈ 0.8.
    assert before_after(series, adoption) == pytest.approx(24, abs=4)


def test_step_uplift_recovered_exactly_without_noise():
    series, adoption, baseline = seasonal_series(step=50)
    result = fit_its(series, adoption)
    assert result.uplift_per_month == pytest.approx(50, abs=1e-8)
    assert result.uplift_total == pytest.approx(50 * 12, abs=1e-6)
    assert result.uplift_low == pytest.approx(50, abs=1e-6) and result.uplift_high == pytest.approx(50, abs=1e-6)
    cf = result.counterfactual
    assert list(cf.columns) == ["month", "actual", "expected", "expected_low", "expected_high"]
    assert list(cf["month"]) == [add_months(adoption, k) for k in range(12)]
    np.testing.assert_allclose(cf["expected"], baseline[36:], atol=1e-8)
    np.testing.assert_allclose(cf["actual"] - cf["expected"], 50, atol=1e-8)


def test_growing_uplift_is_the_mean_over_post_months():
    # Effect 5·k in post month k = 0..11: the mean per month is 5 × 5.5 = 27.5.
    series, adoption, _ = seasonal_series(slope=5)
    result = fit_its(series, adoption)
    assert result.uplift_per_month == pytest.approx(27.5, abs=1e-8)
    assert result.uplift_total == pytest.approx(5 * sum(range(12)), abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_step_uplift_within_its_interval_with_noise(seed):
    series, adoption, _ = seasonal_series(step=50, noise=5.0, seed=seed)
    result = fit_its(series, adoption, level=0.99)
    assert result.uplift_low <= 50 <= result.uplift_high
    assert result.uplift_low < result.uplift_per_month < result.uplift_high
    # The p-value comes from 999 bootstrap draws: none as large gives its smallest value, 1 / 1000.
    assert result.p_value == pytest.approx(1 / 1000)
    assert result.uplift_total == pytest.approx(result.uplift_per_month * 12)


def test_uplift_is_the_mean_of_actual_minus_expected():
    # Exactly with OLS (its residuals sum to zero over the post months); with AR(1) errors the GLS
    # residuals need not, and the two differ by their post mean, which is small next to the noise.
    series, adoption, _ = seasonal_series(step=50, noise=5.0, seed=11)
    for errors, tolerance in (("ar1_bootstrap", 1e-8), ("hac", 1e-8), ("ar1", 2.0)):
        result = fit_its(series, adoption, errors=errors)
        cf = result.counterfactual
        assert (cf["actual"] - cf["expected"]).mean() == pytest.approx(result.uplift_per_month, abs=tolerance)
        assert (cf["expected_low"] < cf["expected"]).all() and (cf["expected"] < cf["expected_high"]).all()
    assert result.errors == "ar1" and result.method == "its_segmented_glsar" and result.rho is not None


def test_interval_coverage_over_many_seeds_is_near_nominal():
    # On ~50 months the intervals run a little narrow (AR(1) errors: about 0.94 on white noise; Newey–West
    # about 0.89), which is why the per-seed checks above use 99%. This guards against a grossly wrong
    # variance in either direction.
    hits = []
    for seed in range(200):
        series, adoption, _ = seasonal_series(step=50, noise=5.0, seed=1000 + seed)
        result = fit_its(series, adoption)
        hits.append(result.uplift_low <= 50 <= result.uplift_high)
    assert 0.83 <= np.mean(hits) <= 0.99


def test_transition_months_are_left_out():
    # Adoption in month 36, two transition months at half the effect, then 10 post months at +50.
    series, adoption, baseline = seasonal_series(step=50, n_post=10, transition=2)
    result = fit_its(series, adoption, transition_months=2)
    assert (result.n_pre, result.n_post) == (36, 10)
    assert result.first_post_month == add_months(adoption, 2)
    assert result.uplift_per_month == pytest.approx(50, abs=1e-8)
    assert list(result.history["period"][34:40]) == ["pre", "pre", "transition", "transition", "post", "post"]
    np.testing.assert_allclose(result.history["expected"], baseline, atol=1e-8)


def test_mid_month_adoption_makes_its_month_a_transition_month():
    series, adoption, _ = seasonal_series(step=50, transition=1, n_post=11)
    result = fit_its(series, adoption.replace(day=15))
    assert result.adoption_month == adoption
    assert result.first_post_month == add_months(adoption, 1)
    assert (result.n_pre, result.n_post) == (36, 11)
    assert result.uplift_per_month == pytest.approx(50, abs=1e-8)


def test_unavailable_with_18_months_before_adoption():
    series, adoption, _ = seasonal_series(n_pre=18, step=50, noise=5.0)
    result = fit_its(series, adoption)
    assert isinstance(result, ItsUnavailable)
    assert "24 months before adoption" in result.reason and "has 18" in result.reason


def test_unavailable_with_two_post_months():
    series, adoption, _ = seasonal_series(n_post=2)
    result = fit_its(series, adoption)
    assert isinstance(result, ItsUnavailable)
    assert "3 complete months after adoption" in result.reason and "has 2" in result.reason


def test_twelve_pre_months_need_the_seasonal_fallback():
    # 12 pre months hold each calendar month once: with 11 dummies the trend is not identified.
    series, adoption, _ = seasonal_series(n_pre=12, step=50)
    strict = fit_its(series, adoption, min_pre_months=12)
    assert isinstance(strict, ItsUnavailable) and "told apart" in strict.reason
    auto = fit_its(series, adoption, min_pre_months=12, seasonal="auto")
    # The simulated wave is exactly one 12-month sine, so the harmonic fallback is exact here.
    assert auto.seasonal == "harmonic"
    assert auto.uplift_per_month == pytest.approx(50, abs=1e-8)


def test_before_after_with_a_window():
    # value = 2t, adoption at month 30, 12 post months; 6-month windows: months 30..35 vs 24..29,
    # means 65 and 53: 2 × 6 = 12.
    months = [add_months(START, i) for i in range(42)]
    series = pd.DataFrame({"month": months, "value": 2.0 * np.arange(42)})
    assert before_after(series, months[30], window_months=6) == pytest.approx(12)
    # Without a window N = min(30 pre, 12 post) = 12: 2 × 12 = 24; one transition month: post starts at 31,
    # N = min(30, 11) = 11, post months 31..41 (mean 72) vs pre 19..29 (mean 48).
    assert before_after(series, months[30]) == pytest.approx(24)
    assert before_after(series, months[30], transition_months=1) == pytest.approx(24)


def test_gaps_and_missing_values_are_refused():
    series, adoption, _ = seasonal_series()
    with pytest.raises(ValueError, match="consecutive"):
        fit_its(series.drop(index=5), adoption)
    broken = series.copy()
    broken.loc[3, "value"] = np.nan
    with pytest.raises(ValueError, match="missing"):
        fit_its(broken, adoption)

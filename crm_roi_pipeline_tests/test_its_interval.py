"""The ITS interval (OLS, an AR(1) standard error, a bootstrap-t critical value): seeded, fast cases. How often
it covers the truth over thousands of series is benchmarks/coverage_its.py's, not a test's."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crm_roi_pipeline.months import add_months
from crm_roi_pipeline.statistics.ar1_interval import ar1_bootstrap_t, ar1_correlation
from crm_roi_pipeline.statistics.intervals import bootstrap_months_difference, mean_statistic
from crm_roi_pipeline.statistics.its import ItsResult, before_after, fit_its

START, PRE, POST = dt.date(2020, 1, 1), 48, 12
MONTHS = [add_months(START, i) for i in range(PRE + POST)]
ADOPTION = MONTHS[PRE]


def _series(noise: np.ndarray, step: float = 20.0) -> pd.DataFrame:
    t = np.arange(PRE + POST)
    calendar = np.array([m.month for m in MONTHS])
    values = 100 + 2 * t + 30 * np.sin(2 * np.pi * calendar / 12) + np.where(t >= PRE, step, 0.0) + noise
    return pd.DataFrame({"month": MONTHS, "value": values})


def _ar1(seed: int, phi: float, sd: float = 10.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty(PRE + POST)
    out[0] = rng.standard_normal() * sd
    for i in range(1, len(out)):
        out[i] = phi * out[i - 1] + rng.standard_normal() * sd * np.sqrt(1 - phi**2)
    return out


def _covers(result: ItsResult, truth: float) -> bool:
    return result.uplift_low <= truth <= result.uplift_high


def test_on_white_noise_where_ols_covers_the_product_covers_too():
    checked = 0
    for seed in range(20):
        series = _series(np.random.default_rng(seed).normal(0, 10, PRE + POST))
        ols = fit_its(series, ADOPTION, errors="ols")
        product = fit_its(series, ADOPTION)
        assert product.uplift_per_month == pytest.approx(ols.uplift_per_month)  # the same OLS point estimate
        if _covers(ols, 20.0):
            assert _covers(product, 20.0), seed
            checked += 1
    assert checked >= 15  # OLS covers ~95% of seeds: the claim was really put to the test


def test_on_ar1_noise_the_interval_is_wider_than_ols():
    series = _series(_ar1(3, 0.5))
    ols = fit_its(series, ADOPTION, errors="ols")
    product = fit_its(series, ADOPTION)
    assert product.rho > 0.2  # the correlation is seen
    assert (product.uplift_high - product.uplift_low) > 1.3 * (ols.uplift_high - ols.uplift_low)


def test_a_seasonal_null_with_growth_is_no_effect_for_the_its_but_one_for_the_before_after():
    series = _series(np.random.default_rng(4).normal(0, 10, PRE + POST), step=0.0)
    its = fit_its(series, ADOPTION)
    assert its.uplift_low < 0 < its.uplift_high
    values = series["value"].to_numpy()
    naive = bootstrap_months_difference(values[PRE - 12 : PRE], values[PRE:], mean_statistic, seed=1)
    # The trend puts +2 × 12 = +24 between the two windows: the before/after sees an "effect".
    assert before_after(series, ADOPTION, window_months=12) == pytest.approx(24, abs=8)
    assert naive.low > 0


def test_the_moment_estimate_of_rho_and_the_bootstrap_are_seeded_and_exact_on_a_known_design():
    # A design of a constant and a step; errors with lag-1 autocorrelation: same data, same interval.
    n = 40
    x = np.column_stack([np.ones(n), (np.arange(n) >= 30).astype(float)])
    weights = np.array([0.0, 1.0])
    y = x @ np.array([5.0, 2.0]) + np.linalg.cholesky(ar1_correlation(n, 0.6)) @ np.random.default_rng(2).normal(size=n)
    first, second = ar1_bootstrap_t(y, x, weights), ar1_bootstrap_t(y, x, weights)
    assert (first.estimate, first.std_error, first.critical, first.rho) == (
        second.estimate, second.std_error, second.critical, second.rho)
    # The point estimate is OLS's: the post mean minus the pre mean for this design.
    assert first.estimate == pytest.approx(y[30:].mean() - y[:30].mean())
    assert 0.2 < first.rho < 0.95
    assert first.critical > 1.96  # an estimated ρ widens the critical value beyond the normal quantile

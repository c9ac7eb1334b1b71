"""Bootstrap and Newcombe intervals: published figures, exact bootstrap distributions enumerated by hand,
agreement of the fast resamplers with scipy's, and coverage of known true differences."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from crm_roi_pipeline.statistics import intervals
from crm_roi_pipeline.statistics.intervals import (
    BCA_MAX_N,
    Interval,
    bootstrap_difference,
    bootstrap_months_difference,
    bootstrap_paired_difference,
    mean_statistic,
    newcombe_difference,
    ratio_of_ratios_statistic,
    ratio_of_sums_statistic,
    sum_statistic,
)

# ---------------------------------------------------------------------------------------------------------
# Newcombe
# ---------------------------------------------------------------------------------------------------------


def test_newcombe_reproduces_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II example (a): 56/70 vs 48/80, difference
    # 0.2000, method 10 (hybrid score, no continuity correction): 0.0524 to 0.3339.
    result = newcombe_difference(48, 80, 56, 70)  # pre 48/80, post 56/70: post − pre = +0.2
    assert result.method == "newcombe"
    assert (round(result.low, 4), round(result.high, 4)) == (0.0524, 0.3339)
    # Fagerland, Lydersen & Laake (2015), the example statsmodels' own tests use: 7/34 vs 1/34, Newcombe
    # hybrid score 0.019 to 0.34.
    result = newcombe_difference(1, 34, 7, 34)
    assert (round(result.low, 3), round(result.high, 2)) == (0.019, 0.34)


def test_newcombe_is_post_minus_pre():
    up = newcombe_difference(48, 80, 56, 70)
    down = newcombe_difference(56, 70, 48, 80)
    assert down.low == pytest.approx(-up.high) and down.high == pytest.approx(-up.low)


def test_newcombe_edge_cases():
    assert newcombe_difference(0, 0, 5, 10) == Interval(None, None, "newcombe")
    assert newcombe_difference(5, 10, 0, 0) == Interval(None, None, "newcombe")
    # 0/10 vs 10/10: Wilson intervals (0, z²/(10 + z²)) = (0, .27753) and (.72247, 1); Newcombe:
    # low = 1 − √((1 − .72247)² + (.27753 − 0)²) = 1 − √2 · .27753 = .60751, high = 1 + √(0² + 0²) = 1.
    result = newcombe_difference(0, 10, 10, 10)
    assert result.low == pytest.approx(0.60751, abs=1e-5) and result.high == pytest.approx(1)
    with pytest.raises(ValueError):
        newcombe_difference(11, 10, 1, 10)


# ---------------------------------------------------------------------------------------------------------
# The exact fast resamplers
# ---------------------------------------------------------------------------------------------------------


def _enumerated(x: list[float], statistic) -> dict[float, float]:
    """The bootstrap distribution by definition: all n^n equally likely resamples."""
    n = len(x)
    out: dict[float, float] = {}
    for idx in itertools.product(range(n), repeat=n):
        value = round(float(statistic(np.array([x[i] for i in idx]))), 9)
        out[value] = out.get(value, 0.0) + n**-n
    return out


@pytest.mark.parametrize("x", [[1.0, 2.0, 4.0], [1.0, 2.0, 2.0, 5.0], [3.0, 1.0, 4.0, 1.0, 5.0]])
@pytest.mark.parametrize(
    ("kind", "path"),
    [("median", "multinomial"), ("median", "order"), ("mean", "multinomial")],
)
def test_every_resampler_draws_the_exact_bootstrap_distribution(x, kind, path):
    # Odd and even n, with and without ties: the frequency of every possible value over 100,000 draws is
    # within 5 binomial standard errors (≤ 0.0016 each) of its enumerated probability, and no value the
    # enumeration cannot produce appears.
    exact = _enumerated(x, np.median if kind == "median" else np.mean)
    draws = 100_000
    theta = intervals._resampled_statistics(np.array(x), kind, draws, np.random.default_rng(11), path=path)
    values, counts = np.unique(np.round(theta, 9), return_counts=True)
    observed = dict(zip(values.tolist(), (counts / draws).tolist()))
    assert set(observed) <= set(exact)
    for value, p in exact.items():
        assert abs(observed.get(value, 0.0) - p) <= 5 * math.sqrt(p * (1 - p) / draws), value


def test_median_of_counts_follows_np_median():
    values = np.array([1.0, 3.0, 4.0, 10.0])
    rng = np.random.default_rng(0)
    for n in (5, 6, 7, 8):  # odd and even totals
        counts = rng.multinomial(n, [0.25] * 4, size=50)
        expected = [np.median(np.repeat(values, row)) for row in counts]
        assert intervals._median_of_counts(values, counts).tolist() == expected


def _scipy_percentile(pre, post, statistic, n_resamples, seed):
    result = stats.bootstrap(
        (pre, post), lambda a, b, axis: statistic(b, axis=axis) - statistic(a, axis=axis),
        n_resamples=n_resamples, vectorized=True, paired=False, method="percentile", batch=500,
        rng=np.random.default_rng(seed),
    )
    return result


@pytest.mark.parametrize(
    ("statistic", "integer", "path"),
    [(np.median, True, "multinomial"), (np.mean, True, "multinomial"), (np.median, False, "order"),
     (np.mean, False, None)],
)
def test_fast_path_agrees_with_scipy_percentile_on_a_mid_size_sample(statistic, integer, path):
    # 2,500 deals per window (above BCA_MAX_N: the exact shortcut runs where there is one, scipy's index
    # resampling where there is none, path None), 3,999 resamples each way. Both draw
    # from the same bootstrap distribution: the endpoints differ by Monte-Carlo noise only, about
    # 0.04 bootstrap standard errors each (√(.025·.975/3999) / φ(1.96)); allowed: 0.25 standard errors,
    # plus half a day where the integer medians' distribution moves in half-day steps.
    rng = np.random.default_rng(5)
    n = 2_500
    assert n > BCA_MAX_N
    pre, post = rng.exponential(40, n), rng.exponential(34, n)
    if integer:
        pre, post = np.floor(pre), np.floor(post)
    kind = "median" if statistic is np.median else "mean"
    assert intervals._resampling_path(pre, kind) == path

    ours = bootstrap_difference(pre, post, statistic, n_resamples=3_999, seed=1)
    theirs = _scipy_percentile(pre, post, statistic, 3_999, seed=2)
    se = theirs.standard_error
    tolerance = 0.25 * se + (0.5 if integer and statistic is np.median else 0)
    assert ours.method == "bootstrap_percentile"
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=tolerance)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=tolerance)


def test_fast_path_is_reproducible():
    rng = np.random.default_rng(2)
    pre, post = rng.lognormal(8, 1, 5_000), rng.lognormal(8.1, 1, 5_000)
    first = bootstrap_difference(pre, post, np.mean, seed=3)
    assert bootstrap_difference(pre, post, np.mean, seed=3) == first
    assert bootstrap_difference(pre, post, np.mean, seed=4) != first


# ---------------------------------------------------------------------------------------------------------
# bootstrap_difference
# ---------------------------------------------------------------------------------------------------------


def test_too_few_deals_give_no_interval():
    none = Interval(None, None, "bootstrap_percentile")
    assert bootstrap_difference([], [1.0, 2.0, 3.0], np.median) == none
    assert bootstrap_difference([5.0], [1.0, 2.0, 3.0], np.median) == none
    assert bootstrap_difference([1.0, 2.0], [np.nan, 4.0], np.mean) == none  # NaN is not an observation


def test_all_equal_deals_give_the_exact_difference():
    # Every resample of [3, 3, 3] has median 3 and of [5, 5, 5, 5] median 5: BCa is undefined (0/0 in its
    # jackknife), the percentile interval is the point 2.
    assert bootstrap_difference([3, 3, 3], [5, 5, 5, 5], np.median) == Interval(2.0, 2.0, "bootstrap_percentile")
    big = bootstrap_difference(np.full(10_000, 3.0), np.full(10_000, 5.0), np.median)
    assert big == Interval(2.0, 2.0, "bootstrap_percentile")


def test_small_samples_use_bca():
    rng = np.random.default_rng(0)
    result = bootstrap_difference(rng.normal(10, 2, 50), rng.normal(12, 2, 60), np.mean)
    assert result.method == "bootstrap_bca"
    assert result.low < 2 < result.high


def _coverage(draw, truth, interval, sims=40) -> int:
    covered = 0
    for seed in range(sims):
        pre, post = draw(np.random.default_rng(1000 + seed))
        result = interval(pre, post, seed)
        covered += result.low <= truth <= result.high
    return covered


def test_median_and_mean_intervals_cover_a_known_difference():
    # Days to close ~ lognormal(μ, 0.8): median e^μ, mean e^(μ + 0.32). Pre μ = 3, post μ = 2.8.
    # 95% intervals; 40 seeded simulations each must cover the truth at least 34 times (85%).
    def draw_small(rng):
        return rng.lognormal(3.0, 0.8, 80), rng.lognormal(2.8, 0.8, 90)

    def draw_large(rng):  # the fast exact resamplers (order statistics / index) above BCA_MAX_N
        return rng.lognormal(3.0, 0.8, 2_500), rng.lognormal(2.8, 0.8, 3_000)

    median_truth = math.exp(2.8) - math.exp(3.0)
    mean_truth = math.exp(2.8 + 0.32) - math.exp(3.0 + 0.32)

    def by(statistic):
        return lambda pre, post, seed: bootstrap_difference(pre, post, statistic, seed=seed)

    assert _coverage(draw_small, median_truth, by(np.median)) >= 34
    assert _coverage(draw_small, mean_truth, by(np.mean)) >= 34
    assert _coverage(draw_large, median_truth, by(np.median)) >= 34
    assert _coverage(draw_large, mean_truth, by(np.mean)) >= 34


def test_newcombe_covers_a_known_difference():
    # Win rate 30% pre, 38% post, 120 and 140 closed deals.
    def interval(pre, post, seed):
        return newcombe_difference(pre, 120, post, 140)

    assert _coverage(lambda rng: (rng.binomial(120, 0.30), rng.binomial(140, 0.38)), 0.08, interval) >= 34


# ---------------------------------------------------------------------------------------------------------
# bootstrap_months_difference
# ---------------------------------------------------------------------------------------------------------


def test_months_too_few_give_no_interval():
    assert bootstrap_months_difference([5.0], [1.0, 2.0], mean_statistic).low is None
    assert bootstrap_months_difference([], [1.0, 2.0], mean_statistic).high is None


def test_all_equal_months_give_the_exact_difference():
    # BCa is undefined (every jackknife mean equal); every resample's difference is 140 − 100 = 40.
    result = bootstrap_months_difference([100.0] * 12, [140.0] * 12, mean_statistic)
    assert result == Interval(40.0, 40.0, "month_bootstrap_percentile")


def test_ratio_months_keep_numerator_with_its_denominator():
    # Every pre month wins 10% of its closed deals, every post month 20%, with very different volumes.
    # Resampling whole months, every resample's pooled rate is exactly 0.1 and 0.2: the interval is the
    # point 0.1. (Resampling numerators apart from their denominators would scatter it.)
    pre = np.array([[1, 10], [3, 30], [2, 20], [8, 80]], dtype=float)
    post = np.array([[4, 20], [1, 5], [12, 60]], dtype=float)
    result = bootstrap_months_difference(pre, post, ratio_of_sums_statistic)
    assert result.low == pytest.approx(0.1) and result.high == pytest.approx(0.1)


def test_ratio_of_sums_weighs_months_by_volume():
    # Two months: 1/1 and 1/9 -> pooled 2/10 = 0.2, not the mean of rates (1 + 1/9) / 2 = 0.556.
    months = np.array([[1.0, 1.0], [1.0, 9.0]])
    assert ratio_of_sums_statistic(np.moveaxis(months, -1, 0)) == pytest.approx(0.2)


def test_month_intervals_cover_a_known_difference():
    # Won revenue per month ~ normal(100k, 15k) pre and (110k, 15k) post, 24 months each; win rate per
    # month ~ binomial(closed, 0.25) pre and (closed, 0.30) post with 20..60 closed deals a month.
    def revenue(rng):
        return rng.normal(100_000, 15_000, 24), rng.normal(110_000, 15_000, 24)

    def rates(rng):
        closed_pre, closed_post = rng.integers(20, 61, 24), rng.integers(20, 61, 24)
        return (np.column_stack([rng.binomial(closed_pre, 0.25), closed_pre]),
                np.column_stack([rng.binomial(closed_post, 0.30), closed_post]))

    def by(statistic):
        return lambda pre, post, seed: bootstrap_months_difference(pre, post, statistic, seed=seed)

    assert _coverage(revenue, 10_000, by(mean_statistic)) >= 34
    assert _coverage(rates, 0.05, by(ratio_of_sums_statistic)) >= 34


@pytest.mark.parametrize("paired", [False, True])
def test_statistics_of_column_sums_give_the_interval_of_the_drawn_rows(paired):
    # Units of 4 columns (a lifetime value's revenue, customers, lost renewals, decisions), 600 per window:
    # the same seeded draws, read through each column's sum (ratio_of_ratios_statistic is one of those)
    # and through a copy of the drawn rows (the same function behind a wrapper `_drawn` does not know), give
    # the same interval, BCa included, up to the order of the additions.
    rng = np.random.default_rng(8)
    pre = np.column_stack([rng.exponential(900, 600), np.ones(600), rng.integers(0, 2, 600), np.full(600, 2.0)])
    post = np.column_stack([rng.exponential(1000, 600), np.ones(600), rng.integers(0, 2, 600), np.full(600, 2.0)])
    run = bootstrap_paired_difference if paired else intervals.bootstrap_units_difference
    by_sums = run(pre, post, ratio_of_ratios_statistic, unit="account", seed=3)
    by_rows = run(pre, post, lambda values, axis=-1: ratio_of_ratios_statistic(values, axis=axis), unit="account",
                  seed=3)
    assert by_sums.method == by_rows.method == "account_bootstrap_bca"
    assert by_sums.low == pytest.approx(by_rows.low, rel=1e-9)
    assert by_sums.high == pytest.approx(by_rows.high, rel=1e-9)


def test_paired_counts_of_many_accounts_agree_with_index_resampling():
    # 5,000 accounts (above BCA_MAX_N), each active (1) or not (0) in each window: the difference of the
    # counts is the sum of per-account differences, which take three values, and is drawn by the multinomial
    # shortcut. scipy's index resampling of the same accounts (3,999 resamples each way, the statistic
    # behind a wrapper so no shortcut applies) draws from the same distribution: the endpoints differ by
    # Monte-Carlo noise only (~0.04 bootstrap standard errors); allowed 0.25.
    rng = np.random.default_rng(4)
    pre = (rng.random(5_000) < 0.5).astype(float)
    post = np.where(pre == 1, rng.random(5_000) < 0.8, rng.random(5_000) < 0.3).astype(float)
    assert intervals._resampling_path(post - pre, "mean") == "multinomial"
    ours = bootstrap_paired_difference(pre, post, sum_statistic, unit="account", n_resamples=3_999, seed=1)
    theirs = stats.bootstrap((np.arange(5_000),), lambda i, axis=-1: np.sum(post[i] - pre[i], axis=axis),
                             n_resamples=3_999, vectorized=True, method="percentile", batch=200,
                             rng=np.random.default_rng(2))
    se = theirs.standard_error
    assert ours.method == "account_bootstrap_percentile"
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=0.25 * se)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=0.25 * se)
    assert ours.low < post.sum() - pre.sum() < ours.high

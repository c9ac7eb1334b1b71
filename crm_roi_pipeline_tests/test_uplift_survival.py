"""Kaplan-Meier median time to close and the log-rank test, checked against product-limit tables and
log-rank sums worked out by hand, and against the definitions recomputed independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from crm_roi_pipeline.statistics.survival import KmMedian, LogRank, km_median, logrank

# Ten deals; event 1 = closed after that many days, 0 = still open at as_of after that many days.
DAYS = [5, 8, 8, 12, 15, 20, 20, 25, 30, 40]
CLOSED = [1, 1, 0, 1, 0, 1, 1, 0, 1, 0]


def test_km_median_of_a_censored_window_by_hand():
    # Product-limit table (a deal censored at t is still at risk at t):
    #   t   at risk  closed  open   S(t)
    #   5     10       1      0     9/10              = 0.9
    #   8      9       1      1     0.9  × 8/9        = 0.8
    #  12      7       1      0     0.8  × 6/7        = 0.6857
    #  15      6       0      1     0.6857
    #  20      5       2      0     0.6857 × 3/5      = 0.4114   <- first S(t) below 1/2
    #  25      3       0      1     0.4114
    #  30      2       1      0     0.4114 × 1/2      = 0.2057
    #  40      1       0      1     0.2057
    # Confidence interval (statsmodels' SAS method): r = (g(S) − g(1/2)) / (g'(S) se(S)) with g = log(−log),
    # se(S) = S √Σ d/(n(n−d)) (Greenwood), i.e. r = (log(−log S) − log(log 2)) · (−log S) / √Σ:
    #   t=5:  Σ=1/90=0.01111    r = (log .10536 − log .69315)·.10536/.10541 = −1.88
    #   t=8:  Σ=0.02500         r = (log .22314 + .36651)·.22314/.15811     = −1.60
    #   t=12: Σ=0.04881         r = (log .37729 + .36651)·.37729/.22093     = −1.04
    #   t=20: Σ=0.18214         r = (log .88814 + .36651)·.88814/.42678     = +0.52
    #   t=30: Σ=0.68214         r = (log 1.5813 + .36651)·1.5813/.82592     = +1.58
    # Every |r| ≤ 1.96: the interval starts at the first event time (5) and runs past the last one (None).
    result = km_median(DAYS, CLOSED)
    assert result == KmMedian(median=20.0, low=5.0, high=None, n=10, events=6)


def test_open_deals_are_not_dropped():
    # Closed deals only: 5, 8, 12, 20, 20, 30 -> median (12 + 20) / 2 = 16, two days faster than the
    # Kaplan-Meier 20 that keeps the four open deals at risk; counting open deals as closed at as_of
    # gives (15 + 20) / 2 = 17.5, also too fast.
    closed_only = [d for d, e in zip(DAYS, CLOSED) if e]
    assert np.median(closed_only) == 16
    assert np.median(DAYS) == 17.5
    assert km_median(DAYS, CLOSED).median == 20


def test_median_not_reached_is_none():
    # Three of ten closed (3, 6, 9 days); seven open at 10..20 days. S falls to 0.9, 0.8, 0.7 and no
    # further: fewer than half are known to close, the median is beyond the data. Closed only would say 6.
    days = [3, 6, 9, 10, 10, 11, 12, 15, 18, 20]
    closed = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    result = km_median(days, closed)
    assert result.median is None
    assert result.high is None
    assert (result.n, result.events) == (10, 3)


def test_without_censoring_the_median_is_the_ordinary_median():
    # 2, 4, 6, 8 all closed: S = 3/4, 1/2, 1/4, 0. S is exactly 1/2 from day 4 to day 6: the midpoint 5,
    # which is np.median (statsmodels' own `quantile` would say 6). Same for 1..10: 5.5.
    assert km_median([2, 4, 6, 8], [1, 1, 1, 1]).median == 5.0
    assert km_median(range(1, 11), [1] * 10).median == 5.5
    # Odd count: 1, 2, 3, 4, 100 -> S = .8 .6 .4 ...: the third value, 3.
    assert km_median([1, 2, 3, 4, 100], [1] * 5).median == 3.0


def test_median_interval_matches_the_definition_on_a_random_censored_sample():
    # The SAS/statsmodels interval recomputed from scratch: KM table with loops, Greenwood variance,
    # the cloglog test at every event time, the interval = event times whose test is not rejected.
    rng = np.random.default_rng(7)
    close = np.ceil(rng.exponential(30, 60))
    open_for = np.ceil(rng.uniform(0, 90, 60))
    days = np.minimum(close, open_for)
    closed = (close <= open_for).astype(int)

    surv, greenwood, times, inside = 1.0, 0.0, [], []
    for t in sorted(set(days[closed == 1])):
        at_risk = int((days >= t).sum())
        d = int(((days == t) & (closed == 1)).sum())
        surv *= 1 - d / at_risk
        times.append(t)
        if at_risk == d:
            inside.append(False)
            continue
        greenwood += d / (at_risk * (at_risk - d))
        r = (math.log(-math.log(surv)) - math.log(math.log(2))) * -math.log(surv) / math.sqrt(greenwood)
        inside.append(abs(r) <= stats.norm.ppf(0.975))
    first, last = inside.index(True), len(inside) - 1 - inside[::-1].index(True)
    expected_high = times[last + 1] if last + 1 < len(times) else None

    result = km_median(days, closed)
    assert (result.low, result.high) == (times[first], expected_high)
    assert result.low <= result.median
    assert result.high is None or result.median <= result.high


def test_interval_collapses_to_the_median_day_when_the_curve_jumps_over_one_half():
    # 1,000 deals: 400 close on day 10, 400 on day 20, 200 on day 30. S = 0.6, 0.2, 0: no event time has S
    # compatible with 1/2 (se ≈ 0.015 at 0.6), statsmodels returns NaN; the median day is pinned down.
    days = [10] * 400 + [20] * 400 + [30] * 200
    result = km_median(days, [1] * 1000)
    assert result == KmMedian(median=20.0, low=20.0, high=20.0, n=1000, events=1000)


def test_km_median_edge_cases():
    assert km_median([], []) == KmMedian(None, None, None, 0, 0)
    assert km_median([4, 9], [0, 0]) == KmMedian(None, None, None, 2, 0)
    assert km_median([7], [1]).median == 7.0
    with pytest.raises(ValueError, match="non-negative"):
        km_median([-1, 3], [1, 1])
    with pytest.raises(ValueError, match="closed"):
        km_median([1, 3], [1, 2])
    with pytest.raises(ValueError, match="durations but"):
        km_median([1, 3], [1])


def test_km_median_interval_coverage_on_censored_exponentials():
    # Time to close ~ exponential, mean 40 days: true median 40 ln 2 = 27.73 days. Uniform(0, 120) time
    # open at as_of censors about a third. 40 seeded windows of 150 deals.
    truth = 40 * math.log(2)
    covered = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        close, open_for = rng.exponential(40, 150), rng.uniform(0, 120, 150)
        result = km_median(np.minimum(close, open_for), (close <= open_for).astype(int))
        covered += result.low <= truth <= (result.high if result.high is not None else math.inf)
    assert covered >= 34  # 95% nominal; 34/40 = 85%


def test_logrank_by_hand():
    # pre:  3 closed, 5 closed, 7 open;   post: 1, 2, 4 closed.
    # At each close time: E_pre = n_pre d / n, V = n_pre n_post d (n − d) / (n² (n − 1)).
    #   t  n_pre n_post  d  closed in pre  E_pre   V
    #   1    3     3     1       0         1/2     9·5/(36·5)  = 1/4
    #   2    3     2     1       0         3/5     6·4/(25·4)  = 6/25
    #   3    3     1     1       1         3/4     3·3/(16·3)  = 3/16
    #   4    2     1     1       0         2/3     2·2/(9·2)   = 2/9
    #   5    2     0     1       1         1       0
    # O − E = 2 − 211/60 = −91/60; V = 3239/3600; χ² = (91/60)² / V = 8281/3239 = 2.5567 on 1 df.
    chi2 = 8281 / 3239
    result = logrank([3, 5, 7], [1, 1, 0], [1, 2, 4], [1, 1, 1])
    assert result.statistic == pytest.approx(chi2, rel=1e-12)
    assert result.p_value == pytest.approx(stats.chi2.sf(chi2, 1), rel=1e-9)
    assert result.p_value == pytest.approx(0.1098, abs=1e-4)
    swapped = logrank([1, 2, 4], [1, 1, 1], [3, 5, 7], [1, 1, 0])
    assert swapped.statistic == pytest.approx(chi2, rel=1e-12)


def test_logrank_identical_and_clearly_different_windows():
    days, closed = [4, 9, 9, 15, 30, 31], [1, 1, 0, 1, 1, 0]
    same = logrank(days, closed, days, closed)
    assert same.statistic == pytest.approx(0, abs=1e-12)
    assert same.p_value == pytest.approx(1)

    rng = np.random.default_rng(3)
    slow, fast = rng.exponential(60, 200), rng.exponential(20, 200)  # post closes three times as fast
    apart = logrank(slow, np.ones(200), fast, np.ones(200))
    assert apart.p_value < 1e-6


def test_logrank_edge_cases():
    assert logrank([], [], [1, 2], [1, 1]) == LogRank(None, None)
    assert logrank([1, 2], [0, 0], [3, 4], [0, 0]) == LogRank(None, None)

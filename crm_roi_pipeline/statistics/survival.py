"""Time to close with open deals counted: Kaplan-Meier median and the log-rank test.

The median days to close of *closed* deals only is biased towards fast deals, and most of all in the post
window, whose slow deals are still open at `as_of`. A deal still open is censored instead: duration
= as_of − created, event = 0; it counts as "not closed after that many days". A closed deal has event = 1.
Pure functions over arrays of durations (days) and events (0/1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

# Kaplan-Meier survival is a product of floats: a curve that is exactly 0.5 on paper may come out as
# 0.4999999999999999. Differences this small are treated as equal.
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class KmMedian:
    """Kaplan-Meier median time to close and its confidence interval; `None` where undefined."""

    median: float | None
    low: float | None
    high: float | None
    n: int
    events: int


@dataclass(frozen=True)
class LogRank:
    """Log-rank test that pre and post windows have the same time-to-close distribution."""

    statistic: float | None
    p_value: float | None


def km_median(durations: np.ndarray, events: np.ndarray, *, level: float = 0.95) -> KmMedian:
    """Kaplan-Meier median of the durations, with the deals still open (event 0) as censored.

    The median is the first time the estimated survival S(t) falls below one half; where S(t) is exactly
    one half over a stretch, the midpoint of that stretch (the convention of R's `survival`, which gives
    np.median when nothing is censored; statsmodels' `quantile` returns the stretch's end), or its start
    when no event follows. `None` when the curve never reaches one half (fewer than half the deals known to
    have closed by the last event time: the median is beyond what the data show). The interval is
    statsmodels' `quantile_ci` (the SAS method: inverting Greenwood-based tests on the cloglog scale); an
    upper bound beyond the last event time is unknown (`None`). Where no event time is compatible with
    S = 1/2 (the curve jumps over it, as with many deals and whole-day durations) statsmodels returns NaN;
    the interval is then the median's own day, low = high = median.

    Ties need no special handling: statsmodels works on unique times already (300,000 integer-day
    durations take ~30 ms). Passing unique (duration, event) pairs with `freq_weights` would *not* be the
    same: the standard error then switches from Greenwood's formula to Tsiatis', which moves the interval.
    """
    time, status = _survival_data(durations, events)
    n, n_events = int(time.size), int(status.sum())
    if n_events == 0:
        return KmMedian(None, None, None, n, n_events)
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    fit = SurvfuncRight(time, status)
    median = _median(fit.surv_times, fit.surv_prob)
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) where the curve reaches 0: not a bound
        low, high = fit.quantile_ci(0.5, alpha=1 - level)
    if median is not None and math.isnan(low):
        # No event time where S(t) = 1/2 is plausible: the curve steps over one half at the median itself,
        # typical of many deals with whole-day durations (300,000 deals: the median day is pinned down).
        low = high = median
    return KmMedian(median, _finite(low), _finite(high), n, n_events)


def logrank(
    pre_durations: np.ndarray, pre_events: np.ndarray, post_durations: np.ndarray, post_events: np.ndarray
) -> LogRank:
    """Log-rank (Mantel-Cox) test of equal time to close in the two windows, censoring included.

    `None` figures when a window is empty or no deal closed in either (nothing to compare).
    """
    t_pre, s_pre = _survival_data(pre_durations, pre_events)
    t_post, s_post = _survival_data(post_durations, post_events)
    if t_pre.size == 0 or t_post.size == 0 or s_pre.sum() + s_post.sum() == 0:
        return LogRank(None, None)
    time = np.concatenate([t_pre, t_post])
    status = np.concatenate([s_pre, s_post])
    group = np.concatenate([np.zeros(t_pre.size, dtype=np.int8), np.ones(t_post.size, dtype=np.int8)])
    try:
        statistic, p_value = survdiff(time, status, group)
    except np.linalg.LinAlgError:  # zero variance: every event where only one deal was at risk
        return LogRank(None, None)
    return LogRank(_finite(statistic), _finite(p_value))


def _median(times: np.ndarray, surv: np.ndarray) -> float | None:
    below = np.flatnonzero(surv < 0.5 - _TOLERANCE)
    at_half = np.flatnonzero(np.abs(surv - 0.5) <= _TOLERANCE)
    if at_half.size:
        start = float(times[at_half[0]])
        # S = 1/2 from `start` until the next event time, if there is one: the midpoint of that stretch.
        return (start + float(times[below[0]])) / 2 if below.size else start
    return float(times[below[0]]) if below.size else None


def _survival_data(durations: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    time = np.asarray(durations, dtype=np.float64).ravel()
    status = np.asarray(events, dtype=np.float64).ravel()
    if time.shape != status.shape:
        raise ValueError(f"{time.size} durations but {status.size} events")
    if np.isnan(time).any() or (time < 0).any():
        raise ValueError("durations must be non-negative numbers (days from creation to close or as_of)")
    if not np.isin(status, (0.0, 1.0)).all():
        raise ValueError("events must be 1 (closed) or 0 (still open: censored)")
    return time, status


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None

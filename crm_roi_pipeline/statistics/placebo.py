"""Placebo tests: would the same estimate have found an "uplift" at dates when nothing happened?

The estimator is applied at fake adoption dates inside the real pre period (on the series cut before the
real adoption, so the real effect cannot leak in). If the real estimate is no larger than what fake dates
produce, the data cannot tell the CRM apart from ordinary ups and downs. The permutation p-value
(1 + #{|placebo| ≥ |real|}) / (1 + n) needs no model of the noise, only that the real date is not special
before the effect. Fake dates overlap and are correlated, so read the p-value as a rank, not as exact.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from crm_roi_pipeline.months import add_months, months_between
from crm_roi_pipeline.statistics.its import ItsResult, before_after, fit_its, period_bounds, prepare_series

# estimator(series, adoption_month, transition_months) -> estimate (NaN when it cannot be computed there).
# transition_months is passed so that every fake date skips the same months after it as the real one.
Estimator = Callable[[pd.DataFrame, dt.date, int], float]


@dataclass(frozen=True, eq=False)
class PlaceboResult:
    """The real estimate, the estimates at fake dates, and how the real one ranks among them (1 = largest)."""

    real: float | None
    placebos: list[tuple[dt.date, float]]
    p_value: float | None
    rank: int | None
    n: int
    adoption_month: dt.date
    window_months: int  # months of each fake post window at most: as many as the real one has


def placebo_test(
    series: pd.DataFrame,
    adoption_month: dt.date,
    *,
    estimator: Estimator,
    transition_months: int = 0,
    min_pre_months: int = 12,
    min_post_months: int | None = None,
) -> PlaceboResult:
    """Real estimate vs the same estimate at every fake adoption month f inside the real pre period.

    A fake month qualifies with at least `min_pre_months` months before it and at least `min_post_months`
    (default: as many as the real post period has) between f + transition_months and the real adoption.
    Each fake estimate sees the series cut before the real adoption and, so that it measures the same
    quantity as the real one, no more post months than the real estimate had. Fake dates where the
    estimator returns NaN are left out. With no qualifying fake date: n = 0, p_value and rank None.
    """
    data = prepare_series(series)
    adoption, first_post = period_bounds(adoption_month, transition_months)
    months = list(data["month"])
    window = sum(m >= first_post for m in months)
    need_post = window if min_post_months is None else min_post_months
    if need_post < 1:
        raise ValueError(f"placebo windows need at least 1 post month; got {need_post}")

    real = float(estimator(data, adoption_month, transition_months)) if window else math.nan
    cut = data[data["month"] < adoption].reset_index(drop=True)
    placebos: list[tuple[dt.date, float]] = []
    for fake in list(cut["month"]):
        if months_between(months[0], fake) < min_pre_months:
            continue
        fake_first_post = add_months(fake, transition_months)
        post_len = min(window, months_between(fake_first_post, adoption))
        if post_len < need_post:
            continue
        end = add_months(fake_first_post, post_len)
        estimate = float(estimator(cut[cut["month"] < end].reset_index(drop=True), fake, transition_months))
        if math.isfinite(estimate):
            placebos.append((fake, estimate))

    if not math.isfinite(real) or not placebos:
        return PlaceboResult(
            real=real if math.isfinite(real) else None, placebos=placebos, p_value=None, rank=None,
            n=len(placebos), adoption_month=adoption, window_months=window,
        )
    as_large = sum(abs(e) >= abs(real) for _, e in placebos)
    return PlaceboResult(
        real=real,
        placebos=placebos,
        p_value=(1 + as_large) / (1 + len(placebos)),
        rank=1 + as_large,
        n=len(placebos),
        adoption_month=adoption,
        window_months=window,
    )


def its_estimator(*, min_pre_months: int = 12, hac_lags: int | None = None) -> Estimator:
    """The ITS uplift per month, for placebo tests; NaN where the ITS cannot be fitted.

    Fake dates have short pre periods (12 months by default instead of production's 24), so the fit uses
    `seasonal="auto"`: the month-of-year dummies are dropped only where the model with them is not
    identified (with exactly 12 pre months the trend cannot be told from the seasonal pattern), and then
    replaced by one 12-month sine/cosine wave, not by nothing: with no seasonal term the fake date's
    "uplift" is mostly the seasonal swing, a placebo far larger than any real effect would need to beat.
    Where the dummies are identified but barely (13–23 pre months) they are kept; those placebo estimates
    are noisier, which makes the test conservative rather than flattering.

    The point estimate is OLS's (errors="hac"; the error model changes only the interval, which a placebo
    test does not use): an AR(1) coefficient estimated from 12 to 24 fake pre months makes GLS estimates
    erratic, and the real estimate is made the same way so that it is compared like with like.
    """

    def estimate(series: pd.DataFrame, adoption_month: dt.date, transition_months: int = 0) -> float:
        result = fit_its(
            series, adoption_month, transition_months=transition_months, min_pre_months=min_pre_months,
            hac_lags=hac_lags, seasonal="auto", errors="hac",
        )
        return result.uplift_per_month if isinstance(result, ItsResult) else math.nan

    return estimate


def before_after_estimator(*, window_months: int | None = None) -> Estimator:
    """The naive before/after difference of means, for placebo tests; NaN where a side has no month."""

    def estimate(series: pd.DataFrame, adoption_month: dt.date, transition_months: int = 0) -> float:
        try:
            return before_after(
                series, adoption_month, transition_months=transition_months, window_months=window_months
            )
        except ValueError:
            return math.nan

    return estimate

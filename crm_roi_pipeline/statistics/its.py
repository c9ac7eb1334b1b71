"""Interrupted time series: what monthly revenue would have been without the CRM, and the uplift over it.

A plain before/after difference credits the CRM with whatever trend and seasonality the business already had
(a series growing by 2 a month shows +24 between two consecutive 12-month windows with no CRM at all). The
segmented regression here fits the pre-adoption trend and month-of-year pattern, lets the post period have its
own level and slope, and reads the uplift off those two post terms. The coefficients are OLS's; monthly
residuals may be autocorrelated, so the interval comes from an AR(1) standard error with a bootstrap-t
critical value (`ar1_interval.py`, errors="ar1_bootstrap", the default). Feasible GLS with AR(1) errors
(statsmodels' GLSAR, errors="ar1"), Newey–West (HAC) errors on OLS (errors="hac") and plain OLS
(errors="ols") remain for comparison; benchmarks/coverage_its.py prints how often each covers the truth.

Input is a monthly series: a DataFrame with `month` (first day of month, consecutive, complete months only)
and `value`. Months are split as `metrics.windows` does: pre = before the adoption month; the adoption month
(or the month after it, for an adoption date that is not a 1st) plus `transition_months` belong to no period
and are left out; post = every later month in the series.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from crm_roi_pipeline.months import add_months, month_start, months_between
from crm_roi_pipeline.statistics.ar1_interval import ar1_bootstrap_t

METHOD = "its_segmented_ar1_bootstrap_t"
Errors = Literal["ar1_bootstrap", "ar1", "hac", "ols"]
MIN_POST_MONTHS = 3  # a level and a slope need more than two points to leave any residual to judge them by


@dataclass(frozen=True)
class ItsUnavailable:
    """Why no interrupted time series could be fitted, in words an analyst can act on."""

    reason: str


@dataclass(frozen=True, eq=False)
class ItsResult:
    """The fitted counterfactual and the uplift over it (all money figures in the series' unit per month).

    `counterfactual` has one row per post month: month, actual, expected, expected_low, expected_high.
    `history` has one row per month of the series (pre, transition, post): month, actual, expected (the
    no-CRM prediction, also over the pre months where it is the in-sample fit), period.
    """

    counterfactual: pd.DataFrame
    uplift_per_month: float
    uplift_low: float
    uplift_high: float
    uplift_total: float
    p_value: float
    n_pre: int
    n_post: int
    level: float
    std_error: float
    dof: int
    hac_lags: int
    seasonal: str  # "dummies" (month of year), "harmonic" (one 12-month wave) or "none"
    adoption_month: dt.date
    first_post_month: dt.date
    history: pd.DataFrame
    method: str = METHOD
    # "ar1_bootstrap": OLS with an AR(1) standard error and a bootstrap-t critical value (the default,
    # ar1_interval.py); "ar1": feasible GLS (GLSAR); "hac": OLS with Newey–West errors
    errors: str = "ar1_bootstrap"
    rho: float | None = None  # the AR(1) coefficient of the residuals, with errors="ar1_bootstrap" or "ar1"


def as_month(value: object) -> dt.date:
    """A date, datetime or Timestamp as a plain date (kept as given: callers check it is a 1st)."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise TypeError(f"expected a date, got {value!r}")


def prepare_series(series: pd.DataFrame) -> pd.DataFrame:
    """The series sorted by month with plain dates, checked: month starts, consecutive, finite values.

    A gap or a NaN would silently shift the month index the trend is fitted on, so both are refused.
    """
    missing = {"month", "value"} - set(series.columns)
    if missing:
        raise ValueError(f"the monthly series needs columns month and value; missing {sorted(missing)}")
    out = pd.DataFrame(
        {"month": [as_month(m) for m in series["month"]], "value": pd.to_numeric(series["value"]).astype(float)}
    )
    out = out.sort_values("month", kind="stable").reset_index(drop=True)
    months = list(out["month"])
    for m in months:
        if m.day != 1:
            raise ValueError(f"months must be first days of a month; got {m}")
    for a, b in zip(months, months[1:]):
        if months_between(a, b) != 1:
            raise ValueError(f"months must be consecutive; {a:%Y-%m} is followed by {b:%Y-%m}")
    if not np.isfinite(out["value"].to_numpy()).all():
        raise ValueError("the monthly series has missing or infinite values; fill months without revenue with 0")
    return out


def period_bounds(adoption_month: dt.date, transition_months: int) -> tuple[dt.date, dt.date]:
    """(adoption month, first post month), the same rule as `metrics.windows.compute_windows`."""
    if transition_months < 0:
        raise ValueError(f"transition_months must be 0 or more; got {transition_months}")
    adoption = as_month(adoption_month)
    first = month_start(adoption)
    first_on_or_after = first if adoption.day == 1 else add_months(first, 1)
    return first, add_months(first_on_or_after, transition_months)


def default_hac_lags(n: int) -> int:
    """Newey & West (1994) rule of thumb, floor(4 (n/100)^(2/9)): 3 lags for 27–60 months, 4 up to ~270.

    The month-of-year dummies already take out the 12-month pattern, so what is left is short-memory
    autocorrelation; a larger window (e.g. 12) on 40–60 observations makes the HAC variance itself very
    noisy and biased down, which narrows intervals more than the autocorrelation it would capture.
    """
    return max(1, math.floor(4 * (n / 100) ** (2 / 9)))


def _design(
    month_index: np.ndarray, calendar: np.ndarray, first_post: int, seasonal: tuple[str, list[int]]
) -> np.ndarray:
    """Columns: const, t, the seasonal terms, post, post × months since the first post month.

    Seasonal terms: ("dummies", months) one 0/1 column per calendar month listed; ("harmonic", _) the
    sine and cosine of the calendar month's angle (a 12-month wave, 2 parameters); ("none", _) nothing.
    """
    post = (month_index >= first_post).astype(float)
    since = np.where(post > 0, month_index - first_post, 0).astype(float)
    columns = [np.ones(len(month_index)), month_index.astype(float)]
    kind, months_of_year = seasonal
    if kind == "dummies":
        columns += [(calendar == m).astype(float) for m in months_of_year]
    elif kind == "harmonic":
        angle = 2 * np.pi * (calendar - 1) / 12
        columns += [np.sin(angle), np.cos(angle)]
    columns += [post, since]
    return np.column_stack(columns)


def _identified(x: np.ndarray) -> bool:
    """Full column rank and at least one residual degree of freedom."""
    return x.shape[0] > x.shape[1] and np.linalg.matrix_rank(x) == x.shape[1]


def fit_its(
    series: pd.DataFrame,
    adoption_month: dt.date,
    *,
    transition_months: int = 0,
    level: float = 0.95,
    min_pre_months: int = 24,
    hac_lags: int | None = None,
    seasonal: bool | Literal["auto"] = True,
    errors: Errors = "ar1_bootstrap",
) -> ItsResult | ItsUnavailable:
    """Segmented regression value ~ const + t + month-of-year + post + post × k; the uplift's interval allows
    for AR(1) errors (see the module docstring for `errors`).

    t is the month index, post 1 from the first post month, k the months since the first post month;
    transition months are left out of the fit. Month-of-year dummies are one per calendar month in the fit
    but the first (11 with a year or more); production (24+ pre months) always has them.

    `seasonal="auto"` is for the placebo test's short fake pre periods: it drops the dummies only when the
    model with them is not identified (exactly 12 pre months: a trend and a month-of-year pattern cannot
    be told apart), and then uses a single 12-month sine/cosine wave (2 parameters) rather than no seasonal
    term at all; without any, a seasonal series' swing is read as "uplift" (on a ±30 wave, fake dates
    showed about +55 with nothing there). No seasonal term is the last resort. `seasonal=False`: none.

    The counterfactual of a post month is the prediction with the post terms at 0. Its interval is the
    confidence interval of that mean prediction (x' V x from the covariance of the non-post parameters),
    not a prediction interval for one month's value: it says how well the no-CRM level is known.

    The uplift is the model's mean effect over the post months: post + post_slope × mean(k), a linear
    combination of two coefficients, with its interval and two-sided p-value: from the bootstrap-t by
    default, from a t distribution with the residual degrees of freedom otherwise. With OLS coefficients
    (every mode but "ar1") it equals the mean of actual − expected exactly (OLS residuals sum to zero where
    the post dummy is 1); with GLSAR the two differ by the mean post residual of the GLS fit, which is small.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1; got {level}")
    data = prepare_series(series)
    adoption, first_post = period_bounds(adoption_month, transition_months)
    months = list(data["month"])
    n_pre = sum(m < adoption for m in months)
    n_post = sum(m >= first_post for m in months)
    if n_pre < min_pre_months:
        return ItsUnavailable(
            f"interrupted time series needs {min_pre_months} months before adoption; the data has {n_pre}"
            + (f" (first month {months[0]:%Y-%m}, adoption {adoption:%Y-%m})" if months else "")
        )
    if n_post < MIN_POST_MONTHS:
        after = f" after the {transition_months} transition months" if transition_months else ""
        return ItsUnavailable(
            f"interrupted time series needs {MIN_POST_MONTHS} complete months after adoption{after} "
            f"(from {first_post:%Y-%m}); the data has {n_post}"
        )

    origin = months[0]
    index = np.array([months_between(origin, m) for m in months])
    calendar = np.array([m.month for m in months])
    period = np.where(index < months_between(origin, adoption), "pre",
                      np.where(index >= months_between(origin, first_post), "post", "transition"))
    fit_rows = period != "transition"
    post_start = months_between(origin, first_post)
    present = sorted(set(calendar[fit_rows].tolist()))
    y = data["value"].to_numpy()[fit_rows]

    dummies = ("dummies", present[1:])
    if seasonal == "auto":
        # Fallbacks only when the model before them is not identified (see the docstring).
        candidates = [dummies, ("harmonic", []), ("none", [])]
    else:
        candidates = [dummies if seasonal else ("none", [])]
    for terms in candidates:
        x = _design(index[fit_rows], calendar[fit_rows], post_start, terms)
        if _identified(x):
            break
    else:
        return ItsUnavailable(
            f"interrupted time series cannot be fitted on {n_pre} months before and {n_post} after adoption: "
            + ("the trend and the month-of-year pattern cannot be told apart; more history is needed"
               if terms[0] == "dummies" else "too few months for a trend and a post level and slope")
        )

    lags = default_hac_lags(len(y)) if hac_lags is None else hac_lags
    # The uplift is the model's mean effect over the post months: post + post_slope × mean(k).
    weights = np.zeros(x.shape[1])
    weights[-2] = 1.0
    weights[-1] = (n_post - 1) / 2  # mean of k = 0 … n_post − 1
    # Both error models follow row order; dropped transition months make the last pre and first post rows
    # neighbours, a small approximation over a gap of a few months.
    rho = None
    ols = sm.OLS(y, x).fit()
    exact = float(ols.ssr) <= 1e-18 * max(1.0, float(np.sum(y**2)))
    boot = None
    if errors == "ar1_bootstrap" and not exact:
        # OLS coefficients, an AR(1) standard error and a bootstrap-t critical value (ar1_interval.py).
        boot = ar1_bootstrap_t(y, x, weights, level=level)
        fit, rho, dof = ols, boot.rho, int(round(ols.df_resid)) - 1
    elif errors == "ar1" and not exact:
        model = sm.GLSAR(y, x, rho=1)
        fit = model.iterative_fit(maxiter=10)
        rho = float(np.atleast_1d(model.rho)[0])
        # One more degree of freedom for rho, which the fit estimated.
        dof = int(round(fit.df_resid)) - 1
    elif errors == "hac" and not exact:
        fit = sm.OLS(y, x).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True}, use_t=True)
        dof = int(round(fit.df_resid))
    else:  # "ols" (independent errors), or no residual at all: the OLS fit is exact and its variance 0
        fit, dof = ols, max(1, int(round(ols.df_resid)))
    beta = np.asarray(fit.params)
    cov = np.asarray(fit.cov_params()) if boot is None else boot.cov
    t_crit = float(stats.t.ppf((1 + level) / 2, dof)) if boot is None else boot.critical

    # The no-CRM prediction for every month, transition included: the same design with the post terms at 0.
    x_all = _design(index, calendar, post_start, terms)
    x_all[:, -2:] = 0.0
    expected = x_all @ beta
    se_mean = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", x_all, cov, x_all), 0.0, None))
    post_rows = period == "post"
    counterfactual = pd.DataFrame(
        {
            "month": [m for m, p in zip(months, post_rows) if p],
            "actual": data["value"].to_numpy()[post_rows],
            "expected": expected[post_rows],
            "expected_low": (expected - t_crit * se_mean)[post_rows],
            "expected_high": (expected + t_crit * se_mean)[post_rows],
        }
    )
    history = pd.DataFrame(
        {"month": months, "actual": data["value"].to_numpy(), "expected": expected, "period": period}
    )

    uplift = float(weights @ beta)
    se = float(math.sqrt(max(float(weights @ cov @ weights), 0.0)))
    if boot is not None:
        p_value = boot.p_value
    elif se > 0:
        p_value = float(2 * stats.t.sf(abs(uplift) / se, dof))
    else:  # an exact fit (no noise at all): the uplift is known without error
        p_value = 0.0 if uplift != 0 else 1.0
    return ItsResult(
        counterfactual=counterfactual,
        uplift_per_month=uplift,
        uplift_low=uplift - t_crit * se,
        uplift_high=uplift + t_crit * se,
        uplift_total=uplift * n_post,
        p_value=p_value,
        n_pre=n_pre,
        n_post=n_post,
        level=level,
        std_error=se,
        dof=dof,
        hac_lags=lags,
        method={"ar1_bootstrap": METHOD, "ar1": "its_segmented_glsar", "hac": "its_segmented_hac"}.get(
            errors, "its_segmented_ols"),
        errors=errors,
        rho=rho,
        seasonal=terms[0],
        adoption_month=adoption,
        first_post_month=first_post,
        history=history,
    )


def before_after(
    series: pd.DataFrame,
    adoption_month: dt.date,
    *,
    transition_months: int = 0,
    window_months: int | None = None,
) -> float:
    """Mean of the first N post months − mean of the N months just before adoption (the product's comparison).

    N = min(window_months, post months, pre months), as in `metrics.windows`. Kept here as the naive
    baseline the simulations and placebo tests compare the ITS against.
    """
    data = prepare_series(series)
    adoption, first_post = period_bounds(adoption_month, transition_months)
    pre = data.loc[data["month"] < adoption, "value"].to_numpy()
    post = data.loc[data["month"] >= first_post, "value"].to_numpy()
    n = min(len(pre), len(post), window_months if window_months is not None else len(post))
    if n <= 0:
        raise ValueError(
            f"before/after needs months on both sides of adoption {adoption:%Y-%m}: "
            f"{len(pre)} before, {len(post)} from {first_post:%Y-%m}"
        )
    return float(post[:n].mean() - pre[-n:].mean())

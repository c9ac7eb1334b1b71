"""How sure are we? The statistics of `crm_roi_pipeline.statistics` applied to the facts of `compute.py`.

- `adoption_intervals`: an interval for every figure of metrics.adoption (the change post − pre).
- `time_to_close`: Kaplan-Meier medians per window, open deals censored at as_of, and a log-rank test.
- `revenue_evidence`: the monthly won-revenue series, its interrupted time series counterfactual, the
  second opinion on it (a Bayesian structural time series), the placebo test at fake adoption months, and
  the staggered (team by team) effect.
- `revenue_lift`: the lift the ROI credits, with its verdict (`metrics.lift`).

Every bootstrap is seeded: the same data give the same intervals on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_roi_pipeline.metrics import lift
from crm_roi_pipeline.metrics.compute import BASIS, FIGURES, _set_buckets, aggregate, window_buckets
from crm_roi_pipeline.metrics.windows import Windows
from crm_roi_pipeline.months import add_months, months_between
from crm_roi_pipeline.settings import Assumptions
from crm_roi_pipeline.statistics.intervals import (
    Interval,
    bootstrap_difference,
    bootstrap_months_difference,
    mean_statistic,
    newcombe_difference,
    ratio_of_sums_statistic,
)
from crm_roi_pipeline.statistics.bsts import BstsResult, BstsUnavailable, fit_bsts
from crm_roi_pipeline.statistics.its import ItsResult, ItsUnavailable, fit_its
from crm_roi_pipeline.statistics.placebo import PlaceboResult, before_after_estimator, its_estimator, placebo_test
from crm_roi_pipeline.statistics.staggered import StaggeredResult, StaggeredUnavailable, staggered_att
from crm_roi_pipeline.statistics.survival import KmMedian, LogRank, km_median, logrank

SEED = 20240101
RESAMPLES = 999

# Rates are proportions of countable trials: Newcombe's interval for a difference of two proportions.
PROPORTIONS = {
    "win_rate": ("win_count", "closed_count"),
    "upsell_rate": ("expansion_wins", "non_renewal_wins"),
    "lead_conversion_rate": ("leads_converted", "leads_created"),
}
# Pooled over deals: resample the won deals of each window.
DEAL_LEVEL = {"avg_deal_size": ("amount", np.mean), "median_days_to_close": ("days_to_close", np.median)}
# Ratios of two monthly totals: resample months, keeping each month's numerator with its denominator.
RATIOS = {"cac": ("spend", "new_customers"), "activities_per_win": ("activities", "win_count")}


def window_months(conn, windows: Windows) -> pd.DataFrame:
    """One row per month of the two windows (period pre/post) with every monthly total."""
    rows = []
    for label, bounds in (("pre", windows.pre), ("post", windows.post)):
        first, last = bounds
        rows += [(add_months(first, i), label) for i in range(months_between(first, last) + 1)]
    _set_buckets(conn, [(m, m.isoformat()) for m, _ in rows])
    frame = conn.execute(
        f"SELECT bucket::DATE AS month, * EXCLUDE (bucket, dim), win_count + loss_count AS closed_count "
        f"FROM ({aggregate(by_source=False, presence_per_bucket=False)})"
    ).df()
    periods = pd.DataFrame(rows, columns=["month", "period"])
    periods["month"] = pd.to_datetime(periods["month"])
    frame["month"] = pd.to_datetime(frame["month"])
    return periods.merge(frame, on="month", how="left").sort_values("month").reset_index(drop=True)


def won_deals(conn, windows: Windows) -> pd.DataFrame:
    """Won deals closed in either window: period, amount, days_to_close."""
    window_buckets(conn, windows)
    return conn.execute(
        "SELECT b.bucket AS period, d.amount, d.days_to_close FROM _deals AS d "
        "JOIN _buckets AS b ON b.month = d.closed_month WHERE d.is_closed AND d.is_won"
    ).df()


def adoption_intervals(
    conn, windows: Windows, values: dict[str, tuple], *, level: float, seed: int = SEED
) -> dict[str, Interval]:
    """An interval for each figure's change post − pre. `values`: figure -> (pre, post) as published; a
    figure without both values gets no interval."""
    months = window_months(conn, windows)
    deals = won_deals(conn, windows)
    pre_m, post_m = months[months["period"] == "pre"], months[months["period"] == "post"]
    out: dict[str, Interval] = {}
    for name, _ in FIGURES:
        pre_value, post_value = values[name]
        if pre_value is None or post_value is None:
            out[name] = Interval(None, None, "none: a window has no value")
            continue
        if name in PROPORTIONS:
            hits, trials = PROPORTIONS[name]
            out[name] = newcombe_difference(
                int(pre_m[hits].sum()), int(pre_m[trials].sum()), int(post_m[hits].sum()), int(post_m[trials].sum()),
                level=level,
            )
        elif name in DEAL_LEVEL:
            column, statistic = DEAL_LEVEL[name]
            pre = deals.loc[deals["period"] == "pre", column].dropna().to_numpy(dtype=float)
            post = deals.loc[deals["period"] == "post", column].dropna().to_numpy(dtype=float)
            out[name] = bootstrap_difference(pre, post, statistic, level=level, n_resamples=RESAMPLES, seed=seed)
        elif name in RATIOS:
            num, den = RATIOS[name]
            out[name] = bootstrap_months_difference(
                pre_m[[num, den]].fillna(0).to_numpy(dtype=float), post_m[[num, den]].fillna(0).to_numpy(dtype=float),
                ratio_of_sums_statistic, level=level, n_resamples=RESAMPLES, seed=seed,
            )
        else:
            assert BASIS[name] == "per_month", name
            out[name] = bootstrap_months_difference(
                pre_m[name].fillna(0).to_numpy(dtype=float), post_m[name].fillna(0).to_numpy(dtype=float),
                mean_statistic, level=level, n_resamples=RESAMPLES, seed=seed,
            )
    return out


# --- time to close ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeToClose:
    pre: KmMedian
    post: KmMedian
    censored: dict[str, int]
    test: LogRank


def time_to_close(conn, windows: Windows, *, level: float) -> TimeToClose:
    """Deals created in each window; a deal closed (won or lost) by as_of is an event at its days to close,
    one still open at as_of (or closed after it) is censored at its age on as_of. Deals closed before they
    were created are left out, as in METRICS.md."""
    window_buckets(conn, windows)
    frame = conn.execute(
        f"""SELECT b.bucket AS period,
                   CASE WHEN d.is_closed AND d.closed_at::DATE <= DATE '{windows.as_of}' THEN d.days_to_close
                        ELSE date_diff('day', d.created_at::DATE, DATE '{windows.as_of}') END AS duration,
                   (d.is_closed AND d.closed_at::DATE <= DATE '{windows.as_of}')::INTEGER AS event
            FROM _deals AS d JOIN _buckets AS b ON b.month = d.created_month
            WHERE d.created_at::DATE <= DATE '{windows.as_of}'
              AND NOT (d.is_closed AND d.closed_at::DATE <= DATE '{windows.as_of}' AND d.days_to_close IS NULL)"""
    ).df()
    parts = {p: frame[frame["period"] == p] for p in ("pre", "post")}
    km = {
        p: km_median(f["duration"].to_numpy(dtype=float), f["event"].to_numpy(dtype=int), level=level)
        for p, f in parts.items()
    }
    test = logrank(
        parts["pre"]["duration"].to_numpy(dtype=float), parts["pre"]["event"].to_numpy(dtype=int),
        parts["post"]["duration"].to_numpy(dtype=float), parts["post"]["event"].to_numpy(dtype=int),
    ) if len(parts["pre"]) and len(parts["post"]) else LogRank(None, None)
    censored = {p: int((f["event"] == 0).sum()) for p, f in parts.items()}
    return TimeToClose(km["pre"], km["post"], censored, test)


# --- revenue: before/after, counterfactual, placebo, staggered -----------------------------------------


@dataclass(frozen=True)
class RevenueEvidence:
    series: pd.DataFrame  # month, value: won revenue per complete month up to the post window's end
    before_after: float | None
    before_after_interval: Interval
    its: ItsResult | ItsUnavailable
    second_opinion: BstsResult | BstsUnavailable
    placebo: PlaceboResult
    placebo_estimator: str
    staggered: StaggeredResult | StaggeredUnavailable | None
    level: float


def monthly_won_revenue(conn, windows: Windows) -> pd.DataFrame:
    """Won revenue per month from the first month with data to the end of the post window."""
    last = windows.post[1]
    count = months_between(windows.first_data_month, last) + 1
    months = [add_months(windows.first_data_month, i) for i in range(count)]
    _set_buckets(conn, [(m, m.isoformat()) for m in months])
    frame = conn.execute(
        f"SELECT bucket::DATE AS month, won_revenue AS value FROM ({aggregate(by_source=False, presence_per_bucket=False)}) "
        "ORDER BY month"
    ).df()
    frame["month"] = [pd.Timestamp(m).date() for m in frame["month"]]
    frame["value"] = frame["value"].astype(float)
    return frame


def team_panel(conn, windows: Windows) -> pd.DataFrame:
    """Won revenue per team and month (every team × month, 0 where a team won nothing)."""
    last = windows.post[1]
    return conn.execute(
        f"""WITH months AS (
                SELECT range::DATE AS month FROM range(DATE '{windows.first_data_month}', DATE '{last}' + INTERVAL 1 DAY, INTERVAL 1 MONTH)
            ),
            teams AS (SELECT DISTINCT d.team FROM crm.deals AS d WHERE d.team IS NOT NULL),
            won AS (
                SELECT d.team, date_trunc('month', d.closed_at)::DATE AS month, sum(coalesce(d.amount_reporting, 0)) AS value
                FROM crm.deals AS d WHERE d.is_won AND d.closed_at IS NOT NULL AND d.team IS NOT NULL GROUP BY ALL
            )
            SELECT t.team, m.month, coalesce(w.value, 0)::DOUBLE AS value
            FROM teams AS t CROSS JOIN months AS m LEFT JOIN won AS w ON w.team = t.team AND w.month = m.month
            ORDER BY t.team, m.month"""
    ).df()


def revenue_evidence(conn, windows: Windows, assumptions: Assumptions, *, seed: int = SEED) -> RevenueEvidence:
    level = assumptions.confidence_level
    series = monthly_won_revenue(conn, windows)
    transition = months_between(windows.adoption_month, windows.first_post_month)
    # The windows' months are in the series already (it runs to the post window's end).
    month = series["month"]
    pre = series.loc[(month >= windows.pre[0]) & (month <= windows.pre[1]), "value"].to_numpy(dtype=float)
    post = series.loc[(month >= windows.post[0]) & (month <= windows.post[1]), "value"].to_numpy(dtype=float)
    before_after = float(post.mean() - pre.mean()) if len(pre) and len(post) else None
    interval = bootstrap_months_difference(pre, post, mean_statistic, level=level, n_resamples=RESAMPLES, seed=seed)
    its = fit_its(series, windows.adoption_month, transition_months=transition, level=level)
    second = (fit_bsts(series, windows.adoption_month, transition_months=transition, level=level)
              if isinstance(its, ItsResult) else BstsUnavailable(f"no interrupted time series to compare with ({its.reason})"))
    # The placebo repeats the estimate that is reported: the ITS where it can be fitted, else before/after.
    if isinstance(its, ItsResult):
        estimator, name = its_estimator(), "its"
    else:
        estimator, name = before_after_estimator(window_months=windows.n), "before_after"
    placebo = placebo_test(series, windows.adoption_month, estimator=estimator, transition_months=transition)
    staggered = None
    if assumptions.team_adoption_dates:
        panel = team_panel(conn, windows)
        dates = {team: day.replace(day=1) for team, day in assumptions.team_adoption_dates.items()}
        staggered = staggered_att(panel, dates, level=level, n_resamples=RESAMPLES, seed=seed)
    return RevenueEvidence(series, before_after, interval, its, second, placebo, name, staggered, level)


def its_estimate(evidence: RevenueEvidence) -> lift.Estimate:
    its = evidence.its
    return (lift.Estimate(its.uplift_per_month, its.uplift_low, its.uplift_high) if isinstance(its, ItsResult)
            else lift.Estimate(None, unavailable=its.reason))


def second_opinion_estimate(evidence: RevenueEvidence) -> lift.Estimate:
    second = evidence.second_opinion
    return (lift.Estimate(second.estimate, second.low, second.high) if isinstance(second, BstsResult)
            else lift.Estimate(None, unavailable=second.reason))


def revenue_lift(evidence: RevenueEvidence, benefit_method: str) -> lift.RevenueLift:
    """The lift the ROI credits (METRICS.md, "The revenue lift and the verdict"), from this evidence."""
    ba = evidence.before_after_interval
    return lift.choose_lift(benefit_method, lift.Estimate(evidence.before_after, ba.low, ba.high), its_estimate(evidence))


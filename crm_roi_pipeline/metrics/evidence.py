"""How sure are we? The statistics of `crm_roi_pipeline.statistics` applied to the facts of `compute.py`.

- `adoption_intervals`: an interval for every figure of metrics.adoption (the change post − pre).
- `time_to_close`: Kaplan-Meier medians per window, open deals censored at as_of, and a log-rank test.
- `revenue_evidence`: the monthly won-revenue series, its interrupted time series counterfactual, the
  second opinion on it (a Bayesian structural time series), the placebo test at fake adoption months, and
  the staggered (team by team) effect.
- `revenue_lift`: the lift the ROI credits, with its verdict (`metrics.lift`).

Every bootstrap is seeded, and every sample it resamples is read in a fixed order (ORDER BY ALL: hash
aggregates and joins return rows in any order): the same data give the same intervals on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_roi_pipeline.metrics import lift
from crm_roi_pipeline.metrics.compute import (
    ADOPTION_FIGURES,
    BASIS,
    _set_buckets,
    aggregate,
    annual_span,
    window_buckets,
)
from crm_roi_pipeline.metrics.windows import Windows
from crm_roi_pipeline.months import add_months, months_between
from crm_roi_pipeline.settings import Assumptions
from crm_roi_pipeline.statistics.intervals import (
    Interval,
    bootstrap_difference,
    bootstrap_months_difference,
    bootstrap_paired_difference,
    bootstrap_units_difference,
    mean_statistic,
    newcombe_difference,
    ratio_of_ratios_statistic,
    ratio_of_sums_statistic,
    sum_statistic,
)
from crm_roi_pipeline.statistics.bsts import BstsResult, BstsUnavailable, fit_bsts
from crm_roi_pipeline.statistics.its import ItsResult, ItsUnavailable, fit_its
from crm_roi_pipeline.statistics.placebo import PlaceboResult, before_after_estimator, its_estimator, placebo_test
from crm_roi_pipeline.statistics.staggered import StaggeredResult, StaggeredUnavailable, staggered_att
from crm_roi_pipeline.statistics.survival import KmMedian, LogRank, km_median, logrank

SEED = 20240101
RESAMPLES = 999

# Rates are proportions of countable trials: Newcombe's interval for a difference of two proportions, from
# the windows' totals (repeat customers of active customers are distinct accounts over the window, which
# monthly counts would count again each month).
PROPORTIONS = {
    "win_rate": ("win_count", "closed_count"),
    "upsell_rate": ("expansion_wins", "non_renewal_wins"),
    "lead_conversion_rate": ("leads_converted", "leads_created"),
    "renewal_rate": ("renewals_won", "renewal_decisions"),
    # churn_rate = 1 − renewal_rate: the lost share of the same decisions, so the mirror of renewal_rate's.
    "churn_rate": ("renewals_lost", "renewal_decisions"),
    "repeat_customer_rate": ("repeat_customers", "active_customers"),
    "first_response_rate": ("answered_tickets", "tickets_created"),
    "csat_rate": ("satisfied_tickets", "rated_tickets"),
}
# Pooled over deals: resample the won deals of each window.
DEAL_LEVEL = {"avg_deal_size": ("amount", np.mean), "median_days_to_close": ("days_to_close", np.median)}
# Medians over tickets: resample the tickets of each window (created in it, resp. closed in it).
TICKET_LEVEL = {"median_first_response_hours": "first_response_hours", "median_resolution_hours": "resolution_hours"}
# Counts of distinct accounts: resample the accounts active in either window, once for both windows
# (paired), so an account's activity before and after stays together (column per window: pre_/post_ added).
ACCOUNT_COUNTS = {"active_customers": "active", "repeat_customers": "repeat"}
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


def renewal_deals(conn, windows: Windows, label: str) -> np.ndarray:
    """(won amount, amount) of each renewal deal closed in a window: renewal_revenue_rate's units."""
    first, last = windows.pre if label == "pre" else windows.post
    rows = conn.execute(
        "SELECT CASE WHEN is_won THEN amount ELSE 0 END::DOUBLE, amount::DOUBLE FROM _deals "
        "WHERE is_closed AND is_renewal AND closed_month BETWEEN ? AND ? ORDER BY ALL", [first, last],
    ).fetchall()
    return np.array(rows, dtype=float).reshape(-1, 2)


def _lifetime_value_interval(accounts: pd.DataFrame, gross_margin: float, *, level: float, seed: int) -> Interval:
    """customer_lifetime_value = (annual revenue × margin / annual active accounts) / (lost / renewal
    decisions), resampling accounts (and account-less renewal deals) once for both windows. A resample with
    no lost renewal has an unbounded lifetime value: when enough resamples do, the interval has no upper end
    and none is given, saying why."""
    columns = ["annual_revenue", "annual_active", "renewals_lost", "renewal_decisions"]
    relevant = accounts[[f"{label}_{c}" for label in ("pre", "post") for c in ("annual_active", "renewal_decisions")]]
    units = accounts[(relevant > 0).any(axis=1)]
    if len(units) < 2:
        return Interval(None, None, "none: fewer than two accounts to resample")
    pre, post = (
        units[[f"{label}_{c}" for c in columns]].to_numpy(dtype=float) * np.array([gross_margin, 1, 1, 1])
        for label in ("pre", "post")
    )
    found = bootstrap_paired_difference(
        pre, post, ratio_of_ratios_statistic, unit="account", level=level, n_resamples=RESAMPLES, seed=seed,
    )
    if found.low is None:
        return Interval(None, None, "none: resamples of accounts without a lost renewal (churn 0) or without a "
                                    "customer leave the lifetime value unbounded")
    return found


def won_deals(conn, windows: Windows) -> pd.DataFrame:
    """Won deals closed in either window: period, amount, days_to_close."""
    window_buckets(conn, windows)
    return conn.execute(
        "SELECT b.bucket AS period, d.amount, d.days_to_close FROM _deals AS d "
        "JOIN _buckets AS b ON b.month = d.closed_month WHERE d.is_closed AND d.is_won ORDER BY ALL"
    ).df()


def window_totals(conn, windows: Windows) -> dict[str, dict]:
    """Each window's totals as metrics.adoption aggregates them (distinct accounts once over the window)."""
    window_buckets(conn, windows)
    cursor = conn.execute(
        f"SELECT *, win_count + loss_count AS closed_count FROM ({aggregate(by_source=False, presence_per_bucket=True)})"
    )
    names = [d[0] for d in cursor.description]
    return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}


def window_tickets(conn, windows: Windows) -> pd.DataFrame:
    """Tickets of either window, one row per ticket and role: period, hours to first response (of tickets
    created in it, answered, not negative) or to close (of tickets closed in it, not negative)."""
    window_buckets(conn, windows)
    return conn.execute(
        "SELECT b.bucket AS period, t.first_response_hours, NULL::DOUBLE AS resolution_hours "
        "FROM _tickets AS t JOIN _buckets AS b ON b.month = t.created_month WHERE t.first_response_hours IS NOT NULL "
        "UNION ALL SELECT b.bucket, NULL, t.resolution_hours "
        "FROM _tickets AS t JOIN _buckets AS b ON b.month = t.closed_month WHERE t.resolution_hours IS NOT NULL "
        "ORDER BY ALL"
    ).df()


def window_accounts(conn, windows: Windows) -> pd.DataFrame:
    """One row per account (account_key) with, for each window (prefix pre_ / post_): active (a won deal
    closed in the window: 0/1), repeat (active and acquired before the window starts), revenue (won amounts
    closed in the window), annual_active / annual_revenue (the same over the 12 months ending with the
    window's last month), renewals_lost and renewal_decisions (closed renewal deals in the window). A renewal
    deal without an account is a unit of its own (it counts in churn, not in any customer figure)."""
    columns = []
    for label, (first, last) in (("pre", windows.pre), ("post", windows.post)):
        annual_first, _ = annual_span(last)
        window = f"closed_month BETWEEN DATE '{first}' AND DATE '{last}'"
        year = f"closed_month BETWEEN DATE '{annual_first}' AND DATE '{last}'"
        # Customer columns count won deals with an account only (an account-less renewal is no customer).
        won = "is_won AND has_account"
        columns += [
            f"coalesce(bool_or({won} AND {window}), false)::INTEGER AS {label}_active",
            f"coalesce(bool_or({won} AND {window} AND acquired_month < DATE '{first}'), false)::INTEGER AS {label}_repeat",
            f"coalesce(sum(amount) FILTER (WHERE {won} AND {window}), 0)::DOUBLE AS {label}_revenue",
            f"coalesce(bool_or({won} AND {year}), false)::INTEGER AS {label}_annual_active",
            f"coalesce(sum(amount) FILTER (WHERE {won} AND {year}), 0)::DOUBLE AS {label}_annual_revenue",
            f"count(*) FILTER (WHERE is_renewal AND NOT is_won AND {window}) AS {label}_renewals_lost",
            f"count(*) FILTER (WHERE is_renewal AND {window}) AS {label}_renewal_decisions",
        ]
    select = ", ".join(columns)
    return conn.execute(
        f"""WITH d AS (SELECT * FROM _deals WHERE is_closed AND closed_month IS NOT NULL),
            loose AS (SELECT row_number() OVER () AS deal, * FROM d WHERE account_key IS NULL AND is_renewal)
            SELECT account_key AS unit, {select} FROM d WHERE account_key IS NOT NULL GROUP BY account_key
            UNION ALL
            SELECT NULL, {select} FROM loose GROUP BY deal
            ORDER BY ALL"""
    ).df()


def adoption_intervals(
    conn, windows: Windows, values: dict[str, tuple], *, level: float, gross_margin: float, seed: int = SEED
) -> dict[str, Interval]:
    """An interval for each figure's change post − pre. `values`: figure -> (pre, post) as published; a
    figure without both values gets no interval."""
    months = window_months(conn, windows)
    deals = won_deals(conn, windows)
    totals = window_totals(conn, windows)
    tickets = window_tickets(conn, windows)
    accounts = window_accounts(conn, windows)
    pre_m, post_m = months[months["period"] == "pre"], months[months["period"] == "post"]
    out: dict[str, Interval] = {}
    for name, _ in ADOPTION_FIGURES:
        pre_value, post_value = values[name]
        if pre_value is None or post_value is None:
            out[name] = Interval(None, None, "none: a window has no value")
            continue
        if name in PROPORTIONS:
            hits, trials = PROPORTIONS[name]
            out[name] = newcombe_difference(
                int(totals["pre"][hits] or 0), int(totals["pre"][trials] or 0),
                int(totals["post"][hits] or 0), int(totals["post"][trials] or 0), level=level,
            )
        elif name in DEAL_LEVEL:
            column, statistic = DEAL_LEVEL[name]
            pre = deals.loc[deals["period"] == "pre", column].dropna().to_numpy(dtype=float)
            post = deals.loc[deals["period"] == "post", column].dropna().to_numpy(dtype=float)
            out[name] = bootstrap_difference(pre, post, statistic, level=level, n_resamples=RESAMPLES, seed=seed)
        elif name in TICKET_LEVEL:
            column = TICKET_LEVEL[name]
            pre = tickets.loc[tickets["period"] == "pre", column].dropna().to_numpy(dtype=float)
            post = tickets.loc[tickets["period"] == "post", column].dropna().to_numpy(dtype=float)
            found = bootstrap_difference(pre, post, np.median, level=level, n_resamples=RESAMPLES, seed=seed)
            out[name] = Interval(found.low, found.high, f"ticket_{found.method}")
        elif name in ACCOUNT_COUNTS:
            column = ACCOUNT_COUNTS[name]
            # The accounts active in either window; a count is per month in metrics.adoption: / N.
            units = accounts[(accounts["pre_active"] > 0) | (accounts["post_active"] > 0)]
            out[name] = bootstrap_paired_difference(
                units[f"pre_{column}"].to_numpy(dtype=float) / windows.n,
                units[f"post_{column}"].to_numpy(dtype=float) / windows.n,
                sum_statistic, unit="account", level=level, n_resamples=RESAMPLES, seed=seed,
            )
        elif name == "revenue_per_customer":
            # The mean revenue of a window's active accounts: resample each window's own accounts, as the
            # deals of avg_deal_size (paired, a resample could hold no customer of one window: no value).
            pre = accounts.loc[accounts["pre_active"] > 0, "pre_revenue"].to_numpy(dtype=float)
            post = accounts.loc[accounts["post_active"] > 0, "post_revenue"].to_numpy(dtype=float)
            found = bootstrap_difference(pre, post, np.mean, level=level, n_resamples=RESAMPLES, seed=seed)
            out[name] = Interval(found.low, found.high, f"account_{found.method}")
        elif name == "customer_lifetime_value":
            out[name] = _lifetime_value_interval(accounts, gross_margin, level=level, seed=seed)
        elif name == "renewal_revenue_rate":
            # A ratio of sums over the window's closed renewal deals: resample those deals.
            pre, post = (renewal_deals(conn, windows, label) for label in ("pre", "post"))
            out[name] = bootstrap_units_difference(
                pre, post, ratio_of_sums_statistic, unit="renewal_deal", level=level, n_resamples=RESAMPLES, seed=seed,
            )
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


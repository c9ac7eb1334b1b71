"""Staggered rollouts: teams that adopted the CRM at different months, compared with teams not yet using it.

When teams adopt at different dates, a single before/after or a two-way fixed-effects regression mixes
already-treated teams into the comparison group and can even flip the sign of the effect. Callaway &
Sant'Anna (2021) avoid that by building the estimate from clean 2×2 comparisons: for each cohort g (teams
adopting in month g) and month t, the change from g−1 (the last month before adoption) to t among the
cohort, minus the same change among teams not yet treated at t. Those group-time effects are then averaged.

Input: a team-month panel (team, month, value) and each treated team's adoption month; teams without one
are never treated within the data. A cohort's month is the month holding its adoption date (a mid-month
adoption counts its month as treated, so the base month g−1 is fully before it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_roi_pipeline.months import add_months, month_start, months_between
from crm_roi_pipeline.statistics.its import as_month

METHOD = "callaway_santanna_not_yet_treated"


@dataclass(frozen=True)
class StaggeredUnavailable:
    """Why no staggered-rollout estimate could be made, in plain words."""

    reason: str


@dataclass(frozen=True, eq=False)
class StaggeredResult:
    """Overall ATT (per team and month, in the panel's unit) with its team-clustered bootstrap interval.

    `group_time`: cohort, month, event_time (t − g), att, n_treated, n_controls; pre-adoption cells
    (event_time < −1) are the pre-trend check and should hover around 0. `event_study`: event_time, att,
    n_cohorts (cohort-size-weighted mean of the cells with that event time).
    """

    att: float
    att_low: float
    att_high: float
    group_time: pd.DataFrame
    event_study: pd.DataFrame
    n_teams: int
    n_cohorts: int
    level: float
    n_resamples: int
    method: str = METHOD


def _panel_matrix(panel: pd.DataFrame) -> tuple[list[str], list[dt.date], np.ndarray]:
    """Teams × months matrix over every month from the first to the last, missing cells 0."""
    missing = {"team", "month", "value"} - set(panel.columns)
    if missing:
        raise ValueError(f"the team-month panel needs columns team, month and value; missing {sorted(missing)}")
    frame = pd.DataFrame(
        {
            "team": panel["team"].astype(str),
            "month": [month_start(as_month(m)) for m in panel["month"]],
            "value": pd.to_numeric(panel["value"]).astype(float),
        }
    )
    if frame.duplicated(["team", "month"]).any():
        first = frame[frame.duplicated(["team", "month"], keep=False)].iloc[0]
        raise ValueError(f"the panel has more than one row for team {first['team']!r} in {first['month']:%Y-%m}")
    if not np.isfinite(frame["value"].to_numpy()).all():
        raise ValueError("the panel has missing or infinite values; use 0 for a month without revenue")
    first, last = min(frame["month"]), max(frame["month"])
    months = [add_months(first, i) for i in range(months_between(first, last) + 1)]
    wide = frame.pivot(index="team", columns="month", values="value").reindex(columns=months).fillna(0.0)
    return [str(t) for t in wide.index], months, wide.to_numpy(dtype=float)


def staggered_att(
    panel: pd.DataFrame,
    team_adoption_dates: dict[str, dt.date],
    *,
    level: float = 0.95,
    n_resamples: int = 999,
    seed: int = 0,
) -> StaggeredResult | StaggeredUnavailable:
    """Callaway–Sant'Anna ATT with not-yet-treated controls, aggregated over post cells by cohort size.

    ATT(g, t) = mean over the cohort of (Y_t − Y_{g−1}) − the same mean over control teams, the controls
    being teams untreated at both months compared (adoption after max(t, g−1); never-treated included;
    the cohort itself excluded). Cells without a control are skipped. Teams adopting in the first month of
    the data have no base month and are used for nothing. Overall ATT = Σ n_g ATT(g, t) / Σ n_g over
    cells with t ≥ g. Its interval resamples teams with replacement (each with its whole series and its
    adoption month) and takes percentiles of the recomputed overall ATT; with few teams (< ~20) the
    interval is rough and tends to be too narrow.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1; got {level}")
    teams, months, y = _panel_matrix(panel)
    n_teams, n_months = y.shape
    if n_teams < 2:
        return StaggeredUnavailable(f"a staggered rollout needs at least 2 teams; the data has {n_teams}")
    never = np.iinfo(np.int64).max // 2
    dates = {str(k): v for k, v in team_adoption_dates.items()}
    adopt = np.array(
        [months_between(months[0], month_start(as_month(dates[t]))) if t in dates else never for t in teams],
        dtype=np.int64,
    )
    adopt = np.where(adopt >= n_months, never, adopt)  # adopting after the data ends: never treated here
    cohorts = sorted({int(g) for g in adopt if 1 <= g < n_months})
    if not cohorts:
        return StaggeredUnavailable(
            "no team adopted within the data after its first month, so no team has a month before and after "
            f"adoption to compare ({months[0]:%Y-%m} … {months[-1]:%Y-%m})"
        )

    rows = []
    post_cells: list[tuple[int, int]] = []
    for g in cohorts:
        in_g = adopt == g
        diff = y - y[:, [g - 1]]
        for t in range(n_months):
            if t == g - 1:
                continue
            controls = (adopt > max(t, g - 1)) & ~in_g
            if not controls.any():
                continue
            att = diff[in_g, t].mean() - diff[controls, t].mean()
            rows.append((months[g], months[t], t - g, float(att), int(in_g.sum()), int(controls.sum())))
            if t >= g:
                post_cells.append((g, t))
    group_time = pd.DataFrame(rows, columns=["cohort", "month", "event_time", "att", "n_treated", "n_controls"])
    if not post_cells:
        return StaggeredUnavailable(
            "no cohort has a team not yet using the CRM to compare with after its adoption: every team "
            "adopted by the time the first cohort's post months begin"
        )

    post = group_time[group_time["event_time"] >= 0]
    att = float(np.average(post["att"], weights=post["n_treated"]))
    weighted = group_time.assign(w_att=group_time["att"] * group_time["n_treated"])
    by_event = weighted.groupby("event_time", sort=True).agg(
        w_att=("w_att", "sum"), weight=("n_treated", "sum"), n_cohorts=("cohort", "nunique")
    )
    event_study = pd.DataFrame(
        {
            "event_time": by_event.index.astype(int),
            "att": (by_event["w_att"] / by_event["weight"]).to_numpy(),
            "n_cohorts": by_event["n_cohorts"].to_numpy(),
        }
    ).reset_index(drop=True)

    draws = _bootstrap(y, adopt, post_cells, n_resamples, seed)
    alpha = (1 - level) / 2
    low, high = (float(q) for q in np.quantile(draws, [alpha, 1 - alpha])) if len(draws) else (np.nan, np.nan)
    return StaggeredResult(
        att=att,
        att_low=low,
        att_high=high,
        group_time=group_time,
        event_study=event_study,
        n_teams=n_teams,
        n_cohorts=len(cohorts),
        level=level,
        n_resamples=len(draws),
    )


def _bootstrap(
    y: np.ndarray, adopt: np.ndarray, post_cells: list[tuple[int, int]], n_resamples: int, seed: int
) -> np.ndarray:
    """Overall ATT of `n_resamples` team resamples (seeded); resamples with no usable cell are dropped."""
    n_teams = y.shape[0]
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_teams, np.full(n_teams, 1 / n_teams), size=n_resamples).astype(float)
    draws = resampled_att(y, adopt, post_cells, counts)
    return draws[np.isfinite(draws)]


def resampled_att(
    y: np.ndarray, adopt: np.ndarray, post_cells: list[tuple[int, int]], counts: np.ndarray
) -> np.ndarray:
    """Overall ATT for each row of `counts` (how many times each team is drawn), all rows at once.

    A team drawn twice counts twice in every mean, so each resample is a weighted version of the
    estimator and a whole batch is a few matrix products per cohort. NaN for a resample without any
    usable cell (no treated or no control team drawn).
    """
    n_resamples = counts.shape[0]
    n_months = y.shape[1]
    # For a post cell (t ≥ g) a control is any team adopting after t; that set does not depend on g.
    control = (adopt[:, None] > np.arange(n_months)[None, :]).astype(float)  # teams × months
    n_control = counts @ control  # resamples × months
    numerator = np.zeros(n_resamples)
    denominator = np.zeros(n_resamples)
    by_cohort: dict[int, list[int]] = {}
    for g, t in post_cells:
        by_cohort.setdefault(g, []).append(t)
    for g, ts in by_cohort.items():
        cols = np.array(ts)
        in_g = (adopt == g).astype(float)
        diff = y[:, cols] - y[:, [g - 1]]
        n_treated = counts @ in_g  # resamples
        treated_sum = (counts * in_g) @ diff  # resamples × cells
        control_sum = counts @ (control[:, cols] * diff)
        n_ctrl = n_control[:, cols]
        usable = (n_treated[:, None] > 0) & (n_ctrl > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            cell_att = treated_sum / n_treated[:, None] - control_sum / n_ctrl
        weight = np.where(usable, n_treated[:, None], 0.0)
        numerator += (np.where(usable, cell_att, 0.0) * weight).sum(axis=1)
        denominator += weight.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)

"""Staggered rollouts: group-time ATTs by hand, simulated truth recovered, the bootstrap checked by brute force."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest

from crm_roi_pipeline.months import add_months
from crm_roi_pipeline.statistics.staggered import (
    StaggeredResult,
    StaggeredUnavailable,
    _panel_matrix,
    resampled_att,
    staggered_att,
)

M = [add_months(dt.date(2023, 1, 1), i) for i in range(60)]


def tiny_panel() -> tuple[pd.DataFrame, dict[str, dt.date]]:
    """A adopts in M2, B in M3, C never.

    month   M0  M1  M2  M3
    A       10  12  20  25
    B        5   6   7  15
    C        1   2   4   3
    """
    values = {"A": [10, 12, 20, 25], "B": [5, 6, 7, 15], "C": [1, 2, 4, 3]}
    rows = [(team, M[i], float(v)) for team, vs in values.items() for i, v in enumerate(vs)]
    return pd.DataFrame(rows, columns=["team", "month", "value"]), {"A": M[2], "B": M[3]}


def test_group_time_effects_by_hand():
    panel, adoption = tiny_panel()
    result = staggered_att(panel, adoption, n_resamples=99)
    assert isinstance(result, StaggeredResult)
    cells = {(r.cohort, r.month): (r.att, r.n_treated, r.n_controls) for r in result.group_time.itertuples()}
    # ATT(M2, M2), base M1: A 20 − 12 = 8; controls not yet treated at M2 are B (7 − 6 = 1) and C (4 − 2 = 2),
    # mean 1.5: 8 − 1.5 = 6.5.
    assert cells[(M[2], M[2])] == (pytest.approx(6.5), 1, 2)
    # ATT(M2, M3): A 25 − 12 = 13; B is treated at M3, so only C: 3 − 2 = 1: 12.
    assert cells[(M[2], M[3])] == (pytest.approx(12), 1, 1)
    # ATT(M3, M3), base M2: B 15 − 7 = 8; C 3 − 4 = −1 (A is already treated): 9.
    assert cells[(M[3], M[3])] == (pytest.approx(9), 1, 1)
    # Pre-trend ATT(M3, M1), base M2: B 6 − 7 = −1; controls untreated at M1 and M2: C only, 2 − 4 = −2: 1.
    assert cells[(M[3], M[1])] == (pytest.approx(1), 1, 1)
    # ATT(M2, M0), base M1: A 10 − 12 = −2; B and C 5 − 6 = 1 − 2 = −1: −1.
    assert cells[(M[2], M[0])] == (pytest.approx(-1), 1, 2)
    assert (M[2], M[1]) not in cells and (M[3], M[2]) not in cells  # the base months themselves
    # Overall: cohorts of one team each, post cells 6.5, 12, 9: mean 27.5 / 3.
    assert result.att == pytest.approx(27.5 / 3)
    study = dict(zip(result.event_study["event_time"], result.event_study["att"]))
    # Event time 0: (6.5 + 9) / 2; 1: 12; −2: (−1 + 1) / 2; −3: ATT(M3, M0) = (5 − 7) − (1 − 4) = 1.
    assert study == {-3: pytest.approx(1), -2: pytest.approx(0), 0: pytest.approx(7.75), 1: pytest.approx(12)}


def simulated(
    *, effects: dict[int, float], teams_per_cohort: int = 2, n_never: int = 2, noise: float = 0.0,
    seed: int = 0, n_months: int = 36,
) -> tuple[pd.DataFrame, dict[str, dt.date]]:
    """Team fixed effects + common month shocks + a cohort-specific effect from adoption on + noise."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0, 15, n_months)
    rows, adoption = [], {}
    cohorts = [g for g in effects for _ in range(teams_per_cohort)] + [None] * n_never
    for i, g in enumerate(cohorts):
        team, level = f"team{i}", rng.normal(200, 50)
        if g is not None:
            adoption[team] = M[g]
        for t in range(n_months):
            effect = effects[g] if g is not None and t >= g else 0.0
            rows.append((team, M[t], level + shocks[t] + effect + noise * rng.standard_normal()))
    return pd.DataFrame(rows, columns=["team", "month", "value"]), adoption


def test_common_effect_recovered_exactly_without_noise():
    panel, adoption = simulated(effects={12: 20.0, 18: 20.0, 24: 20.0})
    result = staggered_att(panel, adoption)
    assert result.att == pytest.approx(20, abs=1e-9)
    assert result.att_low == pytest.approx(20, abs=1e-9) and result.att_high == pytest.approx(20, abs=1e-9)
    post = result.group_time[result.group_time["event_time"] >= 0]
    pre = result.group_time[result.group_time["event_time"] < 0]
    np.testing.assert_allclose(post["att"], 20, atol=1e-9)
    np.testing.assert_allclose(pre["att"], 0, atol=1e-9)
    assert (result.n_teams, result.n_cohorts, result.method) == (8, 3, "callaway_santanna_not_yet_treated")


def test_cohort_specific_effects_weighted_by_cohort_size_and_cells():
    # Cohorts at months 12, 18, 24 of 36 have 24, 18 and 12 post months, all with never-treated controls;
    # two teams each, so the overall ATT is (24·10 + 18·20 + 12·30) / (24 + 18 + 12) = 960 / 54.
    panel, adoption = simulated(effects={12: 10.0, 18: 20.0, 24: 30.0})
    result = staggered_att(panel, adoption)
    assert result.att == pytest.approx(960 / 54, abs=1e-9)
    study = result.event_study.set_index("event_time")["att"]
    assert study[0] == pytest.approx(20)  # all three cohorts, equal sizes
    assert study[15] == pytest.approx(15)  # cohorts 12 and 18 only
    assert study[20] == pytest.approx(10)  # cohort 12 only


@pytest.mark.parametrize("seed", range(4))
def test_effect_within_the_interval_with_noise(seed):
    panel, adoption = simulated(effects={12: 20.0, 18: 20.0, 24: 20.0}, teams_per_cohort=3, n_never=3,
                                noise=10.0, seed=seed)
    result = staggered_att(panel, adoption, seed=seed)
    assert result.att_low <= 20 <= result.att_high
    assert result.att_low < result.att < result.att_high
    assert result.n_resamples == 999


def test_bootstrap_matches_resampling_teams_by_hand():
    panel, adoption = simulated(effects={12: 10.0, 18: 20.0, 24: 30.0}, noise=5.0, seed=3)
    teams, months, y = _panel_matrix(panel)
    never = np.iinfo(np.int64).max // 2
    adopt = np.array([M.index(adoption[t]) if t in adoption else never for t in teams])
    post_cells = [(g, t) for g in (12, 18, 24) for t in range(g, 36)]
    rng = np.random.default_rng(7)
    counts = rng.multinomial(len(teams), np.full(len(teams), 1 / len(teams)), size=5)
    vectorised = resampled_att(y, adopt, post_cells, counts.astype(float))
    for row, expected in zip(counts, vectorised):
        # The same resample as a panel: each team repeated as often as drawn, copies renamed.
        parts, dates = [], {}
        for team, k in zip(teams, row):
            for copy in range(k):
                name = f"{team}#{copy}"
                parts.append(panel[panel["team"] == team].assign(team=name))
                if team in adoption:
                    dates[name] = adoption[team]
        brute = staggered_att(pd.concat(parts), dates, n_resamples=1)
        if isinstance(brute, StaggeredUnavailable):
            assert np.isnan(expected)
        else:
            assert expected == pytest.approx(brute.att, abs=1e-9)


def test_teams_outside_the_data_window():
    panel, adoption = tiny_panel()
    early = pd.DataFrame({"team": ["D"] * 4, "month": M[:4], "value": [100.0, 0.0, 50.0, 70.0]})
    late = pd.DataFrame({"team": ["E"] * 4, "month": M[:4], "value": [1.0, 2.0, 4.0, 3.0]})
    # D adopted before the data starts: no base month, and never a control. E adopts after the data ends,
    # so it is a control throughout, with C's values. ATT(M2, M2) = 8 − mean(B 1, C 2, E 2) = 19/3;
    # ATT(M2, M3) = 13 − mean(C 1, E 1) = 12; ATT(M3, M3) = 8 − mean(C −1, E −1) = 9. Overall 82/9.
    result = staggered_att(pd.concat([panel, early, late]), {**adoption, "D": dt.date(2022, 6, 1), "E": M[10]})
    cells = {(r.cohort, r.month): (r.att, r.n_controls) for r in result.group_time.itertuples()}
    assert cells[(M[2], M[2])] == (pytest.approx(19 / 3), 3)
    assert result.att == pytest.approx(82 / 9)
    assert (result.n_cohorts, result.n_teams) == (2, 5)


def test_missing_team_months_count_as_zero():
    panel, adoption = tiny_panel()
    zeroed = panel.copy()
    zeroed.loc[(zeroed["team"] == "C") & (zeroed["month"] == M[3]), "value"] = 0.0
    dropped = panel[~((panel["team"] == "C") & (panel["month"] == M[3]))]
    assert staggered_att(dropped, adoption).att == pytest.approx(staggered_att(zeroed, adoption).att)


def test_unavailable():
    panel, adoption = tiny_panel()
    one = staggered_att(panel[panel["team"] == "A"], {"A": M[2]})
    assert isinstance(one, StaggeredUnavailable) and "at least 2 teams" in one.reason
    # A and B both adopt in M2 and no one is left untreated: no control for any post month.
    both = staggered_att(panel[panel["team"] != "C"], {"A": M[2], "B": M[2]})
    assert isinstance(both, StaggeredUnavailable) and "compare" in both.reason


def test_seeded_and_fast_enough_for_hundreds_of_teams():
    panel, adoption = simulated(effects={g: 20.0 for g in range(6, 44, 3)}, teams_per_cohort=20, n_never=40,
                                noise=5.0, seed=1, n_months=48)
    assert panel["team"].nunique() == 300
    started = time.perf_counter()
    result = staggered_att(panel, adoption, seed=5)
    elapsed = time.perf_counter() - started
    assert elapsed < 5
    again = staggered_att(panel, adoption, seed=5)
    assert (again.att_low, again.att_high) == (result.att_low, result.att_high)
    assert result.att_low <= 20 <= result.att_high


def _callaway_santanna_by_definition(panel: pd.DataFrame, adoption: dict[str, dt.date]) -> dict:
    """ATT(g, t) written straight from Callaway & Sant'Anna (2021), not-yet-treated controls, with pandas:
    the cohort's mean change Y_t − Y_{g−1} minus the mean change of the teams not treated by max(t, g − 1)
    (never-treated included, the cohort itself not). Shares nothing with uplift/staggered.py but the input."""
    wide = panel.pivot(index="team", columns="month", values="value").sort_index(axis=1)
    months = list(wide.columns)
    start = {team: months.index(day) if day in months else None for team, day in adoption.items()}
    out = {}
    for g in sorted({s for s in start.values() if s is not None and s > 0}):
        cohort = [team for team, s in start.items() if s == g]
        for t in range(len(months)):
            if t == g - 1:
                continue
            latest = max(t, g - 1)
            controls = [team for team in wide.index
                        if team not in cohort and (start.get(team) is None or start[team] > latest)]
            if not controls:
                continue
            change = wide.iloc[:, t] - wide.iloc[:, g - 1]
            out[(months[g], months[t])] = change[cohort].mean() - change[controls].mean()
    return out


@pytest.mark.parametrize("seed", range(3))
def test_group_time_effects_equal_an_independent_implementation(seed):
    panel, adoption = simulated(effects={6: 5.0, 12: 20.0, 18: -10.0, 24: 30.0}, teams_per_cohort=3, n_never=3,
                                noise=10.0, seed=seed)
    result = staggered_att(panel, adoption, n_resamples=9)
    ours = {(r.cohort, r.month): r.att for r in result.group_time.itertuples()}
    theirs = _callaway_santanna_by_definition(panel, adoption)
    assert set(ours) == set(theirs)
    for cell, att in theirs.items():
        assert ours[cell] == pytest.approx(att, abs=1e-9)

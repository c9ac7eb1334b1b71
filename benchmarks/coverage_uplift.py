"""Coverage benchmark for the uplift statistics: simulated series with a known uplift, figures printed.

    .venv/bin/python benchmarks/coverage_uplift.py                      # 300 simulations per scenario
    .venv/bin/python benchmarks/coverage_uplift.py --simulations 50     # a quicker look

Not a test: nothing here asserts. Figures:
  ITS            on 100 + 2t + 30·sin(2π·month/12) + noise, 48 pre and 12 post months, true step +20:
                 bias and RMSE of the ITS uplift per month, coverage and mean width of its 95% interval,
                 and bias and RMSE of the naive 12-month before/after difference (expected bias +24, the
                 trend over the 12-month gap). Noise sd 10, white or AR(1) with φ = 0.5.
  placebo        the same series (white noise), under no effect and under +20: share of simulations with a
                 permutation p-value ≤ 0.05 and ≤ 0.10 (25 fake dates: the smallest p is 1/26 ≈ 0.038).
  staggered      teams with fixed effects, common month shocks, noise sd 10, 36 months, cohorts adopting
                 in months 12, 18 and 24 plus never-treated teams, true effect +20: bias, coverage and
                 width of the 95% team-bootstrap interval (999 resamples).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crm_roi_pipeline.months import add_months  # noqa: E402
from crm_roi_pipeline.statistics.its import ItsResult, before_after, fit_its  # noqa: E402
from crm_roi_pipeline.statistics.placebo import before_after_estimator, its_estimator, placebo_test  # noqa: E402
from crm_roi_pipeline.statistics.staggered import StaggeredResult, staggered_att  # noqa: E402

START = dt.date(2020, 1, 1)
N_PRE, N_POST, STEP, NOISE = 48, 12, 20.0, 10.0
MONTHS = [add_months(START, i) for i in range(120)]


def noise(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """AR(1) noise with marginal sd NOISE (white when phi = 0), started from its stationary distribution."""
    shocks = rng.standard_normal(n) * NOISE * np.sqrt(1 - phi**2)
    out = np.empty(n)
    out[0] = rng.standard_normal() * NOISE
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def its_series(rng: np.random.Generator, step: float, phi: float) -> tuple[pd.DataFrame, dt.date]:
    n = N_PRE + N_POST
    t = np.arange(n)
    calendar = np.array([m.month for m in MONTHS[:n]])
    values = 100 + 2 * t + 30 * np.sin(2 * np.pi * calendar / 12) + np.where(t >= N_PRE, step, 0.0)
    return pd.DataFrame({"month": MONTHS[:n], "value": values + noise(rng, n, phi)}), MONTHS[N_PRE]


def bench_its(simulations: int, seed: int) -> list[list[str]]:
    rows = []
    for errors, label, phi in (("ar1_bootstrap", "white noise", 0.0), ("ar1_bootstrap", "AR(1) φ=0.5", 0.5),
                               ("hac", "white noise, HAC", 0.0), ("hac", "AR(1) φ=0.5, HAC", 0.5)):
        its_err, naive_err, covered, widths = [], [], [], []
        for i in range(simulations):
            series, adoption = its_series(np.random.default_rng([seed, 1, i, int(phi * 10)]), STEP, phi)
            result = fit_its(series, adoption, errors=errors)
            assert isinstance(result, ItsResult)
            its_err.append(result.uplift_per_month - STEP)
            covered.append(result.uplift_low <= STEP <= result.uplift_high)
            widths.append(result.uplift_high - result.uplift_low)
            naive_err.append(before_after(series, adoption, window_months=12) - STEP)
        rows.append([
            label, f"{STEP:+.0f}", f"{np.mean(its_err):+.2f}", f"{np.sqrt(np.mean(np.square(its_err))):.2f}",
            f"{np.mean(covered):.3f}", f"{np.mean(widths):.1f}",
            f"{np.mean(naive_err):+.2f}", f"{np.sqrt(np.mean(np.square(naive_err))):.2f}",
        ])
    return rows


def bench_placebo(simulations: int, seed: int) -> list[list[str]]:
    rows = []
    for name, estimator in (("ITS", its_estimator()), ("before/after", before_after_estimator(window_months=12))):
        for effect in (0.0, STEP):
            p_values, n = [], []
            for i in range(simulations):
                series, adoption = its_series(np.random.default_rng([seed, 2, i, int(effect)]), effect, 0.0)
                result = placebo_test(series, adoption, estimator=estimator)
                p_values.append(result.p_value if result.p_value is not None else 1.0)
                n.append(result.n)
            p = np.array(p_values)
            rows.append([
                name, "none (null)" if effect == 0 else f"{effect:+.0f}", f"{np.mean(n):.0f}",
                f"{np.mean(p <= 0.05):.3f}", f"{np.mean(p <= 0.10):.3f}", f"{np.median(p):.3f}",
            ])
    return rows


def staggered_panel(
    rng: np.random.Generator, teams_per_cohort: int, n_never: int, n_months: int = 36
) -> tuple[pd.DataFrame, dict[str, dt.date]]:
    shocks = rng.normal(0, 15, n_months)
    cohorts = [g for g in (12, 18, 24) for _ in range(teams_per_cohort)] + [None] * n_never
    levels = rng.normal(200, 50, len(cohorts))
    teams = np.repeat([f"team{i}" for i in range(len(cohorts))], n_months)
    t = np.tile(np.arange(n_months), len(cohorts))
    g = np.repeat([n_months if c is None else c for c in cohorts], n_months)
    values = np.repeat(levels, n_months) + shocks[t] + np.where(t >= g, STEP, 0.0) + rng.normal(0, NOISE, len(t))
    adoption = {f"team{i}": MONTHS[c] for i, c in enumerate(cohorts) if c is not None}
    return pd.DataFrame({"team": teams, "month": [MONTHS[k] for k in t], "value": values}), adoption


def bench_staggered(simulations: int, seed: int) -> list[list[str]]:
    rows = []
    for per_cohort, n_never in ((1, 3), (3, 3), (8, 6)):
        err, covered, widths = [], [], []
        for i in range(simulations):
            panel, adoption = staggered_panel(np.random.default_rng([seed, 3, i, per_cohort]), per_cohort, n_never)
            result = staggered_att(panel, adoption, seed=i)
            assert isinstance(result, StaggeredResult)
            err.append(result.att - STEP)
            covered.append(result.att_low <= STEP <= result.att_high)
            widths.append(result.att_high - result.att_low)
        rows.append([
            f"{3 * per_cohort + n_never} teams ({per_cohort}/cohort, {n_never} never)", f"{STEP:+.0f}",
            f"{np.mean(err):+.2f}", f"{np.sqrt(np.mean(np.square(err))):.2f}", f"{np.mean(covered):.3f}",
            f"{np.mean(widths):.1f}",
        ])
    return rows


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Columns padded to their widest cell: the first left-aligned, the figures right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths))))


def table(title: str, header: list[str], rows: list[list[str]], seconds: float) -> None:
    print(f"\n{title}  ({seconds:.1f} s)")
    print_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=300, help="simulations per scenario (default 300)")
    parser.add_argument("--seed", type=int, default=20240101, help="master seed (default 20240101)")
    args = parser.parse_args()
    n, seed = args.simulations, args.seed
    print(f"coverage_uplift: {n} simulations per scenario, seed {seed}, nominal interval level 95%")

    benches = [
        (bench_its,
         f"ITS vs naive before/after ({N_PRE} pre + {N_POST} post months, trend +2/month, ±30 seasonal wave, "
         f"noise sd {NOISE:.0f})",
         ["noise", "truth", "ITS bias", "ITS RMSE", "ITS coverage", "ITS width", "naive bias", "naive RMSE"]),
        (bench_placebo,
         "Placebo test (fake dates with ≥ 12 pre months, 12-month fake post windows)",
         ["estimator", "true effect", "placebos", "p ≤ 0.05", "p ≤ 0.10", "median p"]),
        (bench_staggered,
         "Staggered rollout, Callaway–Sant'Anna not-yet-treated (36 months, cohorts 12/18/24, noise sd 10)",
         ["panel", "truth", "ATT bias", "ATT RMSE", "coverage", "width"]),
    ]
    for bench, title, header in benches:
        started = time.perf_counter()
        rows = bench(n, seed)
        table(title, header, rows, time.perf_counter() - started)


if __name__ == "__main__":
    main()

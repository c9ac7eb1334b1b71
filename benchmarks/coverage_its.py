"""How often the interrupted time series' 95% interval covers the true uplift, how often the second opinion
(CausalImpact's Bayesian structural time series) covers it and agrees with the ITS's verdict, and how often
the staggered-rollout interval covers the truth: thousands of simulated series, each figure printed with its
Monte Carlo standard error and the seed. Nothing here asserts.

    .venv/bin/python benchmarks/coverage_its.py                        # 4,000 series per row, both cores (~45 min)
    .venv/bin/python benchmarks/coverage_its.py --simulations 300      # a quick look (wider MC error)
    .venv/bin/python benchmarks/coverage_its.py --glsar                # also feasible GLS, the default before

Each series is the ITS's own model: 100 + 2·t + 30·sin(2π·month/12) + an effect from the first post month
+ Gaussian noise with s.d. 10 (white, or AR(1) with φ = 0.5 and the same marginal s.d.). The product's
interval (`fit_its`, errors="ar1_bootstrap") is compared with plain OLS (errors="ols"). The second opinion
is `uplift.bsts.fit_bsts`; "agree" is the share of series where its interval gives the ITS's verdict (both
above zero, both below, or both including zero). The last ITS row has no effect and a growth trend with
seasonality: the naive before/after is biased there by the trend over the 12 months between the windows
(+24) and the ITS must not be.

The staggered rows are `coverage_uplift.staggered_panel`'s teams (fixed effects, common month shocks, noise
s.d. 10, 36 months, cohorts adopting in months 12, 18 and 24 plus never-treated teams, true effect +20),
estimated by `staggered_att` (Callaway–Sant'Anna, not-yet-treated controls, teams resampled for the interval).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from coverage_uplift import MONTHS, NOISE, STEP, noise, print_table, staggered_panel  # noqa: E402
from crm_roi_pipeline.metrics.lift import verdict_code  # noqa: E402
from crm_roi_pipeline.statistics.bsts import BstsResult, fit_bsts  # noqa: E402
from crm_roi_pipeline.statistics.its import ItsResult, before_after, fit_its  # noqa: E402
from crm_roi_pipeline.statistics.staggered import StaggeredResult, staggered_att  # noqa: E402

import pandas as pd  # noqa: E402

POST = 12
# label, pre months, φ, level shift, slope change per post month
ROWS = [
    ("white, 36 + 12", 36, 0.0, 20.0, 0.0),
    ("white, 48 + 12", 48, 0.0, 20.0, 0.0),
    ("AR(1) φ=0.5, 36 + 12", 36, 0.5, 20.0, 0.0),
    ("AR(1) φ=0.5, 48 + 12", 48, 0.5, 20.0, 0.0),
    ("white, 24 + 12", 24, 0.0, 20.0, 0.0),
    ("AR(1) φ=0.5, 24 + 12", 24, 0.5, 20.0, 0.0),
    ("white, 48 + 12, shift of 1 noise s.d.", 48, 0.0, NOISE, 0.0),
    ("white, 48 + 12, slope change +2/month", 48, 0.0, 0.0, 2.0),
    ("white, 48 + 12, trend and season, no effect", 48, 0.0, 0.0, 0.0),
]
# teams per adoption cohort (3 cohorts), never-treated teams: 6, 12 and 30 teams
STAGGERED = [(1, 3), (3, 3), (8, 6)]
CHUNK = 250


def simulate(args: tuple) -> list[tuple]:
    """One row's simulations `first` … `last` − 1: per series and method (covered, width), whether the
    second opinion gives the product's verdict, and the naive before/after's error."""
    row, first, last, seed, methods = args
    _, n_pre, phi, shift, slope = ROWS[row]
    n = n_pre + POST
    t = np.arange(n)
    calendar = np.array([m.month for m in MONTHS[:n]])
    effect = np.where(t >= n_pre, shift + slope * (t - n_pre), 0.0)
    truth = shift + slope * (POST - 1) / 2  # the mean effect over the post months
    base = 100 + 2 * t + 30 * np.sin(2 * np.pi * calendar / 12) + effect
    out = []
    for i in range(first, last):
        values = base + noise(np.random.default_rng([seed, row, i]), n, phi)
        series = pd.DataFrame({"month": MONTHS[:n], "value": values})
        found, verdicts = [], []
        for method in methods:
            result = fit_its(series, MONTHS[n_pre], errors=method)
            assert isinstance(result, ItsResult)
            found.append((result.uplift_low <= truth <= result.uplift_high, result.uplift_high - result.uplift_low))
            verdicts.append(verdict_code(result.uplift_low, result.uplift_high))
        second = fit_bsts(series, MONTHS[n_pre])
        assert isinstance(second, BstsResult), second
        found.append((second.low <= truth <= second.high, second.high - second.low))
        agree = verdict_code(second.low, second.high) == verdicts[0]
        out.append((found, agree, before_after(series, MONTHS[n_pre], window_months=12) - truth))
    return out


def simulate_staggered(args: tuple) -> list[tuple]:
    """One staggered row's simulations: (covered, width, error) per panel."""
    row, first, last, seed = args
    per_cohort, never = STAGGERED[row]
    out = []
    for i in range(first, last):
        panel, adoption = staggered_panel(np.random.default_rng([seed, 3, i, per_cohort]), per_cohort, never)
        result = staggered_att(panel, adoption, seed=i)
        assert isinstance(result, StaggeredResult)
        out.append((result.att_low <= STEP <= result.att_high, result.att_high - result.att_low, result.att - STEP))
    return out


def share(hits: list[bool]) -> str:
    """A proportion with its Monte Carlo standard error."""
    p = float(np.mean(hits))
    return f"{p:.1%} ± {math.sqrt(p * (1 - p) / len(hits)):.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=4000, help="series per row (default 4,000)")
    parser.add_argument("--seed", type=int, default=20261203, help="master seed (default 20261203)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--glsar", action="store_true", help="also feasible GLS (GLSAR), the default before")
    args = parser.parse_args()
    n = args.simulations
    methods = ("ar1_bootstrap", "ols") + (("ar1",) if args.glsar else ())
    names = ["product", "OLS"] + (["GLSAR"] if args.glsar else []) + ["BSTS"]
    print(f"coverage_its: {n} simulated series per row, seed {args.seed}, nominal level 95%, noise s.d. {NOISE:.0f}; "
          "coverage ± its Monte Carlo standard error, mean interval width")
    started = time.perf_counter()
    chunks = [(row, k, min(k + CHUNK, n), args.seed, methods) for row in range(len(ROWS)) for k in range(0, n, CHUNK)]
    stag_chunks = [(row, k, min(k + CHUNK, n), args.seed) for row in range(len(STAGGERED)) for k in range(0, n, CHUNK)]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(simulate, chunks))
        stag_results = list(pool.map(simulate_staggered, stag_chunks))
    header = ["series"] + [h for name in names for h in (f"{name} covers", "width")] + [
        "product/OLS width", "BSTS agrees", "naive bias"]
    rows = []
    for row, (label, *_rest) in enumerate(ROWS):
        sims = [s for (r, *_), part in zip(chunks, results) if r == row for s in part]
        cells = [label]
        widths = []
        for m in range(len(names)):
            cells += [share([found[m][0] for found, _, _ in sims]), f"{np.mean([found[m][1] for found, _, _ in sims]):.1f}"]
            widths.append(float(np.mean([found[m][1] for found, _, _ in sims])))
        cells += [f"{widths[0] / widths[1]:.2f}×", share([agree for _, agree, _ in sims]),
                  f"{np.mean([e for _, _, e in sims]):+.1f}"]
        rows.append(cells)
    print_table(header, rows)
    print(f"\nstaggered rollout (Callaway–Sant'Anna, not-yet-treated controls), {n} panels per row, true effect "
          f"{STEP:+.0f}")
    stag_rows = []
    for row, (per_cohort, never) in enumerate(STAGGERED):
        sims = [s for (r, *_), part in zip(stag_chunks, stag_results) if r == row for s in part]
        stag_rows.append([f"{3 * per_cohort + never} teams ({per_cohort}/cohort, {never} never)",
                          share([c for c, _, _ in sims]), f"{np.mean([w for _, w, _ in sims]):.1f}",
                          f"{np.mean([e for _, _, e in sims]):+.2f}"])
    print_table(["panel", "covers", "width", "ATT bias"], stag_rows)
    print(f"({time.perf_counter() - started:.0f} s, {args.workers} worker processes)")


if __name__ == "__main__":
    main()

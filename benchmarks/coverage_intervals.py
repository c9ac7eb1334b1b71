"""Coverage of the uplift intervals on simulated windows with known true differences, and their speed on
300,000-deal windows (prints a table; not a test, nothing here asserts).

    .venv/bin/python benchmarks/coverage_intervals.py                    # 300 simulations per row
    .venv/bin/python benchmarks/coverage_intervals.py --simulations 50   # a quicker look

Each row draws `--simulations` seeded pre/post windows from a known distribution, computes the 95% interval
and counts how often it holds the true difference (± is the simulation's own standard error, √(p(1−p)/S)).
A 95% interval should cover ~95%; much less means the interval is too narrow for that sample size.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crm_roi_pipeline.statistics.intervals import (  # noqa: E402
    bootstrap_difference,
    bootstrap_months_difference,
    mean_statistic,
    newcombe_difference,
    ratio_of_sums_statistic,
)
from crm_roi_pipeline.statistics.survival import km_median, logrank  # noqa: E402

LEVEL = 0.95
SIGMA = 0.8  # log-scale spread of days to close and amounts: lognormal(μ, 0.8)


@dataclass
class Row:
    name: str
    covered: int = 0
    total: int = 0
    widths: list[float] | None = None
    open_ended: int = 0  # intervals with no upper bound (counted as covering above)
    seconds: float = 0.0

    def add(self, low: float | None, high: float | None, truth: float) -> None:
        self.widths = self.widths or []
        self.total += 1
        if low is None:
            return
        upper = math.inf if high is None else high
        self.covered += low <= truth <= upper
        if high is None:
            self.open_ended += 1
        else:
            self.widths.append(high - low)


def lognormal_median_and_mean(mu: float) -> tuple[float, float]:
    return math.exp(mu), math.exp(mu + SIGMA**2 / 2)


def simulate(simulations: int, seed: int) -> list[Row]:
    rows: dict[str, Row] = {}

    def run(name: str, body: Callable[[np.random.Generator, int], tuple[float | None, float | None, float]]):
        row = rows.setdefault(name, Row(name))
        started = time.perf_counter()
        for i in range(simulations):
            rng = np.random.default_rng([seed, len(rows), i])
            row.add(*body(rng, i))
        row.seconds = time.perf_counter() - started

    pre_mu, post_mu = 3.4, 3.2  # days to close: median 30.0 pre, 24.5 post
    median_truth = math.exp(post_mu) - math.exp(pre_mu)
    mean_truth = lognormal_median_and_mean(post_mu)[1] - lognormal_median_and_mean(pre_mu)[1]

    for n, label in ((60, "BCa"), (400, "BCa"), (5_000, "exact fast")):
        def median_body(rng, i, n=n):
            r = bootstrap_difference(rng.lognormal(pre_mu, SIGMA, n), rng.lognormal(post_mu, SIGMA, n), np.median,
                                     level=LEVEL, seed=i)
            return r.low, r.high, median_truth

        def mean_body(rng, i, n=n):
            r = bootstrap_difference(rng.lognormal(pre_mu, SIGMA, n), rng.lognormal(post_mu, SIGMA, n), np.mean,
                                     level=LEVEL, seed=i)
            return r.low, r.high, mean_truth

        run(f"median diff, {n:,} deals/window ({label})", median_body)
        run(f"mean diff, {n:,} deals/window ({label})", mean_body)

    def integer_median_body(rng, i):
        # Whole days, 5,000 deals: the multinomial path. True medians 30.5 and 24.5 days before flooring;
        # floor(X) has median floor(e^μ) (P(floor X ≤ k) = P(X < k + 1)): 30 and 24, a difference of −6.
        pre = np.floor(rng.lognormal(math.log(30.5), SIGMA, 5_000))
        post = np.floor(rng.lognormal(math.log(24.5), SIGMA, 5_000))
        r = bootstrap_difference(pre, post, np.median, level=LEVEL, seed=i)
        return r.low, r.high, -6.0

    run("median diff, whole days, 5,000/window (multinomial)", integer_median_body)

    for months in (12, 24, 36):
        def month_body(rng, i, months=months):
            # Won revenue per month: normal(100k, 20k) pre, normal(112k, 20k) post.
            pre, post = rng.normal(100_000, 20_000, months), rng.normal(112_000, 20_000, months)
            r = bootstrap_months_difference(pre, post, mean_statistic, level=LEVEL, seed=i)
            return r.low, r.high, 12_000.0

        run(f"per-month mean diff, {months} months/window", month_body)

    def ratio_body(rng, i):
        # Win rate from won / closed per month, 24 months, 15..60 closed a month: 25% pre, 30% post.
        closed_pre, closed_post = rng.integers(15, 61, 24), rng.integers(15, 61, 24)
        pre = np.column_stack([rng.binomial(closed_pre, 0.25), closed_pre])
        post = np.column_stack([rng.binomial(closed_post, 0.30), closed_post])
        r = bootstrap_months_difference(pre, post, ratio_of_sums_statistic, level=LEVEL, seed=i)
        return r.low, r.high, 0.05

    run("win-rate diff, ratio of monthly sums, 24 months", ratio_body)

    for n_pre, n_post in ((40, 40), (300, 300)):
        def newcombe_body(rng, i, n_pre=n_pre, n_post=n_post):
            r = newcombe_difference(rng.binomial(n_pre, 0.25), n_pre, rng.binomial(n_post, 0.32), n_post, level=LEVEL)
            return r.low, r.high, 0.07

        run(f"proportion diff (Newcombe), {n_pre}+{n_post} deals", newcombe_body)

    for n, censor_days in ((100, 150), (1_000, 150), (1_000, 60)):
        def km_body(rng, i, n=n, censor_days=censor_days):
            # Time to close lognormal(3.4, 0.8): true median 30.0 days. As_of censoring: open for a
            # uniform 0..censor_days days (150: ~20% still open, 60: ~50%).
            close, open_for = rng.lognormal(pre_mu, SIGMA, n), rng.uniform(0, censor_days, n)
            r = km_median(np.minimum(close, open_for), (close <= open_for).astype(int), level=LEVEL)
            return r.low, r.high, math.exp(pre_mu)

        run(f"KM median, {n:,} deals, open up to {censor_days} d", km_body)

    return list(rows.values())


def timings(seed: int) -> list[tuple[str, float, str]]:
    """Best of three wall times on one 300,000 + 300,000-deal window pair."""
    rng = np.random.default_rng(seed)
    n = 300_000
    days_pre = np.floor(rng.lognormal(3.4, SIGMA, n))
    days_post = np.floor(rng.lognormal(3.2, SIGMA, n))
    amount_pre = np.round(rng.lognormal(9.0, 1.0, n), 2)
    amount_post = np.round(rng.lognormal(9.05, 1.0, n), 2)
    open_pre, open_post = rng.uniform(0, 150, n), rng.uniform(0, 150, n)
    cases = [
        ("median days to close, 999 resamples", lambda: bootstrap_difference(days_pre, days_post, np.median)),
        ("mean days to close, 999 resamples", lambda: bootstrap_difference(days_pre, days_post, np.mean)),
        ("median amount (floats), 999 resamples", lambda: bootstrap_difference(amount_pre, amount_post, np.median)),
        ("mean amount (floats), 999 resamples", lambda: bootstrap_difference(amount_pre, amount_post, np.mean)),
        ("KM median, whole days, one window", lambda: km_median(np.minimum(days_pre, np.floor(open_pre)),
                                                                 (days_pre <= open_pre).astype(int))),
        ("log-rank, both windows", lambda: logrank(np.minimum(days_pre, np.floor(open_pre)),
                                                   (days_pre <= open_pre).astype(int),
                                                   np.minimum(days_post, np.floor(open_post)),
                                                   (days_post <= open_post).astype(int))),
    ]
    out = []
    for name, call in cases:
        best, result = math.inf, None
        for _ in range(3):
            started = time.perf_counter()
            result = call()
            best = min(best, time.perf_counter() - started)
        out.append((name, best, _describe(result)))
    return out


def _describe(result) -> str:
    if hasattr(result, "method"):
        return f"[{result.low:,.2f}, {result.high:,.2f}] {result.method}"
    if hasattr(result, "median"):
        return f"median {result.median}, [{result.low}, {result.high}]"
    return f"chi2 {result.statistic:,.1f}, p {result.p_value:.3g}"


def coverage_table(simulations: int, seed: int) -> None:
    started = time.perf_counter()
    rows = simulate(simulations, seed)
    print(f"Coverage of {LEVEL:.0%} intervals, {simulations} simulations per row (seed {seed})\n")
    header = f"{'interval':56s} {'coverage':>8s} {'±':>5s} {'nominal':>7s} {'mean width':>12s} {'open':>5s} {'s':>6s}"
    print(header)
    print("-" * len(header))
    for row in rows:
        p = row.covered / row.total
        se = math.sqrt(p * (1 - p) / row.total)
        width = np.mean(row.widths) if row.widths else float("nan")
        print(f"{row.name:56s} {p:8.1%} {se:5.1%} {LEVEL:7.0%} {width:12,.4g} {row.open_ended:5d} {row.seconds:6.1f}")
    print(f"\n({time.perf_counter() - started:.0f} s; 'open': intervals with no upper bound, counted as covering"
          " when the lower bound is below the truth)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulations", type=int, default=300, help="simulated window pairs per row (0: timings only)")
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--no-timings", action="store_true", help="skip the 300,000-deal timings")
    args = parser.parse_args(argv)

    if args.simulations > 0:
        coverage_table(args.simulations, args.seed)
    if not args.no_timings:
        print("\nWall time on 300,000 + 300,000 deals (best of 3)\n")
        for name, seconds, description in timings(args.seed):
            print(f"{name:40s} {seconds:7.3f} s   {description}")


if __name__ == "__main__":
    main()

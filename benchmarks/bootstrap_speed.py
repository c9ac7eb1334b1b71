"""What the exact bootstrap shortcuts buy: the deal-level intervals of `metrics.adoption` at the window sizes
of the 1M-deal benchmark, as the product computes them and with scipy's index resampling in their place.

    .venv/bin/python benchmarks/bootstrap_speed.py             # 52,000 and 83,000 won deals, 80,000 accounts, 3 repeats
    .venv/bin/python benchmarks/bootstrap_speed.py --pre 2000 --post 3000

The sizes are the won deals of the 1M benchmark's pre and post windows (the sample's 260 and 413 per window,
times 200). "product" is `bootstrap_difference` as it runs (the shortcut where one exists: the median of whole days; a
mean of amounts, every value distinct, has none). A statistic it does not know (a wrapper around np.median or
np.mean) takes scipy's path:
the same percentile interval from the same bootstrap distribution, by resampling indices. Prints the median
seconds of each and the endpoints, which differ only by Monte Carlo noise. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from statistics import median

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_roi_pipeline.statistics.intervals import (  # noqa: E402
    bootstrap_difference,
    bootstrap_paired_difference,
    ratio_of_ratios_statistic,
    sum_statistic,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pre", type=int, default=52_000)
    parser.add_argument("--post", type=int, default=83_000)
    parser.add_argument("--accounts", type=int, default=80_000,
                        help="accounts resampled for the account-level figures (23,821 on the 300,000-deal data)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(20261203)
    samples = {
        # Whole days, as days to close are: a few hundred distinct values.
        "median_days_to_close": (rng.integers(1, 300, args.pre).astype(float), rng.integers(1, 280, args.post).astype(float), np.median),
        # Amounts: every value distinct.
        "avg_deal_size": (rng.lognormal(9, 1, args.pre), rng.lognormal(9.05, 1, args.post), np.mean),
    }
    print(f"deal-level bootstrap, 999 resamples, {args.pre:,} pre and {args.post:,} post values, median of {args.repeat}")
    total = {"product": 0.0, "scipy": 0.0}
    for name, (pre, post, statistic) in samples.items():
        def unknown(x, axis=-1, f=statistic):  # the shortcuts only recognise np.median and np.mean themselves
            return f(x, axis=axis)

        for label, stat in (("product", statistic), ("scipy", unknown)):
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                interval = bootstrap_difference(pre, post, stat, seed=1)
                times.append(time.perf_counter() - started)
            total[label] += median(times)
            print(f"  {name:<22} {label:<8} {median(times):6.2f} s (range {min(times):.2f}–{max(times):.2f})"
                  f"  interval {interval.low:,.2f} to {interval.high:,.2f}")
    print(f"both figures: the product {total['product']:.2f} s, scipy index resampling {total['scipy']:.2f} s, "
          f"difference {total['scipy'] - total['product']:.2f} s")
    accounts(rng, args.accounts, args.repeat)


def accounts(rng: np.random.Generator, n: int, repeat: int) -> None:
    """The account-level figures, paired (each account drawn for both windows at once): active customers, a
    sum of 0/1 per account, and customer lifetime value, a ratio of ratios of four columns' sums. "product"
    reads a sum statistic through how often each account was drawn (and the active count by the multinomial
    shortcut of its three-valued differences); "rows" is the same statistic behind a wrapper, which gathers a
    copy of every drawn row, as scipy does for any statistic."""
    active_pre = (rng.random(n) < 0.5).astype(float)
    active_post = np.where(active_pre == 1, rng.random(n) < 0.8, rng.random(n) < 0.4).astype(float)
    revenue = rng.lognormal(9, 1, (2, n))
    decisions = rng.integers(0, 3, (2, n)).astype(float)
    lost = np.minimum(decisions, rng.integers(0, 2, (2, n))).astype(float)
    clv = [np.column_stack([revenue[i] * 0.7, [active_pre, active_post][i], lost[i], decisions[i]]) for i in range(2)]
    figures = {
        "active_customers": (active_pre, active_post, sum_statistic),
        "customer_lifetime_value": (clv[0], clv[1], ratio_of_ratios_statistic),
    }
    print(f"account-level bootstrap, paired, 999 resamples, {n:,} accounts, median of {repeat}")
    for name, (pre, post, statistic) in figures.items():
        def rows(values, axis=-1, f=statistic):
            return f(values, axis=axis)

        for label, stat in (("product", statistic), ("rows", rows)):
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                interval = bootstrap_paired_difference(pre, post, stat, unit="account", seed=1)
                times.append(time.perf_counter() - started)
            print(f"  {name:<24} {label:<8} {median(times):6.2f} s (range {min(times):.2f}–{max(times):.2f})"
                  f"  interval {interval.low:,.2f} to {interval.high:,.2f}")


if __name__ == "__main__":
    main()

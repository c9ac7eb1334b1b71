"""What the exact bootstrap shortcuts buy: the deal-level intervals of `metrics.adoption` at the window sizes
of the 1M-deal benchmark, as the product computes them and with scipy's index resampling in their place.

    .venv/bin/python benchmarks/bootstrap_speed.py             # 52,000 and 83,000 won deals, 3 repeats
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

from crm_roi_pipeline.statistics.intervals import bootstrap_difference  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pre", type=int, default=52_000)
    parser.add_argument("--post", type=int, default=83_000)
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


if __name__ == "__main__":
    main()

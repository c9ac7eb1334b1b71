"""How often the interrupted time series' 95% interval covers the true uplift: thousands of simulated series,
coverage printed with its Monte Carlo standard error and the seed. Nothing here asserts.

    .venv/bin/python benchmarks/coverage_its.py                        # 2,000 series per row, both cores
    .venv/bin/python benchmarks/coverage_its.py --simulations 300      # a quick look (wider MC error)

Each series is the ITS's own model: 100 + 2·t + 30·sin(2π·month/12) + an effect from the first post month
+ Gaussian noise with s.d. 10 (white, or AR(1) with φ = 0.5 and the same marginal s.d.). The product's
interval (`fit_its`, errors="ar1_bootstrap") is compared with plain OLS (errors="ols") and with feasible
GLS (errors="ar1", GLSAR, the default before). The last row has no effect and a growth trend with
seasonality: the naive before/after is biased there by the trend over the 12 months between the windows
(+24) and the ITS must not be.
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

from coverage_uplift import MONTHS, NOISE, noise  # noqa: E402
from crm_roi_pipeline.uplift.its import ItsResult, before_after, fit_its  # noqa: E402

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
METHODS = ("ar1_bootstrap", "ols", "ar1")


def simulate(args: tuple) -> list[tuple]:
    """One row's simulations `first` … `last` − 1: per series and method (covered, width), and the naive
    before/after's error."""
    row, first, last, seed = args
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
        found = []
        for method in METHODS:
            result = fit_its(series, MONTHS[n_pre], errors=method)
            assert isinstance(result, ItsResult)
            found.append((result.uplift_low <= truth <= result.uplift_high, result.uplift_high - result.uplift_low))
        out.append((found, before_after(series, MONTHS[n_pre], window_months=12) - truth))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=2000, help="series per row (default 2,000)")
    parser.add_argument("--seed", type=int, default=20261203, help="master seed (default 20261203)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    n = args.simulations
    print(f"coverage_its: {n} simulated series per row, seed {args.seed}, nominal level 95%, noise s.d. {NOISE:.0f}; "
          "coverage ± its Monte Carlo standard error, mean interval width")
    header = ["series", "product covers", "width", "OLS covers", "width", "GLSAR covers", "width",
              "product/OLS width", "naive bias"]
    rows = []
    started = time.perf_counter()
    chunks = [(row, k, min(k + 250, n), args.seed) for row in range(len(ROWS)) for k in range(0, n, 250)]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(simulate, chunks))
    for row, (label, *_rest) in enumerate(ROWS):
        sims = [s for (r, *_), part in zip(chunks, results) if r == row for s in part]
        cells = [label]
        widths = []
        for m in range(len(METHODS)):
            covered = np.array([found[m][0] for found, _ in sims])
            width = float(np.mean([found[m][1] for found, _ in sims]))
            p = covered.mean()
            cells += [f"{p:.1%} ± {math.sqrt(p * (1 - p) / len(covered)):.1%}", f"{width:.1f}"]
            widths.append(width)
        cells += [f"{widths[0] / widths[1]:.2f}×", f"{np.mean([e for _, e in sims]):+.1f}"]
        rows.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for cells in rows:
        print("  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(cells, widths))))
    print(f"({time.perf_counter() - started:.0f} s, {args.workers} worker processes)")


if __name__ == "__main__":
    main()

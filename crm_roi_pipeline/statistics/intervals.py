"""Confidence intervals for pre/post differences: bootstrap (deals, months, or any unit such as accounts or
tickets, the two windows independent or paired) and Newcombe for proportions.

A pre/post difference in a median or a win rate is a point estimate from one sample of deals; the interval says
how much of it could be the luck of which deals happened to fall in each window. Pure functions: arrays in,
an `Interval` out, `None` bounds where the data cannot support an interval (fewer than two observations).

Large windows (up to ~300,000 deals each) are bootstrapped without materialising 300,000 × 999 resamples where
an exact shortcut exists (see `_resampled_statistics`): the shortcuts draw from the very same bootstrap
distribution as index resampling, they only get there with less work. They buy 2.6 s of a 1M-deal run's
~27 s (the median days to close: 0.05 s against 2.7 s, `benchmarks/bootstrap_speed.py`); where none exists
(the mean of amounts, every value distinct) scipy resamples indices.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep

Statistic = Callable[..., np.ndarray]

# Up to this many values per sample, scipy.stats.bootstrap with BCa. BCa's acceleration needs a jackknife:
# n leave-one-out statistics over n-1 values each, O(n²) work (BCa for a median of 5,000 + 5,000 values
# took ~1.2 s against ~0.2 s for the percentile interval; 2,000 + 2,000 ~0.3 s). Its corrections to the
# percentile endpoints shrink like 1/√n of the interval's width, so by a few thousand values they are down
# to the Monte-Carlo noise of 999 resamples; beyond this size the percentile interval is used.
BCA_MAX_N = 2_000
# Memory bound for every batch of resampled values (per sample): 2**22 values = 32 MiB of float64 or intp.
_BATCH_VALUES = 1 << 22
# Relative cost of one binomial draw in rng.multinomial against resampling one value by index (draw an
# index, gather, sum). Measured ~65-95 ns vs ~5-6 ns with numpy 2.4: multinomial counts over k distinct
# values beat index resampling of n values when k * 12 <= n; above that, a mean has no shortcut.
_MULTINOMIAL_COST_RATIO = 12


@dataclass(frozen=True)
class Interval:
    """A confidence interval; `None` bounds when the data cannot support one."""

    low: float | None
    high: float | None
    method: str


# ---------------------------------------------------------------------------------------------------------
# Deal-level bootstrap
# ---------------------------------------------------------------------------------------------------------


def bootstrap_difference(
    pre: np.ndarray,
    post: np.ndarray,
    statistic: Statistic,
    *,
    level: float = 0.95,
    n_resamples: int = 999,
    seed: int = 0,
) -> Interval:
    """Interval for statistic(post) − statistic(pre), resampling each window's deals independently.

    `statistic` is vectorised like `np.median` / `np.mean`: statistic(x, axis=...). NaN values are not
    observations and are dropped. Up to `BCA_MAX_N` values per sample: scipy's BCa interval (percentile
    when BCa is undefined, e.g. a degenerate sample). Larger: the percentile interval, and for `np.median`
    and `np.mean` an exact shortcut (see `_resampled_statistics`) where one exists for both samples.
    """
    x_pre, x_post = _clean(pre), _clean(post)
    _check_level(level)
    if x_pre.size < 2 or x_post.size < 2:
        return Interval(None, None, "bootstrap_percentile")
    large = max(x_pre.size, x_post.size) > BCA_MAX_N
    kind = _known_statistic(statistic)
    if large and kind is not None:
        paths = (_resampling_path(x_pre, kind), _resampling_path(x_post, kind))
        if None not in paths:
            return _fast_percentile_difference(x_pre, x_post, kind, paths, level, n_resamples, seed)

    def difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(b, axis=axis) - statistic(a, axis=axis)

    # scipy materialises batch × n values per sample; keep that near _BATCH_VALUES.
    batch = max(1, min(n_resamples, _BATCH_VALUES // max(x_pre.size, x_post.size)))
    return _scipy_interval((x_pre, x_post), difference, level, n_resamples, seed, batch, bca=not large,
                           prefix="bootstrap")


def _known_statistic(statistic: Statistic) -> str | None:
    """'median' / 'mean' for the statistics the exact fast resampler knows, else None."""
    if statistic is np.median:
        return "median"
    if statistic is np.mean or statistic is mean_statistic:
        return "mean"
    return None


def _fast_percentile_difference(
    pre: np.ndarray, post: np.ndarray, kind: str, paths: tuple[str, str], level: float, n_resamples: int, seed: int
) -> Interval:
    """Percentile interval from the exact shortcuts; one child generator per sample."""
    rng_pre, rng_post = np.random.default_rng(seed).spawn(2)
    theta_pre = _resampled_statistics(pre, kind, n_resamples, rng_pre, path=paths[0])
    theta_post = _resampled_statistics(post, kind, n_resamples, rng_post, path=paths[1])
    low, high = _percentile_interval(theta_post - theta_pre, level)
    return Interval(low, high, "bootstrap_percentile")


def _resampling_path(x: np.ndarray, kind: str) -> str | None:
    """The exact shortcut for this sample: 'multinomial' (few distinct values), 'order' (a median), or None
    (a mean of many distinct values: no shortcut; scipy resamples indices)."""
    distinct = np.unique(x).size if x.size else 0
    if distinct * _MULTINOMIAL_COST_RATIO <= x.size:
        return "multinomial"
    return "order" if kind == "median" else None


def _resampled_statistics(x: np.ndarray, kind: str, n_resamples: int, rng: np.random.Generator, path: str) -> np.ndarray:
    """`n_resamples` draws of the median or mean of a with-replacement resample of `x` (all n values).

    Both paths draw from exactly the bootstrap distribution of index resampling:

    * 'multinomial' — drawing n values with replacement is the same as drawing how many times each
      *distinct* value is drawn: counts ~ Multinomial(n, count/n). The mean and the median are functions
      of those counts. Cost O(n_resamples × distinct values): integer days to close have a few hundred.
    * 'order' (median only) — the median is one or two order statistics; their bootstrap distribution is
      known in closed form (`_order_statistic_medians`). Cost O(distinct + n_resamples × log distinct).
    """
    n = x.size
    if path == "order":
        if kind != "median":
            raise ValueError("the order-statistic resampler only knows the median")
        return _order_statistic_medians(x, n_resamples, rng)
    if path == "multinomial":
        values, counts = np.unique(x, return_counts=True)
        out = np.empty(n_resamples)
        rows = max(1, _BATCH_VALUES // values.size)
        for start in range(0, n_resamples, rows):
            stop = min(n_resamples, start + rows)
            drawn = rng.multinomial(n, counts / n, size=stop - start)
            out[start:stop] = _median_of_counts(values, drawn) if kind == "median" else drawn @ values / n
        return out
    raise ValueError(f"unknown resampling path {path!r}")


def _median_of_counts(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row-wise median of samples given as counts of sorted distinct `values`, with np.median's convention:
    the mean of the two middle values when n is even."""
    n = int(counts[0].sum())
    cumulative = np.cumsum(counts, axis=1)
    # 0-based position p in sorted order holds the first value whose cumulative count exceeds p.
    lower = values[(cumulative <= (n - 1) // 2).sum(axis=1)]
    upper = values[(cumulative <= n // 2).sum(axis=1)]
    return (lower + upper) / 2


def _order_statistic_medians(x: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Exact draws of the bootstrap median without resampling: the inverse-CDF of its order statistics.

    With sorted distinct values v_1 < … < v_k, F_j = P(value ≤ v_j) and N_j = number of resampled values
    ≤ v_j ~ Binomial(n, F_j), the r-th order statistic (0-based) of the resample is v_J with
    P(J ≤ j) = P(N_j ≥ r + 1). For odd n the median is the order statistic lo = (n - 1) / 2. For even n it
    is the mean of order statistics lo and lo + 1; given J_lo = j, they differ only if N_j = lo + 1, which has
    probability Bin.pmf(lo + 1; n, F_j) · (1 − (F_{j−1}/F_j)^(lo+1)) / P(J_lo = j) (given N_j, the draws
    ≤ v_j fall ≤ v_{j−1} with probability F_{j−1}/F_j each), and then the upper one is the smallest of the
    m = n − lo − 1 draws above v_j: P(J_hi > w) = ((1 − F_w)/(1 − F_j))^m.
    """
    n = x.size
    values, counts = np.unique(x, return_counts=True)
    cumulative = np.cumsum(counts)  # exact integers; F_j = cumulative[j] / n
    cdf = cumulative / n
    lo = (n - 1) // 2
    below_lo = stats.binom.sf(lo, n, cdf)  # P(J_lo ≤ j)
    below_lo[-1] = 1.0
    j_lo = np.minimum(np.searchsorted(below_lo, rng.random(n_resamples), side="left"), values.size - 1)
    if n % 2:
        return values[j_lo]
    f_j = cdf[j_lo]
    f_prev = np.where(j_lo > 0, cdf[np.maximum(j_lo - 1, 0)], 0.0)
    p_atom = below_lo[j_lo] - np.where(j_lo > 0, below_lo[np.maximum(j_lo - 1, 0)], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # 1 − (F_{j−1}/F_j)^(lo+1) without cancellation; F_{j−1} = 0 gives log 0 = −inf and 1 − 0 = 1.
        split = stats.binom.pmf(lo + 1, n, f_j) * -np.expm1((lo + 1) * np.log(f_prev / f_j))
        p_split = np.clip(np.where(p_atom > 0, split / p_atom, 0.0), 0.0, 1.0)
    j_hi = j_lo.copy()
    apart = rng.random(n_resamples) < p_split
    if apart.any():
        m = n - lo - 1
        remaining = (n - cumulative[j_lo[apart]]) * (1.0 - rng.random(int(apart.sum()))) ** (1.0 / m)
        w = np.searchsorted(cumulative, n - remaining, side="left")
        j_hi[apart] = np.clip(w, j_lo[apart] + 1, values.size - 1)
    return (values[j_lo] + values[j_hi]) / 2


# ---------------------------------------------------------------------------------------------------------
# Month-level bootstrap
# ---------------------------------------------------------------------------------------------------------


def mean_statistic(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean per month (e.g. won revenue per month) of a resample of months."""
    return np.mean(values, axis=axis)


def ratio_of_sums_statistic(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """sum(numerator) / sum(denominator) over a resample of months (e.g. won / closed deals = win rate).

    `values[0]` holds the numerators and `values[1]` the denominators, months along `axis` of each: a
    ratio of sums weighs months by their volume, unlike a mean of monthly ratios."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(values[0], axis=axis) / np.sum(values[1], axis=axis)


def bootstrap_months_difference(
    pre_months: np.ndarray,
    post_months: np.ndarray,
    statistic: Statistic,
    *,
    level: float = 0.95,
    n_resamples: int = 999,
    seed: int = 0,
) -> Interval:
    """Interval for statistic(post months) − statistic(pre months), resampling whole months.

    Month totals (won revenue, deals created) are not sums of independent deals one can resample, so the
    month is the unit. `pre_months` / `post_months`: one value per month, or for a ratio figure an array of
    shape (months, 2) holding numerator and denominator per month (see `ratio_of_sums_statistic`). With
    1 to ~36 months BCa is cheap; it falls back to the percentile interval where BCa is undefined (all
    months equal). `None` bounds with fewer than two months, or when resamples have no denominator.
    """
    a, b = _months(pre_months), _months(post_months)
    if a.ndim == 2 and a.shape[1] != 2 or b.ndim == 2 and b.shape[1] != 2:
        raise ValueError("per-month ratio figures need exactly two columns: numerator, denominator")
    return bootstrap_units_difference(a, b, statistic, unit="month", level=level, n_resamples=n_resamples, seed=seed)


def bootstrap_units_difference(
    pre_units: np.ndarray,
    post_units: np.ndarray,
    statistic: Statistic,
    *,
    unit: str,
    level: float = 0.95,
    n_resamples: int = 999,
    seed: int = 0,
) -> Interval:
    """Interval for statistic(post units) − statistic(pre units), resampling each window's units (rows)
    independently: months, or renewal deals for a ratio of their amounts. Rows are one value, or several
    columns (numerator, denominator, ...) that stay together, as `statistic` expects them (columns lead,
    see `ratio_of_sums_statistic`). BCa up to `BCA_MAX_N` units a window (its jackknife is O(n²)), the
    percentile interval above or where BCa is undefined; `method` is "<unit>_bootstrap_bca|percentile".
    `None` bounds with fewer than two units in a window, or when resamples have no denominator."""
    a, b = _units(pre_units), _units(post_units)
    _check_level(level)
    prefix = f"{unit}_bootstrap"
    if a.shape[0] < 2 or b.shape[0] < 2:
        return Interval(None, None, f"{prefix}_percentile")

    def difference(i_pre: np.ndarray, i_post: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(_drawn(b, i_post, statistic), axis=axis) - statistic(_drawn(a, i_pre, statistic), axis=axis)

    size = max(a.size, b.size)
    batch = max(1, min(n_resamples, _BATCH_VALUES // size))
    data = (np.arange(a.shape[0]), np.arange(b.shape[0]))
    return _scipy_interval(data, difference, level, n_resamples, seed, batch=batch,
                           bca=max(a.shape[0], b.shape[0]) <= BCA_MAX_N, prefix=prefix)


def bootstrap_paired_difference(
    pre_units: np.ndarray,
    post_units: np.ndarray,
    statistic: Statistic,
    *,
    unit: str,
    level: float = 0.95,
    n_resamples: int = 999,
    seed: int = 0,
) -> Interval:
    """Interval for statistic(post) − statistic(pre) where row i of both is the same unit (an account seen in
    both windows), resampling units once for both windows: an account active before and after the adoption
    is drawn (or not) for both at once, so the correlation between the windows is kept. A count of distinct
    accounts has no variance when each window's own accounts are resampled (the count is the sample size);
    over the accounts of either window it varies with how many of them were active in each.

    Rows and columns as in `bootstrap_units_difference`; `method` "<unit>_bootstrap_bca|percentile"."""
    a, b = _units(pre_units), _units(post_units)
    if a.shape != b.shape:
        raise ValueError("paired units need the same rows before and after")
    _check_level(level)
    prefix = f"{unit}_bootstrap"
    if a.shape[0] < 2:
        return Interval(None, None, f"{prefix}_percentile")

    if statistic is sum_statistic and a.ndim == 1 and a.shape[0] > BCA_MAX_N:
        # A difference of paired sums is the sum of the units' differences, and those take a few values (an
        # account active in neither, one or both windows: 3): the multinomial shortcut, exact as for a mean.
        differences = b - a
        if _resampling_path(differences, "mean") == "multinomial":
            theta = a.shape[0] * _resampled_statistics(differences, "mean", n_resamples, np.random.default_rng(seed),
                                                        path="multinomial")
            return Interval(*_percentile_interval(theta, level), f"{prefix}_percentile")

    def difference(index: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(_drawn(b, index, statistic), axis=axis) - statistic(_drawn(a, index, statistic), axis=axis)

    batch = max(1, min(n_resamples, _BATCH_VALUES // (2 * a.size)))
    return _scipy_interval((np.arange(a.shape[0]),), difference, level, n_resamples, seed, batch=batch,
                           bca=a.shape[0] <= BCA_MAX_N, prefix=prefix)


def sum_statistic(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Sum over a resample of units (e.g. of accounts' 0/1 "active in the window": a count of accounts)."""
    return np.sum(values, axis=axis)


def ratio_of_ratios_statistic(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """(Σ values[0] / Σ values[1]) / (Σ values[2] / Σ values[3]) over a resample of units: a value per
    customer divided by a rate (customer lifetime value = revenue per customer × margin / churn rate).
    Infinite where a resample's divisor rate is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sums = [np.sum(values[i], axis=axis) for i in range(4)]
        return (sums[0] / sums[1]) / (sums[2] / sums[3])


def _drawn(units: np.ndarray, index: np.ndarray, statistic: Statistic) -> np.ndarray:
    """The units `index` draws (unit numbers, shape (..., m)), as `statistic` reads them: columns lead, so a
    numerator stays with its unit's denominator.

    A statistic of column sums gets the sums themselves, as a sample of one row (shape (columns, ..., 1)):
    how often each unit was drawn, times the units, is the same sum as adding up a copy of every drawn row,
    without the copy. Same draws, same interval, up to the order of the additions; 1.43 s → 0.35 s for the
    lifetime-value interval over 23,821 accounts (the 300,000-deal benchmark data)."""
    if units.ndim == 1 or statistic not in _SUM_STATISTICS:  # one column: gathering it is as cheap as counting
        return units[index] if units.ndim == 1 else np.moveaxis(units[index], -1, 0)
    n = units.shape[0]
    flat = index.reshape(-1, index.shape[-1])
    rows = np.arange(flat.shape[0])[:, None] * n
    counts = np.bincount((flat + rows).ravel(), minlength=flat.shape[0] * n).reshape(flat.shape[0], n)
    sums = (counts @ units.reshape(n, -1)).reshape(*index.shape[:-1], -1)
    return np.moveaxis(sums, -1, 0)[..., None]


# Statistics that read their units only through each column's sum (see `_drawn`).
_SUM_STATISTICS = (sum_statistic, ratio_of_sums_statistic, ratio_of_ratios_statistic)


def _months(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError("months must be a 1-D array of values or a (months, 2) array")
    return arr


def _units(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError("units must be a 1-D array of values or a (units, columns) array")
    return arr


# ---------------------------------------------------------------------------------------------------------
# Proportions
# ---------------------------------------------------------------------------------------------------------


def newcombe_difference(
    successes_pre: int, n_pre: int, successes_post: int, n_post: int, *, level: float = 0.95
) -> Interval:
    """Newcombe's hybrid score interval (Newcombe 1998, method 10) for p_post − p_pre.

    Built from two Wilson intervals, it stays inside [-1, 1] and behaves at rates near 0 or 1 and small n,
    where the Wald interval does not. `None` bounds when either window has no trials.
    """
    _check_level(level)
    for successes, n in ((successes_pre, n_pre), (successes_post, n_post)):
        if n < 0 or successes < 0 or successes > n:
            raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n_pre == 0 or n_post == 0:
        return Interval(None, None, "newcombe")
    # statsmodels' interval is for first − second: post goes first.
    low, high = confint_proportions_2indep(
        successes_post, n_post, successes_pre, n_pre, method="newcomb", compare="diff", alpha=1 - level
    )
    return Interval(float(low), float(high), "newcombe")


# ---------------------------------------------------------------------------------------------------------
# Shared
# ---------------------------------------------------------------------------------------------------------


def _scipy_interval(
    data: tuple[np.ndarray, np.ndarray],
    difference: Callable[..., np.ndarray],
    level: float,
    n_resamples: int,
    seed: int,
    batch: int | None,
    *,
    bca: bool,
    prefix: str,
) -> Interval:
    """scipy.stats.bootstrap over two independent samples; BCa falls back to percentile when undefined
    (a degenerate jackknife, e.g. all values equal or a median of heavily tied integers)."""
    methods = ("BCa", "percentile") if bca else ("percentile",)
    result = None
    for method in methods:
        with warnings.catch_warnings():
            # Degenerate samples warn (DegenerateDataWarning, 0/0): handled by the fallback below.
            warnings.simplefilter("ignore")
            if result is None:
                result = stats.bootstrap(
                    data, difference, n_resamples=n_resamples, batch=batch, vectorized=True,
                    paired=False, confidence_level=level, method=method, rng=np.random.default_rng(seed),
                )
            else:  # reuse the bootstrap distribution already drawn: only the interval method changes
                result = stats.bootstrap(
                    data, difference, n_resamples=0, batch=batch, vectorized=True, paired=False,
                    confidence_level=level, method=method, bootstrap_result=result,
                    rng=np.random.default_rng(seed),
                )
        low, high = result.confidence_interval
        if math.isfinite(low) and math.isfinite(high):
            return Interval(float(low), float(high), f"{prefix}_{method.lower()}")
    return Interval(None, None, f"{prefix}_percentile")


def _percentile_interval(theta: np.ndarray, level: float) -> tuple[float | None, float | None]:
    """Percentile interval with scipy.stats.bootstrap's convention (linear interpolation of quantiles)."""
    alpha = (1 - level) / 2
    low, high = np.quantile(theta, [alpha, 1 - alpha])
    if not (math.isfinite(low) and math.isfinite(high)):
        return None, None
    return float(low), float(high)


def _clean(values: np.ndarray) -> np.ndarray:
    """1-D float64 array without NaN (a deal with no amount is missing, not zero); pandas NA allowed."""
    if isinstance(values, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)):
        arr = pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = np.asarray(values, dtype=np.float64)
    arr = arr.ravel()
    return arr[~np.isnan(arr)]


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")

"""A second opinion on the interrupted time series: Google's CausalImpact model, a Bayesian structural time
series, fitted by `bsts-causalimpact` (a port of the R package with a Rust Gibbs sampler; no TensorFlow).

Why it is a second opinion and not the same model twice: the ITS fits one fixed trend and month-of-year
pattern by least squares and reads the effect off a post level and slope. The BSTS lets the level wander
month to month (a random walk learnt from the pre months), puts priors on everything, and takes the effect
as actual minus a posterior-predictive counterfactual month by month, whatever its shape. Its interval
therefore counts the noise of the post months themselves, so it is usually the wider of the two.

The model: local level + a static regression on a month index (the trend) and one 0/1 column per calendar
month but the first (the season), all columns kept in (expected model size = number of columns: with 12
columns the default spike-and-slab prior of 2 would drop most of the season). Why covariates and not the
package's own seasonal state: in bsts-causalimpact 1.7 `nseasons` replaces a local linear trend by a local
level (the state_model is ignored; a 2-a-month trend then reads as a +80 "effect"), and covariates keep
the calendar right when transition months are left out between pre and post. Transition months are left
out as the ITS leaves them out.

The package is an optional dependency (`pip install 'crm-roi-pipeline[causal]'`, pinned in
requirements.lock); without it the second opinion is `BstsUnavailable` with that command.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_roi_pipeline.months import months_between
from crm_roi_pipeline.statistics.its import MIN_POST_MONTHS, period_bounds, prepare_series

METHOD = "bsts_causalimpact"
INSTALL = "pip install 'crm-roi-pipeline[causal]'"
SEED = 20240101
NITER, NWARMUP = 1000, 500  # the R package's defaults: 500 posterior draws kept


@dataclass(frozen=True)
class BstsUnavailable:
    reason: str


@dataclass(frozen=True)
class BstsResult:
    """The mean effect per post month (actual − counterfactual) with its posterior interval."""

    estimate: float
    low: float
    high: float
    p_value: float  # posterior tail-area probability of an effect of the other sign (CausalImpact's p)
    n_pre: int
    n_post: int
    level: float
    method: str = METHOD


def fit_bsts(
    series: pd.DataFrame,
    adoption_month: dt.date,
    *,
    transition_months: int = 0,
    level: float = 0.95,
    min_pre_months: int = 24,
    seed: int = SEED,
) -> BstsResult | BstsUnavailable:
    """The BSTS estimate for a monthly series (month, value), split at adoption as `its.fit_its` splits it."""
    try:
        from causal_impact import CausalImpact
    except ImportError:
        return BstsUnavailable(f"the optional package bsts-causalimpact is not installed; turn it on with {INSTALL}")
    data = prepare_series(series)
    adoption, first_post = period_bounds(adoption_month, transition_months)
    pre = data[data["month"] < adoption]
    post = data[data["month"] >= first_post]
    if len(pre) < min_pre_months:
        return BstsUnavailable(f"needs {min_pre_months} months before adoption; the data has {len(pre)}")
    if len(post) < MIN_POST_MONTHS:
        return BstsUnavailable(f"needs {MIN_POST_MONTHS} complete months after adoption; the data has {len(post)}")
    rows = pd.concat([pre, post], ignore_index=True)
    origin = rows["month"].iloc[0]
    frame = pd.DataFrame({"value": rows["value"].to_numpy(dtype=float),
                          "t": [float(months_between(origin, m)) for m in rows["month"]]})
    calendar = np.array([m.month for m in rows["month"]])
    for month in sorted(set(calendar.tolist()))[1:]:
        frame[f"month_{month}"] = (calendar == month).astype(float)
    n_pre, n_post = len(pre), len(post)
    args = {"niter": NITER, "nwarmup": NWARMUP, "seed": seed, "expected_model_size": frame.shape[1] - 1}
    try:
        with warnings.catch_warnings():
            # A constant pre period warns that it is standardised with sd 1; the result is still right.
            warnings.simplefilter("ignore", UserWarning)
            fitted = CausalImpact(frame, [0, n_pre - 1], [n_pre, n_pre + n_post - 1], model_args=args,
                                  alpha=1 - level)
    except (ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
        return BstsUnavailable(f"the Bayesian structural time series could not be fitted: {exc}")
    stats = fitted.summary_stats
    values = (stats["point_effect_mean"], stats["ci_lower"], stats["ci_upper"])
    if not all(np.isfinite(v) for v in values):
        return BstsUnavailable("the Bayesian structural time series gave no finite estimate")
    return BstsResult(*(float(v) for v in values), float(stats["p_value"]), n_pre, n_post, level)

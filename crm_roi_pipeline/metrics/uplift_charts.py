"""The charts of metrics/uplift: the counterfactual and the placebo strip, as PNG bytes. Drawing lives here,
beside the assets, not in `uplift/` (the statistics), which knows nothing of how its results are shown;
imported only when metrics/uplift runs, so matplotlib does not load with the definitions."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from crm_roi_pipeline.metrics.charts import set_margins
from crm_roi_pipeline.statistics.its import ItsResult
from crm_roi_pipeline.statistics.placebo import PlaceboResult


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def placebo_chart(result: PlaceboResult, unit: str = "per month") -> bytes:
    """PNG, 8×3 in: the placebo estimates as a strip (one dot per fake date) with the real estimate marked.
    `unit` labels the axis, e.g. "USD per month"."""
    fig = Figure(figsize=(8, 3))
    set_margins(fig)
    ax = fig.add_subplot()
    values = np.array([e for _, e in result.placebos], dtype=float)
    if len(values):
        jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(values))  # fixed: same chart every run
        ax.scatter(values, jitter, s=18, color="#8c8c8c", alpha=0.8, label=f"{len(values)} fake adoption dates")
    if result.real is not None:
        ax.axvline(result.real, color="#c44e52", linewidth=2, label="real adoption date")
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_ylim(-1, 1)
    ax.set_yticks([])
    ax.set_xlabel(f"Effect estimated at each date ({unit})")
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    if result.p_value is None:
        ax.set_title("Placebo test: no fake adoption date fits the data", fontsize=10)
    else:
        ax.set_title(f"Placebo test: rank {result.rank} of {result.n + 1}, p = {result.p_value:.2f}", fontsize=10)
    if len(values) or result.real is not None:
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    return _png(fig)


def counterfactual_chart(its_result: ItsResult, unit: str = "per month") -> bytes:
    """PNG, 8×3.5 in: actual vs the no-CRM expectation, its interval shaded over the post months. `unit`
    labels the value axis, e.g. "USD per month"."""
    fig = Figure(figsize=(8, 3.5))
    set_margins(fig, left=1.3)
    ax = fig.add_subplot()
    history = its_result.history
    cf = its_result.counterfactual
    months = pd.to_datetime(pd.Series(history["month"]))
    ax.plot(months, history["actual"], color="#4c72b0", linewidth=1.2, label="actual")
    ax.plot(months, history["expected"], color="#dd8452", linewidth=1.2, linestyle="--", label="expected without CRM")
    ax.fill_between(
        pd.to_datetime(pd.Series(cf["month"])), cf["expected_low"], cf["expected_high"],
        color="#dd8452", alpha=0.25, linewidth=0, label=f"{its_result.level:.0%} interval",
    )
    ax.axvline(pd.Timestamp(its_result.adoption_month), color="#c44e52", linestyle=":", label="adoption")
    if its_result.first_post_month != its_result.adoption_month:
        ax.axvspan(pd.Timestamp(its_result.adoption_month), pd.Timestamp(its_result.first_post_month),
                   color="#8c8c8c", alpha=0.15, linewidth=0, label="transition")
    ax.set_title("Won revenue against what the pre-CRM trend and season predict", fontsize=10)
    ax.set_ylabel(f"Won revenue ({unit})", fontsize=9)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.tick_params(labelsize=8)
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return _png(fig)

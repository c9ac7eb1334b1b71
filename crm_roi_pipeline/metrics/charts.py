"""Monthly series as charts: won revenue, win rate and days to close as one PNG beside metrics.monthly, and the
smaller charts of the report's Customers and Service sections."""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path

from crm_roi_pipeline.metrics.windows import Windows
from crm_roi_pipeline.months import add_months
from crm_roi_pipeline.published_files import replace_file


def png_markdown(alt: str, path: Path) -> str:
    """A PNG inline in markdown metadata. Embedded as a data URI: the Dagster UI drops file:// images, and
    the UI may run on another machine than the one that wrote the file."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


def pyplot():
    """matplotlib, loaded when a chart is drawn rather than when Dagster loads the definitions."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a server
    import matplotlib.pyplot as plt
    from matplotlib.ticker import StrMethodFormatter

    return plt, StrMethodFormatter


def set_margins(fig, *, left: float = 0.95, right: float = 0.25, top: float = 0.4, bottom: float = 0.45,
                hspace: float = 0.15) -> None:
    """Fixed margins, in inches, wide enough for the labels these charts carry (tick labels up to
    "-12,345,678", one-line titles). matplotlib's constrained layout fits them exactly but doubled the time
    to draw a chart, and every metrics run draws four."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        hspace=hspace)


# A panel: (metrics.monthly column, axis label, value -> plotted value or None, "bar" | "line").
Panel = tuple[str, str, Callable[[float], float | None], str]


def as_percent(value: float | None) -> float | None:
    """A rate as a chart plots it (0.25 -> 25)."""
    return None if value is None else value * 100


def _draw_panels(rows: list[dict], windows: Windows, panels: list[Panel], title: str, height: float):
    """Panels sharing the month axis, the pre/post windows shaded and the adoption month marked; the figure."""
    plt, StrMethodFormatter = pyplot()
    months = [r["month"] for r in rows]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, height), sharex=True, squeeze=False)
    axes = axes[:, 0]
    set_margins(fig, left=1.25)  # y-axis labels beside the tick labels
    for ax, (key, label, scale, kind) in zip(axes, panels):
        values = [scale(r.get(key)) for r in rows]
        xs = [m for m, v in zip(months, values) if v is not None]
        ys = [v for v in values if v is not None]
        if kind == "bar":
            ax.bar(xs, ys, width=25, align="edge", color="#4c72b0")
            ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        else:
            ax.plot(xs, ys, marker="o", markersize=3, color="#4c72b0")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        for name, bounds, colour in (("pre window", windows.pre, "#dd8452"), ("post window", windows.post, "#55a868")):
            if bounds:
                ax.axvspan(bounds[0], add_months(bounds[1], 1), color=colour, alpha=0.12, label=name)
        ax.axvline(windows.adoption_month, color="#c44e52", linestyle="--", label="adoption")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[0].set_title(f"{title}; CRM adopted {windows.adoption_month:%Y-%m}"
                      + (f", windows of {windows.n} months" if windows.n else ""))
    return plt, fig


def monthly_chart(rows: list[dict], windows: Windows, path: Path, currency: str = "") -> Path:
    """Won revenue, win rate and days to close by month: the series an analyst looks at first."""
    panels: list[Panel] = [
        ("won_revenue", f"Won revenue ({currency + ' ' if currency else ''}per month)", lambda v: v, "bar"),
        ("win_rate", "Win rate (%)", as_percent, "line"),
        ("median_days_to_close", "Median days to close", lambda v: v, "line"),
    ]
    plt, fig = _draw_panels(rows, windows, panels, "Monthly sales metrics", 8)
    try:
        # Drawn to a temporary file and renamed over the old chart: never a cut-off PNG, never no chart.
        replace_file(path, lambda partial: fig.savefig(partial, dpi=110, format="png"))
    finally:
        plt.close(fig)
    return path


def panels_png(rows: list[dict], windows: Windows, panels: list[Panel], title: str) -> bytes | None:
    """A small chart of some monthly series (the report's Customers and Service sections), as PNG bytes; None
    when no panel has a value to draw."""
    if not any(scale(r.get(key)) is not None for r in rows for key, _, scale, _ in panels):
        return None
    plt, fig = _draw_panels(rows, windows, panels, title, 1.2 + 2.2 * len(panels))
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=90, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def fmt_month(day: dt.date | None) -> str:
    return "—" if day is None else f"{day:%Y-%m}"

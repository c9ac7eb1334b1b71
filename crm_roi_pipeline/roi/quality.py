"""Data quality as the report shows it: every check with its result and count, the rejects by reason, and
how full each comparison window is. Read from the data when the ROI is computed, with the same check
definitions Dagster runs (staging/checks.py), so the report can never disagree with the checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_roi_pipeline.metrics.windows import Windows
from crm_roi_pipeline.months import add_months, months_between
from crm_roi_pipeline.sources.fields import MONTH_FIELD
from crm_roi_pipeline.metrics.completeness import (
    COMPLETENESS_EFFECT,
    COMPLETENESS_ENTITIES,
    THIN_PRE_RATIO,
    completeness_result,
    records_per_month,
)
from crm_roi_pipeline.staging.checks import SQL_CHECKS

REJECT_GROUPS = 15


@dataclass(frozen=True)
class CheckRow:
    label: str
    severity: str  # ERROR | WARN
    count: int
    effect: str
    fix: str

    @property
    def passed(self) -> bool:
        return self.count == 0


@dataclass(frozen=True)
class WindowFill:
    """Records per month of one table in the pre and post windows."""

    entity: str
    pre_per_month: float
    post_per_month: float

    @property
    def thin(self) -> str | None:
        """Which window holds under half the other's records per month (None when neither)."""
        if self.post_per_month and self.pre_per_month < THIN_PRE_RATIO * self.post_per_month:
            return "pre"
        if self.pre_per_month and self.post_per_month < THIN_PRE_RATIO * self.pre_per_month:
            return "post"
        return None

    def sentence(self) -> str | None:
        side = self.thin
        if side is None:
            return None
        other = "post" if side == "pre" else "pre"
        mine, theirs = ((self.pre_per_month, self.post_per_month) if side == "pre"
                        else (self.post_per_month, self.pre_per_month))
        return (f"The {side} window holds {mine:,.1f} {self.entity} a month against {theirs:,.1f} in the {other} "
                f"window: figures built on {self.entity} compare unlike data (was data entry different before "
                f"the CRM?).")


@dataclass(frozen=True)
class Quality:
    checks: list[CheckRow] = field(default_factory=list)
    rejects: list[tuple[str, str, int, str]] = field(default_factory=list)  # entity, reason kind, rows, example
    windows: list[WindowFill] = field(default_factory=list)

    @property
    def warnings(self) -> list[CheckRow]:
        return [c for c in self.checks if not c.passed]

    @property
    def thin_windows(self) -> list[str]:
        return [s for s in (w.sentence() for w in self.windows) if s]


def assess(conn, windows: Windows) -> Quality:
    checks = [CheckRow(spec.label, spec.severity.value, spec.count(conn), spec.effect, spec.fix) for spec in SQL_CHECKS]
    fills = []
    if windows.n:
        for entity, column in MONTH_FIELD.items():
            fills.append(WindowFill(entity, *(_per_month(conn, entity, column, first, windows.n)
                                              for first in (windows.pre[0], windows.post[0]))))
    for entity in COMPLETENESS_ENTITIES:  # the completeness checks, as Dagster runs them
        result = completeness_result(records_per_month(conn, entity), windows)
        problems = result.metadata["problems"].value if "problems" in result.metadata else 0  # months + thin window
        checks.append(CheckRow(f"crm/{entity} completeness", "WARN", problems,
                               COMPLETENESS_EFFECT, "check that the export holds every record of the months named "
                               "in the check's metadata."))
    if windows.n:  # metrics/adoption's check, as Dagster runs it
        history = months_between(windows.first_data_month, windows.pre[0])
        checks.append(CheckRow("metrics/adoption customer_history_long_enough", "WARN", 0 if history >= 12 else 1,
                               f"Only {history} months of data before the pre window: accounts that were customers "
                               "before the data begins look new, inflating new customers and new-business revenue "
                               "in the pre window.", "export at least 12 months more history before the pre window."))
    # Reasons name their value and row; the kind is the reason with quoted values and numbers taken out.
    rejects = conn.execute(
        f"""SELECT entity, regexp_replace(regexp_replace(reason, '''[^'']*''', '…', 'g'), '[0-9]+', 'N', 'g') AS kind,
                   count(*) AS n, min(reason || coalesce(' (' || source_file || ', row ' || source_row || ')', '')) AS example
            FROM crm.rejects GROUP BY ALL ORDER BY n DESC, entity, kind LIMIT {REJECT_GROUPS}"""
    ).fetchall()
    return Quality(checks, rejects, fills)


def _per_month(conn, entity: str, column: str, first, n: int) -> float:
    last = add_months(first, n)
    count = conn.execute(
        f"SELECT count(*) FROM crm.{entity} WHERE {column} >= ? AND {column} < ?", [first, last]
    ).fetchone()[0]
    return count / n

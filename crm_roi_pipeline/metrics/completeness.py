"""The completeness check on crm/deals, crm/leads, crm/activities and crm/tickets: records per month, against their
neighbours and between the pre and post windows. It belongs to the metrics, whose windows it reads, although
it is a check on the staged tables (so staging never imports the metrics)."""

import statistics

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetKey,
    MetadataValue,
    asset_check,
)

from crm_roi_pipeline.markdown import md_table
from crm_roi_pipeline.metrics import compute
from crm_roi_pipeline.months import add_months, is_complete
from crm_roi_pipeline.policies import DUCKDB_POOL
from crm_roi_pipeline.resources import AssumptionsFile, Warehouse
from crm_roi_pipeline.sources.fields import MONTH_FIELD

# A month is "far below its neighbours" under half the median of the three months on each side; a pre
# window "much thinner" than the post window under half its records per month.
NEIGHBOUR_RATIO = 0.5
NEIGHBOURS = 3
MIN_NEIGHBOUR_VOLUME = 5
THIN_PRE_RATIO = 0.5

COMPLETENESS_EFFECT = ("A thin month lowers every per-month figure of its window; a pre window much thinner than the "
                       "post window makes the CRM look better than it is.")


def _completeness(entity: str) -> AssetChecksDefinition:
    month_field = MONTH_FIELD[entity]

    @asset_check(
        asset=AssetKey(["crm", entity]),
        name="completeness",
        description=f"Records per month of {month_field}: flags complete months far below their neighbours (under "
        f"{NEIGHBOUR_RATIO:.0%} of the median of the {NEIGHBOURS} months each side), and a pre-adoption window with "
        f"under {THIN_PRE_RATIO:.0%} of the post window's records per month, which happens when data entry changed "
        f"at adoption and would fake a lift.",
        blocking=False,
        pool=DUCKDB_POOL,
    )
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse, assumptions: AssumptionsFile) -> AssetCheckResult:
        parsed = assumptions.load()
        with warehouse.get_connection() as conn:
            counts = records_per_month(conn, entity)
            windows = compute.windows_for(conn, parsed)
        return completeness_result(counts, windows)

    return _check


def records_per_month(conn, entity: str) -> dict:
    """Records of `crm.<entity>` per month of its partition date: what the completeness check audits."""
    month_field = MONTH_FIELD[entity]
    return dict(conn.execute(
        f"SELECT date_trunc('month', {month_field})::DATE, count(*) FROM crm.{entity} GROUP BY 1").fetchall())


def completeness_result(counts: dict, windows) -> AssetCheckResult:
    """The audit on records per month (a pure function of the counts, so it is tested without a database)."""
    if not counts:
        return AssetCheckResult(passed=True, metadata={"months_with_records": MetadataValue.int(0)})
    first, last = min(counts), max(counts)
    months, month = [], first
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    series = [counts.get(m, 0) for m in months]
    flagged = []
    for i, month in enumerate(months):
        if not is_complete(month, windows.as_of):
            continue
        around = series[max(0, i - NEIGHBOURS) : i] + series[i + 1 : i + 1 + NEIGHBOURS]
        if not around:
            continue
        typical = statistics.median(around)
        if typical >= MIN_NEIGHBOUR_VOLUME and series[i] < NEIGHBOUR_RATIO * typical:
            flagged.append((f"{month:%Y-%m}", series[i], typical))
    metadata = {
        "months_with_records": MetadataValue.int(sum(1 for v in series if v)),
        "months_flagged": MetadataValue.int(len(flagged)),
    }
    problems, thin_pre = [], False
    if flagged:
        problems.append(f"{len(flagged)} month(s) far below their neighbours: " + ", ".join(f[0] for f in flagged[:12]))
        metadata["flagged_months"] = MetadataValue.md(md_table(["month", "records", "neighbours' median"], flagged))
    if windows.n:
        pre = sum(counts.get(add_months(windows.pre[0], i), 0) for i in range(windows.n)) / windows.n
        post = sum(counts.get(add_months(windows.post[0], i), 0) for i in range(windows.n)) / windows.n
        metadata["pre_records_per_month"] = MetadataValue.float(pre)
        metadata["post_records_per_month"] = MetadataValue.float(post)
        thin_pre = bool(post) and pre < THIN_PRE_RATIO * post
        if thin_pre and not pre:
            # A system that started with the CRM (a helpdesk, activity logging): its figures have no "before".
            problems.append(f"the pre window has no records, the post window {post:,.1f} per month: the system "
                            "that records them probably started with the CRM, so its figures have no before to compare")
        elif thin_pre:
            problems.append(f"the pre window has {pre:,.1f} records per month against {post:,.1f} after adoption")
    metadata["problems"] = MetadataValue.int(len(flagged) + thin_pre)  # months far below, and a thin pre window
    recent = [(f"{m:%Y-%m}", v) for m, v in zip(months, series)][-24:]
    metadata["records_per_month"] = MetadataValue.md(md_table(["month", "records"], recent))
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.WARN,
        description="; ".join(problems) if problems else "records per month look even",
        metadata=metadata,
    )


# Spend is monthly lines, not records whose count per month says anything.
COMPLETENESS_ENTITIES = ("deals", "leads", "activities", "tickets")
completeness_checks = [_completeness(entity) for entity in COMPLETENESS_ENTITIES]

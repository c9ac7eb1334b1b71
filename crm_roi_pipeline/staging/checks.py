"""Data-quality checks on `crm.*`, run after every staging write.

Severity ERROR where a published figure would be wrong (a duplicate is counted twice, a negative amount
lowers revenue); WARN where the data can still be used but the reader should know (a won deal without a
close date belongs to no month, a thin pre window fakes a lift). Each check reports its count and examples.
"""


import statistics
from collections.abc import Callable

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetKey,
    MetadataValue,
    asset_check,
)

from crm_roi_pipeline.metrics import compute
from crm_roi_pipeline.operations import DUCKDB_POOL
from crm_roi_pipeline.metrics.windows import add_months, is_complete
from crm_roi_pipeline.resources import AssumptionsFile, Warehouse
from crm_roi_pipeline.sources.fields import ID_FIELD, MONTH_FIELD

EXAMPLES = 10
# A month is "far below its neighbours" under half the median of the three months on each side; a pre
# window "much thinner" than the post window under half its records per month.
NEIGHBOUR_RATIO = 0.5
NEIGHBOURS = 3
MIN_NEIGHBOUR_VOLUME = 5
THIN_PRE_RATIO = 0.5


def _md(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _sql_check(
    entity: str,
    name: str,
    description: str,
    severity: AssetCheckSeverity,
    where: str,
    columns: str,
    table: str | None = None,
    count_sql: str | None = None,
) -> AssetChecksDefinition:
    """A check that passes when no row of `table` matches `where`; it reports the count and examples.
    `count_sql` counts the same rows more cheaply where `where` is costly to evaluate on every row."""
    table = table or f"crm.{entity}"
    count_sql = count_sql or f"SELECT count(*) FROM {table} WHERE {where}"

    @asset_check(asset=AssetKey(["crm", entity]), name=name, description=description, blocking=False, pool=DUCKDB_POOL)
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
        with warehouse.get_connection() as conn:
            count = conn.execute(count_sql).fetchone()[0]
            if count:  # examples only when there is something to show
                cursor = conn.execute(f"SELECT {columns} FROM {table} WHERE {where} ORDER BY ALL LIMIT {EXAMPLES}")
                header = [d[0] for d in cursor.description]
                examples = cursor.fetchall()
        metadata = {"count": MetadataValue.int(count)}
        if count:
            metadata["examples"] = MetadataValue.md(_md(header, examples))
        found = f"{count:,} found" if count else "none found"
        return AssetCheckResult(
            passed=count == 0, severity=severity, metadata=metadata, description=f"{found}. {description.split('. ')[0].rstrip('.')}."
        )

    return _check


def _duplicates(entity: str) -> AssetChecksDefinition:
    id_field = ID_FIELD[entity]
    return _sql_check(
        entity, "unique_ids",
        f"Each (source_system, {id_field}) is staged once; a duplicate would be counted twice. Happens when a record's "
        f"month changed in the export and only its new month was rerun: rerun both months.",
        AssetCheckSeverity.ERROR,
        where=f"(source_system, {id_field}) IN (SELECT (source_system, {id_field}) FROM crm.{entity} "
        f"GROUP BY ALL HAVING count(*) > 1)",
        columns=f"source_system, {id_field}, loaded_from, {MONTH_FIELD[entity]}",
        # Rows sharing a key, from one hash aggregate (the `where` above evaluates it per row).
        count_sql=f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM crm.{entity} "
        f"GROUP BY source_system, {id_field} HAVING count(*) > 1)",
    )


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
            counts = dict(
                conn.execute(
                    f"SELECT date_trunc('month', {month_field})::DATE, count(*) FROM crm.{entity} GROUP BY 1"
                ).fetchall()
            )
            windows = compute.windows_for(conn, parsed)
        return completeness_result(counts, windows)

    return _check


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
    problems = []
    if flagged:
        problems.append(f"{len(flagged)} month(s) far below their neighbours: " + ", ".join(f[0] for f in flagged[:12]))
        metadata["flagged_months"] = MetadataValue.md(_md(["month", "records", "neighbours' median"], flagged))
    if windows.n:
        pre = sum(counts.get(add_months(windows.pre[0], i), 0) for i in range(windows.n)) / windows.n
        post = sum(counts.get(add_months(windows.post[0], i), 0) for i in range(windows.n)) / windows.n
        metadata["pre_records_per_month"] = MetadataValue.float(pre)
        metadata["post_records_per_month"] = MetadataValue.float(post)
        if post and pre < THIN_PRE_RATIO * post:
            problems.append(f"the pre window has {pre:,.1f} records per month against {post:,.1f} after adoption")
    recent = [(f"{m:%Y-%m}", v) for m, v in zip(months, series)][-24:]
    metadata["records_per_month"] = MetadataValue.md(_md(["month", "records"], recent))
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.WARN,
        description="; ".join(problems) if problems else "records per month look even",
        metadata=metadata,
    )


CHECK_FACTORIES: list[Callable[[], AssetChecksDefinition]] = [
    lambda: _duplicates("deals"),
    lambda: _duplicates("leads"),
    lambda: _duplicates("activities"),
    lambda: _sql_check(
        "deals", "won_deals_have_close_date",
        "Won deals have a closed_at. A won deal without one belongs to no month: its revenue is in no figure, "
        "and it acquires no customer.",
        AssetCheckSeverity.WARN,
        where="is_won AND (closed_at IS NULL OR NOT is_closed)",
        columns="source_system, deal_id, stage, amount, created_at",
    ),
    lambda: _sql_check(
        "deals", "closed_after_created",
        "Deals close on or after the day they were created. Those closing before are left out of the median "
        "days to close (often a migration that reset CreatedDate).",
        AssetCheckSeverity.WARN,
        where="closed_at::DATE < created_at::DATE",
        columns="source_system, deal_id, created_at, closed_at",
    ),
    lambda: _sql_check(
        "deals", "won_deals_have_amount",
        "Won deals have an amount. A missing amount counts as 0 in every revenue figure.",
        AssetCheckSeverity.WARN,
        where="is_won AND amount IS NULL",
        columns="source_system, deal_id, stage, closed_at",
    ),
    lambda: _sql_check(
        "deals", "amounts_not_negative",
        "Deal amounts are not negative; a negative won amount lowers won revenue and net new revenue.",
        AssetCheckSeverity.ERROR,
        where="amount < 0",
        columns="source_system, deal_id, amount, is_won, closed_at",
    ),
    lambda: _sql_check(
        "deals", "deal_types_recognised",
        "Every CRM deal type maps to new_business, expansion or renewal. Unmapped values count as not given "
        "(the account history decides the class); map them under deal_types in the assumptions.",
        AssetCheckSeverity.WARN,
        where="true",
        columns="DISTINCT crm_deal_type, deals",
        table="(SELECT crm_deal_type, count(*) OVER (PARTITION BY crm_deal_type) AS deals FROM crm.deals "
        "WHERE crm_deal_type IS NOT NULL AND deal_type IS NULL)",
    ),
    lambda: _sql_check(
        "spend", "amounts_not_negative",
        "Spend amounts are not negative; a negative one lowers spend and CAC.",
        AssetCheckSeverity.ERROR,
        where="amount < 0",
        columns="month, category, channel, amount, source_system",
    ),
    lambda: _sql_check(
        "leads", "converted_leads_have_date",
        "Converted leads have a converted_at; without it a lead never counts as converted.",
        AssetCheckSeverity.WARN,
        where="is_converted AND converted_at IS NULL",
        columns="source_system, lead_id, status, created_at",
    ),
    lambda: _sql_check(
        "leads", "converted_deals_exist",
        "A converted lead's converted_deal_id names a staged deal; otherwise that deal's lead source cannot come "
        "from the lead (stage the deal's months, or its source).",
        AssetCheckSeverity.WARN,
        where="converted_deal_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM crm.deals AS d "
        "WHERE d.source_system = l.source_system AND d.deal_id = l.converted_deal_id)",
        columns="source_system, lead_id, converted_deal_id, converted_at",
        table="crm.leads AS l",
    ),
    lambda: _completeness("deals"),
    lambda: _completeness("leads"),
    lambda: _completeness("activities"),
]
staging_checks = [factory() for factory in CHECK_FACTORIES]

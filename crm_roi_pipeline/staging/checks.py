"""Data-quality checks on `crm.*`, run after every staging write.

The rule for severity: ERROR = a published figure would be wrong (a duplicate is counted twice, a negative
amount lowers revenue); WARN = the figure stands, as METRICS.md defines it, but a reader should know (a won
deal without a close date belongs to no month, a thin pre window can fake a lift). ERROR checks are
blocking, and on every path: in the run that stages the data (Dagster's `blocking=True`), in the
automation of the metrics (`all_deps_blocking_checks_passed`), and in the metrics and the ROI themselves,
which run `require_error_checks_pass` on the data before they publish anything, however they were
launched. Each check is one `SqlCheck` (its SQL, what a failure does to the figures, the fix), so the
Dagster check, that gate and the report's "Data quality" section all read the same definition.
"""


import statistics
from dataclasses import dataclass

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetKey,
    MetadataValue,
    asset_check,
)

from crm_roi_pipeline.errors import CrmRoiError
from crm_roi_pipeline.markdown import md_table
from crm_roi_pipeline.metrics import compute
from crm_roi_pipeline.operations import DUCKDB_POOL
from crm_roi_pipeline.months import add_months, is_complete
from crm_roi_pipeline.resources import AssumptionsFile, Warehouse
from crm_roi_pipeline.sources.fields import ID_FIELD, MONTH_FIELD

EXAMPLES = 10
# A month is "far below its neighbours" under half the median of the three months on each side; a pre
# window "much thinner" than the post window under half its records per month.
NEIGHBOUR_RATIO = 0.5
NEIGHBOURS = 3
MIN_NEIGHBOUR_VOLUME = 5
THIN_PRE_RATIO = 0.5


@dataclass(frozen=True)
class SqlCheck:
    """A check that passes when no row of `table` matches `where`."""

    entity: str
    name: str
    description: str
    severity: AssetCheckSeverity
    where: str
    columns: str  # what an example row shows
    effect: str  # what a failure does to the published figures
    fix: str
    table: str | None = None
    count_sql: str | None = None  # counts the same rows more cheaply where `where` is costly per row

    @property
    def label(self) -> str:
        return f"crm/{self.entity} {self.name}"

    @property
    def blocking(self) -> bool:
        return self.severity == AssetCheckSeverity.ERROR

    def count(self, conn) -> int:
        table = self.table or f"crm.{self.entity}"
        return conn.execute(self.count_sql or f"SELECT count(*) FROM {table} WHERE {self.where}").fetchone()[0]

    def examples(self, conn) -> tuple[list[str], list[tuple]]:
        table = self.table or f"crm.{self.entity}"
        cursor = conn.execute(f"SELECT {self.columns} FROM {table} WHERE {self.where} ORDER BY ALL LIMIT {EXAMPLES}")
        return [d[0] for d in cursor.description], cursor.fetchall()


def _as_asset_check(spec: SqlCheck) -> AssetChecksDefinition:
    @asset_check(asset=AssetKey(["crm", spec.entity]), name=spec.name, description=spec.description,
                 blocking=spec.blocking, pool=DUCKDB_POOL)
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
        with warehouse.get_connection() as conn:
            count = spec.count(conn)
            header, examples = spec.examples(conn) if count else ([], [])  # examples only when there are some
        metadata = {"count": MetadataValue.int(count)}
        if count:
            metadata["examples"] = MetadataValue.md(md_table(header, examples))
            metadata["what_it_does_to_the_figures"] = MetadataValue.text(spec.effect)
            metadata["fix"] = MetadataValue.text(spec.fix)
        return AssetCheckResult(passed=count == 0, severity=spec.severity, metadata=metadata,
                                description=_outcome_text(spec, count, examples))

    return _check


def _outcome_text(spec: SqlCheck, count: int, examples: list[tuple]) -> str:
    if not count:
        return f"none found. {spec.description.split('. ')[0].rstrip('.')}."
    shown = "; ".join(", ".join(_cell(v) for v in row) for row in examples[:3])
    more = f" (first {min(3, count)}: {shown})" if shown else ""
    return f"{count:,} found{more}. {spec.effect} Fix: {spec.fix}"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def failing_error_checks(conn) -> list[tuple[SqlCheck, int, str]]:
    """The ERROR checks the data in `crm.*` fails now: (check, rows, what the check would say)."""
    out = []
    for spec in SQL_CHECKS:
        if spec.blocking:
            count = spec.count(conn)
            if count:
                out.append((spec, count, _outcome_text(spec, count, spec.examples(conn)[1])))
    return out


def require_error_checks_pass(conn) -> None:
    """No metric and no ROI is published from data that fails an ERROR check, however the run was launched
    (the CLI's second run, the refresh_metrics sensor, a UI materialization): Dagster's blocking checks
    hold back only the assets of the same run."""
    failing = failing_error_checks(conn)
    if failing:
        lines = "\n".join(f"  - {spec.label} (ERROR): {text}" for spec, _, text in failing)
        raise CrmRoiError(
            f"crm.* fails {len(failing)} ERROR data-quality check(s), so metrics and ROI are not published from it "
            f"(the last published figures stay as they were):\n{lines}"
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
        if thin_pre:
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


def _duplicates(entity: str) -> SqlCheck:
    id_field = ID_FIELD[entity]
    return SqlCheck(
        entity, "unique_ids",
        f"Each (source_system, {id_field}) is staged once; a duplicate would be counted twice.",
        AssetCheckSeverity.ERROR,
        where=f"(source_system, {id_field}) IN (SELECT (source_system, {id_field}) FROM crm.{entity} "
        f"GROUP BY ALL HAVING count(*) > 1)",
        columns=f"source_system, {id_field}, loaded_from, {MONTH_FIELD[entity]}",
        effect=f"Each duplicated {entity[:-1]} is counted twice in every figure it enters.",
        fix="it happens when a record's month changed in the export and only its new month was rerun: rerun "
        "both months (or the whole range).",
        # Rows sharing a key, from one hash aggregate (the `where` above evaluates it per row).
        count_sql=f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM crm.{entity} "
        f"GROUP BY source_system, {id_field} HAVING count(*) > 1)",
    )


SQL_CHECKS: list[SqlCheck] = [
    _duplicates("deals"),
    _duplicates("leads"),
    _duplicates("activities"),
    SqlCheck(
        "deals", "won_deals_have_close_date",
        "Won deals have a closed_at. A won deal without one belongs to no month.",
        AssetCheckSeverity.WARN,
        where="is_won AND (closed_at IS NULL OR NOT is_closed)",
        columns="source_system, deal_id, stage, amount, created_at",
        effect="Its revenue is in no month's figures and it acquires no customer.",
        fix="fill in the close date in the CRM or the export.",
    ),
    # Whatever the gap: years usually mean CreatedDate is the date the data was loaded into the CRM, and the
    # deal's close date and revenue still stand (see transform._deal_contradictions for why it is not rejected).
    SqlCheck(
        "deals", "closed_after_created",
        "Deals close on or after the day they were created.",
        AssetCheckSeverity.WARN,
        where="closed_at::DATE < created_at::DATE",
        columns="source_system, deal_id, created_at, closed_at",
        effect="Those deals are left out of the median days to close (often a migration that reset CreatedDate).",
        fix="correct the dates in the CRM or the export; nothing else needs to change.",
    ),
    SqlCheck(
        "deals", "won_deals_have_amount",
        "Won deals have an amount.",
        AssetCheckSeverity.WARN,
        where="is_won AND amount IS NULL",
        columns="source_system, deal_id, stage, closed_at",
        effect="A missing amount counts as 0 in won revenue and deal size (METRICS.md).",
        fix="fill in the amount in the CRM or the export.",
    ),
    SqlCheck(
        "deals", "amounts_not_negative",
        "Deal amounts are not negative.",
        AssetCheckSeverity.ERROR,
        where="amount < 0",
        columns="source_system, deal_id, amount, is_won, closed_at",
        effect="A negative won amount lowers won revenue, deal size and net new revenue.",
        fix="correct the amount in the CRM or the export (a refund or credit note is not a deal), then run "
        "staging again.",
    ),
    SqlCheck(
        "deals", "deal_types_recognised",
        "Every CRM deal type maps to new_business, expansion or renewal.",
        AssetCheckSeverity.WARN,
        where="true",
        columns="DISTINCT crm_deal_type, deals",
        table="(SELECT crm_deal_type, count(*) OVER (PARTITION BY crm_deal_type) AS deals FROM crm.deals "
        "WHERE crm_deal_type IS NOT NULL AND deal_type IS NULL)",
        effect="Those deals are classed by the account's history (first win new business, later ones expansion) "
        "instead of by their CRM type.",
        fix="map the values under deal_types in the assumptions file.",
    ),
    SqlCheck(
        "spend", "amounts_not_negative",
        "Spend amounts are not negative.",
        AssetCheckSeverity.ERROR,
        where="amount < 0",
        columns="month, category, channel, amount, source_system",
        effect="A negative spend line lowers spend and CAC.",
        fix="correct the line in the spend export (a refund belongs netted into its month), then run staging again.",
    ),
    SqlCheck(
        "leads", "converted_leads_have_date",
        "Converted leads have a converted_at.",
        AssetCheckSeverity.WARN,
        where="is_converted AND converted_at IS NULL",
        columns="source_system, lead_id, status, created_at",
        effect="Those leads never count as converted, which lowers the lead conversion rate.",
        fix="fill in the conversion date in the CRM or the export.",
    ),
    SqlCheck(
        "leads", "converted_deals_exist",
        "A converted lead's converted_deal_id names a staged deal.",
        AssetCheckSeverity.WARN,
        where="converted_deal_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM crm.deals AS d "
        "WHERE d.source_system = l.source_system AND d.deal_id = l.converted_deal_id)",
        columns="source_system, lead_id, converted_deal_id, converted_at",
        table="crm.leads AS l",
        effect="That deal's lead source cannot come from the lead; it falls back to Unknown.",
        fix="stage the deal's months, or add the deal's source.",
    ),
]
COMPLETENESS_EFFECT = ("A thin month lowers every per-month figure of its window; a pre window much thinner than the "
                       "post window makes the CRM look better than it is.")
staging_checks = [_as_asset_check(spec) for spec in SQL_CHECKS] + [
    _completeness(entity) for entity in ("deals", "leads", "activities")
]

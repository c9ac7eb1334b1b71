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


from dataclasses import dataclass

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetChecksDefinition,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from crm_roi_pipeline.errors import CrmRoiError
from crm_roi_pipeline.markdown import md_table
from crm_roi_pipeline.policies import DUCKDB_POOL
from crm_roi_pipeline.resources import Warehouse
from crm_roi_pipeline.sources.fields import ID_FIELD, MONTH_FIELD

EXAMPLES = 10


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


def _checks_of(entity: str, specs: list[SqlCheck]) -> AssetChecksDefinition:
    """One Dagster step runs every check of an entity, each still its own check in the UI: a step per check
    cost each run ~40 ms of Dagster's bookkeeping, a connection, and a lookup of the table's latest
    materialization per check result (a staging run has 16 of them)."""
    by_name = {spec.name: spec for spec in specs}

    @multi_asset_check(
        name=f"{entity}_sql_checks",
        specs=[AssetCheckSpec(spec.name, asset=AssetKey(["crm", entity]), description=spec.description,
                              blocking=spec.blocking) for spec in specs],
        can_subset=True,
        pool=DUCKDB_POOL,
    )
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse):
        selected = sorted(key.name for key in context.selected_asset_check_keys)
        with warehouse.get_connection() as conn:
            for name in selected:
                yield _result(by_name[name], conn)

    return _check


def _result(spec: SqlCheck, conn) -> AssetCheckResult:
    count = spec.count(conn)
    header, examples = spec.examples(conn) if count else ([], [])  # examples only when there are some
    metadata = {"count": MetadataValue.int(count)}
    if count:
        metadata["examples"] = MetadataValue.md(md_table(header, examples))
        metadata["what_it_does_to_the_figures"] = MetadataValue.text(spec.effect)
        metadata["fix"] = MetadataValue.text(spec.fix)
    return AssetCheckResult(asset_key=AssetKey(["crm", spec.entity]), check_name=spec.name, passed=count == 0,
                            severity=spec.severity, metadata=metadata, description=_outcome_text(spec, count, examples))


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
    _duplicates("tickets"),
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
        "deals", "renewals_have_account",
        "Renewal deals name an account: a renewal is a customer staying or leaving, and cannot be tied to a "
        "customer without one.",
        AssetCheckSeverity.WARN,
        where="deal_type = 'renewal' AND account_key IS NULL",
        columns="source_system, deal_id, is_won, amount, closed_at",
        effect="They count in the renewal rate and churn, but in no customer's history (active and repeat "
        "customers, revenue per customer).",
        fix="fill in the opportunity's account in the CRM or the export (or map account_id in a mapping file).",
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
    SqlCheck(
        "tickets", "closed_after_created",
        "Tickets close at or after the time they were created.",
        AssetCheckSeverity.WARN,
        where="closed_at < created_at",
        columns="source_system, ticket_id, created_at, closed_at",
        effect="Those tickets are left out of the median resolution time (a negative time has no meaning).",
        fix="correct the dates in the helpdesk or the export (often a migration that reset the created date: map "
        "created_at to the original date in a mapping file).",
    ),
    SqlCheck(
        "tickets", "answered_after_created",
        "Tickets get their first response at or after the time they were created.",
        AssetCheckSeverity.WARN,
        where="first_response_at < created_at",
        columns="source_system, ticket_id, created_at, first_response_at",
        effect="Those tickets are left out of the median first-response time; they still count as answered.",
        fix="correct the dates in the helpdesk or the export.",
    ),
    SqlCheck(
        "tickets", "csat_on_scale",
        "Satisfaction scores lie between 0 and their scale's top (csat_scale_max, above 0).",
        AssetCheckSeverity.WARN,
        where="csat_score IS NOT NULL AND NOT coalesce(csat_scale_max > 0 AND csat_score BETWEEN 0 AND csat_scale_max, false)",
        columns="source_system, ticket_id, csat_score, csat_scale_max, closed_at",
        effect="Those tickets count as unrated: they are in no satisfaction rate.",
        fix="give the survey's scale (csat_scale_max, or SALESFORCE_CSAT_SCALE_MAX), or correct the score.",
    ),
]
staging_checks = [_checks_of(entity, [spec for spec in SQL_CHECKS if spec.entity == entity])
                  for entity in dict.fromkeys(spec.entity for spec in SQL_CHECKS)]

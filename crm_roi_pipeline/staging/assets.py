"""The staging assets `crm/deals`, `crm/leads`, `crm/activities`, `crm/spend`: monthly partitions, one
pass over the input per run, each run replacing exactly its source's rows of its months."""


import datetime as dt
import logging
import warnings

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)

from crm_roi_pipeline.errors import user_errors
from crm_roi_pipeline.operations import DUCKDB_POOL, NIGHTLY_FRESHNESS
from crm_roi_pipeline.resources import (
    AssumptionsFile,
    HubSpotResource,
    PipelineSettings,
    SalesforceResource,
    Warehouse,
)
from crm_roi_pipeline.sources import open_source
from crm_roi_pipeline.sources.csv_exports import drop_text_tables
from crm_roi_pipeline.sources.fields import ENTITIES
from crm_roi_pipeline.staging.partitions import HISTORY_START, last_partition_month, monthly_partitions
from crm_roi_pipeline.staging.transform import build_staged, load_deal_types, table_ddl
from crm_roi_pipeline.staging.writer import (
    WriteResult,
    apply_changes,
    read_cursor,
    replace_months,
    transaction,
    write_cursor,
)

# BackfillPolicy is beta in Dagster 1.13; requirements.lock pins the version whose behaviour we tested.
warnings.filterwarnings("ignore", category=BetaWarning)

# The CLI attaches a handler here to show progress; in the UI the same lines are in the run's logs.
progress = logging.getLogger("crm_roi.progress")

DESCRIPTIONS = {
    "deals": "Deals (opportunities) from every configured source, one row per (source_system, deal_id); "
    "partitioned by the month of created_at. closed_at is NULL while a deal is open.",
    "leads": "Leads (HubSpot contacts) from every configured source; partitioned by the month of created_at.",
    "activities": "Calls, emails, meetings, tasks and notes; open to-dos have status 'open'. Partitioned by the "
    "month of occurred_at.",
    "spend": "Marketing and sales spend by month (category, channel = lead source or NULL); partitioned by month.",
}


def _log(context: AssetExecutionContext, message: str) -> None:
    context.log.info(message)
    progress.info(message)


def _md_table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |")
    return "\n".join(lines)


def _table_schema(entity: str) -> TableSchema:
    return TableSchema(columns=[TableColumn(name, kind, description=note) for name, kind, note in table_ddl(entity)])


def build_staging_asset(entity: str) -> AssetsDefinition:
    @asset(
        key=AssetKey(["crm", entity]),
        partitions_def=monthly_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="staging",
        kinds={"duckdb"},
        description=DESCRIPTIONS[entity],
        metadata={"dagster/column_schema": _table_schema(entity), "dagster/table_name": f"crm.{entity}"},
        pool=DUCKDB_POOL,
        freshness_policy=NIGHTLY_FRESHNESS,
    )
    def _stage(
        context: AssetExecutionContext,
        warehouse: Warehouse,
        settings: PipelineSettings,
        assumptions: AssumptionsFile,
        salesforce: SalesforceResource,
        hubspot: HubSpotResource,
    ) -> MaterializeResult:
        return _stage_entity(context, entity, warehouse, settings, assumptions, salesforce, hubspot)

    _stage.__name__ = f"crm_{entity}"
    return _stage


@user_errors
def _stage_entity(
    context: AssetExecutionContext,
    entity: str,
    warehouse: Warehouse,
    settings: PipelineSettings,
    assumptions: AssumptionsFile,
    salesforce: SalesforceResource,
    hubspot: HubSpotResource,
) -> MaterializeResult:
    # Everything that can be wrong with settings, credentials, assumptions or input files fails here,
    # before a write.
    parsed = assumptions.load()
    sources = [
        open_source(name, csv_dir=settings.csv_path, salesforce=salesforce, hubspot=hubspot, workdir=warehouse.path.parent)
        for name in settings.sources
    ]
    for source in sources:
        source.check(entity)
    window = context.partition_time_window
    first = window.start.date()
    last = (window.end - dt.timedelta(days=1)).date().replace(day=1)
    months = f"{first:%Y-%m}" if first == last else f"{first:%Y-%m} … {last:%Y-%m}"
    _log(context, f"{entity}: staging months {months} from {', '.join(settings.sources)}")

    last_partition = last_partition_month()
    # Changes made while this run pulls are caught by the next sync: the cursor starts a little before now.
    sync_started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=5)
    results: dict[str, WriteResult] = {}
    changes: dict[str, WriteResult] = {}
    loads = []
    staged_tables: dict[str, str | None] = {}
    change_tables: dict[str, str | None] = {}
    cursors: dict[str, dt.datetime | None] = {}

    def stage(source, raw: str, staged: str) -> None:
        build_staged(
            conn, entity, raw, staged,
            reporting_currency=parsed.reporting_currency,
            history_start=HISTORY_START,
            last_month=last_partition,
        )
        # The raw view is read once; its text copies would only hold memory the writes can use.
        drop_text_tables(conn, f"{raw}_text_")
        if hasattr(source, "check_staged"):
            source.check_staged(conn, entity, staged)

    with warehouse.get_connection() as conn:
        load_deal_types(conn, parsed)
        for source in sources:
            # A source's lookups (fx rates, account names) live until the next source loads, so each
            # source's rows are typed right after its load.
            raw, staged = f"_raw_{entity}_{source.name}", f"_staged_{entity}_{source.name}"
            load = source.load(conn, entity, raw, first, last, parsed.reporting_currency)
            loads.append(load)
            staged_tables[source.name] = staged if load.loaded else None
            if load.loaded:
                stage(source, raw, staged)
            else:
                context.log.warning(
                    f"{entity}: the {source.name} source has no {entity} input; its rows of {months} are removed."
                )
            change_tables[source.name] = None
            if hasattr(source, "load_changes"):
                cursors[source.name] = read_cursor(conn, source.name, entity)
                # The change sync runs with the current month (the nightly run); a backfill of older months
                # leaves the cursor where it is.
                if cursors[source.name] is not None and last == last_partition:
                    changed = source.load_changes(conn, entity, f"{raw}_changes", cursors[source.name])
                    if changed.loaded:
                        stage(source, f"{raw}_changes", f"{staged}_changes")
                        change_tables[source.name] = f"{staged}_changes"
        with transaction(conn):
            for source in sources:
                if change_tables[source.name]:
                    changes[source.name] = apply_changes(
                        conn, entity, change_tables[source.name],
                        loaded_from=source.name, skip_first=first, skip_last=last,
                        history_start=HISTORY_START, last_partition=last_partition, run_id=context.run.run_id,
                    )
                results[source.name] = replace_months(
                    conn, entity, staged_tables[source.name],
                    loaded_from=source.name,
                    first_month=first,
                    last_month=last,
                    history_start=HISTORY_START,
                    last_partition=last_partition,
                    run_id=context.run.run_id,
                )
                if source.name in cursors and (cursors[source.name] is None or last == last_partition):
                    write_cursor(conn, source.name, entity, sync_started)
        total_rows = conn.execute(f"SELECT count(*) FROM crm.{entity}").fetchone()[0]

    staged = sum(r.staged for r in results.values())
    rejected = sum(r.rejected for r in results.values())
    superseded = sum(r.superseded + r.replaced_csv for r in results.values())
    _log(context, f"{entity}: {staged:,} rows staged, {rejected:,} rejected ({months}); crm.{entity} holds {total_rows:,}")
    files = [
        (name, kind, *results[load.source].rows_by_file.get(name, (0, 0)))
        for load in loads
        for name, kind in load.files
    ]
    reasons = [reason for r in results.values() for reason in r.rejects_by_reason]
    ignored = sorted({f for load in loads for f in load.ignored})
    metadata = {
        "rows_staged": MetadataValue.int(staged),
        "rows_rejected": MetadataValue.int(rejected),
        "months": MetadataValue.text(months),
        "sources": MetadataValue.text(", ".join(settings.sources)),
        "superseded_by_api_source": MetadataValue.int(superseded),
        "dagster/row_count": MetadataValue.int(total_rows),
        "files": MetadataValue.md(_md_table(("file", "read as", "staged", "rejected"), files) if files else "no input files"),
        "rejects_by_reason": MetadataValue.md(
            _md_table(("reason", "rows"), reasons) + "\n\nEvery rejected row is in `crm.rejects` with its file and row."
            if reasons else "no rejects"
        ),
    }
    if ignored:
        metadata["ignored_files"] = MetadataValue.text(", ".join(ignored))
    notes = sorted({n for load in loads for n in load.notes})
    if notes:
        metadata["warnings"] = MetadataValue.md("\n".join(f"- {n}" for n in notes))
        for note in notes:
            context.log.warning(f"{entity}: {note}")
    for name, change in changes.items():
        metadata[f"{name}_changes_applied"] = MetadataValue.int(change.staged)
        metadata[f"{name}_deleted_removed"] = MetadataValue.int(change.removed)
    for source in sources:
        if hasattr(source, "usage"):
            for key, value in source.usage().items():
                metadata[key] = MetadataValue.int(value) if isinstance(value, int) else MetadataValue.text(value)
    return MaterializeResult(metadata=metadata)


staging_assets = [build_staging_asset(entity) for entity in ENTITIES]

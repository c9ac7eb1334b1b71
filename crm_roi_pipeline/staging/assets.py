"""The staging assets `crm/deals`, `crm/leads`, `crm/activities`, `crm/spend`, `crm/tickets`: monthly partitions, one
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
    Config,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)

from crm_roi_pipeline.errors import CrmRoiError, user_errors
from crm_roi_pipeline.markdown import md_cell, md_table
from crm_roi_pipeline.policies import DUCKDB_POOL
from crm_roi_pipeline.resources import AssumptionsFile, PipelineSettings, Warehouse
from crm_roi_pipeline.sources.base import MonthScope
from crm_roi_pipeline.sources.csv_reading import drop_text_tables
from crm_roi_pipeline.sources.registry import API_SOURCES, open_source
from crm_roi_pipeline.sources.fields import ENTITIES
from crm_roi_pipeline.staging import fingerprints
from crm_roi_pipeline.staging.partitions import HISTORY_START, last_partition_month, monthly_partitions
from crm_roi_pipeline.staging.transform import build_staged, load_deal_types, table_ddl
from crm_roi_pipeline.staging.writer import (
    WriteResult,
    month_predicate,
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
    "tickets": "Service cases (Salesforce cases, HubSpot tickets, helpdesk exports): status open or closed, first "
    "response, close and satisfaction score; partitioned by the month of created_at. closed_at is NULL while open.",
}


# The shrink guard: a run may not leave under half of a source's rows of its months (or none of them, from
# any number) unless the user says so. Below this many rows a drop by half is ordinary month-to-month churn.
SHRINK_MIN_ROWS = 50


class StagingConfig(Config):
    """Run configuration of the staging assets (the UI's Materialize → config, or `crm-roi run --allow-shrink`)."""

    allow_shrink: bool = False  # let this run remove more than half of a source's rows of its months


class ShrinkError(CrmRoiError):
    """A staging write would have removed most of a source's rows; nothing was written."""


def staging_op(entity: str) -> str:
    """The op name of crm/<entity> in run config (Dagster joins the key's parts with "__")."""
    return f"crm__{entity}"


def shrink_problem(before: int, after: int) -> bool:
    """Whether leaving `after` of `before` rows is the kind of loss a bad export causes: all of them, or more
    than half of at least SHRINK_MIN_ROWS."""
    return (before > 0 and after == 0) or (before >= SHRINK_MIN_ROWS and after * 2 < before)


def _log(context: AssetExecutionContext, message: str) -> None:
    context.log.info(message)
    progress.info(message)


def _table_schema(entity: str) -> TableSchema:
    return TableSchema(columns=[TableColumn(name, kind, description=note) for name, kind, note in table_ddl(entity)])


def build_staging_asset(entity: str) -> AssetsDefinition:
    # The API sources' resources are asked for by key, so that a source added to the registry needs no
    # parameter here (Dagster takes resources as typed parameters or as keys, not both).
    @asset(
        key=AssetKey(["crm", entity]),
        partitions_def=monthly_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="staging",
        kinds={"duckdb"},
        description=DESCRIPTIONS[entity],
        metadata={"dagster/column_schema": _table_schema(entity), "dagster/table_name": f"crm.{entity}"},
        pool=DUCKDB_POOL,
        required_resource_keys={"warehouse", "settings", "assumptions", *API_SOURCES},
    )
    @user_errors
    def stage(context: AssetExecutionContext, config: StagingConfig) -> MaterializeResult:
        return _stage_entity(context, entity, allow_shrink=config.allow_shrink)

    return stage


def _stage_entity(context: AssetExecutionContext, entity: str, *, allow_shrink: bool) -> MaterializeResult:
    warehouse: Warehouse = context.resources.warehouse
    settings: PipelineSettings = context.resources.settings
    assumptions: AssumptionsFile = context.resources.assumptions
    # Everything that can be wrong with settings, credentials, assumptions or input files fails here,
    # before a write.
    parsed = assumptions.load()
    sources = [
        open_source(name, csv_dir=settings.csv_path, workdir=warehouse.path.parent,
                    resources={key: getattr(context.resources, key) for key in API_SOURCES})
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
    scope = MonthScope(first, last, HISTORY_START, last_partition)
    # Changes made while this run pulls are caught by the next sync: the cursor starts a little before now.
    sync_started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=5)
    results: dict[str, WriteResult] = {}
    changes: dict[str, WriteResult] = {}
    loads = []
    staged_tables: dict[str, str | None] = {}
    change_tables: dict[str, str | None] = {}
    cursors: dict[str, dt.datetime | None] = {}
    month_prints: dict[str, dict[str, str]] = {}

    def stage(source, raw: str, staged: str) -> None:
        build_staged(
            conn, entity, raw, staged,
            reporting_currency=parsed.reporting_currency,
            history_start=HISTORY_START,
            last_month=last_partition,
        )
        # The raw view is read once; its text copies would only hold memory the writes can use.
        drop_text_tables(conn, f"{raw}_text_")
        source.check_staged(conn, entity, staged)

    with warehouse.get_connection() as conn:
        load_deal_types(conn, parsed)
        for source in sources:
            # A source's lookups (fx rates, account names) live until the next source loads, so each
            # source's rows are typed right after its load.
            raw, staged = f"_raw_{entity}_{source.name}", f"_staged_{entity}_{source.name}"
            load = source.load(conn, entity, raw, scope, parsed.reporting_currency)
            loads.append(load)
            inputs = source.context_inputs()
            if inputs is not None:
                # What this write reads, month by month, so a later run can skip the months that stay the same.
                month_prints[source.name] = fingerprints.month_fingerprints(
                    conn, entity, raw if load.loaded else None,
                    fingerprints.context_hash(*inputs, assumptions=parsed, history_start=HISTORY_START),
                    first, last, HISTORY_START, last_partition,
                )
            staged_tables[source.name] = staged if load.loaded else None
            if load.loaded:
                stage(source, raw, staged)
            else:
                context.log.warning(
                    f"{entity}: the {source.name} source has no {entity} input; its rows of {months} are removed "
                    "(with --allow-shrink; otherwise the run stops if it held any)."
                )
            change_tables[source.name] = None
            if source.syncs_changes:
                cursors[source.name] = read_cursor(conn, source.name, entity)
                # The change sync runs with the current month (the nightly run); a backfill of older months
                # leaves the cursor where it is.
                if cursors[source.name] is not None and last == last_partition:
                    changed = source.load_changes(conn, entity, f"{raw}_changes", cursors[source.name])
                    if changed.loaded:
                        stage(source, f"{raw}_changes", f"{staged}_changes")
                        change_tables[source.name] = f"{staged}_changes"
        in_months = month_predicate(entity, first, last)
        with transaction(conn):
            before = dict(conn.execute(
                f"SELECT loaded_from, count(*) FROM crm.{entity} WHERE {in_months} GROUP BY 1").fetchall())
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
                if source.name in month_prints:
                    fingerprints.store(conn, source.name, entity, month_prints[source.name])
            if not allow_shrink:
                # Raised inside the transaction: it rolls back, and the file keeps every row it had.
                _refuse_shrinking(conn, entity, in_months, before, changes, loads, months)
            stamp_staged(conn, entity, context.run.run_id)
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
        # Months this run rewrote: a planned run (crm-roi run, the nightly schedule) covers only changed ones.
        "months_rewritten": MetadataValue.int(len(monthly_partitions.get_partition_keys_in_range(
            context.partition_key_range))),
        "sources": MetadataValue.text(", ".join(settings.sources)),
        "superseded_by_api_source": MetadataValue.int(superseded),
        "dagster/row_count": MetadataValue.int(total_rows),
        "files": MetadataValue.md(md_table(("file", "read as", "staged", "rejected"), files) if files else "no input files"),
        "rejects_by_reason": MetadataValue.md(
            md_table(("reason", "rows"), reasons) + "\n\nEvery rejected row is in `crm.rejects` with its file and row."
            if reasons else "no rejects"
        ),
    }
    if ignored:
        metadata["ignored_files"] = MetadataValue.text(", ".join(ignored))
    notes = sorted({n for load in loads for n in load.notes})
    if notes:
        metadata["warnings"] = MetadataValue.md("\n".join(f"- {md_cell(n)}" for n in notes))
        for note in notes:
            context.log.warning(f"{entity}: {note}")
    for name, change in changes.items():
        metadata[f"{name}_changes_applied"] = MetadataValue.int(change.staged)
        metadata[f"{name}_deleted_removed"] = MetadataValue.int(change.removed)
    for source in sources:
        for key, value in source.usage().items():
            metadata[key] = MetadataValue.int(value) if isinstance(value, int) else MetadataValue.text(value)
    return MaterializeResult(metadata=metadata)


def stamp_staged(conn, entity: str, run_id: str) -> None:
    """Comment crm.<entity> with this write's run and time, in its transaction: the metrics compare it with
    the stamp their facts were built from (`metrics.compute.facts_are_current`)."""
    written = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
    conn.execute(f"COMMENT ON TABLE crm.{entity} IS 'written by run {run_id} at {written}'")


def _refuse_shrinking(conn, entity: str, in_months: str, before: dict[str, int], changes: dict[str, WriteResult],
                      loads: list, months: str) -> None:
    """Stop when a source would keep under half of its rows of the months (or none): an empty, cut-off or
    misplaced export looks like that, and a published ROI built on it would be wrong without any error.
    Records a change sync found deleted in the CRM are deletions, not shrinkage."""
    after = dict(conn.execute(
        f"SELECT loaded_from, count(*) FROM crm.{entity} WHERE {in_months} GROUP BY 1").fetchall())
    for load in loads:
        had = before.get(load.source, 0)
        now = after.get(load.source, 0) + (changes[load.source].removed if load.source in changes else 0)
        if not shrink_problem(had, now):
            continue
        files = ", ".join(name for name, _ in load.files) or f"no {entity} input"
        raise ShrinkError(
            f"this run would leave {now:,} of the {had:,} rows the {load.source} source has in "
            f"{months} (read from: {files}). Nothing was written. Fix: check the export (empty, cut short, "
            f"only a header, or a folder where the file should be?) and run again; if the source really is that "
            f"much smaller now, run with `crm-roi run --allow-shrink`, or in the Dagster UI materialize with the "
            f"run config `allow_shrink: true` for crm/{entity}."
        )


staging_assets = [build_staging_asset(entity) for entity in ENTITIES]

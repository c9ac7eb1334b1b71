"""Reading the CSV folder's files of one entity into a raw view, only the rows of the run's months typed."""

from __future__ import annotations

from pathlib import Path

import duckdb

from crm_roi_pipeline.errors import InputFileError, shorten
from crm_roi_pipeline.sources.base import MonthScope
from crm_roi_pipeline.sources.csv_exports.folder import FolderPlan
from crm_roi_pipeline.sources.csv_reading import text_table
from crm_roi_pipeline.sources.mappings import ResolvedFile
from crm_roi_pipeline.sources.raw_views import create_raw_view, month_sql


def read_export(conn: duckdb.DuckDBPyConnection, path: Path, table: str, header: tuple[str, ...], *args) -> str:
    """`text_table` of one file of the folder, with its header: a malformed line stops the run naming it."""
    try:
        return text_table(conn, path, table, *args, header=tuple(header))
    except duckdb.InvalidInputException as exc:
        # Malformed lines are reported by `stop_on_bad_lines`; this is what DuckDB refuses outright.
        raise InputFileError(
            path.name,
            f"cannot be read as CSV: {shorten(str(exc).splitlines()[0])}",
            fix="save the file as comma-separated UTF-8 with one header row.",
        ) from None


def load_entity(
    conn: duckdb.DuckDBPyConnection, plan: FolderPlan, entity: str, table: str, scope: MonthScope | None = None
) -> list[ResolvedFile]:
    """Read every file of `entity` as text and define the temporary view `table` typing it; return the files.

    The view is read by staging; its text tables go with `drop_text_tables(conn, table)`. `scope` keeps only
    the rows a run can write, decided while the file is read: typing, checking (and holding) the rest would
    only be thrown away, which made re-running one month cost as much as the whole history."""
    files = plan.files_for(entity)
    relations = []
    for i, f in enumerate(files):
        columns = tuple(dict.fromkeys(c for cols in f.columns.values() for c in cols))
        month = month_sql(f) if scope else None
        relations.append((f, read_export(conn, f.path, f"{table}_text_{i}", f.header, scope, month, columns), i))
    if not relations:
        return []
    create_raw_view(conn, table, relations)
    return files

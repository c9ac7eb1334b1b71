"""Values that mean a whole export is misread (a stage the mapping does not list, a day-first date): they stop
the run before anything is written, naming the file and the fix."""

from __future__ import annotations

import duckdb

from crm_roi_pipeline.errors import InputFileError, quote
from crm_roi_pipeline.sources.fields import STAGE_CLASSES, STAGE_FIELD, fields_of
from crm_roi_pipeline.sources.raw_views import files_table


def fail_on_unreadable(conn: duckdb.DuckDBPyConnection, entity: str, table: str) -> None:
    """Stage values a mapping does not list, and slash dates that are not month-first, stop the asset:
    both mean the whole file is being misread, which no per-row reject would make visible enough.

    Run on the staged table (see `misread_columns_sql`) and its `files_table`, before anything is written."""
    if entity in STAGE_FIELD:
        row = conn.execute(
            f"""SELECT f._file, list(DISTINCT s._unmapped_stage ORDER BY s._unmapped_stage)[:10], min(s._row), count(*)
                FROM {table} AS s JOIN {files_table(table)} AS f USING (_file_order) WHERE s._unmapped_stage IS NOT NULL
                GROUP BY ALL ORDER BY 1 LIMIT 1"""
        ).fetchone()
        if row:
            file, values, first_row, count = row
            stem = file.rsplit(".", 1)[0]
            raise InputFileError(
                file,
                f"{count} rows have a {STAGE_FIELD[entity]} value the mapping does not list: "
                f"{', '.join(map(quote, values))} (first at row {first_row}).",
                fix=f"add each value under 'stages:' in {stem}.mapping.yaml as {' or '.join(STAGE_CLASSES[entity])}.",
            )
    if not any(k == "timestamp" for k in fields_of(entity).values()):
        return
    # A misread date is a problem, so its row keeps the value as written in _raw.
    row = conn.execute(
        f"""SELECT f._file, s._row, s._misread_date, json_extract_string(s._raw, '$.' || s._misread_date)
            FROM {table} AS s JOIN {files_table(table)} AS f USING (_file_order)
            WHERE s._misread_date IS NOT NULL ORDER BY 1, 2 LIMIT 1"""
    ).fetchone()
    if row:
        file, line, name, value = row
        stem = file.rsplit(".", 1)[0]
        raise InputFileError(
            file,
            f"{name} value {quote(value)} cannot be read as a month-first date (MM/DD/YY), which slash dates are by "
            f"default; the file is probably written day first.",
            fix=f"set date_format in {stem}.mapping.yaml, e.g. date_format: \"%d/%m/%Y\".",
            row=line,
        )

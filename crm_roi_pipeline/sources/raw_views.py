"""From a file's text columns to canonical fields, typed: the raw view staging reads, whichever source wrote
the file. Values are kept as written beside their parsed form, so that a value that cannot be read becomes a
reject quoting it rather than a silent NULL."""

from __future__ import annotations

import re

import duckdb

from crm_roi_pipeline.sources.csv_reading import ROW_COLUMN, ident, sql_str
from crm_roi_pipeline.sources.fields import LIST_VALUED, MONTH_FIELD, STAGE_FIELD, fields_of
from crm_roi_pipeline.sources.mappings import FileMapping, ResolvedFile

# Slash dates are month first (Salesforce's US export format) unless a mapping sets date_format.
_SLASH_FORMATS = [
    f"%m/%d/{y}{t}" for t in (" %I:%M %p", " %I:%M:%S %p", " %H:%M", " %H:%M:%S", "") for y in ("%y", "%Y")
]
_TIME_SUFFIXES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p")


def timestamp_sql(text: str, date_format: str | None) -> str:
    if date_format:
        if re.search(r"%[HIMSp]", date_format):
            formats = [date_format]
        else:
            formats = [date_format + suffix for suffix in _TIME_SUFFIXES]
    else:
        formats = _SLASH_FORMATS
    fmt_list = "[" + ", ".join(sql_str(f) for f in formats) + "]"
    return f"coalesce(crm_iso_ts({text}), try_strptime({text}, {fmt_list}))"


def _stage_sql(mapping: FileMapping, field: str) -> str:
    """The class of a stage value (won | lost | open for a deal's stage, open | closed for a ticket's status);
    NULL for a value the map does not list (and no default)."""
    stage = f"lower({field})" if mapping.stages_case_insensitive else field
    whens = " ".join(f"WHEN {stage} = {sql_str(k)} THEN {sql_str(v)}" for k, v in (mapping.stages or {}).items())
    default = sql_str(mapping.stage_default) if mapping.stage_default else "NULL"
    return f"CASE WHEN {field} IS NULL THEN NULL {whens} ELSE {default} END"


def _field_text_sql(resolved: ResolvedFile, name: str) -> str:
    """A canonical field as text, from the file's columns (or the mapping's constant or default)."""
    mapping = resolved.mapping
    if name in mapping.constants:
        return sql_str(mapping.constants[name])
    if name in resolved.columns:
        parts = [f"crm_text({ident(c)})" for c in resolved.columns[name]]
        return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
    if name in mapping.defaults and mapping.defaults[name] is not None:
        return sql_str(mapping.defaults[name])
    if name == "source_system":
        return sql_str(mapping.source_system)
    return "NULL::VARCHAR"


def month_sql(resolved: ResolvedFile) -> str:
    """The month a row belongs to (a DATE), from the file's columns: the same expression staging types."""
    text = _field_text_sql(resolved, MONTH_FIELD[resolved.mapping.entity])
    return f"date_trunc('month', {timestamp_sql(text, resolved.mapping.date_format)})::DATE"


def select_file_sql(resolved: ResolvedFile, relation: str, file_order: int) -> str:
    """One SELECT that turns a file (a relation from `text_table`) into typed canonical fields."""
    mapping = resolved.mapping
    kinds = fields_of(mapping.entity)
    texts = [f"{_field_text_sql(resolved, name)} AS {ident(name)}" for name in kinds]

    has_stage_map = mapping.stages is not None or mapping.stage_default is not None
    typed = []
    for name, kind in kinds.items():
        col = ident(name)
        given = name in resolved.columns or name in mapping.constants
        if kind == "bool":
            # A flag column that exists but is empty means false (Salesforce writes true as 1, false as nothing);
            # a flag column that does not exist is unknown and left to a rule downstream.
            if mapping.entity == "deals" and name in ("is_won", "is_closed") and has_stage_map and not given:
                expr = "_stage_class = 'won'" if name == "is_won" else "_stage_class IN ('won', 'lost')"
                expr = f"CASE WHEN _stage_class IS NULL THEN NULL ELSE {expr} END"
            elif given:
                expr = f"CASE WHEN {col} IS NULL THEN FALSE ELSE crm_bool({col}) END"
            else:
                expr = "NULL::BOOLEAN"
            typed.append(f"{expr} AS {col}, {col} AS {ident(name + '__txt')}")
        elif kind == "number":
            typed.append(f"crm_number({col}) AS {col}, {col} AS {ident(name + '__txt')}")
        elif kind == "timestamp":
            typed.append(
                f"{timestamp_sql(col, mapping.date_format)} AS {col}, {col} AS {ident(name + '__txt')}"
            )
        else:
            typed.append(col)
    stage_cols = ""
    if mapping.entity in STAGE_FIELD:
        stage_class = _stage_sql(mapping, STAGE_FIELD[mapping.entity]) if has_stage_map else "NULL::VARCHAR"
        # A built-in map that knows only the CRM's default pipeline leaves other values to the entity's own
        # rule (`stage_fallback`); a map the user wrote must list every value.
        strict = has_stage_map and not mapping.stage_fallback
        stage_cols = f", {stage_class} AS _stage_class, {str(strict).upper()} AS _has_stage_map"
        typed.append("_stage_class, _has_stage_map")
    # An association column listing several ids ("111;222") gives its first; only values holding a list pay
    # for splitting it. Split a level above the text, over its column: written over the text's expression, the
    # macros repeated it inside each other and a deal's view took DuckDB ~40 ms to bind instead of ~12, for
    # every query that reads it (twice per staging query).
    lists = [ident(name) for name in kinds if name in LIST_VALUED and name in resolved.columns]
    split = (
        " REPLACE (" + ", ".join(
            f"CASE WHEN contains({c}, ';') THEN crm_text(split_part({c}, ';', 1)) ELSE {c} END AS {c}" for c in lists
        ) + ")"
    ) if lists else ""
    date_format = sql_str(mapping.date_format) if mapping.date_format else "NULL::VARCHAR"
    return f"""
        SELECT {', '.join(typed)},
               _row,
               {file_order} AS _file_order,
               {date_format} AS _date_format
        FROM (
            SELECT *{split}{stage_cols}
            FROM (
                SELECT {', '.join(texts)}, {ROW_COLUMN} AS _row
                FROM {relation}
            )
        )"""


def file_label(resolved: ResolvedFile) -> str:
    """How a reason names the file: its name, and the mapping file that read it."""
    return resolved.name + (f" (mapped by {resolved.mapping_file.name})" if resolved.mapping_file else "")


def files_table(table: str) -> str:
    """The small table (_file_order, _file, _file_label) naming the files behind a raw view's or a staged
    table's `_file_order`. Repeating both names on millions of staged rows cost ~15% of building the table."""
    return f"{table}_files"


def create_raw_view(conn: duckdb.DuckDBPyConnection, table: str, files: list[tuple[ResolvedFile, str, int]]) -> None:
    """The view `table` typing each (file, relation from `text_table`, file number), and its `files_table`
    naming the files by number, which staging keeps instead of repeating the names on every row."""
    selects = [select_file_sql(resolved, relation, order) for resolved, relation, order in files]
    conn.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS " + "\nUNION ALL BY NAME\n".join(selects))
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {files_table(table)} "
        f"(_file_order INTEGER, _file VARCHAR, _file_label VARCHAR)"
    )
    conn.executemany(
        f"INSERT INTO {files_table(table)} VALUES (?, ?, ?)",
        [(order, resolved.name, file_label(resolved)) for resolved, _, order in files],
    )


_SLASH_DATE = "'\\d{1,2}/\\d{1,2}/\\d{2,4}.*'"


def misread_columns_sql(entity: str) -> list[str]:
    """Columns of the staged table (from a typed row `d`) that `fail_on_unreadable` reads: a stage value the
    mapping does not list, and the first timestamp field holding a slash date that is not month-first."""
    columns = []
    kinds = fields_of(entity)
    if entity in STAGE_FIELD:
        field = f"d.{STAGE_FIELD[entity]}"
        columns.append(
            f"CASE WHEN d._has_stage_map AND {field} IS NOT NULL AND d._stage_class IS NULL THEN {field} END "
            "AS _unmapped_stage"
        )
    whens = " ".join(
        f"WHEN d.{ident(n)} IS NULL AND regexp_full_match(d.{ident(n + '__txt')}, {_SLASH_DATE}) THEN {sql_str(n)}"
        for n, k in kinds.items() if k == "timestamp"
    )
    if whens:
        columns.append(f"CASE WHEN d._date_format IS NULL THEN CASE {whens} END END AS _misread_date")
    return columns

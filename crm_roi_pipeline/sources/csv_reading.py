"""Reading CSV files as text with DuckDB, for every source: exports in the CSV folder, and the files the API
sources write from what they pulled. A line DuckDB cannot read stops the run naming it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from crm_roi_pipeline.errors import QUOTE_LIMIT, InputFileError, quote
from crm_roi_pipeline.sources.base import MonthScope
from crm_roi_pipeline.sources.mappings import SAVE_CSV_AS_UTF8


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_csv_sql(path: Path | list[Path], header: tuple[str, ...] | list[str] | None = None, rejects: str | None = None) -> str:
    """`read_csv(...)` of the file(s), every column as text.

    With the file's `header` (as `read_header` read it), nothing is sniffed: the columns are those names and
    the dialect is fixed, so that DuckDB reports a malformed line as that line (a sniffer given a file with one
    stray quote or one short row settles on a single column, and every field is then "missing"). With
    `rejects`, such lines are skipped and recorded in the tables `rejects` and `<rejects>_scans` instead of
    failing the read: see `bad_lines`."""
    # Everything as text: types are the pipeline's decision, so that an unreadable value becomes a reject
    # quoting it instead of a sniffed type silently turning it into NULL. Quoting is fixed rather than sniffed:
    # the sniffer only sees the first rows, and a quoted comma deep in a large export would otherwise break the read.
    options = "header = true, encoding = 'utf-8', quote = '\"', escape = '\"'"
    if header is None:
        return f"read_csv({_paths(path)}, {options}, all_varchar = true)"
    columns = "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in header) + "}"
    sql = f"read_csv({_paths(path)}, {options}, delim = ',', auto_detect = false, columns = {columns}"
    if rejects:
        sql += f", store_rejects = true, rejects_table = {sql_str(rejects)}, rejects_scan = {sql_str(rejects + '_scans')}"
    return sql + ")"


# The row's place in its file, 1 for the first row after the header; see `text_table`.
ROW_COLUMN = "__crm_row"


def text_table(
    conn: duckdb.DuckDBPyConnection, path: Path | list[Path], table: str,
    scope: MonthScope | None = None, month: str | None = None, columns: tuple[str, ...] = (),
    header: tuple[str, ...] | None = None,
) -> str:
    """Read CSV file(s) as text into the temporary table `table`; return a relation numbering its rows.

    The rows are numbered by `rowid`, which follows the file because DuckDB keeps insertion order on this
    load. Numbering with `row_number() OVER ()` instead would run everything after it on one thread.

    With a `scope` (and `month`, SQL on the file's columns), only the rows it keeps hold their values,
    `columns`, packed in one list; the others are an empty entry that still holds their place, so rows are
    numbered as in the file while a run over one month holds that month's text, not the whole file's.

    With the file's `header` (one file), a malformed line stops the read before anything is written, as an
    `InputFileError` naming the file, the line, the problem and the fix (see `bad_lines`)."""
    conn.execute("SET preserve_insertion_order = true")
    rejects = None
    if header is not None:
        rejects = f"{table}_rejects"  # dropped with the text table: drop_text_tables takes its prefix
        conn.execute(f"DROP TABLE IF EXISTS {rejects}; DROP TABLE IF EXISTS {rejects}_scans")
    source = read_csv_sql(path, header, rejects)
    if scope is None:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {source}")
        relation = f"(SELECT *, rowid + 1 AS {ROW_COLUMN} FROM {table})"
    else:
        packed = ", ".join(ident(c) for c in columns)
        # The month is computed once, below the test that reads it four times.
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS "
            f"SELECT CASE WHEN {scope.keeps('__crm_month')} THEN [{packed}] END AS __crm_values "
            f"FROM (SELECT *, {month} AS __crm_month FROM {source})"
        )
        unpacked = ", ".join(f"__crm_values[{i}] AS {ident(c)}" for i, c in enumerate(columns, 1))
        relation = f"(SELECT {unpacked}, rowid + 1 AS {ROW_COLUMN} FROM {table} WHERE __crm_values IS NOT NULL)"
    if rejects is not None:
        stop_on_bad_lines(conn, rejects, path if isinstance(path, Path) else path[0])
    return relation


# --- malformed lines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadLine:
    """A line DuckDB could not read as a record of the file's header, and skipped."""

    file: str
    line: int  # DuckDB's count: the header is line 1, and a record is one line however many lines its values span
    reason: str  # what is wrong, naming the line (and the column where DuckDB names one)
    raw: str  # the line as written, cut to 1,000 characters (an unclosed quote makes the rest of the file one line)
    error_type: str  # DuckDB's: MISSING COLUMNS, TOO MANY COLUMNS, UNQUOTED VALUE, INVALID ENCODING, ...
    byte_position: int  # where DuckDB says the line starts, counting from 1


_RAW_LIMIT = 1000


def bad_lines_sql(rejects: str, file: str) -> str:
    """SELECT file, line, reason, raw, error_type, byte_position of every line DuckDB skipped while reading
    with `read_csv_sql(..., rejects=rejects)`, in file order: the rows crm.rejects would need for them.

    A reader that keeps the file's other rows must number them knowing these lines are skipped: `text_table`
    numbers rows by `rowid`, which does not count them."""
    expected = "regexp_extract(error_message, 'Expected Number of Columns: (\\d+)', 1)"
    found = "regexp_extract(error_message, 'Found: (\\d+)', 1)"
    where = f"'line ' || line || coalesce(', column ' || left(column_name, {QUOTE_LIMIT}), '')"
    reason = f"""CASE
            WHEN error_type IN ('MISSING COLUMNS', 'TOO MANY COLUMNS') AND {found} <> ''
                THEN 'line ' || line || ' has ' || {found} || ' values, but the header has ' || {expected} || ' columns'
            WHEN error_type = 'UNQUOTED VALUE'
                THEN {where} || ': a value opens a double quote (") that does not close where the value ends'
            WHEN error_type = 'INVALID ENCODING' THEN {where} || ': the text is not UTF-8'
            WHEN error_type = 'LINE SIZE OVER MAXIMUM'
                THEN 'line ' || line || ' is longer than a line can be (DuckDB''s max_line_size); an unclosed double '
                     || 'quote on it makes the rest of the file one line'
            ELSE {where} || ': ' || error_message
        END"""
    # A line after a Windows line end starts with the end's \n; the rest of the file after an unclosed
    # quote is no use to quote whole.
    raw = "trim(csv_line, chr(13) || chr(10))"
    raw = f"CASE WHEN length({raw}) > {_RAW_LIMIT} THEN left({raw}, {_RAW_LIMIT}) || '…' ELSE {raw} END"
    return f"""
        SELECT {sql_str(file)} AS file, line, {reason} AS reason, {raw} AS raw, error_type,
               line_byte_position AS byte_position
        FROM {rejects}
        -- One row per line: DuckDB records a short line once per missing column, the first with the true count.
        QUALIFY row_number() OVER (PARTITION BY line ORDER BY column_idx NULLS LAST) = 1
        ORDER BY line"""


def bad_lines(conn: duckdb.DuckDBPyConnection, rejects: str, file: str, limit: int | None = None) -> list[BadLine]:
    """The lines DuckDB skipped (see `bad_lines_sql`), the first `limit` of them."""
    sql = bad_lines_sql(rejects, file) + (f" LIMIT {int(limit)}" if limit is not None else "")
    return [BadLine(*row) for row in conn.execute(sql).fetchall()]


_LINE_FIXES = {
    "MISSING COLUMNS": "correct or delete that line (a value holding a comma must be enclosed in double quotes), "
    "or export the file again.",
    "UNQUOTED VALUE": "enclose the value in double quotes, and write each double quote inside it twice (\"\"); or "
    "delete the stray quote, or export the file again.",
    "LINE SIZE OVER MAXIMUM": "close or delete the unclosed double quote before that line, or export the file again.",
    "INVALID ENCODING": SAVE_CSV_AS_UTF8,
}
_LINE_FIXES["TOO MANY COLUMNS"] = _LINE_FIXES["MISSING COLUMNS"]


def _bad_byte(path: Path, start: int) -> tuple[str, str]:
    """(" (byte 0xE9, byte 27 of the file)", the line with that byte shown as �) for the first byte that is not
    UTF-8 from `start` (0-based) on: DuckDB's copy of the line has lost that byte, and a character around it."""
    with path.open("rb") as handle:
        handle.seek(start)
        chunk = handle.read(64 * 1024)
    line = chunk.lstrip(b"\r\n").split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end < len(chunk):  # not a character cut by the end of the chunk
            return f" (byte 0x{chunk[exc.start]:02X}, byte {start + exc.start + 1:,} of the file)", line
    return "", line


def stop_on_bad_lines(conn: duckdb.DuckDBPyConnection, rejects: str, path: Path) -> None:
    """Stop, before anything is written, when DuckDB skipped lines of `path` it could not read.

    The lines are not turned into rejects: crm.rejects is written from the staged rows, which these lines never
    become, so they would vanish from the counts. A stop names the first of them; `bad_lines` lists them all."""
    (count,) = conn.execute(f"SELECT count(DISTINCT line) FROM {rejects}").fetchone()
    if not count:
        return
    first = bad_lines(conn, rejects, path.name, limit=1)[0]
    problem, raw = first.reason, first.raw
    if first.error_type == "INVALID ENCODING":
        byte, raw = _bad_byte(path, max(first.byte_position - 1, 0))
        problem += byte + "; the file is probably saved as Latin-1 or Windows-1252"
    # The raw text is already cut (to 1,000 characters); a message quotes its start, without a length that
    # would be the cut's.
    problem += f": {quote(raw) if len(raw) <= QUOTE_LIMIT else repr(raw[:QUOTE_LIMIT]) + '…'}."
    if count > 1:
        others = [r[0] for r in conn.execute(
            f"SELECT DISTINCT line FROM {rejects} WHERE line <> ? ORDER BY line LIMIT 5", [first.line]
        ).fetchall()]
        more = ", ".join(map(str, others)) + (", …" if count - 1 > len(others) else "")
        problem += f" {count - 1} more line{'s' if count > 2 else ''} cannot be read either (line {more})."
    error = InputFileError(
        path.name, problem, fix=_LINE_FIXES.get(first.error_type, "correct that line, or export the file again.")
    )
    error.line = first.line  # the problem says it: "line 3 has ..."
    raise error


def drop_text_tables(conn: duckdb.DuckDBPyConnection, prefix: str) -> None:
    """Drop the text copies read for one raw view (named `<view>_text_<n>`), once the view is staged."""
    names = conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND starts_with(table_name, ?)", [prefix]
    ).fetchall()
    for (name,) in names:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def _paths(path: Path | list[Path]) -> str:
    if isinstance(path, list):
        return "[" + ", ".join(sql_str(str(p)) for p in path) + "]"
    return sql_str(str(path))

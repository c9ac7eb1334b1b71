"""The `csv` source: a folder of exports and spreadsheets, read by DuckDB straight into the connection.

`plan_folder` recognises each file (canonical name, Salesforce object name, HubSpot header, or a mapping
file beside it) and matches its mapping against its header, so a missing column fails before anything is
read. `load_entity` then reads every file of one entity in a single SQL pass per file, keeping values as
the file wrote them next to their parsed form, so that a value that cannot be read becomes a reject that
quotes it rather than a silent NULL.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crm_roi_pipeline.errors import QUOTE_LIMIT, InputFileError, quote, shorten
from crm_roi_pipeline.sources.fields import LIST_VALUED, MONTH_FIELD, fields_of
from crm_roi_pipeline.sources.mappings import (
    CANONICAL_FILES,
    SALESFORCE_LOOKUPS,
    SALESFORCE_OBJECTS,
    SAVE_CSV_AS_UTF8,
    FileMapping,
    ResolvedFile,
    apply_mapping_file,
    canonical_mapping,
    check_unique_header,
    detect_hubspot,
    load_mapping_file,
    read_header,
    resolve_columns,
)

FX_FILE = "fx_rates.csv"
# Slash dates are month first (Salesforce's US export format) unless a mapping sets date_format.
_SLASH_FORMATS = [
    f"%m/%d/{y}{t}" for t in (" %I:%M %p", " %I:%M:%S %p", " %H:%M", " %H:%M:%S", "") for y in ("%y", "%Y")
]
_TIME_SUFFIXES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p")


@dataclass(frozen=True)
class Lookup:
    path: Path
    name: str  # account_names | owner_teams
    key: str
    values: tuple[str, ...]
    header: tuple[str, ...] = ()


@dataclass
class FolderPlan:
    folder: Path
    files: dict[str, list[ResolvedFile]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[InputFileError]] = field(default_factory=lambda: defaultdict(list))
    lookups: list[Lookup] = field(default_factory=list)
    fx_file: Path | None = None
    ignored: list[str] = field(default_factory=list)

    def files_for(self, entity: str) -> list[ResolvedFile]:
        """The entity's files; the first problem found with any of them (or with a file of unknown entity)."""
        problems = self.errors.get(entity, []) + self.errors.get("*", [])
        if problems:
            raise problems[0]
        return self.files.get(entity, [])


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _kind(path: Path) -> str:
    if path.is_dir():
        return "a folder"
    if path.is_symlink() and not path.exists():
        return "a broken link"
    return "not a regular file"


def _not_a_file(path: Path) -> tuple[str, str]:
    """(problem, fix) for a `.csv` entry of the folder that is not a readable file. Nothing reads it: a folder
    has no rows, and a pipe or a device would block the read forever."""
    kind = _kind(path)
    if kind == "a folder":
        return (
            "is a folder, where a CSV export is expected; nothing in it is read.",
            (
                f"put the export itself in the CSV folder as {path.name}, or rename the folder so that its name "
                "does not end in .csv."
            ),
        )
    if kind == "a broken link":
        return (
            f"is a link to {quote(str(path.readlink()))}, which does not exist.",
            "point the link at the export, or replace it with the file.",
        )
    return ("is not a regular file (a pipe, socket or device).", "replace it with the exported file.")


def _known_entity(path: Path, mapping_files: dict[str, Path]) -> str | None:
    """The entity a name alone says a file holds ("*" for a file every entity reads: fx rates, lookups), or
    None for a name the pipeline does not know, whose file is only recognised by its header."""
    if path.name in CANONICAL_FILES:
        return CANONICAL_FILES[path.name]
    if path.stem.lower() in SALESFORCE_OBJECTS:
        return SALESFORCE_OBJECTS[path.stem.lower()].entity
    if path.name.lower() == FX_FILE or path.stem.lower() in SALESFORCE_LOOKUPS or path.stem in mapping_files:
        return "*"
    return None


def plan_folder(folder: Path) -> FolderPlan:
    if not folder.is_dir():
        raise InputFileError(str(folder), "the CSV folder does not exist (CRM_ROI_CSV_DIR).")
    plan = FolderPlan(folder=folder)
    mapping_files = {p.name[: -len(".mapping.yaml")]: p for p in folder.glob("*.mapping.yaml")}
    entries = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv")
    csv_files = [p for p in entries if p.is_file()]
    for path in entries:
        if path.is_file():
            continue
        entity = _known_entity(path, mapping_files)
        if entity is None:  # a name only a header could make an export of: ignored, as such a file would be
            plan.ignored.append(f"{path.name} ({_kind(path)})")
            continue
        problem, fix = _not_a_file(path)
        plan.errors[entity].append(InputFileError(path.name, problem, fix=fix))
    for stem in sorted(set(mapping_files) - {p.stem for p in entries}):
        plan.errors["*"].append(
            InputFileError(mapping_files[stem].name, f"there is no {stem}.csv beside it.", fix="rename it to match its CSV file.")
        )
    for path in csv_files:
        entity = _known_entity(path, mapping_files) or "*"
        try:
            header = read_header(path)
            if path.name.lower() == FX_FILE:
                check_unique_header(path, header)
                plan.fx_file = path
                continue
            lookup = SALESFORCE_LOOKUPS.get(path.stem.lower())
            if lookup is not None and path.stem not in mapping_files:
                key = next((c for c in lookup["key"] if c in header), None)
                values = tuple(c for c in lookup["value"] if c in header)
                if key and values:
                    check_unique_header(path, header)
                    plan.lookups.append(Lookup(path, lookup["lookup"], key, values, tuple(header)))
                else:
                    plan.ignored.append(f"{path.name} (no {'/'.join(lookup['key'] + lookup['value'])} columns)")
                continue
            base = _builtin(path, header)
            mapping_file = mapping_files.get(path.stem)
            if mapping_file is not None:
                spec = load_mapping_file(mapping_file)
                entity = spec.entity or (base.entity if base else "*")
                mapping: FileMapping | None = apply_mapping_file(mapping_file, spec, base)
            else:
                mapping = base
            if mapping is None:
                plan.ignored.append(path.name)
                continue
            entity = mapping.entity
            check_unique_header(path, header)
            plan.files[entity].append(resolve_columns(path, header, mapping, mapping_file))
        except InputFileError as exc:
            plan.errors[entity].append(exc)
    return plan


def _builtin(path: Path, header: list[str]) -> FileMapping | None:
    if path.name in CANONICAL_FILES:
        return canonical_mapping(CANONICAL_FILES[path.name])
    salesforce = SALESFORCE_OBJECTS.get(path.stem.lower())
    if salesforce is not None:
        return salesforce
    return detect_hubspot(header, path.stem)


# --- reading --------------------------------------------------------------------------------------


def _timestamp_sql(text: str, date_format: str | None) -> str:
    if date_format:
        if re.search(r"%[HIMSp]", date_format):
            formats = [date_format]
        else:
            formats = [date_format + suffix for suffix in _TIME_SUFFIXES]
    else:
        formats = _SLASH_FORMATS
    fmt_list = "[" + ", ".join(_sql_str(f) for f in formats) + "]"
    return f"coalesce(crm_iso_ts({text}), try_strptime({text}, {fmt_list}))"


def _stage_sql(mapping: FileMapping) -> str:
    """won | lost | open for a stage value; NULL for a value the map does not list (and no default)."""
    stage = "lower(stage)" if mapping.stages_case_insensitive else "stage"
    whens = " ".join(f"WHEN {stage} = {_sql_str(k)} THEN {_sql_str(v)}" for k, v in (mapping.stages or {}).items())
    default = _sql_str(mapping.stage_default) if mapping.stage_default else "NULL"
    return f"CASE WHEN stage IS NULL THEN NULL {whens} ELSE {default} END"


@dataclass(frozen=True)
class MonthScope:
    """The rows a run over months first..last can write: those of its months, and those of no partition
    (no month, before `history_start`, after `last_partition`), whose rejects every run rewrites."""

    first: dt.date
    last: dt.date
    history_start: dt.date
    last_partition: dt.date

    @property
    def keeps_all(self) -> bool:
        """True when the months cover every partition, so that every row is kept."""
        return self.first <= self.history_start and self.last >= self.last_partition

    def keeps(self, month: str) -> str:
        """SQL true for a row whose month (`month`, a DATE column) is in scope. Comparisons only: DuckDB
        turns a long IN list into a join, which does not keep the file's row order that rows are numbered by."""
        return (
            f"({month} IS NULL OR {month} BETWEEN DATE '{self.first}' AND DATE '{self.last}' "
            f"OR {month} < DATE '{self.history_start}' OR {month} > DATE '{self.last_partition}')"
        )


def _field_text_sql(resolved: ResolvedFile, name: str) -> str:
    """A canonical field as text, from the file's columns (or the mapping's constant or default)."""
    mapping = resolved.mapping
    if name in mapping.constants:
        return _sql_str(mapping.constants[name])
    if name in resolved.columns:
        parts = [f"crm_text({_ident(c)})" for c in resolved.columns[name]]
        expr = parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
        if name in LIST_VALUED:
            # Only values holding a list pay for splitting it.
            expr = f"CASE WHEN contains({expr}, ';') THEN crm_text(split_part({expr}, ';', 1)) ELSE {expr} END"
        return expr
    if name in mapping.defaults and mapping.defaults[name] is not None:
        return _sql_str(mapping.defaults[name])
    if name == "source_system":
        return _sql_str(mapping.source_system)
    return "NULL::VARCHAR"


def month_sql(resolved: ResolvedFile) -> str:
    """The month a row belongs to (a DATE), from the file's columns: the same expression staging types."""
    text = _field_text_sql(resolved, MONTH_FIELD[resolved.mapping.entity])
    return f"date_trunc('month', {_timestamp_sql(text, resolved.mapping.date_format)})::DATE"


def select_file_sql(resolved: ResolvedFile, relation: str, file_order: int) -> str:
    """One SELECT that turns a file (a relation from `text_table`) into typed canonical fields."""
    mapping = resolved.mapping
    kinds = fields_of(mapping.entity)
    texts = [f"{_field_text_sql(resolved, name)} AS {_ident(name)}" for name in kinds]

    has_stage_map = mapping.stages is not None or mapping.stage_default is not None
    typed = []
    for name, kind in kinds.items():
        col = _ident(name)
        given = name in resolved.columns or name in mapping.constants
        if kind == "bool":
            # A flag column that exists but is empty means false (Salesforce writes true as 1, false as nothing);
            # a flag column that does not exist is unknown and left to a rule downstream.
            if name in ("is_won", "is_closed") and has_stage_map and not given:
                expr = "_stage_class = 'won'" if name == "is_won" else "_stage_class IN ('won', 'lost')"
                expr = f"CASE WHEN _stage_class IS NULL THEN NULL ELSE {expr} END"
            elif given:
                expr = f"CASE WHEN {col} IS NULL THEN FALSE ELSE crm_bool({col}) END"
            else:
                expr = "NULL::BOOLEAN"
            typed.append(f"{expr} AS {col}, {col} AS {_ident(name + '__txt')}")
        elif kind == "number":
            typed.append(f"crm_number({col}) AS {col}, {col} AS {_ident(name + '__txt')}")
        elif kind == "timestamp":
            typed.append(
                f"{_timestamp_sql(col, mapping.date_format)} AS {col}, {col} AS {_ident(name + '__txt')}"
            )
        else:
            typed.append(col)
    stage_cols = ""
    if "stage" in kinds:
        stage_class = _stage_sql(mapping) if has_stage_map else "NULL::VARCHAR"
        stage_cols = f", {stage_class} AS _stage_class, {str(has_stage_map).upper()} AS _has_stage_map"
        typed.append("_stage_class, _has_stage_map")
    date_format = _sql_str(mapping.date_format) if mapping.date_format else "NULL::VARCHAR"
    return f"""
        SELECT {', '.join(typed)},
               _row,
               {file_order} AS _file_order,
               {date_format} AS _date_format
        FROM (
            SELECT *{stage_cols}
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
    columns = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in header) + "}"
    sql = f"read_csv({_paths(path)}, {options}, delim = ',', auto_detect = false, columns = {columns}"
    if rejects:
        sql += f", store_rejects = true, rejects_table = {_sql_str(rejects)}, rejects_scan = {_sql_str(rejects + '_scans')}"
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
        packed = ", ".join(_ident(c) for c in columns)
        # The month is computed once, below the test that reads it four times.
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS "
            f"SELECT CASE WHEN {scope.keeps('__crm_month')} THEN [{packed}] END AS __crm_values "
            f"FROM (SELECT *, {month} AS __crm_month FROM {source})"
        )
        unpacked = ", ".join(f"__crm_values[{i}] AS {_ident(c)}" for i, c in enumerate(columns, 1))
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
        SELECT {_sql_str(file)} AS file, line, {reason} AS reason, {raw} AS raw, error_type,
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
        return "[" + ", ".join(_sql_str(str(p)) for p in path) + "]"
    return _sql_str(str(path))


def _read_text(conn: duckdb.DuckDBPyConnection, path: Path, table: str, header: tuple[str, ...], *args) -> str:
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
        relations.append((f, _read_text(conn, f.path, f"{table}_text_{i}", f.header, scope, month, columns), i))
    if not relations:
        return []
    create_raw_view(conn, table, relations)
    return files


_SLASH_DATE = "'\\d{1,2}/\\d{1,2}/\\d{2,4}.*'"


def misread_columns_sql(entity: str) -> list[str]:
    """Columns of the staged table (from a typed row `d`) that `fail_on_unreadable` reads: a stage value the
    mapping does not list, and the first timestamp field holding a slash date that is not month-first."""
    columns = []
    kinds = fields_of(entity)
    if "stage" in kinds:
        columns.append(
            "CASE WHEN d._has_stage_map AND d.stage IS NOT NULL AND d._stage_class IS NULL THEN d.stage END "
            "AS _unmapped_stage"
        )
    whens = " ".join(
        f"WHEN d.{_ident(n)} IS NULL AND regexp_full_match(d.{_ident(n + '__txt')}, {_SLASH_DATE}) THEN {_sql_str(n)}"
        for n, k in kinds.items() if k == "timestamp"
    )
    if whens:
        columns.append(f"CASE WHEN d._date_format IS NULL THEN CASE {whens} END END AS _misread_date")
    return columns


def fail_on_unreadable(conn: duckdb.DuckDBPyConnection, entity: str, table: str) -> None:
    """Stage values a mapping does not list, and slash dates that are not month-first, stop the asset:
    both mean the whole file is being misread, which no per-row reject would make visible enough.

    Run on the staged table (see `misread_columns_sql`) and its `files_table`, before anything is written."""
    if "stage" in fields_of(entity):
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
                f"{count} rows have a stage value the mapping does not list: {', '.join(map(quote, values))} "
                f"(first at row {first_row}).",
                fix=f"add each value under 'stages:' in {stem}.mapping.yaml as won, lost or open.",
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


def load_lookups(conn: duckdb.DuckDBPyConnection, plan: FolderPlan) -> None:
    """Account names and owner teams from Account.csv / User.csv, to enrich deals and leads."""
    for lookup in plan.lookups:
        value = "coalesce(" + ", ".join(f"nullif(trim({_ident(v)}), '')" for v in lookup.values) + ")"
        relation = _read_text(conn, lookup.path, "_lookup_text", lookup.header)
        conn.execute(
            f"INSERT INTO _{lookup.name} SELECT 'salesforce', trim({_ident(lookup.key)}), {value} "
            f"FROM {relation} WHERE nullif(trim({_ident(lookup.key)}), '') IS NOT NULL"
        )
        drop_text_tables(conn, "_lookup_text")


def load_fx_rates(conn: duckdb.DuckDBPyConnection, plan: FolderPlan) -> None:
    """`fx_rates.csv` (month, currency, rate: reporting-currency units per unit) into `_fx_rates`."""
    if plan.fx_file is None:
        return
    header = read_header(plan.fx_file)
    missing = [c for c in ("month", "currency", "rate") if c not in header]
    if missing:
        raise InputFileError(
            plan.fx_file.name, f"missing column(s) {', '.join(missing)}.", fix="write it with the columns month, currency, rate."
        )
    month = _timestamp_sql("nullif(trim(month), '')", None)
    relation = _read_text(conn, plan.fx_file, "_fx_text", tuple(header))
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fx_raw AS
            SELECT {ROW_COLUMN} AS _row, month AS m, upper(trim(currency)) AS c, rate AS r,
                   date_trunc('month', {month})::DATE AS month,
                   crm_number(nullif(trim(rate), '')) AS rate
            FROM {relation}"""
    )
    drop_text_tables(conn, "_fx_text")
    bad = conn.execute(
        "SELECT _row, m, c, r FROM _fx_raw WHERE month IS NULL OR rate IS NULL OR rate <= 0 OR c IS NULL OR c = '' "
        "ORDER BY _row LIMIT 1"
    ).fetchone()
    if bad:
        raise InputFileError(
            plan.fx_file.name,
            f"cannot read month {quote(bad[1])}, currency {quote(bad[2])}, rate {quote(bad[3])} (a rate must be a "
            "positive number).",
            fix="correct or delete that row.",
            row=bad[0],
        )
    twice = conn.execute(
        "SELECT strftime(month, '%Y-%m'), c FROM _fx_raw GROUP BY ALL HAVING count(*) > 1 ORDER BY 1 LIMIT 1"
    ).fetchone()
    if twice:
        raise InputFileError(plan.fx_file.name, f"two rates for {quote(twice[1])} in {twice[0]}.", fix="keep one.")
    conn.execute("INSERT INTO _fx_rates SELECT month, c, rate FROM _fx_raw")


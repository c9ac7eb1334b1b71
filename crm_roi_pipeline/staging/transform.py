"""From a source's canonical fields to rows ready for `crm.*`, each with a reason when it cannot be staged.

Each entity's query is one template, `sql/stage_<entity>.sql`, read top to bottom: its rules, its month, its
exchange rate and the columns of `crm.<entity>`. The checks every entity shares (no id, deleted, unreadable
values, months outside the partitions, no exchange rate) are built here from the field list and passed in, so a
new field is checked without anyone remembering to; duplicate ids are rejected here once the table is built.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache

import duckdb

from crm_roi_pipeline.settings import Assumptions
from crm_roi_pipeline.sources.raw_views import files_table, misread_columns_sql
from crm_roi_pipeline.sources.registry import BUILTIN_DEAL_TYPES
from crm_roi_pipeline.sources.fields import FIELDS, ID_FIELD, MONTH_FIELD, fields_of
from crm_roi_pipeline.sql_files import read_sql, render_sql

_KIND_WORDS = {"bool": "true/false", "number": "a number", "timestamp": "a date"}

# The entities with an amount: their templates look up its rate to the reporting currency (`rated`).
_HAS_RATE = ("deals", "spend")

# Bounds on values no CRM record has: beyond them a value is a placeholder or a typo, and staged it would
# make every figure it enters wrong (a date would make the monthly series run for millennia).
# Dates: none before 1970 (0001-01-01 and 1900-01-01 are how systems write "no date") and none more than
# a year after the day of the run (9999-12-31 likewise; a year is room for clocks and time zones, and for
# a close date keyed a little ahead, not for a placeholder).
EARLIEST_DATE = dt.date(1970, 1, 1)
# Numbers (amounts, durations): at most 1e15 in magnitude, a thousand trillion, above any real deal or
# spend line even in currencies of small units (a billion-dollar deal is 2.5e13 in VND), and far below
# where sums of such values lose their cents.
MAX_MAGNITUDE = "1e15"  # as SQL and as the reasons say it


def _quoted(col: str) -> str:
    # A NUL byte is shown as \0: in the reason itself it would cut the text short in many readers.
    return f"'''' || replace({col}, chr(0), '\\0') || ''''"


def load_deal_types(conn: duckdb.DuckDBPyConnection, assumptions: Assumptions) -> None:
    mapping = {**BUILTIN_DEAL_TYPES, **assumptions.deal_types}
    conn.execute("CREATE OR REPLACE TEMP TABLE _deal_type_map (crm_value VARCHAR, deal_type VARCHAR)")
    conn.executemany("INSERT INTO _deal_type_map VALUES (?, ?)", list(mapping.items()))


def today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def latest_date(run_day: dt.date) -> dt.date:
    """The last day a date may fall on: a year after the day of the run (29 February runs to 28 February)."""
    try:
        return run_day.replace(year=run_day.year + 1)
    except ValueError:
        return run_day.replace(year=run_day.year + 1, day=28)


def _problems(
    entity: str, history_start: dt.date, last_month: dt.date, run_day: dt.date | None = None
) -> list[tuple[str, str]]:
    """(condition, reason) of every problem a row of `entity` can have, as SQL on a typed row."""
    kinds = fields_of(entity)
    id_field = ID_FIELD[entity]
    month_field = MONTH_FIELD[entity]
    latest = latest_date(run_day or today_utc())
    problems = []
    if entity != "spend":
        problems.append((f"{id_field} IS NULL", f"'no {id_field}'"))
    problems.append(("is_deleted", "'deleted in the source (IsDeleted is true)'"))
    for name, kind in kinds.items():
        if kind in ("id", "text"):
            # A NUL byte is no character of any id or name: an id holding one does not match the same
            # record elsewhere, and many readers of crm.* cut the text short at it.
            problems.append((f"contains({name}, chr(0))", f"'{name} ' || {_quoted(name)} || ' holds a NUL byte'"))
        if kind not in _KIND_WORDS:
            continue
        txt = f"{name}__txt"
        problem = f"'{name}: cannot read ' || {_quoted(txt)} || ' as {_KIND_WORDS[kind]}'"
        if kind == "timestamp":
            problem += " || coalesce(' (date_format ' || _date_format || ' from the mapping file)', '')"
        problems.append((f"{name} IS NULL AND {txt} IS NOT NULL", problem))
        if kind == "number":
            problems.append((
                f"abs({name}) > {MAX_MAGNITUDE}",
                f"'{name} ' || {_quoted(txt)} || ' is beyond ±{MAX_MAGNITUDE} (a placeholder or a typo?)'",
            ))
        if kind == "timestamp":
            problems += _date_bounds(entity, name, month_field, history_start, latest)
    problems.append((f"{month_field} IS NULL AND {month_field}__txt IS NULL", f"'no {month_field}'"))
    problems.append((
        f"_month < DATE '{history_start}'",
        f"'{month_field} ' || strftime(_month, '%Y-%m') || ' is before CRM_ROI_HISTORY_START ({history_start})'",
    ))
    problems.append((
        f"_month > DATE '{last_month}'",
        f"'{month_field} ' || strftime(_month, '%Y-%m') || ' is after the current month'",
    ))
    if entity in _HAS_RATE:
        problems.append((
            "amount IS NOT NULL AND _rate IS NULL",
            "'no fx rate for ' || currency_ || ' in ' || strftime(_fx_month, '%Y-%m') || ' (add it to fx_rates.csv)'",
        ))
        # An amount within the bound can leave it at an absurd rate (fx_rates.csv is only checked for
        # positive rates); an amount beyond the bound has its own reason above.
        problems.append((
            f"abs(amount) <= {MAX_MAGNITUDE} AND abs(amount * _rate) > {MAX_MAGNITUDE}",
            f"'amount ' || {_quoted('amount__txt')} || ' ' || currency_ || ' at the rate ' || _rate "
            f"|| ' is beyond ±{MAX_MAGNITUDE} in the reporting currency (a wrong rate in fx_rates.csv?)'",
        ))
    if entity == "deals":
        problems += _deal_contradictions()
    if entity == "spend":
        problems.append(("amount IS NULL AND amount__txt IS NULL", "'no amount'"))
        problems.append(("category_ IS NULL", "'no category (marketing or sales)'"))
        problems.append((
            "category_ NOT IN ('marketing', 'sales')",
            "'category ' || " + _quoted("category") + " || ' is not marketing or sales'",
        ))
    return problems


def _date_bounds(
    entity: str, name: str, month_field: str, history_start: dt.date, latest: dt.date
) -> list[tuple[str, str]]:
    """The bounds on a date field (see EARLIEST_DATE). The partition date has stricter ones of its own
    (CRM_ROI_HISTORY_START, the current month), so it only gets 1970 when the history starts earlier."""
    # An open deal's closed_at is its expected close date, which is not staged (closed_at is NULL while
    # open): a far-off or placeholder expectation loses nothing, so only a closed deal's closed_at is bounded.
    value = "closed_at_" if (entity, name) == ("deals", "closed_at") else name
    txt = _quoted(f"{name}__txt")
    problems = []
    if name != month_field or history_start < EARLIEST_DATE:
        problems.append((
            f"{value} < DATE '{EARLIEST_DATE}'",
            f"'{name} ' || {txt} || ' is before {EARLIEST_DATE.year} (a placeholder for no date?)'",
        ))
    if name != month_field:
        problems.append((
            f"{value} >= DATE '{latest + dt.timedelta(days=1)}'",
            f"'{name} ' || {txt} || ' is more than a year after the day of the run (after {latest})'",
        ))
    return problems


def _deal_contradictions() -> list[tuple[str, str]]:
    """Deals whose fields say two things; staged, they would count as won on one field's word.

    Only what the input wrote is compared. An empty is_closed beside is_won true is how report exports
    write flags (1 or nothing) and stays a won deal; is_won true on a stage the stage map classes as open is
    no contradiction either, since a custom pipeline's won stage is "open" to a map that does not list it.

    A deal closed before it was created, even by years, is not rejected: real orgs hold such deals when data
    was loaded into the CRM and CreatedDate is the load date (salesforce_in_powerbi in the fixtures: 18 of 36
    opportunities created 2026, closed 2024). Their closed_at, which places the won revenue, is right;
    rejecting them would empty the pre window of its revenue and fake a lift. The closed_after_created WARN
    check lists them, and the contract's fix is a mapping override of created_at."""
    is_won = _quoted("coalesce(is_won__txt, 'true')")
    return [
        ("is_won AND _stage_class = 'lost'", f"'is_won ' || {is_won} || ' but stage ' || {_quoted('stage')} || ' is lost'"),
        (
            "is_won AND NOT is_closed AND is_closed__txt IS NOT NULL",
            f"'is_won ' || {is_won} || ' but is_closed ' || {_quoted('is_closed__txt')}",
        ),
    ]


def _reason_sql(entity: str, history_start: dt.date, last_month: dt.date, run_day: dt.date | None = None) -> str:
    """A row's reasons, '; '-separated, or NULL. The reasons are only spelled out for a row that has one:
    one test of all the conditions costs far less than building a string from each for millions of rows."""
    problems = _problems(entity, history_start, last_month, run_day)
    any_problem = "\n    OR ".join(f"({condition})" for condition, _ in problems)
    reasons = ",\n    ".join(f"CASE WHEN {condition} THEN {reason} END" for condition, reason in problems)
    return f"CASE WHEN {any_problem}\nTHEN nullif(concat_ws('; ',\n    {reasons}\n), '') END"


def build_staged(
    conn: duckdb.DuckDBPyConnection,
    entity: str,
    raw_table: str,
    staged_table: str,
    *,
    reporting_currency: str,
    history_start: dt.date,
    last_month: dt.date,
    run_day: dt.date | None = None,
) -> None:
    """Create `staged_table`: the columns of `crm.<entity>` plus `_month`, `_reason`, provenance and, for rows
    that may be rejected, `_raw` (the input's values as JSON), by `staged_sql`.

    Only what the writes need is kept: the raw text of every field beside its typed value made this table four
    times wider, and building it cost more than typing the values. Dates are bounded by the day of the run,
    `run_day` (default today in UTC): see EARLIEST_DATE."""
    sql = staged_sql(
        entity, raw_table, staged_table,
        reporting_currency=reporting_currency, history_start=history_start, last_month=last_month, run_day=run_day,
    )
    # Every row carries its own _row and _file_order, so no statement here needs insertion order; without
    # it DuckDB builds the table on every core.
    conn.execute("SET preserve_insertion_order = false")
    try:
        conn.execute(sql)
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {files_table(staged_table)} AS SELECT * FROM {files_table(raw_table)}")
        if entity != "spend":
            _reject_duplicates(conn, staged_table, ID_FIELD[entity])
    finally:
        conn.execute("RESET preserve_insertion_order")


def staged_sql(
    entity: str,
    raw_table: str,
    staged_table: str,
    *,
    reporting_currency: str,
    history_start: dt.date,
    last_month: dt.date,
    run_day: dt.date | None = None,
) -> str:
    """The statement creating `staged_table` from the typed view `raw_table`: `sql/stage_<entity>.sql`
    rendered. It runs as written once its inputs exist: the view, the lookups its template names (some of
    `_fx_rates`, `_account_names`, `_owner_teams`, `_deal_type_map`) and the macros of `sql/macros.sql`."""
    return render_sql(
        f"staging/sql/stage_{entity}.sql",
        raw_table=raw_table,
        staged_table=staged_table,
        reporting_currency=reporting_currency,
        problems_sql=_reason_sql(entity, history_start, last_month, run_day),
        raw_json_sql=raw_json_sql(entity),
        misread_columns=misread_columns_sql(entity),
    )


def _reject_duplicates(conn: duckdb.DuckDBPyConnection, staged_table: str, id_field: str) -> None:
    """Within one pull, the later row of a repeated id is the newer one: keep it, reject the others.

    Only rows without a problem whose id repeats are ranked: `build_staged` gave exactly the rows whose id
    repeats (and the rows with a problem) a `_raw`, so no second aggregate over millions of rows is needed."""
    conn.execute(
        f"""
        UPDATE {staged_table} AS s
        SET _reason = 'duplicate {id_field}: ' || f._file_label || ' row ' || k._kept_row
                      || ' has the same id and was staged'
        FROM (
            SELECT source_system, {id_field}, _file_order, _row,
                   row_number() OVER w AS _rank,
                   first_value(_file_order) OVER w AS _kept_order,
                   first_value(_row) OVER w AS _kept_row
            FROM {staged_table}
            WHERE _reason IS NULL AND _raw IS NOT NULL
            WINDOW w AS (PARTITION BY source_system, {id_field} ORDER BY _file_order DESC, _row DESC)
        ) AS k, {files_table(staged_table)} AS f
        WHERE k._rank > 1 AND f._file_order = k._kept_order
          AND s.source_system = k.source_system AND s.{id_field} = k.{id_field}
          AND s._file_order = k._file_order AND s._row = k._row
        """
    )


@cache
def table_ddl(entity: str) -> tuple[tuple[str, str, str | None], ...]:
    """(name, type, comment) of each column of `crm.<entity>`, in order, as `schema.sql` creates them."""
    ddl = read_sql("staging/sql/schema.sql")
    block = ddl[ddl.index(f"crm.{entity} (") :].split(");", 1)[0]
    matches = (re.match(r"\s+(\w+)\s+(\w+)[^-]*(?:--\s*(.*))?", line) for line in block.splitlines()[1:])
    return tuple((m[1], m[2], m[3] or None) for m in matches if m)


def table_columns(entity: str) -> tuple[str, ...]:
    """The column names of `crm.<entity>`, in order."""
    return tuple(name for name, _, _ in table_ddl(entity))


def raw_json_sql(entity: str, alias: str = "d") -> str:
    """The mapped fields of a row as the input wrote them, as JSON (fields the input left empty, or did not
    map, are left out). Built only for rows that may be rejected: for every row it cost more than the rejects
    are worth."""
    entries = []
    for name, kind in FIELDS[entity].items():  # source_system has a column of its own in crm.rejects
        text = f"{alias}.{name}__txt" if kind in _KIND_WORDS else f"{alias}.{name}"
        entries.append(f"{{'k': '{name}', 'v': ({text})::VARCHAR}}")
    return "to_json(map_from_entries(list_filter([\n    " + ",\n    ".join(entries) + "\n], lambda e: e.v IS NOT NULL)))"

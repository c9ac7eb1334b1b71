"""From a source's canonical fields to rows ready for `crm.*`, each with a reason when it cannot be staged.

Entity rules live in `sql/derive_<entity>.sql` and `sql/final_<entity>.sql`; the checks every entity shares
(no id, deleted, unreadable values, months outside the partitions, no exchange rate, duplicate ids) are built
here from the field list, so a new field is checked without anyone remembering to.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import duckdb

from crm_roi_pipeline.settings import Assumptions
from crm_roi_pipeline.sources.fields import FIELDS, ID_FIELD, MONTH_FIELD, fields_of

_SQL = Path(__file__).parent / "sql"
_KIND_WORDS = {"bool": "true/false", "number": "a number", "timestamp": "a date"}

# Standard Salesforce and HubSpot deal types; `deal_types` in the assumptions adds to and overrides these.
BUILTIN_DEAL_TYPES = {
    "New Customer": "new_business",
    "Existing Customer - Upgrade": "expansion",
    "Existing Customer - Replacement": "renewal",
    "Existing Customer - Downgrade": "renewal",
    "newbusiness": "new_business",
    "New Business": "new_business",
    "existingbusiness": "expansion",
    "Existing Business": "expansion",
}
_HAS_RATE = {"deals": "coalesce(closed_at_, created_at)", "spend": "month"}


@cache
def sql_file(name: str) -> str:
    return (_SQL / name).read_text()


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quoted(col: str) -> str:
    return f"'''' || {col} || ''''"


def load_deal_types(conn: duckdb.DuckDBPyConnection, assumptions: Assumptions) -> None:
    mapping = {**BUILTIN_DEAL_TYPES, **assumptions.deal_types}
    conn.execute("CREATE OR REPLACE TEMP TABLE _deal_type_map (crm_value VARCHAR, deal_type VARCHAR)")
    conn.executemany("INSERT INTO _deal_type_map VALUES (?, ?)", list(mapping.items()))


def _reasons(entity: str, history_start: dt.date, last_month: dt.date) -> list[str]:
    kinds = fields_of(entity)
    id_field = ID_FIELD[entity]
    month_field = MONTH_FIELD[entity]
    reasons = []
    if entity != "spend":
        reasons.append(f"CASE WHEN {id_field} IS NULL THEN 'no {id_field}' END")
    reasons.append("CASE WHEN is_deleted THEN 'deleted in the source (IsDeleted is true)' END")
    for name, kind in kinds.items():
        if kind not in _KIND_WORDS:
            continue
        txt = f"{name}__txt"
        problem = f"'{name}: cannot read ' || {_quoted(txt)} || ' as {_KIND_WORDS[kind]}'"
        if kind == "timestamp":
            problem += " || coalesce(' (date_format ' || _date_format || ' from the mapping file)', '')"
        reasons.append(f"CASE WHEN {name} IS NULL AND {txt} IS NOT NULL THEN {problem} END")
    reasons.append(f"CASE WHEN {month_field} IS NULL AND {month_field}__txt IS NULL THEN 'no {month_field}' END")
    reasons.append(
        f"CASE WHEN _month < DATE '{history_start}' THEN '{month_field} ' || strftime(_month, '%Y-%m') || "
        f"' is before CRM_ROI_HISTORY_START ({history_start})' END"
    )
    reasons.append(
        f"CASE WHEN _month > DATE '{last_month}' THEN '{month_field} ' || strftime(_month, '%Y-%m') || "
        f"' is after the current month' END"
    )
    if entity in _HAS_RATE:
        reasons.append(
            "CASE WHEN amount IS NOT NULL AND _rate IS NULL THEN 'no fx rate for ' || currency_ || ' in ' || "
            "strftime(_fx_month, '%Y-%m') || ' (add it to fx_rates.csv)' END"
        )
    if entity == "spend":
        reasons.append("CASE WHEN amount IS NULL AND amount__txt IS NULL THEN 'no amount' END")
        reasons.append(
            "CASE WHEN category_ IS NULL THEN 'no category (marketing or sales)' "
            "WHEN category_ NOT IN ('marketing', 'sales') THEN 'category ' || "
            + _quoted("category")
            + " || ' is not marketing or sales' END"
        )
    return reasons


def build_staged(
    conn: duckdb.DuckDBPyConnection,
    entity: str,
    raw_table: str,
    staged_table: str,
    *,
    reporting_currency: str,
    history_start: dt.date,
    last_month: dt.date,
) -> None:
    """Create `staged_table`: the final columns of `crm.<entity>` plus `_month`, `_reason` and provenance."""
    ccy = _lit(reporting_currency)
    derive = sql_file(f"derive_{entity}.sql").format(raw=raw_table, reporting_currency=ccy)
    month_field = MONTH_FIELD[entity]
    extra = ""
    if entity == "deals":
        extra = ", CASE WHEN is_closed_ THEN closed_at END AS closed_at_"
    rate_cte = "SELECT *, NULL::DATE AS _fx_month, NULL::DOUBLE AS _rate FROM dated"
    if entity in _HAS_RATE:
        rate_cte = f"""
            SELECT d.*, CASE WHEN d.currency_ = {ccy} THEN 1.0 ELSE x.rate END AS _rate
            FROM (SELECT *, date_trunc('month', {_HAS_RATE[entity]})::DATE AS _fx_month FROM dated) AS d
            LEFT JOIN _fx_rates AS x ON x.currency = d.currency_ AND x.month = d._fx_month"""
    reasons = ",\n                ".join(_reasons(entity, history_start, last_month))
    # Every row carries its own _row and _file, so no statement here needs insertion order; without it
    # DuckDB builds the table on every core.
    conn.execute("SET preserve_insertion_order = false")
    try:
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {staged_table} AS
            WITH derived AS ({derive}),
            dated AS (
                SELECT *, date_trunc('month', {month_field})::DATE AS _month{extra} FROM derived
            ),
            rated AS ({rate_cte}),
            checked AS (
                SELECT *, nullif(concat_ws('; ',
                    {reasons}
                ), '') AS _problem
                FROM rated
            )
            SELECT *{_text_only_for_problems(entity)}, _problem AS _reason FROM checked
            """
        )
        if entity != "spend":
            _reject_duplicates(conn, staged_table, ID_FIELD[entity])
    finally:
        conn.execute("RESET preserve_insertion_order")


def _text_only_for_problems(entity: str) -> str:
    """The values as the input wrote them are kept only on rows with a problem, which quote them: on the
    millions of clean rows they would double the staged table for nothing (duplicates, rejected after this,
    show their typed values instead; see `raw_json_sql`)."""
    texts = [f"CASE WHEN _problem IS NOT NULL THEN {n}__txt END AS {n}__txt"
             for n, kind in FIELDS[entity].items() if kind in _KIND_WORDS]
    return f" REPLACE ({', '.join(texts)})" if texts else ""


def _reject_duplicates(conn: duckdb.DuckDBPyConnection, staged_table: str, id_field: str) -> None:
    """Within one pull, the later row of a repeated id is the newer one: keep it, reject the others.

    Ranking only the ids that repeat (found by a hash aggregate) rather than windowing over every row:
    sorting millions of wide rows for the few duplicates an export has cost more than typing them."""
    conn.execute(
        f"""
        UPDATE {staged_table} AS s
        SET _reason = 'duplicate {id_field}: ' || k._kept_file || ' row ' || k._kept_row
                      || ' has the same id and was staged'
        FROM (
            SELECT source_system, {id_field}, _file_order, _row,
                   row_number() OVER w AS _rank,
                   first_value(_file_label) OVER w AS _kept_file,
                   first_value(_row) OVER w AS _kept_row
            FROM {staged_table}
            SEMI JOIN (
                SELECT source_system, {id_field} FROM {staged_table}
                WHERE _problem IS NULL
                GROUP BY ALL HAVING count(*) > 1
            ) USING (source_system, {id_field})
            WHERE _problem IS NULL
            WINDOW w AS (PARTITION BY source_system, {id_field} ORDER BY _file_order DESC, _row DESC)
        ) AS k
        WHERE k._rank > 1 AND s.source_system = k.source_system AND s.{id_field} = k.{id_field}
          AND s._file_order = k._file_order AND s._row = k._row
        """
    )


def final_select(entity: str, loaded_from: str) -> str:
    """The SELECT list producing `crm.<entity>`'s columns from a staged table aliased `d`."""
    return sql_file(f"final_{entity}.sql").format(loaded_from=_lit(loaded_from))


def raw_json_sql(entity: str, alias: str = "d") -> str:
    """The mapped fields of a row as the input wrote them, as JSON (fields the input left empty, or did not
    map, are left out; a duplicate shows its values as typed). Built only for rejects: building it for every row cost more than the rejects are worth."""
    entries = []
    for name, kind in FIELDS[entity].items():  # source_system has a column of its own in crm.rejects
        text = f"{alias}.{name}"
        if kind in _KIND_WORDS:
            # A row with a problem keeps its text; a duplicate (clean, rejected later) has only typed values.
            text = f"CASE WHEN {alias}._problem IS NOT NULL THEN {alias}.{name}__txt ELSE {alias}.{name}::VARCHAR END"
        entries.append(f"{{'k': '{name}', 'v': ({text})::VARCHAR}}")
    return f"to_json(map_from_entries(list_filter([{', '.join(entries)}], lambda e: e.v IS NOT NULL)))"

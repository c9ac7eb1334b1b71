"""Replace exactly the rows of one source and a range of months, rejects included, in one transaction.

Delete-then-insert keeps reruns idempotent and a failed write leaves the file as it was. When two
configured sources deliver the same record (same `source_system` and id), the API source's row is the one
kept, whichever source was written last.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb

from crm_roi_pipeline.sources.raw_views import files_table
from crm_roi_pipeline.sources.registry import API_SOURCES
from crm_roi_pipeline.sources.fields import ID_FIELD, MONTH_FIELD
from crm_roi_pipeline.staging.transform import table_columns


@dataclass
class WriteResult:
    staged: int = 0
    rejected: int = 0
    superseded: int = 0  # rows of this source not staged because an API source holds the same record
    replaced_csv: int = 0  # csv rows this API source took over
    removed: int = 0  # records a change sync found deleted in the source
    deleted: int = 0  # rows of this source and months removed before the insert
    rejects_by_reason: list[tuple[str, int]] = field(default_factory=list)
    rows_by_file: dict[str, tuple[int, int]] = field(default_factory=dict)  # file -> (staged, rejected)


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All of a run's writes commit together or not at all."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def month_predicate(entity: str, first: dt.date, last: dt.date, alias: str = "") -> str:
    column = f"{alias}{MONTH_FIELD[entity]}"
    if entity == "spend":
        return f"{column} BETWEEN DATE '{first}' AND DATE '{last}'"
    return f"{column} >= TIMESTAMP '{first}' AND {column} < TIMESTAMP '{_next_month(last)}'"


def _insert(
    conn: duckdb.DuckDBPyConnection, entity: str, staged_table: str, keep: str, loaded_from: str, run_id: str,
    reject_where: str, result: WriteResult,
) -> None:
    """Insert the staged rows matching `keep` (API rows displacing csv copies of the same record, csv rows
    giving way to API ones), and the rejects matching `reject_where`."""
    target, id_field = f"crm.{entity}", ID_FIELD[entity]
    key_match = f"t.source_system = d.source_system AND t.{id_field} = d.{id_field}"
    keep = f"d._reason IS NULL AND {keep}"
    if loaded_from in API_SOURCES:
        result.replaced_csv += conn.execute(
            f"DELETE FROM {target} AS t WHERE t.loaded_from = 'csv' AND t.{id_field} IS NOT NULL AND EXISTS "
            f"(SELECT 1 FROM {staged_table} AS d WHERE {keep} AND {key_match})"
        ).fetchone()[0]
    else:
        apis = ", ".join(f"'{s}'" for s in API_SOURCES)
        # Without any API rows (a CSV-only project) there is nothing to give way to: skip the anti-join.
        if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {target} WHERE loaded_from IN ({apis}))").fetchone()[0]:
            superseded = f"EXISTS (SELECT 1 FROM {target} AS t WHERE t.loaded_from IN ({apis}) AND {key_match})"
            result.superseded += conn.execute(
                f"SELECT count(*) FROM {staged_table} AS d WHERE {keep} AND d.{id_field} IS NOT NULL AND {superseded}"
            ).fetchone()[0]
            keep += f" AND NOT (d.{id_field} IS NOT NULL AND {superseded})"
    columns = ", ".join(
        f"'{loaded_from}' AS loaded_from" if c == "loaded_from" else c for c in table_columns(entity)
    )
    result.staged += conn.execute(
        f"INSERT INTO {target} BY NAME SELECT {columns} FROM {staged_table} AS d WHERE {keep}"
    ).fetchone()[0]
    result.rejected += conn.execute(
        f"""INSERT INTO crm.rejects BY NAME
            SELECT ? AS entity, d.source_system, ? AS loaded_from, d._month AS partition_month,
                   d.{id_field} AS source_id, d._reason AS reason, d._raw AS raw,
                   ? AS run_id, f._file AS source_file, d._row AS source_row
            FROM {staged_table} AS d JOIN {files_table(staged_table)} AS f USING (_file_order)
            WHERE d._reason IS NOT NULL AND {reject_where}""",
        [entity, loaded_from, run_id],
    ).fetchone()[0]


def replace_months(
    conn: duckdb.DuckDBPyConnection,
    entity: str,
    staged_table: str | None,
    *,
    loaded_from: str,
    first_month: dt.date,
    last_month: dt.date,
    history_start: dt.date,
    last_partition: dt.date,
    run_id: str,
) -> WriteResult:
    """Within a `transaction`: delete the source's rows and rejects of the months, insert the new ones."""
    target = f"crm.{entity}"
    in_range = f"_month BETWEEN DATE '{first_month}' AND DATE '{last_month}'"

    # Rejects that belong to no partition (unreadable date, before the history start, after the current
    # month) are rewritten by every run of the source, since every run reads the whole input.
    def reject_scope(column: str) -> str:
        return (
            f"({column} IS NULL OR {column} BETWEEN DATE '{first_month}' AND DATE '{last_month}' "
            f"OR {column} < DATE '{history_start}' OR {column} > DATE '{last_partition}')"
        )

    scope = reject_scope("_month")
    result = WriteResult()
    result.deleted = conn.execute(
        f"DELETE FROM {target} WHERE loaded_from = ? AND {month_predicate(entity, first_month, last_month)}",
        [loaded_from],
    ).fetchone()[0]
    conn.execute(
        f"DELETE FROM crm.rejects WHERE entity = ? AND loaded_from = ? AND {reject_scope('partition_month')}",
        [entity, loaded_from],
    )
    if staged_table is None:  # the source has no input for this entity any more
        return result
    _insert(conn, entity, staged_table, f"d.{in_range}", loaded_from, run_id, scope, result)
    # Reasons quote values and rows; grouped without them, they say what kind of problem how often.
    result.rejects_by_reason = conn.execute(
        f"""SELECT regexp_replace(regexp_replace(u.reason, '''[^'']*''', '…', 'g'), 'row \\d+', 'row …', 'g'),
                   count(*)
            FROM {staged_table} AS s, unnest(string_split(s._reason, '; ')) AS u(reason)
            WHERE s._reason IS NOT NULL AND {scope}
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20"""
    ).fetchall()
    result.rows_by_file = {
        file: (staged, rejected)
        for file, staged, rejected in conn.execute(
            f"""SELECT f._file, c.staged, c.rejected
                FROM (SELECT _file_order, count(*) FILTER (WHERE _reason IS NULL AND {in_range}) AS staged,
                             count(*) FILTER (WHERE _reason IS NOT NULL AND {scope}) AS rejected
                      FROM {staged_table} GROUP BY 1) AS c
                JOIN {files_table(staged_table)} AS f USING (_file_order)"""
        ).fetchall()
    }
    return result


def apply_changes(
    conn: duckdb.DuckDBPyConnection,
    entity: str,
    staged_table: str,
    *,
    loaded_from: str,
    skip_first: dt.date,
    skip_last: dt.date,
    history_start: dt.date,
    last_partition: dt.date,
    run_id: str,
) -> WriteResult:
    """A change sync: each changed record replaces its row by id, in whatever month it now falls; deleted
    records are removed. Months skip_first..skip_last are left to `replace_months` in the same transaction."""
    target, id_field = f"crm.{entity}", ID_FIELD[entity]
    result = WriteResult()
    ids = f"(SELECT source_system, {id_field} FROM {staged_table} WHERE {id_field} IS NOT NULL)"
    result.deleted = conn.execute(
        f"DELETE FROM {target} WHERE loaded_from = ? AND (source_system, {id_field}) IN {ids}", [loaded_from]
    ).fetchone()[0]
    conn.execute(
        f"DELETE FROM crm.rejects WHERE entity = ? AND loaded_from = ? AND (source_system, source_id) IN {ids}",
        [entity, loaded_from],
    )
    outside = (
        f"NOT coalesce(_month BETWEEN DATE '{skip_first}' AND DATE '{skip_last}', FALSE) "
        f"AND NOT coalesce(is_deleted, FALSE)"
    )
    within = f"_month BETWEEN DATE '{history_start}' AND DATE '{last_partition}'"
    _insert(conn, entity, staged_table, f"d.{within} AND {outside}", loaded_from, run_id, outside, result)
    result.removed = conn.execute(f"SELECT count(*) FROM {staged_table} WHERE is_deleted").fetchone()[0]
    return result


def read_cursor(conn: duckdb.DuckDBPyConnection, source: str, obj: str) -> dt.datetime | None:
    row = conn.execute("SELECT cursor FROM crm.sync_state WHERE source = ? AND object = ?", [source, obj]).fetchone()
    return row[0] if row else None


def write_cursor(conn: duckdb.DuckDBPyConnection, source: str, obj: str, cursor: dt.datetime) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO crm.sync_state VALUES (?, ?, ?, now()::TIMESTAMP)", [source, obj, cursor]
    )

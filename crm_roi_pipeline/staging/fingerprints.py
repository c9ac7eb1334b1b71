"""Which months of a CSV export changed since they were staged, so that a nightly run over an unchanged export
rewrites nothing and records nothing, and a one-month change rewrites that month.

A staging write stores, per (source, entity, month), a fingerprint of the input rows of that month: their
count and the sum of their hashes (row number and file included, since a row's position decides which of two
duplicates is kept), prefixed with a hash of everything else that shapes the staged rows (the lookup and
mapping files, the assumptions staging reads, the staging code). `changed_months` computes the same for the
files as they are now and returns the months whose fingerprint moved or was never stored. Rows outside every
partition (no date, before CRM_ROI_HISTORY_START, after the current month) are the month "none": every run
rewrites their rejects, so a change there is staged by a run over the current month.

API sources are not fingerprinted: pulling every month to compare would cost what it saves. Their nightly run
is the current month plus the change sync (schedules.nightly_range).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import duckdb

from crm_roi_pipeline.months import add_months
from crm_roi_pipeline.project import code_digest
from crm_roi_pipeline.settings import Assumptions
from crm_roi_pipeline.sources.fields import MONTH_FIELD

NO_PARTITION = "none"


def context_hash(inputs: list[Path], extra: str = "", *, assumptions: Assumptions, history_start: dt.date) -> str:
    """What shapes the staged rows besides the entity's own rows: the other input files (lookups, rates,
    mapping files), the assumptions staging reads, the history start, the code, and `extra` (a source's
    settings, such as SALESFORCE_CSAT_FIELD)."""
    # The staging code and the sources' code: a change to either may change every staged row.
    digest = hashlib.sha256(code_digest("staging", "sources").encode())
    for path in sorted(inputs):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(repr((assumptions.reporting_currency, sorted(assumptions.deal_types.items()), history_start,
                        extra)).encode())
    return digest.hexdigest()[:16]


def month_keys(first: dt.date, last: dt.date) -> list[str]:
    """The keys of crm.fingerprints for the months first..last: 'YYYY-MM' each, and 'none'."""
    keys, day = [], first
    while day <= last:
        keys.append(f"{day:%Y-%m}")
        day = add_months(day, 1)
    return keys + [NO_PARTITION]


def month_fingerprints(conn: duckdb.DuckDBPyConnection, entity: str, raw_table: str | None, context: str,
                       first: dt.date, last: dt.date, history_start: dt.date,
                       last_partition: dt.date) -> dict[str, str]:
    """month ('YYYY-MM' or 'none') -> fingerprint of the raw rows in `raw_table` (None: no input), for every
    month first..last (an empty month has the fingerprint of no rows) and the rows of no partition."""
    months = {key: f"{context}:0:0" for key in month_keys(first, last)}
    if raw_table is None:
        return months
    month = f"date_trunc('month', r.{MONTH_FIELD[entity]})::DATE"
    rows = conn.execute(
        f"""SELECT CASE WHEN m IS NULL OR m < DATE '{history_start}' OR m > DATE '{last_partition}' THEN '{NO_PARTITION}'
                        ELSE strftime(m, '%Y-%m') END AS month,
                   count(*), sum(h)::VARCHAR
            FROM (SELECT {month} AS m, hash(r)::HUGEINT AS h FROM {raw_table} AS r)
            GROUP BY ALL"""
    ).fetchall()
    for key, count, total in rows:
        if key in months:
            months[key] = f"{context}:{count}:{total}"
    return months


def stored(conn: duckdb.DuckDBPyConnection, source: str, entity: str) -> dict[str, str]:
    return dict(conn.execute(
        "SELECT month, fingerprint FROM crm.fingerprints WHERE source = ? AND entity = ?", [source, entity]
    ).fetchall())


def store(conn: duckdb.DuckDBPyConnection, source: str, entity: str, fingerprints: dict[str, str]) -> None:
    """Record what a staging write wrote, in its transaction (a rolled-back write leaves the old ones)."""
    # One statement for every month: executemany runs one upsert per row, 0.25 s for an entity's 145 months.
    conn.execute(
        "INSERT OR REPLACE INTO crm.fingerprints "
        "SELECT ?, ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), now()::TIMESTAMP",
        [source, entity, list(fingerprints), list(fingerprints.values())],
    )


def changed(now: dict[str, str], before: dict[str, str]) -> list[str]:
    """The months whose fingerprint moved or was never stored, 'none' included."""
    return sorted(month for month, fp in now.items() if before.get(month) != fp)

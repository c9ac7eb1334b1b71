"""What every source gives staging, and what staging gives every source.

A source turns a CRM, or a folder of exports, into canonical fields (`fields.py`) in a temporary table
of the connection: the raw table of one entity, plus the shared lookup tables (`_fx_rates`,
`_account_names`, `_owner_teams`, `_first_responses`). `staging/` does the rest the same way for all of them, calling the
methods of `Source` below; a source overrides the ones it has and inherits the no-op rest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import duckdb


@dataclass
class SourceLoad:
    source: str
    files: list[tuple[str, str]] = field(default_factory=list)  # (file, what it was recognised as)
    ignored: list[str] = field(default_factory=list)
    loaded: bool = False  # False when the source has nothing for this entity
    notes: list[str] = field(default_factory=list)  # warnings worth showing with the run


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


def prepare_lookups(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CREATE OR REPLACE TEMP TABLE _fx_rates (month DATE, currency VARCHAR, rate DOUBLE)")
    conn.execute("CREATE OR REPLACE TEMP TABLE _account_names (source_system VARCHAR, account_id VARCHAR, account_name VARCHAR)")
    conn.execute("CREATE OR REPLACE TEMP TABLE _owner_teams (source_system VARCHAR, owner_id VARCHAR, team VARCHAR)")
    # A Salesforce case's first response is the completion of a milestone, a record of its own.
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _first_responses (source_system VARCHAR, ticket_id VARCHAR, first_response_at TIMESTAMP)"
    )


class Source:
    """One configured source of one run. Staging calls, per entity: `check` (before anything is read),
    `load`, `check_staged` on the typed rows (before anything is written), `load_changes` when the source
    `syncs_changes` and a cursor exists, and `usage` for the run's metadata."""

    name: ClassVar[str]
    # True for a source that can list the records changed since a time (an API with a modification stamp):
    # staging then keeps a cursor per entity in crm.sync_state and applies the changes in any month.
    syncs_changes: ClassVar[bool] = False

    def check(self, entity: str) -> None:
        """Fail now, before anything is read or written, on what can be seen without reading (credentials,
        an unreadable file)."""

    def load(self, conn: duckdb.DuckDBPyConnection, entity: str, raw_table: str, months: MonthScope,
             reporting_currency: str) -> SourceLoad:
        """Fill `raw_table` (a temporary table or view of the canonical fields, see `raw_views`) with the
        entity's records of `months`, and the lookup tables (`prepare_lookups`)."""
        raise NotImplementedError

    def load_changes(self, conn: duckdb.DuckDBPyConnection, entity: str, raw_table: str,
                     since: dt.datetime) -> SourceLoad:
        """The entity's records changed or deleted since `since`, whatever their month (`syncs_changes`)."""
        return SourceLoad(source=self.name)

    def check_staged(self, conn: duckdb.DuckDBPyConnection, entity: str, staged_table: str) -> None:
        """Fail, before anything is written, on typed values that mean a whole input is being misread."""

    def context_inputs(self) -> tuple[list[Path], str] | None:
        """For a source whose months can be compared cheaply (files): the files besides the entity's own that
        shape its staged rows, and its settings as text; staging fingerprints each month with them
        (staging/fingerprints.py). None: the source is not fingerprinted (an API: every run pulls)."""
        return None

    def usage(self) -> dict[str, int | str]:
        """What the run cost the source (requests, retries), shown in the run's metadata."""
        return {}

"""Sources turn a CRM or a folder of exports into canonical fields (see `fields.py`) in a temp table.

Each source fills, on a DuckDB connection, the raw table of one entity plus the shared lookup tables
(`_fx_rates`, `_account_names`, `_owner_teams`); `staging/` does the rest the same way for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crm_roi_pipeline.errors import SettingsError
from crm_roi_pipeline.sources import csv_exports


@dataclass
class SourceLoad:
    source: str
    files: list[tuple[str, str]] = field(default_factory=list)  # (file, what it was recognised as)
    ignored: list[str] = field(default_factory=list)
    loaded: bool = False  # False when the source has nothing for this entity
    notes: list[str] = field(default_factory=list)  # warnings worth showing with the run


def prepare_lookups(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CREATE OR REPLACE TEMP TABLE _fx_rates (month DATE, currency VARCHAR, rate DOUBLE)")
    conn.execute("CREATE OR REPLACE TEMP TABLE _account_names (source_system VARCHAR, account_id VARCHAR, account_name VARCHAR)")
    conn.execute("CREATE OR REPLACE TEMP TABLE _owner_teams (source_system VARCHAR, owner_id VARCHAR, team VARCHAR)")


class CsvSource:
    name = "csv"

    def __init__(self, folder: Path):
        self.folder = folder
        self.plan = csv_exports.plan_folder(folder)

    def check(self, entity: str) -> None:
        """Fail now, before anything is read or written, when a file of the entity cannot be read."""
        self.plan.files_for(entity)

    def load(self, conn: duckdb.DuckDBPyConnection, entity: str, raw_table: str, first=None, last=None,
             reporting_currency=None) -> SourceLoad:
        """Every file is read whole (an export is one file), and only the rows the run can write are typed:
        those of its months, and those that belong to no partition (their rejects are rewritten by every run)."""
        from crm_roi_pipeline.staging.partitions import HISTORY_START, last_partition_month

        prepare_lookups(conn)
        csv_exports.load_fx_rates(conn, self.plan)
        csv_exports.load_lookups(conn, self.plan)
        scope = None
        if first is not None and last is not None:
            scope = csv_exports.MonthScope(first, last, HISTORY_START, last_partition_month())
            if scope.keeps_all:  # a run over every month: testing each row's month would only cost
                scope = None
        files = csv_exports.load_entity(conn, self.plan, entity, raw_table, scope)
        return SourceLoad(
            source=self.name,
            files=[(f.name, f.mapping.kind) for f in files],
            ignored=list(self.plan.ignored),
            loaded=bool(files),
        )


    def check_staged(self, conn: duckdb.DuckDBPyConnection, entity: str, staged_table: str) -> None:
        """Fail, before anything is written, on values that mean a whole file is being misread."""
        csv_exports.fail_on_unreadable(conn, entity, staged_table)


def open_source(name: str, *, csv_dir: Path, salesforce=None, hubspot=None, workdir: Path | None = None):
    if name == "csv":
        return CsvSource(csv_dir)
    if name == "salesforce" and salesforce is not None:
        return salesforce.source(workdir)
    if name == "hubspot" and hubspot is not None:
        return hubspot.source(workdir)
    raise SettingsError(f"CRM_ROI_SOURCE names '{name}', but no {name} resource is configured in the Definitions.")

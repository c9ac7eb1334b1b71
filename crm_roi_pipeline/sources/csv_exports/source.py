"""The `Source` of the CSV folder (CRM_ROI_CSV_DIR)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from crm_roi_pipeline.sources.base import MonthScope, Source, SourceLoad, prepare_lookups
from crm_roi_pipeline.sources.csv_exports.folder import plan_folder
from crm_roi_pipeline.sources.csv_exports.lookups import load_first_responses, load_fx_rates, load_lookups
from crm_roi_pipeline.sources.csv_exports.misread import fail_on_unreadable
from crm_roi_pipeline.sources.csv_exports.reading import load_entity
from crm_roi_pipeline.sources.salesforce.objects import CaseSettings


class CsvSource(Source):
    name = "csv"

    def __init__(self, folder: Path, case: CaseSettings | None = None):
        self.folder = folder
        self.plan = plan_folder(folder, case)

    def check(self, entity: str) -> None:
        """Fail now, before anything is read or written, when a file of the entity cannot be read."""
        self.plan.files_for(entity)

    def load(self, conn: duckdb.DuckDBPyConnection, entity: str, raw_table: str, months: MonthScope,
             reporting_currency: str) -> SourceLoad:
        """Every file is read whole (an export is one file), and only the rows the run can write are typed:
        those of its months, and those that belong to no partition (their rejects are rewritten by every run)."""
        prepare_lookups(conn)
        load_fx_rates(conn, self.plan)
        load_lookups(conn, self.plan)
        notes = load_first_responses(conn, self.plan) if entity == "tickets" else []
        # A run over every month keeps every row: testing each row's month would only cost.
        files = load_entity(conn, self.plan, entity, raw_table, None if months.keeps_all else months)
        if entity == "tickets" and any(f.mapping.kind.startswith("Salesforce Case") for f in files):
            if "casemilestone" not in self.plan.milestones:
                notes.append(
                    "Case.csv has no CaseMilestone.csv beside it: the first response of every case is empty (an org "
                    "without entitlements records none). Export CaseMilestone (and MilestoneType) to measure it."
                )
            if not self.plan.case.csat_field and not any("csat_score" in f.columns for f in files):
                notes.append("Case.csv: no satisfaction score (Salesforce has no standard field; set "
                             "SALESFORCE_CSAT_FIELD and SALESFORCE_CSAT_SCALE_MAX to read one).")
        return SourceLoad(
            source=self.name,
            files=[(f.name, f.mapping.kind) for f in files],
            ignored=list(self.plan.ignored),
            loaded=bool(files),
            notes=notes,
        )

    def context_inputs(self) -> tuple[list[Path], str]:
        """Rates, lookups, milestones and every mapping file of the folder; the Case settings."""
        plan = self.plan
        files = [lookup.path for lookup in plan.lookups] + [path for path, _, _ in plan.milestones.values()]
        files += ([plan.fx_file] if plan.fx_file else []) + sorted(self.folder.glob("*.mapping.yaml"))
        return files, repr(plan.case)

    def check_staged(self, conn: duckdb.DuckDBPyConnection, entity: str, staged_table: str) -> None:
        """Fail, before anything is written, on values that mean a whole file is being misread."""
        fail_on_unreadable(conn, entity, staged_table)

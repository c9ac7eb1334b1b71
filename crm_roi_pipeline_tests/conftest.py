"""Shared test helpers: a real DuckDB file per test, real Dagster materializations, the real fixtures."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, materialize

from crm_roi_pipeline.resources import AssumptionsFile, PipelineSettings, Warehouse
from crm_roi_pipeline.sources.hubspot.resource import HubSpotResource
from crm_roi_pipeline.sources.salesforce.resource import SalesforceResource
from crm_roi_pipeline.staging.assets import staging_assets

REPO = Path(__file__).resolve().parents[1]
# A verbatim copy of ../shared/fixtures (test_fixture_copy.py proves it is still identical), so that the
# suite runs in a clean clone where ../shared is not beside the checkout.
FIXTURES = Path(__file__).parent / "fixtures" / "salesforce_exports"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures" / "salesforce_exports"

ASSUMPTIONS = textwrap.dedent(
    """\
    adoption_date: 2024-01-01
    transition_months: 0
    window_months: 12
    reporting_currency: USD
    gross_margin: 0.7
    discount_rate: 0.1
    horizon_years: 3
    costs:
      - {name: Licences, category: software, recurring: true, amount: 72000}
    deal_types:
      Add-on: expansion
    """
)
# Assumptions for made-up histories (adoption 2024-01, as_of 2025-01-15): fill in the benefit method and extra keys.
HISTORY_ASSUMPTIONS = """\
adoption_date: 2024-01-01
transition_months: 0
window_months: 12
as_of: 2025-01-15
reporting_currency: USD
gross_margin: 0.7
discount_rate: 0.1
horizon_years: 3
benefit_method: {method}
costs:
  - {{name: Licences, category: software, recurring: true, amount: 12000}}
{extra}"""

ALL_MONTHS = {"dagster/asset_partition_range_start": "2015-01-01"}


class Project:
    """A throwaway project: a CSV folder, an assumptions file and a DuckDB file, all under tmp_path."""

    def __init__(self, root: Path):
        self.root = root
        self.csv_dir = root / "csv"
        self.csv_dir.mkdir()
        self.db_path = root / "crm.duckdb"
        self.assumptions = root / "assumptions.yaml"
        self.assumptions.write_text(ASSUMPTIONS)
        self.instance = DagsterInstance.ephemeral()

    def copy_fixture(self, name: str) -> Path:
        for file in (FIXTURES / name).glob("*.csv"):
            shutil.copy(file, self.csv_dir / file.name)
        return self.csv_dir

    def write(self, name: str, text: str) -> Path:
        path = self.csv_dir / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def resources(
        self, source: str = "csv", salesforce: SalesforceResource | None = None, hubspot: HubSpotResource | None = None
    ) -> dict:
        return {
            "warehouse": Warehouse(database=str(self.db_path)),
            "settings": PipelineSettings(source=source, csv_dir=str(self.csv_dir)),
            "assumptions": AssumptionsFile(path=str(self.assumptions)),
            "salesforce": salesforce or SalesforceResource(),
            "hubspot": hubspot or HubSpotResource(),
        }

    def stage(
        self, first: str = "2015-01-01", last: str | None = None, entities=None, raise_on_error: bool = True,
        checks: bool = False, allow_shrink: bool = False,
    ):
        """Materialize the staging assets (all, or `entities`) over a range of months, as one run; with
        `checks`, their asset checks run in the same run; `allow_shrink` as `crm-roi run --allow-shrink`."""
        from crm_roi_pipeline.staging.assets import staging_op
        from crm_roi_pipeline.metrics.completeness import completeness_checks
        from crm_roi_pipeline.staging.checks import staging_checks
        from crm_roi_pipeline.staging.partitions import monthly_partitions

        last = last or monthly_partitions.get_last_partition_key()
        assets = [a for a in staging_assets if entities is None or a.key.path[-1] in entities]
        if checks:
            keys = {a.key for a in assets}
            assets += [c for c in [*staging_checks, *completeness_checks]
                       if c.check_keys and next(iter(c.check_keys)).asset_key in keys]
        return materialize(
            assets,
            resources=self.resources(),
            instance=self.instance,
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
            raise_on_error=raise_on_error,
            run_config={"ops": {staging_op(a.key.path[-1]): {"config": {"allow_shrink": True}} for a in staging_assets
                                if entities is None or a.key.path[-1] in entities}} if allow_shrink else None,
        )

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """A plain DuckDB connection to the file. The file is deliberately named crm.duckdb, which makes the
        catalog name clash with the schema `crm`; attaching it under another name is how users open it too."""
        conn = duckdb.connect()
        conn.execute(f"ATTACH '{self.db_path}' AS w {'(READ_ONLY)' if read_only else ''}")
        conn.execute("USE w")
        return conn

    def query(self, sql: str, params=None) -> list[tuple]:
        with self.connect(read_only=True) as conn:
            return conn.execute(sql, params or []).fetchall()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def failure_message(result) -> str:
    """The user-facing message of the first failed step of a run, as `crm-roi run` prints it."""
    from crm_roi_pipeline.cli import failure_messages

    messages = failure_messages(result)
    assert messages, "the run did not fail"
    return messages[0]

"""Shared test helpers: a real DuckDB file per test, real Dagster materializations, the real fixtures."""

from __future__ import annotations

import os

# NumPy's and SciPy's OpenBLAS run on one thread in the tests (set before NumPy is first imported; a value
# already in the environment is kept): the statistics here work on matrices of a few dozen rows, where a
# second thread only spins. Alone, the ITS and interval tests take as long either way but a third more CPU
# with two threads, which `pytest -n 2`, keeping both cores busy, pays in time (2.3 times as long on a busy
# machine). Processes the slow tests start inherit it.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import contextlib
import functools
import itertools
import json
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

# DuckDB, Dagster and the pipeline are imported where they are used: `pytest -n` imports this file in the
# process that only hands out the tests too, and they took two seconds there before a worker started.

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
SAMPLE = REPO / "data" / "sample"
SAMPLE_ASSUMPTIONS = REPO / "data" / "roi_assumptions.yaml"
# `crm-roi run` has its ephemeral instance record a run's range of months once, not one "planned" event per
# month and asset (cli._planned_events_as_ranges). The tests' instances are ephemeral too, and their runs in
# this process do the same: a fifth of a whole-history run's time. Tests marked slow keep Dagster's default,
# so the CLI, the webserver and `dagster dev` they start see the environment users give them.
PLANNED_EVENTS_AS_RANGES = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


@contextlib.contextmanager
def planned_events_as_ranges():
    """Runs started inside record their range of months once (for fixtures wider than a test)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PLANNED_EVENTS_AS_RANGES, "true")
        yield


@pytest.fixture(autouse=True)
def _planned_events_as_ranges(request):
    if request.node.get_closest_marker("slow"):
        yield
    else:
        with planned_events_as_ranges():
            yield


class Attached:
    """A connection (cursor) of one in-memory DuckDB the tests' own queries share, with a database file
    attached; closing it, or leaving its `with`, detaches the file, so the pipeline's next run can open it.
    A new in-memory DuckDB per query cost ~17 ms, a cursor ~1 ms, and the tests make some 250 of them."""

    _duckdb = None
    _aliases = itertools.count()

    def __init__(self, path: Path, read_only: bool = False):
        import duckdb

        if Attached._duckdb is None:
            Attached._duckdb = duckdb.connect()
        self._alias = f"file_{next(self._aliases)}"
        self._cursor = Attached._duckdb.cursor()
        self._cursor.execute(f"ATTACH '{path}' AS {self._alias} {'(READ_ONLY)' if read_only else ''}")
        self._cursor.execute(f"USE {self._alias}")

    def __getattr__(self, name: str):
        return getattr(self._cursor, name)

    def __enter__(self) -> Attached:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None
            with Attached._duckdb.cursor() as detach:
                detach.execute(f"DETACH DATABASE IF EXISTS {self._alias}")


class Project:
    """A throwaway project: a CSV folder, an assumptions file and a DuckDB file, all under tmp_path."""

    def __init__(self, root: Path):
        self.root = root
        self.csv_dir = root / "csv"
        self.csv_dir.mkdir()
        self.db_path = root / "crm.duckdb"
        self.assumptions = root / "assumptions.yaml"
        self.assumptions.write_text(ASSUMPTIONS)

    @functools.cached_property
    def instance(self) -> DagsterInstance:
        """An ephemeral instance (instances.py), on first use: many tests never start a run."""
        from crm_roi_pipeline_tests.instances import take_instance

        return take_instance()

    def give_back_instance(self) -> None:
        """Hand the instance, wiped, to the next test (the `project` fixture does, after its test)."""
        from crm_roi_pipeline_tests.instances import give_back

        if "instance" in self.__dict__:
            give_back(self.__dict__.pop("instance"))

    def copy_fixture(self, name: str) -> Path:
        for file in (FIXTURES / name).glob("*.csv"):
            shutil.copy(file, self.csv_dir / file.name)
        return self.csv_dir

    def copy_sample(self) -> None:
        """The bundled sample's files and its assumptions, as `crm-roi run` reads them."""
        for file in SAMPLE.glob("*.csv"):
            shutil.copy(file, self.csv_dir / file.name)
        self.assumptions.write_text(SAMPLE_ASSUMPTIONS.read_text())

    def use_database(self, staged: Path) -> None:
        """Start from a copy of a DuckDB file staged once for many tests (a module or session fixture) instead of
        staging the same inputs again; the copy is this project's own to change."""
        assert not Path(f"{staged}.wal").exists(), "the shared database was left open"
        shutil.copy(staged, self.db_path)

    def write(self, name: str, text: str) -> Path:
        path = self.csv_dir / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def resources(
        self, source: str = "csv", salesforce: SalesforceResource | None = None, hubspot: HubSpotResource | None = None
    ) -> dict:
        from crm_roi_pipeline.resources import AssumptionsFile, PipelineSettings, Warehouse
        from crm_roi_pipeline.sources.hubspot.resource import HubSpotResource
        from crm_roi_pipeline.sources.salesforce.resource import SalesforceResource

        return {
            "warehouse": Warehouse(database=str(self.db_path)),
            "settings": PipelineSettings(source=source, csv_dir=str(self.csv_dir)),
            "assumptions": AssumptionsFile(path=str(self.assumptions)),
            "salesforce": salesforce or SalesforceResource(),
            "hubspot": hubspot or HubSpotResource(),
        }

    def stage(
        self, first: str = "2015-01-01", last: str | None = None, entities=None, raise_on_error: bool = True,
        checks: bool | str = False, allow_shrink: bool = False,
    ):
        """Materialize the staging assets (all, or `entities`) over a range of months, as one run; with
        `checks`, their asset checks run in the same run (`checks="all"`: every entity's, the others' on their
        tables as they are); `allow_shrink` as `crm-roi run --allow-shrink`."""
        from dagster import AssetSelection, materialize

        from crm_roi_pipeline.staging.assets import staging_assets, staging_op
        from crm_roi_pipeline.metrics.completeness import completeness_checks
        from crm_roi_pipeline.staging.checks import staging_checks
        from crm_roi_pipeline.staging.partitions import monthly_partitions

        last = last or monthly_partitions.get_last_partition_key()
        assets = [a for a in staging_assets if entities is None or a.key.path[-1] in entities]
        selection = None
        if checks:
            keys = {a.key for a in assets}
            every_check = [c for c in [*staging_checks, *completeness_checks] if c.check_keys]
            if checks == "all":
                selection = AssetSelection.assets(*keys) | AssetSelection.all_asset_checks()
                assets = [*staging_assets, *every_check]
            else:
                assets += [c for c in every_check if next(iter(c.check_keys)).asset_key in keys]
        return materialize(
            assets,
            selection=selection,
            resources=self.resources(),
            instance=self.instance,
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
            raise_on_error=raise_on_error,
            run_config={"ops": {staging_op(a.key.path[-1]): {"config": {"allow_shrink": True}} for a in staging_assets
                                if entities is None or a.key.path[-1] in entities}} if allow_shrink else None,
        )

    def connect(self, read_only: bool = False) -> Attached:
        """A plain DuckDB connection to the file. The file is deliberately named crm.duckdb, which makes the
        catalog name clash with the schema `crm`; attaching it under another name is how users open it too."""
        return Attached(self.db_path, read_only)

    def query(self, sql: str, params=None) -> list[tuple]:
        with self.connect(read_only=True) as conn:
            return conn.execute(sql, params or []).fetchall()


@pytest.fixture
def project(tmp_path: Path):
    project = Project(tmp_path)
    yield project
    project.give_back_instance()


@dataclass
class StagedSample:
    """The bundled sample staged over every month with the checks, as `crm-roi run` stages it. Read `database`,
    never write it: a test that goes on from here copies it (`Project.use_database`)."""

    database: Path
    success: bool  # whether the staging run succeeded (a failed ERROR check fails it)
    failed_checks: dict[tuple[str, str], str]  # (entity, check) -> severity, for each check that did not pass

    def query(self, sql: str, params=None) -> list[tuple]:
        with Attached(self.database, read_only=True) as conn:
            return conn.execute(sql, params or []).fetchall()


@pytest.fixture(scope="session")
def staged_sample(tmp_path_factory, worker_id) -> StagedSample:
    """Staged once per test run, the largest input of the suite (some 48,000 rows): the workers of `pytest -n`
    share it (the first to need it stages it, under a file lock, in the run's folder that holds theirs)."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    root = shared / "staged_sample"
    with FileLock(str(shared / "staged_sample.lock")):
        if not (root / "checks.json").exists():
            root.mkdir()
            project = Project(root)
            project.copy_sample()
            with planned_events_as_ranges():
                result = project.stage(checks=True, raise_on_error=False)
            failed = [[e.asset_key.path[-1], e.check_name, e.severity.value]
                      for e in result.get_asset_check_evaluations() if not e.passed]
            (root / "checks.json").write_text(json.dumps({"success": result.success, "failed": failed}))
    checks = json.loads((root / "checks.json").read_text())
    return StagedSample(root / "crm.duckdb", checks["success"], {(e, c): s for e, c, s in checks["failed"]})


def failure_message(result) -> str:
    """The user-facing message of the first failed step of a run, as `crm-roi run` prints it."""
    from crm_roi_pipeline.cli import failure_messages

    messages = failure_messages(result)
    assert messages, "the run did not fail"
    return messages[0]

"""Reports follow the database: the HTML report and its charts go to `<db dir>/<db file stem>_reports/`
unless CRM_ROI_REPORTS_DIR says otherwise, the Parquet copies to `<db dir>/<db file stem>_published/`, and
every chart and report is written whole to a temporary file and renamed over the old one."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import pytest
from dagster import materialize

from crm_roi_pipeline.metrics.assets import metrics_assets
from crm_roi_pipeline.metrics.uplift_assets import COUNTERFACTUAL_CHART, PLACEBO_CHART, uplift_assets
from crm_roi_pipeline.months import add_months
from crm_roi_pipeline.errors import CrmRoiError
from crm_roi_pipeline.published_files import replace_file
from crm_roi_pipeline.resources import Reports, Warehouse
from crm_roi_pipeline.roi.assets import REPORT_FILE, roi_assets
from crm_roi_pipeline.staging.assets import staging_assets
from crm_roi_pipeline_tests.conftest import HISTORY_ASSUMPTIONS, planned_events_as_ranges
from crm_roi_pipeline_tests.instances import ephemeral_instance

MONTHS = [add_months(dt.date(2021, 1, 1), i) for i in range(48)]  # 36 pre months, 12 post (2024)
CHARTS = ("metrics_monthly.png", COUNTERFACTUAL_CHART, PLACEBO_CHART)


def _write_inputs(folder: Path) -> tuple[Path, Path]:
    """A small history (one won deal a month, a step at adoption) and its assumptions, in `folder`."""
    csv_dir = folder / "csv"
    csv_dir.mkdir()
    lines = ["deal_id,is_closed,is_won,amount,created_at,closed_at"]
    for i, month in enumerate(MONTHS):
        amount = 1_000 + 40 * i + (37 * i) % 90 + (500 if month.year == 2024 else 0)
        lines.append(f"W{i},true,true,{amount},{month}T09:00:00Z,{month + dt.timedelta(days=10)}T09:00:00Z")
        if month.year == 2023:
            lines.append(f"L{i},true,false,100,{month}T09:00:00Z,{month + dt.timedelta(days=20)}T09:00:00Z")
    (csv_dir / "deals.csv").write_text("\n".join(lines) + "\n")
    assumptions = folder / "assumptions.yaml"
    assumptions.write_text(HISTORY_ASSUMPTIONS.format(method="before_after", extra=""))
    return csv_dir, assumptions


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return _write_inputs(tmp_path)


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """A database with the same inputs staged, once for the module: the runs below that start from a copy publish
    exactly what their own staging run would have staged (staging writes nothing beside the database, the reports
    and the Parquet copies come from the publishing assets). Each of the three runs staged 49 months of five
    entities before; two of them now copy this file: ~2 s less."""
    folder = tmp_path_factory.mktemp("staged")
    with pytest.MonkeyPatch.context() as monkeypatch, planned_events_as_ranges():
        _run_pipeline(monkeypatch, _write_inputs(folder), folder / "staged.duckdb", publish=False)
    return folder / "staged.duckdb"


def _run_pipeline(monkeypatch, inputs, database: Path, reports_dir: Path | None = None, staged: Path | None = None,
                  publish: bool = True) -> None:
    """Every asset, in process, with the resources `definitions` builds from the environment; with `staged`, the
    database starts as a copy of that staged file and only the publishing assets run."""
    from crm_roi_pipeline.definitions import resources

    csv_dir, assumptions = inputs
    monkeypatch.setenv("CRM_ROI_DUCKDB_PATH", str(database))
    monkeypatch.setenv("CRM_ROI_CSV_DIR", str(csv_dir))
    monkeypatch.setenv("CRM_ROI_ASSUMPTIONS", str(assumptions))
    monkeypatch.setenv("CRM_ROI_SOURCE", "csv")
    if reports_dir is None:
        monkeypatch.delenv("CRM_ROI_REPORTS_DIR", raising=False)
    else:
        monkeypatch.setenv("CRM_ROI_REPORTS_DIR", str(reports_dir))
    bound = resources()
    instance = ephemeral_instance()
    if staged is None:
        staging = materialize(
            staging_assets, resources=bound, instance=instance,
            tags={"dagster/asset_partition_range_start": "2021-01-01", "dagster/asset_partition_range_end": "2025-01-01"},
        )
        assert staging.success
    else:
        database.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(staged, database)
    if not publish:
        return
    published = materialize([*metrics_assets, *uplift_assets, *roi_assets], resources=bound, instance=instance)
    assert published.success
    report = published.asset_materializations_for_node("roi")[0].metadata["report"].value
    assert Path(report) == (reports_dir or database.parent / f"{database.stem}_reports") / REPORT_FILE


def _snapshot(*folders: Path) -> dict[str, tuple[int, str]]:
    """Every file under the folders: modification time (ns) and content hash."""
    return {
        str(f): (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
        for folder in folders for f in sorted(folder.rglob("*")) if f.is_file()
    }


def test_a_second_database_in_the_same_folder_leaves_the_first_ones_report_and_copies_alone(
    tmp_path, monkeypatch, inputs, staged
):
    first, second = tmp_path / "east.duckdb", tmp_path / "west.duckdb"
    _run_pipeline(monkeypatch, inputs, first, staged=staged)
    reports, published = tmp_path / "east_reports", tmp_path / "east_published"
    assert {f.name for f in reports.iterdir()} == {REPORT_FILE, *CHARTS}  # no temporary file left behind
    assert {"metrics_monthly.parquet", "metrics_adoption.parquet", "metrics_uplift.parquet",
            "roi_summary.parquet"} <= {f.name for f in published.iterdir()}
    assert not list(published.glob("*.partial"))
    before = _snapshot(reports, published)

    # The second database's run is every asset, its staging included.
    _run_pipeline(monkeypatch, inputs, second)
    assert {f.name for f in (tmp_path / "west_reports").iterdir()} == {REPORT_FILE, *CHARTS}
    assert {f.name for f in (tmp_path / "west_published").iterdir()} == {f.name for f in published.iterdir()}
    assert _snapshot(reports, published) == before
    # Nothing in a shared folder: not the old defaults, nothing else beside the two databases.
    assert not (tmp_path / "reports").exists() and not (tmp_path / "published").exists()
    folders = {p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.endswith(".duckdb.tmp")}
    assert folders == {"csv", "east_reports", "east_published", "west_reports", "west_published"}


def test_crm_roi_reports_dir_overrides_the_folder(tmp_path, monkeypatch, inputs, staged):
    database, elsewhere = tmp_path / "db" / "crm.duckdb", tmp_path / "for_finance"
    _run_pipeline(monkeypatch, inputs, database, reports_dir=elsewhere, staged=staged)
    assert {f.name for f in elsewhere.iterdir()} == {REPORT_FILE, *CHARTS}
    assert not (tmp_path / "db" / "crm_reports").exists()
    # The Parquet copies stay beside the database whatever CRM_ROI_REPORTS_DIR says.
    assert (tmp_path / "db" / "crm_published" / "roi_summary.parquet").is_file()


def test_folders_are_named_after_the_database(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_ROI_PROJECT_ROOT", str(tmp_path))
    # The sample's default database, data/crm_roi.duckdb, gets data/crm_roi_reports/ and data/crm_roi_published/.
    assert Reports().path == tmp_path / "data" / "crm_roi_reports"
    assert Warehouse(database="data/crm_roi.duckdb").published_path == tmp_path / "data" / "crm_roi_published"
    assert Reports(database="/srv/crm/q3.duckdb").path == Path("/srv/crm/q3_reports")
    assert Warehouse(database="/srv/crm/q3.duckdb").published_path == Path("/srv/crm/q3_published")
    # CRM_ROI_REPORTS_DIR, relative like every setting, resolves against the project root.
    assert Reports(dir="out/reports", database="/srv/crm/q3.duckdb").path == tmp_path / "out" / "reports"


def test_the_definitions_follow_crm_roi_duckdb_path_unless_reports_dir_is_set(tmp_path, monkeypatch):
    from crm_roi_pipeline.definitions import resources

    monkeypatch.setenv("CRM_ROI_DUCKDB_PATH", str(tmp_path / "a.duckdb"))
    monkeypatch.delenv("CRM_ROI_REPORTS_DIR", raising=False)
    reports = resources()["reports"]
    assert reports.dir is None and reports.database.get_value() == str(tmp_path / "a.duckdb")
    monkeypatch.setenv("CRM_ROI_REPORTS_DIR", str(tmp_path / "r"))
    assert resources()["reports"].dir.env_var_name == "CRM_ROI_REPORTS_DIR"  # through EnvVar, as every setting


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial_one(tmp_path):
    chart = tmp_path / "metrics_monthly.png"
    chart.write_bytes(b"old chart")

    def half_then_disk_full(partial: Path) -> None:
        partial.write_bytes(b"new ch")
        assert chart.read_bytes() == b"old chart"  # the old chart is still there while the new one is written
        raise OSError(28, "No space left on device")

    with pytest.raises(CrmRoiError, match=r"metrics_monthly.png: cannot be written \(No space left on device\); the "
                       r"previous one is kept as it was. Fix: free space"):
        replace_file(chart, half_then_disk_full)
    assert chart.read_bytes() == b"old chart"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics_monthly.png"]

    replace_file(chart, b"new chart")
    replace_file(tmp_path / "sub" / "roi_report.html", "<p>Résumé</p>")
    assert chart.read_bytes() == b"new chart"
    assert (tmp_path / "sub" / "roi_report.html").read_text(encoding="utf-8") == "<p>Résumé</p>"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["metrics_monthly.png", "roi_report.html", "sub"]

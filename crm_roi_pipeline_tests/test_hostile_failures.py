"""Failures outside the data speak the product's language: unreachable CRMs name the URL and the setting, a
damaged, full or misplaced database names the file and what to do, a bad setting names the variable; and
names from the data cannot break the UI's markdown tables. Tiny inputs, no large data."""

from __future__ import annotations

import contextlib
import socket
import subprocess

import duckdb
import pytest
from dagster import materialize

from crm_roi_pipeline.metrics.assets import metrics_adoption, metrics_lead_sources, metrics_monthly
from crm_roi_pipeline.resources import Reports, Warehouse
from crm_roi_pipeline.sources.hubspot.resource import HubSpotResource
from crm_roi_pipeline.sources.salesforce.resource import SalesforceResource
from crm_roi_pipeline.staging.assets import staging_assets
from crm_roi_pipeline_tests.conftest import HISTORY_ASSUMPTIONS, failure_message

DEALS = """\
deal_id,is_closed,is_won,amount,created_at,closed_at,lead_source
D1,true,true,100,2023-06-01T09:00:00Z,2023-06-10T09:00:00Z,Web
D2,true,true,200,2024-06-01T09:00:00Z,2024-06-10T09:00:00Z,Web
"""


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stage(project, resources: dict, entities=("deals",)):
    return materialize(
        [a for a in staging_assets if a.key.path[-1] in entities], resources=resources, instance=project.instance,
        tags={"dagster/asset_partition_range_start": "2024-03-01", "dagster/asset_partition_range_end": "2024-03-01"},
        raise_on_error=False,
    )


def test_hubspot_unreachable_names_the_url_the_setting_and_what_to_check(project):
    url = f"http://127.0.0.1:{_closed_port()}"
    token = "pat-na1-11111111-2222-3333-4444-555555555555"
    hubspot = HubSpotResource(access_token=token, base_url=url, retries=1, backoff_seconds=0, search_rps=0,
                              burst_per_10s=0)
    result = _stage(project, project.resources(source="hubspot", hubspot=hubspot))
    message = failure_message(result)
    assert f"Cannot reach HubSpot at {url} (HUBSPOT_BASE_URL)" in message
    assert "Connection refused" in message and "Check the network or proxy" in message
    assert token not in message


def test_salesforce_unreachable_names_the_login_url(project):
    url = f"http://127.0.0.1:{_closed_port()}"
    salesforce = SalesforceResource(login_url=url, consumer_key="3MVG9key", consumer_secret="s3cret-value",
                                    retries=1, retry_wait_seconds=0)
    result = _stage(project, project.resources(source="salesforce", salesforce=salesforce))
    message = failure_message(result)
    assert f"Cannot reach Salesforce at {url} (SALESFORCE_LOGIN_URL): ConnectionError" in message
    assert "My Domain" in message and "s3cret-value" not in message


def _csv_resources(project, **warehouse) -> dict:
    return {**project.resources(), "warehouse": Warehouse(database=str(project.db_path), **warehouse)}


def test_a_damaged_database_file_says_restore_or_rebuild(project):
    project.write("deals.csv", DEALS)
    project.db_path.write_bytes(b"not a database " * 1000)
    message = failure_message(_stage(project, _csv_resources(project)))
    assert message.startswith(f"crm/deals: {project.db_path}: the database file is damaged or not a DuckDB file")
    assert "restore it from a backup, or move it aside" in message
    assert project.db_path.read_bytes() == b"not a database " * 1000  # left for the user to inspect


def test_an_invalid_memory_limit_names_the_variable(project):
    project.write("deals.csv", DEALS)
    message = failure_message(_stage(project, _csv_resources(project, memory_limit="lots")))
    assert "CRM_ROI_DUCKDB_MEMORY_LIMIT='lots' is not a memory size" in message and "e.g. 1GB" in message


def test_a_file_where_the_database_folder_should_be(project):
    project.write("deals.csv", DEALS)
    blocker = project.root / "blocker"
    blocker.write_text("x")
    resources = {**project.resources(), "warehouse": Warehouse(database=str(blocker / "crm.duckdb"))}
    message = failure_message(_stage(project, resources))
    assert f"{blocker / 'crm.duckdb'}: the database's folder cannot be created" in message


@contextlib.contextmanager
def _small_disk(path, size: str):
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN) to fill a disk")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.slow  # starts `mount` (a process of its own; root only) for a disk of its own
def test_a_full_disk_says_free_space_and_keeps_the_staged_rows(project):
    with _small_disk(project.root / "disk", "4m") as disk:
        resources = {**project.resources(), "warehouse": Warehouse(database=str(disk / "crm.duckdb"), memory_limit="64MB")}
        march = DEALS + "D3,true,true,300,2024-03-05T09:00:00Z,2024-03-06T09:00:00Z,Web\n"
        project.write("deals.csv", march)
        assert _stage(project, resources).success  # March only: D3
        size = (disk / "crm.duckdb").stat().st_size
        # 300,000 more March deals: far more than the 4 MB disk holds once typed and staged.
        rows = "".join(f"X{i},true,true,{i},2024-03-01T09:00:00Z,2024-03-02T09:00:00Z,Web{i % 97}\n" for i in range(300_000))
        (project.csv_dir / "deals.csv").write_text(march + rows)
        message = failure_message(_stage(project, resources))
        assert "the disk is full" in message and "Nothing of this run was written" in message
        assert "free space on that disk" in message
        assert (disk / "crm.duckdb").stat().st_size <= size
        with duckdb.connect() as conn:
            conn.execute(f"ATTACH '{disk / 'crm.duckdb'}' AS w (READ_ONLY)")
            assert conn.execute("SELECT deal_id FROM w.crm.deals").fetchall() == [("D3",)]


def test_names_from_the_data_cannot_break_the_uis_tables(project):
    # A lead source holding a pipe, a newline and markup: each stays in its own cell, shown as typed.
    project.write("deals.csv", DEALS.replace("D2,true,true,200,2024-06-01T09:00:00Z,2024-06-10T09:00:00Z,Web",
                                             'D2,true,true,200,2024-06-01T09:00:00Z,2024-06-10T09:00:00Z,"Paid | *ads*\nQ2"'))
    project.assumptions.write_text(HISTORY_ASSUMPTIONS.format(method="auto", extra=""))
    project.stage(first="2023-01-01", last="2024-12-01")
    result = materialize([metrics_monthly, metrics_adoption, metrics_lead_sources],
                         resources={**project.resources(), "reports": Reports(dir=str(project.root / "reports"))},
                         instance=project.instance)
    table = result.asset_materializations_for_node("metrics__lead_sources")[0].metadata["by_source"].value
    lines = table.splitlines()
    assert all(line.replace("\\|", "").count("|") == 8 for line in lines)  # 7 cells: 8 unescaped pipes
    assert any("Paid \\| \\*ads\\* Q2" in line for line in lines)


def test_a_failed_write_leaves_the_file_no_larger_and_its_data_as_they_were(project):
    from crm_roi_pipeline.resources import GROWTH_WORTH_COMPACTING

    project.write("deals.csv", DEALS)
    project.stage(first="2023-01-01", last="2024-12-01", entities=["deals"])
    size = project.db_path.stat().st_size
    warehouse = Warehouse(database=str(project.db_path))
    with pytest.raises(RuntimeError, match="fails after writing"):
        with warehouse.get_connection() as conn:
            conn.execute("BEGIN TRANSACTION")
            # A million rows: DuckDB writes them into the file before the commit that never comes (~10 MB, past
            # the growth that is worth compacting).
            conn.execute("INSERT INTO crm.rejects (entity, loaded_from, reason) SELECT 'deals', 'csv', md5(range::VARCHAR) FROM range(1000000)")
            assert project.db_path.stat().st_size > size + max(GROWTH_WORTH_COMPACTING, size // 10)
            raise RuntimeError("fails after writing")
    assert project.db_path.stat().st_size <= size
    assert project.query("SELECT deal_id FROM crm.deals ORDER BY 1") == [("D1",), ("D2",)]
    assert project.query("SELECT count(*) FROM crm.rejects") == [(0,)]
    # The compacted file is a whole database: the next run stages into it as before.
    project.stage(first="2023-01-01", last="2024-12-01", entities=["deals"])
    assert project.query("SELECT count(*) FROM crm.deals") == [(2,)]


@pytest.mark.slow  # starts `mount` (a process of its own; root only) for a disk of its own
def test_a_read_only_database_says_who_needs_write_access(project):
    with _small_disk(project.root / "disk", "4m") as disk:
        resources = {**project.resources(), "warehouse": Warehouse(database=str(disk / "crm.duckdb"))}
        project.write("deals.csv", DEALS)
        assert _stage(project, resources).success
        # Read-only for everyone, root included: the file system itself.
        if subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount the tmpfs read-only here")
        message = failure_message(_stage(project, resources))
        assert "cannot write it or its folder" in message and "Read-only file system" in message
        assert "give the user running the pipeline write access" in message

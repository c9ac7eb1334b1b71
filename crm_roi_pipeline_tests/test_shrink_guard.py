"""The shrink guard: a staging run that would leave under half of a source's rows of its months (or none)
stops before writing, naming the file and the counts, unless the user allows it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dagster import materialize

from crm_roi_pipeline.staging.assets import shrink_problem, staging_assets, staging_op
from crm_roi_pipeline_tests.conftest import failure_message

HEADER = "deal_id,is_closed,is_won,amount,created_at,closed_at\n"


def _deals(n: int) -> str:
    """n won deals created in 2024 (one a day from 2024-01-01, so months 2024-01 … as many as needed)."""
    return HEADER + "".join(
        f"D{i},true,true,100,2024-{1 + i // 28:02d}-{1 + i % 28:02d}T09:00:00Z,2024-{1 + i // 28:02d}-{1 + i % 28:02d}T10:00:00Z\n"
        for i in range(n)
    )


def _count(project) -> int:
    return project.query("SELECT count(*) FROM crm.deals")[0][0]


@pytest.mark.parametrize(("before", "after", "stops"), [
    (60, 0, True), (60, 29, True),  # all gone; 29 of 60 is under half
    (60, 30, False), (60, 60, False),  # exactly half stays; nothing lost
    (10, 0, True),  # every row gone stops whatever the number
    (10, 3, False),  # under 50 rows, losing most is ordinary churn of a small source
    (0, 0, False),
])
def test_the_rule(before, after, stops):
    assert shrink_problem(before, after) is stops


def test_a_header_only_export_after_a_good_run_leaves_the_rows_and_names_the_file(project):
    project.write("deals.csv", _deals(60))
    project.stage(first="2024-01-01", last="2024-12-01", entities=["deals"])
    assert _count(project) == 60
    project.write("deals.csv", HEADER)
    result = project.stage(first="2024-01-01", last="2024-12-01", entities=["deals"], raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert message.startswith("crm/deals: this run would leave 0 of the 60 rows the csv source has in "
                              "2024-01 … 2024-12 (read from: deals.csv). Nothing was written.")
    assert "crm-roi run --allow-shrink" in message and "allow_shrink: true" in message
    assert _count(project) == 60


def test_under_half_stops_and_half_goes_through(project):
    project.write("deals.csv", _deals(60))
    project.stage(first="2024-01-01", last="2024-12-01", entities=["deals"])
    project.write("deals.csv", _deals(29))
    assert not project.stage(first="2024-01-01", last="2024-12-01", entities=["deals"], raise_on_error=False).success
    assert _count(project) == 60
    project.write("deals.csv", _deals(30))
    project.stage(first="2024-01-01", last="2024-12-01", entities=["deals"])
    assert _count(project) == 30


def test_a_removed_export_stops_too(project):
    path = project.write("deals.csv", _deals(5))
    project.stage(first="2024-01-01", last="2024-12-01", entities=["deals"])
    path.unlink()
    result = project.stage(first="2024-01-01", last="2024-12-01", entities=["deals"], raise_on_error=False)
    assert "would leave 0 of the 5 rows" in failure_message(result) and "(read from: no deals input)" in failure_message(result)
    assert _count(project) == 5


def test_allow_shrink_in_the_run_config_lets_it_through(project):
    project.write("deals.csv", _deals(60))
    project.stage(first="2024-01-01", last="2024-12-01", entities=["deals"])
    project.write("deals.csv", HEADER)
    deals = [a for a in staging_assets if a.key.path[-1] == "deals"]
    result = materialize(
        deals, resources=project.resources(), instance=project.instance,
        run_config={"ops": {staging_op("deals"): {"config": {"allow_shrink": True}}}},
        tags={"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-12-01"},
    )
    assert result.success and _count(project) == 0


@pytest.mark.slow  # starts the CLI in a process of its own, as a user does
def test_the_cli_exits_1_and_allow_shrink_lets_it_through(project):
    project.write("deals.csv", _deals(60))
    project.stage(first="2024-01-01", last="2024-12-01", entities=["deals"])
    project.write("deals.csv", HEADER)
    env = {**os.environ, "CRM_ROI_SOURCE": "csv", "CRM_ROI_CSV_DIR": str(project.csv_dir),
           "CRM_ROI_DUCKDB_PATH": str(project.db_path), "CRM_ROI_ASSUMPTIONS": str(project.assumptions)}
    command = [sys.executable, "-m", "crm_roi_pipeline.cli", "run", "--from", "2024-01", "--to", "2024-12", "-q",
               "--ephemeral"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    assert "crm-roi: FAILED crm/deals: this run would leave 0 of the 60 rows" in refused.stderr
    assert _count(project) == 60
    allowed = subprocess.run([*command, "--allow-shrink"], env=env, capture_output=True, text=True, timeout=300)
    assert "would leave" not in allowed.stderr
    assert _count(project) == 0

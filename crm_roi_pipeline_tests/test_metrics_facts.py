"""metrics/facts: written once per ingestion and read by every metrics asset; never read once behind crm.*."""

from __future__ import annotations

import pytest
from dagster import materialize

from crm_roi_pipeline.metrics import compute
from crm_roi_pipeline.metrics.assets import metrics_adoption, metrics_facts
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline_tests.conftest import HISTORY_ASSUMPTIONS, Project, planned_events_as_ranges

DEALS = """\
deal_id,is_closed,is_won,amount,created_at,closed_at
D0,true,false,500,2022-01-01,2022-01-05
D1,true,true,1200,2023-06-01,2023-06-11
D2,true,true,2400,2024-06-01,2024-06-21
"""


def _materialize(project, assets):
    resources = {**project.resources(), "reports": Reports(dir=str(project.root / "reports"))}
    assert materialize(assets, resources=resources, instance=project.instance).success


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """DEALS staged (2022-01 … 2025-01) and metrics/facts published from them, once; each test goes on from a
    copy (`_from_published`)."""
    project = Project(tmp_path_factory.mktemp("published"))
    project.assumptions.write_text(HISTORY_ASSUMPTIONS.format(method="before_after", extra=""))
    project.write("deals.csv", DEALS)
    with planned_events_as_ranges():
        project.stage(first="2022-01-01", last="2025-01-01")
    _materialize(project, [metrics_facts])
    return project


def _from_published(project, published) -> None:
    """The assumptions, DEALS and the database as `published` left them."""
    project.assumptions.write_text(published.assumptions.read_text())
    project.write("deals.csv", DEALS)
    project.use_database(published.db_path)


def _won_revenue(project) -> tuple[float, float]:
    return project.query("SELECT pre_value, post_value FROM metrics.adoption WHERE metric = 'won_revenue'")[0]


def test_facts_are_published_and_a_stale_copy_is_never_read(project, published):
    _from_published(project, published)
    with project.connect() as conn:
        assert compute.facts_are_current(conn)
    _materialize(project, [metrics_adoption])
    # Data from 2022-01, so both windows are 12 months: 1,200 / 12 a month before, 2,400 / 12 after.
    assert _won_revenue(project) == (pytest.approx(100), pytest.approx(200))
    deals = project.query("SELECT closed_month, is_won, amount, days_to_close, class FROM metrics.fact_deals ORDER BY 1")
    assert [d[3] for d in deals] == [4, 10, 20] and [d[1] for d in deals] == [False, True, True]

    # A deal staged after the facts were written; metrics/adoption alone (as an analyst might) still counts it.
    project.write("deals.csv", DEALS + "D3,true,true,1200,2024-07-01,2024-07-02\n")
    project.stage(first="2024-07-01", last="2024-07-01")
    with project.connect() as conn:
        assert not compute.facts_are_current(conn)
    _materialize(project, [metrics_adoption])
    assert _won_revenue(project) == (pytest.approx(100), pytest.approx(300))
    # The published facts stay as they were until metrics/facts runs again.
    assert project.query("SELECT count(*) FROM metrics.fact_deals") == [(3,)]
    _materialize(project, [metrics_facts])
    with project.connect() as conn:
        assert compute.facts_are_current(conn)
    assert project.query("SELECT count(*) FROM metrics.fact_deals") == [(4,)]


def test_a_restage_that_changes_an_amount_but_no_count_makes_the_facts_stale(project, published):
    _from_published(project, published)
    _materialize(project, [metrics_adoption])
    assert _won_revenue(project) == (pytest.approx(100), pytest.approx(200))
    # The post-window won deal of 2,400 becomes 3,600: the same rows, one amount changed.
    assert "2400" in DEALS
    project.write("deals.csv", DEALS.replace("2400", "3600"))
    # The month of the changed deal (D2, created 2024-06), as a nightly or backfill run restages it: over
    # 2022-01 … 2025-01, Dagster's per-month events made the run ~0.7 s longer for the same rows.
    project.stage(first="2024-06-01", last="2024-06-01")
    with project.connect() as conn:
        assert not compute.facts_are_current(conn)
    _materialize(project, [metrics_adoption])  # alone, as an analyst might: it reads crm.* as it is now
    assert _won_revenue(project) == (pytest.approx(100), pytest.approx(300))


def test_a_staging_run_that_fails_leaves_the_facts_current(project, published):
    _from_published(project, published)
    project.write("deals.csv", "deal_id,is_closed,is_won,amount,created_at,closed_at\n")  # refused: shrink guard
    assert not project.stage(first="2022-01-01", last="2025-01-01", entities=["deals"], raise_on_error=False).success
    with project.connect() as conn:
        assert compute.facts_are_current(conn)

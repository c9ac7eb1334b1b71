"""The metrics are recomputed after any ingestion: their automation condition requests them once a
staging partition has been written, and not again until the next one."""

from __future__ import annotations

from dagster import AssetKey, Definitions, evaluate_automation_conditions

from crm_roi_pipeline.metrics.assets import metrics_assets
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline.staging.assets import staging_assets

METRICS = {AssetKey(["metrics", n]) for n in ("monthly", "adoption", "lead_sources")}


def _requested(result) -> set[AssetKey]:
    return {key for key in METRICS if result.get_num_requested(key)}


def test_metrics_are_requested_after_a_staged_month_and_only_then(project):
    assets = Definitions(
        assets=[*staging_assets, *metrics_assets],
        resources={**project.resources(), "reports": Reports(dir=str(project.root / "reports"))},
    )
    first = evaluate_automation_conditions(defs=assets, instance=project.instance)
    assert _requested(first) == set()  # nothing staged yet, nothing to recompute

    project.write("deals.csv", """
        deal_id,stage,is_closed,is_won,amount,created_at,closed_at
        D1,Closed Won,true,true,100,2024-03-05,2024-03-20
    """)
    project.stage("2024-03-01", "2024-03-01")  # one month, as an analyst would from the UI
    second = evaluate_automation_conditions(defs=assets, instance=project.instance, cursor=first.cursor)
    # metrics/adoption also waits for metrics/monthly (its dependency) to be requested in the same tick.
    assert _requested(second) == METRICS

    third = evaluate_automation_conditions(defs=assets, instance=project.instance, cursor=second.cursor)
    assert _requested(third) == set()


def test_metrics_are_requested_every_night_even_when_nothing_was_staged(project):
    """An unchanged export stages nothing (staging/plan.py), but the windows move with as_of: the nightly
    refresh's tick (02:00 UTC) requests the metrics anyway, once."""
    import datetime as dt

    assets = Definitions(
        assets=[*staging_assets, *metrics_assets],
        resources={**project.resources(), "reports": Reports(dir=str(project.root / "reports"))},
    )
    at = dt.datetime(2030, 6, 1, 1, 0, tzinfo=dt.timezone.utc)
    empty = evaluate_automation_conditions(defs=assets, instance=project.instance, evaluation_time=at)
    project.write("deals.csv", "deal_id,is_won,created_at\nD1,false,2024-03-05\n")
    project.stage("2024-03-01", "2024-03-01")
    first = evaluate_automation_conditions(defs=assets, instance=project.instance, cursor=empty.cursor,
                                           evaluation_time=at + dt.timedelta(minutes=10))
    assert _requested(first) == METRICS  # the staged month, newly
    before_tick = evaluate_automation_conditions(defs=assets, instance=project.instance, cursor=first.cursor,
                                                 evaluation_time=at + dt.timedelta(minutes=30))
    assert _requested(before_tick) == set()
    after_tick = evaluate_automation_conditions(defs=assets, instance=project.instance, cursor=before_tick.cursor,
                                                evaluation_time=at + dt.timedelta(hours=1, minutes=5))
    assert _requested(after_tick) == METRICS
    next_hour = evaluate_automation_conditions(defs=assets, instance=project.instance, cursor=after_tick.cursor,
                                               evaluation_time=at + dt.timedelta(hours=2))
    assert _requested(next_hour) == set()



def _march_staged(project):
    """The staging and metrics assets, their first evaluation (nothing staged), then a deal of March 2024 staged."""
    assets = Definitions(
        assets=[*staging_assets, *metrics_assets],
        resources={**project.resources(), "reports": Reports(dir=str(project.root / "reports"))},
    )
    first = evaluate_automation_conditions(defs=assets, instance=project.instance)
    project.write("deals.csv", "deal_id,is_won,created_at\nD1,false,2024-03-05\n")
    project.stage("2024-03-01", "2024-03-01")
    return assets, first


def _backfill(assets, instance, keys, months):
    """A backfill of `keys` over `months` (None: an unpartitioned asset), as the daemon leaves it between passes."""
    import time

    from dagster._core.execution.backfill import PartitionBackfill

    return PartitionBackfill.from_asset_partitions(
        backfill_id=f"b{len(instance.get_backfills())}", asset_graph=assets.resolve_asset_graph(),
        partition_names=months, asset_selection=keys, backfill_timestamp=time.time(), tags={},
        dynamic_partitions_store=instance, all_partitions=months is None, title=None, description=None,
        run_config=None)


def test_a_staging_run_holds_the_metrics_back_and_a_finished_backfill_not_marked_done_does_not(project, monkeypatch):
    """Dagster's backfill daemon marks a backfill done on its next pass, up to 30 s after the backfill's last run
    ended (a fixed interval). The metrics follow the staged months, not that mark; a staging run still in
    progress does hold them back, since they would read the tables it is writing."""
    from dagster import DagsterEvent, DagsterEventType, DagsterRunStatus

    from crm_roi_pipeline.metrics.assets import STAGING_KEYS
    from crm_roi_pipeline_tests.conftest import PLANNED_EVENTS_AS_RANGES

    # A run in progress is known by its planned events one per month, as a deployment's instance records them.
    monkeypatch.delenv(PLANNED_EVENTS_AS_RANGES)
    assets, first = _march_staged(project)

    # A staging run of that month, created and not finished: the metrics wait for it.
    job = assets.resolve_implicit_global_asset_job_def()
    run = project.instance.create_run_for_job(
        job, asset_selection=frozenset(STAGING_KEYS), tags={"dagster/partition": "2024-03-01"})
    project.instance.report_dagster_event(DagsterEvent(DagsterEventType.RUN_START.value, job.name), run.run_id)
    assert project.instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
    waiting = evaluate_automation_conditions(defs=assets, instance=project.instance, cursor=first.cursor)
    assert _requested(waiting) == set()
    project.instance.report_run_canceled(project.instance.get_run_by_id(run.run_id))

    # The backfill that staged the month, its run ended, still "requested" until the daemon's next pass.
    project.instance.add_backfill(_backfill(assets, project.instance, STAGING_KEYS, ["2024-03-01"]))
    assert [b.status.value for b in project.instance.get_backfills()] == ["REQUESTED"]
    after = evaluate_automation_conditions(defs=assets, instance=project.instance, cursor=waiting.cursor)
    assert _requested(after) == METRICS


def test_a_backfill_that_also_targets_the_facts_holds_back_what_reads_them(project):
    """A backfill of the staged tables and metrics/facts: once its staging run has ended, the tables that read the
    facts wait for the backfill's own run of them, instead of being computed from the facts as they were."""
    from dagster._core.execution.backfill import PartitionBackfill

    from crm_roi_pipeline.metrics.assets import FACTS, STAGING_KEYS

    assets, first = _march_staged(project)
    staging = _backfill(assets, project.instance, STAGING_KEYS, ["2024-03-01"]).asset_backfill_data.target_subset
    facts = _backfill(assets, project.instance, [FACTS], None).asset_backfill_data.target_subset
    both = PartitionBackfill.from_asset_graph_subset(
        backfill_id="both", backfill_timestamp=0.0, tags={}, dynamic_partitions_store=project.instance,
        asset_graph_subset=staging | facts, title=None, description=None, run_config=None)
    project.instance.add_backfill(both)
    held = evaluate_automation_conditions(defs=assets, instance=project.instance, cursor=first.cursor)
    assert _requested(held) == set()
    assert not held.get_num_requested(FACTS)  # the backfill's own

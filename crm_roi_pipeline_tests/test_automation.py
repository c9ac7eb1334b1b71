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

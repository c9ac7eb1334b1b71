"""ERROR checks are blocking on every path that publishes metrics and ROI: in the run that stages the data,
in a later run (a UI materialization, the CLI's second run), and in the automation behind the
refresh_metrics sensor. Nothing is published from data that fails one; the last published figures stay."""

from __future__ import annotations

import datetime as dt

from dagster import AssetKey, Definitions, evaluate_automation_conditions, materialize

from crm_roi_pipeline.metrics.assets import metrics_assets
from crm_roi_pipeline.metrics.uplift_assets import uplift_assets
from crm_roi_pipeline.months import add_months
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline.roi.assets import roi_assets
from crm_roi_pipeline.staging.assets import staging_assets
from crm_roi_pipeline.staging.checks import staging_checks
from crm_roi_pipeline_tests.conftest import HISTORY_ASSUMPTIONS, failure_message

FIRST = dt.date(2022, 1, 1)
MONTHS = [add_months(FIRST, i) for i in range(36)]  # 24 pre months, 12 post
NEGATIVE = "N1,true,true,-2350.00,2024-07-08T10:00:00Z,2024-07-22T10:00:00Z"
PUBLISHING = [*metrics_assets, *uplift_assets, *roi_assets]


def _write(project, bad: bool) -> None:
    lines = ["deal_id,is_closed,is_won,amount,created_at,closed_at"]
    for i, month in enumerate(MONTHS):
        amount = 1_000 + 10 * i + (200 if month.year == 2024 else 0)
        lines.append(f"W{i},true,true,{amount:.2f},{month}T09:00:00Z,{month + dt.timedelta(days=9)}T09:00:00Z")
        lines.append(f"L{i},true,false,100,{month}T09:00:00Z,{month + dt.timedelta(days=20)}T09:00:00Z")
    if bad:
        lines.append(NEGATIVE)
    project.write("deals.csv", "\n".join(lines) + "\n")
    project.assumptions.write_text(HISTORY_ASSUMPTIONS.format(method="auto", extra=""))


def _resources(project) -> dict:
    return {**project.resources(), "reports": Reports(dir=str(project.root / "reports"))}


def _check_named_in(message: str) -> None:
    assert "crm/deals amounts_not_negative" in message, message
    assert "N1" in message  # the row
    assert "Fix: correct the amount" in message  # the fix


def test_in_the_staging_run_the_failed_check_holds_back_the_metrics(project):
    _write(project, bad=True)
    checks = [c for c in staging_checks if next(iter(c.check_keys)).asset_key == AssetKey(["crm", "deals"])]
    deals = [a for a in staging_assets if a.key == AssetKey(["crm", "deals"])]
    result = materialize(
        [*deals, *checks, metrics_assets[0]], resources=_resources(project), instance=project.instance,
        tags={"dagster/asset_partition_range_start": "2022-01-01", "dagster/asset_partition_range_end": "2024-12-01"},
        raise_on_error=False,
    )
    assert not result.success
    _check_named_in(failure_message(result))
    assert project.query("SELECT count(*) FROM information_schema.schemata WHERE schema_name IN ('metrics', 'roi')") == [(0,)]


def test_a_later_run_refuses_to_publish_and_keeps_the_last_figures(project):
    _write(project, bad=False)
    project.stage("2022-01-01", "2024-12-01", checks=True)
    assert materialize(PUBLISHING, resources=_resources(project), instance=project.instance).success
    before = project.query("SELECT figure, value, text FROM roi.summary ORDER BY figure")
    monthly_before = project.query("SELECT * FROM metrics.monthly ORDER BY month")

    _write(project, bad=True)
    staged = project.stage("2024-07-01", "2024-07-01", checks=True, raise_on_error=False)
    assert not staged.success  # the blocking check fails the staging run itself
    # An analyst then materializes the metrics and the ROI from the UI, in a run of their own: refused.
    later = materialize(PUBLISHING, resources=_resources(project), instance=project.instance, raise_on_error=False)
    assert not later.success
    message = failure_message(later)
    assert message.startswith("metrics/facts: crm.* fails 1 ERROR data-quality check(s)")
    _check_named_in(message)
    # The ROI alone (its inputs were published before the bad row arrived): refused too.
    alone = materialize(roi_assets, resources=_resources(project), instance=project.instance, raise_on_error=False)
    assert not alone.success
    _check_named_in(failure_message(alone))
    assert project.query("SELECT figure, value, text FROM roi.summary ORDER BY figure") == before
    assert project.query("SELECT * FROM metrics.monthly ORDER BY month") == monthly_before


def test_the_automation_requests_no_metrics_while_a_blocking_check_fails(project):
    defs = Definitions(assets=[*staging_assets, *metrics_assets], asset_checks=staging_checks,
                       resources=_resources(project))
    first = evaluate_automation_conditions(defs=defs, instance=project.instance)
    _write(project, bad=True)
    project.stage("2024-07-01", "2024-07-01", checks=True, raise_on_error=False)
    blocked = evaluate_automation_conditions(defs=defs, instance=project.instance, cursor=first.cursor)
    assert blocked.get_num_requested(AssetKey(["metrics", "facts"])) == 0
    assert blocked.get_num_requested(AssetKey(["metrics", "monthly"])) == 0
    # The export is fixed and the month staged again: the checks pass and the metrics follow.
    _write(project, bad=False)
    project.stage("2024-07-01", "2024-07-01", checks=True)
    fixed = evaluate_automation_conditions(defs=defs, instance=project.instance, cursor=blocked.cursor)
    assert fixed.get_num_requested(AssetKey(["metrics", "facts"])) == 1


def test_failed_checks_of_two_tables_are_each_told_once(project):
    # A negative won amount and a negative spend (amounts_not_negative of crm/deals and of crm/spend): two check
    # steps fail, and the run's messages name each failed check once, not once per failed step.
    _write(project, bad=True)
    project.write("spend.csv", "month,category,amount\n2024-07-01,marketing,-500\n")
    result = project.stage("2024-07-01", "2024-07-01", entities=["deals", "spend"], checks=True, raise_on_error=False)
    assert not result.success
    from crm_roi_pipeline.cli import failure_messages

    messages = failure_messages(result)
    assert sorted(m.split(" (ERROR check")[0] for m in messages) == ["crm/deals amounts_not_negative",
                                                                     "crm/spend amounts_not_negative"], messages

"""Prune old run history from the Dagster instance ($DAGSTER_HOME/dagster.yaml, e.g. the PostgreSQL one) without
losing what the UI and the sensors rely on.

    .venv/bin/python deploy/postgres/prune_runs.py --older-than-days 90          # lists what it would delete
    .venv/bin/python deploy/postgres/prune_runs.py --older-than-days 90 --yes    # deletes it

Deleted: finished runs (succeeded, failed or canceled) created more than N days ago, with their event logs.
Kept, whatever their age: every run that holds the latest materialization of an asset or of one of its months
(deleting it would show that month as never materialized, and crm.* was not emptied), and runs still queued or
under way. `dagster run delete RUN_ID` deletes one run; `dagster run wipe` deletes every one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys


def kept_run_ids(instance) -> set[str]:
    """Runs holding the latest materialization of an asset (of each partition, for a partitioned asset)."""
    from dagster import AssetKey
    from dagster._core.event_api import EventRecordsFilter
    from dagster._core.events import DagsterEventType

    kept: set[str] = set()
    event = DagsterEventType.ASSET_MATERIALIZATION
    for key in instance.get_asset_keys():
        key = AssetKey.from_coercible(key)
        storage_ids = list(instance.event_log_storage.get_latest_storage_id_by_partition(key, event).values())
        for start in range(0, len(storage_ids), 500):
            chunk = storage_ids[start:start + 500]
            records = instance.get_event_records(
                EventRecordsFilter(event_type=event, asset_key=key, storage_ids=chunk), limit=len(chunk))
            kept.update(record.run_id for record in records)
        latest = instance.get_latest_materialization_event(key)
        if latest is not None:
            kept.add(latest.run_id)
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--older-than-days", type=float, required=True, help="delete runs created before this many days ago")
    parser.add_argument("--yes", action="store_true", help="delete (without it, only list what would be deleted)")
    args = parser.parse_args(argv)

    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    from crm_roi_pipeline.errors import CrmRoiError

    try:
        instance = DagsterInstance.get()
    except CrmRoiError as exc:  # the database cannot be reached: a plain message
        print(f"prune_runs: {exc}", file=sys.stderr)
        return 2
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=args.older_than_days)
    finished = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
    old = instance.get_run_records(filters=RunsFilter(created_before=cutoff, statuses=finished))
    kept = kept_run_ids(instance)
    doomed = [record for record in old if record.dagster_run.run_id not in kept]
    verb = "deleting" if args.yes else "would delete"
    for record in doomed:
        run = record.dagster_run
        print(f"prune_runs: {verb} run {run.run_id} ({run.job_name}, {run.status.value}, "
              f"created {record.create_timestamp:%Y-%m-%d %H:%M} UTC)")
        if args.yes:
            instance.delete_run(run.run_id)
    print(f"prune_runs: {len(doomed)} of {len(old)} finished runs created before {cutoff:%Y-%m-%d %H:%M} UTC "
          f"{'deleted' if args.yes else 'to delete (run again with --yes)'}; "
          f"{len(old) - len(doomed)} kept: they hold an asset's latest materialization")
    return 0


if __name__ == "__main__":
    sys.exit(main())

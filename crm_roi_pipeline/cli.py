"""`crm-roi`: run the pipeline without the Dagster UI (a newcomer's first command, or a cron job).

`crm-roi run` materializes the same `Definitions` the UI loads, as one run per job over the chosen months,
prints progress and a summary, and exits non-zero with the error's own message when anything fails.
Exit codes: 0 done; 1 a run failed (the message says which asset and why); 2 bad settings or arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import textwrap
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from crm_roi_pipeline.errors import CrmRoiError

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_SETTINGS = 0, 1, 2


def _month(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value + "-01" if len(value) == 7 else value).replace(day=1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a month; write YYYY-MM, e.g. 2024-01") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-roi", description="Did the CRM pay off? Stage CRM data and measure it.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="stage the months whose input changed since they were staged (or --from/--to, or --full), then "
        "recompute the metrics and the ROI")
    run.add_argument("--from", dest="first", type=_month, help="first month, YYYY-MM (default: CRM_ROI_HISTORY_START)")
    run.add_argument("--to", dest="last", type=_month, help="last month, YYYY-MM (default: the current month)")
    run.add_argument("--full", action="store_true",
                     help="stage every month, changed or not (default: only months whose export changed)")
    run.add_argument("-q", "--quiet", action="store_true", help="print only the summary and errors")
    run.add_argument("--ephemeral", action="store_true",
                     help="keep this run's Dagster records in memory only (default: the project's instance, "
                          "$DAGSTER_HOME or dagster_home/, which the UI reads)")
    run.add_argument("--allow-shrink", action="store_true",
                     help="let staging remove more than half of a source's rows of the months (a smaller export on "
                          "purpose); without it such a run stops before writing")
    sample = sub.add_parser("sample", help="write the synthetic sample dataset (any size, deterministic)")
    sample.add_argument("--out", default="data/sample", help="folder to write (default data/sample)")
    sample.add_argument("--deals", type=int, default=5000, help="number of deals (default 5000, the bundled sample)")
    sample.add_argument("--seed", type=int, default=7)
    init = sub.add_parser(
        "init", help="write a commented assumptions file to fill in for your own data (never over an existing file)"
    )
    init.add_argument("path", help="the YAML file to write, e.g. roi_assumptions.yaml (relative to this folder)")
    return parser


def _partition_range(first: dt.date | None, last: dt.date | None) -> tuple[str, str]:
    from crm_roi_pipeline.staging.partitions import monthly_partitions

    keys = monthly_partitions.get_partition_keys()
    start = first.isoformat() if first else keys[0]
    end = last.isoformat() if last else keys[-1]
    for label, key in (("--from", start), ("--to", end)):
        if key not in keys:
            raise CrmRoiError(
                f"{label} {key[:7]} is outside the partitions {keys[0][:7]} … {keys[-1][:7]} "
                f"(CRM_ROI_HISTORY_START to the current month)."
            )
    if start > end:
        raise CrmRoiError(f"--from {start[:7]} is after --to {end[:7]}.")
    return start, end


def failure_messages(result) -> list[str]:
    """The user's error message of each failed step of a run, prefixed with the asset; a failed blocking ERROR
    check told by its own result (alerts.failure_messages, which the alerts send too)."""
    from crm_roi_pipeline.alerts import failure_messages as messages_of

    return messages_of(result.all_events)


@contextmanager
def _planned_events_as_ranges():
    """A run over many months records one "planned" event per month and asset (572 for the whole history)
    unless Dagster is told to record the range once (DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS). The
    catch Dagster names, failed months not marked failed in the UI, cannot matter for an ephemeral instance
    (`--ephemeral`), which keeps no record past this command; the project's instance keeps Dagster's default. It buys 0.8 s of
    the ~11 s warm sample run (benchmarks/sample_run.py, 9 interleaved runs: median paired difference)."""
    name = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
    before = os.environ.get(name)
    os.environ[name] = "true"
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def instance_home() -> Path:
    """The folder of the Dagster instance `crm-roi run` records its runs in: the one the UI reads, so a run
    from the command line shows there. `$DAGSTER_HOME`, else the project's `dagster_home/`."""
    from crm_roi_pipeline.project import resolve_path

    return resolve_path(os.environ.get("DAGSTER_HOME") or "dagster_home")


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it lies below it, as the user would type it."""
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def project_instance():
    from dagster import DagsterInstance
    from dagster._core.errors import DagsterInvalidConfigError

    home = instance_home()
    home.mkdir(parents=True, exist_ok=True)
    try:
        return DagsterInstance.from_config(str(home))
    except DagsterInvalidConfigError as exc:  # e.g. deploy/postgres/dagster.yaml without DAGSTER_PG_URL
        reasons = "; ".join(_config_reason(error.message) for error in exc.errors) or str(exc).splitlines()[0]
        raise CrmRoiError(f"{home / 'dagster.yaml'}: the Dagster instance settings cannot be read: {reasons}. Nothing "
                          "was run. Fix: set the variable it names, or run with --ephemeral.") from None


def _config_reason(message: str) -> str:
    """One line of Dagster's config error: an unset variable by its name, else the message's first line."""
    import re

    unset = re.search(r'environment variable "([^"]+)" which is not set', message)
    return f"{unset.group(1)} is not set" if unset else message.strip().splitlines()[0]


def cmd_run(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from crm_roi_pipeline.alerting import alert_failed_cli_run
    from crm_roi_pipeline.resources import AssumptionsFile, initialized
    from crm_roi_pipeline.settings import env_setting
    from crm_roi_pipeline.sources.registry import parse_sources

    # Settings are checked here too, so a typo costs a second rather than a Dagster run.
    sources = parse_sources(env_setting("CRM_ROI_SOURCE"))
    AssumptionsFile(path=env_setting("CRM_ROI_ASSUMPTIONS")).load()
    from crm_roi_pipeline.definitions import defs
    from crm_roi_pipeline.staging.jobs import METRICS_JOB, STAGING_JOB
    from crm_roi_pipeline.sources.fields import ENTITIES
    from crm_roi_pipeline.staging.assets import staging_op

    if "salesforce" in sources:
        defs.resources["salesforce"].credentials().require()
    if "hubspot" in sources:
        defs.resources["hubspot"].credentials().require()

    start, end = _partition_range(args.first, args.last)
    if not args.quiet:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("  %(message)s"))
        progress = logging.getLogger("crm_roi.progress")
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)
    ephemeral = args.ephemeral
    instance = DagsterInstance.ephemeral() if ephemeral else project_instance()
    planned = not (args.first or args.last or args.full)
    months_text = "the months that changed" if planned else f"months {start[:7]} … {end[:7]}"
    print(f"crm-roi: {months_text}, sources {env_setting('CRM_ROI_SOURCE')}, database {env_setting('CRM_ROI_DUCKDB_PATH')}")
    print("crm-roi: runs recorded in memory only (--ephemeral)" if ephemeral else
          f"crm-roi: runs recorded in the Dagster instance {_shown(instance_home())} (the UI shows them with DAGSTER_HOME "
          "set to it)")
    summary: dict[str, list] = {}  # asset -> [staged, rejected, rows now], summed over the staging runs
    headline = None
    checks: list[tuple[str, str, str]] = []
    runs: list[tuple[str, tuple[str, str] | None]] = []  # (job, its range of months, for the staging job)
    resources = initialized(defs.resources)  # for the planning and the memory of what was published
    if not planned:
        runs.append((STAGING_JOB, (start, end)))
    else:
        from crm_roi_pipeline.staging.plan import plan_staging

        plan = plan_staging(resources["warehouse"], resources["settings"], resources["assumptions"], resources)
        print(f"crm-roi: {plan.describe()}")
        runs += [(STAGING_JOB, months) for months in plan.ranges()]
        if not plan.ranges():
            print("crm-roi: no month to stage (crm-roi run --full restages every month)")
            remembered = _recall(resources)
            if remembered is not None:
                published_at, outcome = remembered
                print(f"crm-roi: metrics and ROI are current: published {published_at:%Y-%m-%d %H:%M} UTC from the same "
                      "staged data, assumptions, as_of day and code; nothing to recompute")
                _print_outcome(outcome, env_setting("CRM_ROI_DUCKDB_PATH"),
                               title=f"What the run of {published_at:%Y-%m-%d %H:%M} UTC staged and published:")
                return EXIT_OK
    runs.append((METRICS_JOB, None))
    for job_name, months in runs:
        job = defs.resolve_job_def(job_name)
        began = time.monotonic()
        tags = {"crm_roi/launched_by": "crm-roi run"}
        if months is not None:
            tags |= {"dagster/asset_partition_range_start": months[0], "dagster/asset_partition_range_end": months[1]}
        run_config = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        if args.allow_shrink and job.partitions_def is not None:
            run_config["ops"] = {staging_op(entity): {"config": {"allow_shrink": True}} for entity in ENTITIES}
        with _planned_events_as_ranges() if ephemeral else nullcontext():
            result = job.execute_in_process(
                instance=instance,
                tags=tags,
                run_config=run_config,
                raise_on_error=False,
            )
        if not result.success:
            for message in failure_messages(result) or ["the run failed; see the Dagster run logs"]:
                print(f"crm-roi: FAILED {message}", file=sys.stderr)
            alert_failed_cli_run(result)  # CRM_ROI_ALERT_WEBHOOK; the sensor leaves runs of crm-roi run to this
            return EXIT_RUN_FAILED
        for event in result.all_events:
            if event.event_type_value == "ASSET_CHECK_EVALUATION":
                check = event.event_specific_data
                if not check.passed:
                    checks.append((check.severity.value, f"{check.asset_key.to_user_string()} {check.check_name}",
                                   check.description or ""))
        seen = set()
        for event in result.get_asset_materialization_events():
            if event.asset_key.to_user_string() == "roi/summary":
                headline = event.materialization.metadata
            # A run over a range of months reports one materialization per month, with the same metadata.
            if event.asset_key in seen:
                continue
            seen.add(event.asset_key)
            meta = event.materialization.metadata
            row = summary.setdefault(event.asset_key.to_user_string(), [None, None, None])
            for i, key in enumerate(("rows_staged", "rows_rejected")):
                if key in meta:
                    row[i] = (row[i] or 0) + meta[key].value
            if "dagster/row_count" in meta:
                row[2] = meta["dagster/row_count"].value
        span = "" if months is None else f" for {months[0][:7]} … {months[1][:7]}"
        print(f"crm-roi: {job_name}{span} done in {time.monotonic() - began:.1f}s (run {result.run_id[:8]})")
    outcome = {
        "summary": [[name, *row] for name, row in summary.items()],
        "headline": headline["headline_text"].value.splitlines() if headline is not None else [],
        "report": headline["report"].value if headline is not None else None,
        "checks": checks,
    }
    _remember(resources, outcome)
    _print_outcome(outcome, env_setting("CRM_ROI_DUCKDB_PATH"))
    return EXIT_OK


def _publication(resources: dict, conn):
    """The key of what the metrics and ROI would be computed from now (last_run.py)."""
    from crm_roi_pipeline.last_run import publication_key
    from crm_roi_pipeline.roi.assets import REPORT_FILE

    parsed = resources["assumptions"].load()
    as_of = parsed.as_of or dt.datetime.now(dt.timezone.utc).date()
    report = resources["reports"].path / REPORT_FILE
    return publication_key(conn, Path(resources["assumptions"].path), as_of, report), report


def _recall(resources: dict):
    """What the last run published, when it was published from what would be computed now and its report is
    still there; else None."""
    from crm_roi_pipeline.last_run import recall

    with resources["warehouse"].get_connection() as conn:
        key, report = _publication(resources, conn)
        remembered = recall(conn, key)
    return remembered if remembered is not None and report.exists() else None


def _remember(resources: dict, outcome: dict) -> None:
    from crm_roi_pipeline.last_run import remember

    with resources["warehouse"].get_connection() as conn:
        key, _ = _publication(resources, conn)
        remember(conn, key, outcome)


def _print_outcome(outcome: dict, database: str, title: str | None = None) -> None:
    """The run's summary, headline and failed checks, as a run prints them and a current one repeats them."""
    summary = outcome["summary"]
    width = max(len(row[0]) for row in summary) if summary else 10
    print(f"\n{title}" if title else "")
    print(f"{'asset':<{width}}  {'staged':>10}  {'rejected':>9}  {'rows now':>10}")
    for name, staged, rejected, rows in summary:
        fmt = lambda v: "" if v is None else f"{v:,}"  # noqa: E731
        print(f"{name:<{width}}  {fmt(staged):>10}  {fmt(rejected):>9}  {fmt(rows):>10}")
    if outcome["headline"]:
        # The roi/summary asset's own headline, line for line: the CLI, the UI and the report say the same.
        print()
        for line in outcome["headline"]:
            print(textwrap.fill(line, width=110, subsequent_indent="  "))
        print(f"Report: {outcome['report']}")
    if outcome["checks"]:
        print("\nData-quality checks that did not pass (details in the Dagster UI, or rerun the asset checks):")
        for severity, name, description in outcome["checks"]:
            print(textwrap.fill(f"{severity:<5} {name}: {description}", width=110, initial_indent="  ",
                                subsequent_indent="        "))
    print(f"\nRejected rows and their reasons: SELECT * FROM crm.rejects  (in {database})")


def cmd_sample(args: argparse.Namespace) -> int:
    from crm_roi_pipeline.project import resolve_path
    from crm_roi_pipeline.sample_data import generate

    counts = generate(resolve_path(args.out), deals=args.deals, seed=args.seed)
    for name, rows in counts.items():
        print(f"{name}: {rows:,} rows")
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    """A starting assumptions file; an existing file is never overwritten (exit 2, nothing written)."""
    import shlex
    from pathlib import Path

    from crm_roi_pipeline.assumptions_template import write_template

    # A path typed on the command line means the working directory's; the export below is absolute, since
    # CRM_ROI_ASSUMPTIONS itself resolves relative paths against the project root.
    path = write_template(Path(args.path).expanduser().absolute())
    print(f"crm-roi: wrote the assumptions file {path}")
    print("Next: fill in adoption_date (the CRM's go-live date), replace the EXAMPLE costs with yours and check")
    print("the other values (each is explained in the file), then:")
    print(f"  export CRM_ROI_ASSUMPTIONS={shlex.quote(str(path))}")
    print("  crm-roi run")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"run": cmd_run, "sample": cmd_sample, "init": cmd_init}[args.command](args)
    except CrmRoiError as exc:
        print(f"crm-roi: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS


if __name__ == "__main__":
    sys.exit(main())

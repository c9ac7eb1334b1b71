"""Where the staging run's time goes: the stage_crm job over every month, in this process, with the time of each
part of staging summed over the five tables.

    .venv/bin/python benchmarks/staging_breakdown.py                     # generates 1,000,000 deals first
    .venv/bin/python benchmarks/staging_breakdown.py --csv-dir DIR       # an existing CSV folder

Parts: reading the files as text (`text_table`), the month fingerprints, building the staged rows
(`build_staged`: typing, the reasons, the rows' input as JSON, duplicates), the inserts into `crm.*` and
`crm.rejects`, and the SQL checks. The rest of the job is Dagster's: the run, one materialization event per
month and table, the checks' results. The parts are timed by wrapping the functions for this process only.
Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv-dir", type=Path)
    parser.add_argument("--deals", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crm_roi_staging_"))
    try:
        csv_dir = args.csv_dir
        if csv_dir is None:
            from crm_roi_pipeline.sample_data import generate

            csv_dir = work / "csv"
            generate(csv_dir, deals=args.deals)
        os.environ.update(CRM_ROI_CSV_DIR=str(csv_dir), CRM_ROI_DUCKDB_PATH=str(work / "crm.duckdb"),
                          CRM_ROI_SOURCE="csv")
        print(breakdown())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def breakdown() -> str:
    from dagster import DagsterInstance

    import crm_roi_pipeline.sources.csv_exports.reading as reading
    import crm_roi_pipeline.staging.assets as assets
    import crm_roi_pipeline.staging.checks as checks
    import crm_roi_pipeline.staging.fingerprints as fingerprints
    import crm_roi_pipeline.staging.writer as writer
    from crm_roi_pipeline.definitions import defs
    from crm_roi_pipeline.staging.partitions import last_partition_month

    seconds: dict[str, float] = collections.defaultdict(float)

    def timed(module, name: str, label: str) -> None:
        original = getattr(module, name)

        @functools.wraps(original)
        def wrapper(*a, **k):
            started = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                seconds[label] += time.perf_counter() - started

        setattr(module, name, wrapper)

    timed(reading, "text_table", "reading the files as text")
    timed(fingerprints, "month_fingerprints", "month fingerprints")
    timed(assets, "build_staged", "building the staged rows")
    timed(writer, "_insert", "inserting into crm.* and crm.rejects")
    timed(assets, "_stage_entity", "staging in all")
    timed(checks, "_result", "SQL checks")
    last = last_partition_month()
    started = time.perf_counter()
    defs.resolve_job_def("stage_crm").execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=True,
        tags={"dagster/asset_partition_range_start": "2015-01-01", "dagster/asset_partition_range_end": f"{last}"},
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})
    job = time.perf_counter() - started
    staged = seconds["staging in all"]
    parts = ("building the staged rows", "inserting into crm.* and crm.rejects", "reading the files as text",
             "month fingerprints")
    lines = [f"stage_crm over every month: {job:.1f} s", f"  staging (the five tables): {staged:.1f} s, of which"]
    lines += [f"    {label:<40} {seconds[label]:5.1f} s" for label in parts]
    lines.append(f"    {'the rest of staging':<40} {staged - sum(seconds[label] for label in parts):5.1f} s")
    lines.append(f"  SQL checks: {seconds['SQL checks']:.1f} s")
    lines.append(f"  Dagster's own (the run, the events of every month and table): {job - staged - seconds['SQL checks']:.1f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Benchmarks: prints a table of measured figures (not a test; nothing here asserts a speed).

    .venv/bin/python benchmarks/run.py                 # 1,000,000 deals, 2M leads, 5M activities
    .venv/bin/python benchmarks/run.py --deals 100000  # a quicker look

Figures:
  floor       DuckDB alone reading the canonical CSV files the run stages into a fresh database file
  full run    `crm-roi run` over every month (staging, checks, metrics, ROI), wall time and peak RSS
  (the main size is measured --repeat times, 3 by default, each full run right after its floor; medians)
  one month   `crm-roi run --from M --to M` on the staged database, and Dagster's own start-up
  metrics     the publish_metrics job alone (metrics.* and roi.*) on the staged database
  APIs        requests per 10,000 records from the fake Salesforce (REST, Bulk 2.0) and HubSpot (search)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict) -> tuple[float, int, str]:
    """Wall seconds and maximum RSS (KiB, from /usr/bin/time -v) of a command."""
    started = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall, rss, proc.stdout


def _spread(values: list[float], digits: int = 1) -> str:
    """The median, and the range when there is more than one value."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def floor(csv_dir: Path, work: Path) -> float:
    db = work / "floor.duckdb"
    db.unlink(missing_ok=True)
    started = time.monotonic()
    with duckdb.connect(str(db)) as conn:
        # Every canonical file the full run stages (tickets.csv since the customer and service figures).
        for name in ("deals", "leads", "activities", "spend", "tickets"):
            if not (csv_dir / f"{name}.csv").exists():
                continue
            # Typed as DuckDB sniffs them; the few planted bad rows are skipped (ignore_errors).
            conn.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{csv_dir / (name + '.csv')}', ignore_errors = true)")
    return time.monotonic() - started


def api_requests(records: int) -> list[tuple[str, int, int, float]]:
    """(path, records, requests, requests per 10,000 records) against the test fakes."""
    import datetime as dt
    import logging

    import trustme

    from crm_roi_pipeline.sources.hubspot.client import HubSpotClient, HubSpotCredentials
    from crm_roi_pipeline.sources.salesforce.client import Credentials, SalesforceClient
    from crm_roi_pipeline_tests.fakes.hubspot import FakeHubSpot
    from crm_roi_pipeline_tests.fakes.salesforce import FakeSalesforce

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fakes' request lines would bury the table
    out = []
    fake = FakeSalesforce(trustme.CA(), bulk_polls_before_complete=1)
    os.environ["REQUESTS_CA_BUNDLE"] = fake.ca_bundle
    try:
        for i in range(records):
            fake.add("Opportunity", Name=f"o{i}", StageName="Prospecting", CreatedDate="2024-03-05T10:00:00.000+0000")
        creds = Credentials(login_url=fake.url, api_version="59.0", consumer_key=fake.consumer_key,
                            consumer_secret=fake.consumer_secret)
        soql = "SELECT Id, Name FROM Opportunity"
        with tempfile.TemporaryDirectory() as tmp:
            client = SalesforceClient(creds, bulk_poll_seconds=0)
            before = len(fake.requests)
            client.rest_to_csv(soql, ["Id", "Name"], Path(tmp) / "rest.csv")
            n = len(fake.requests) - before
            out.append(("Salesforce REST (2,000 a page)", records, n, n / records * 10_000))
            before = len(fake.requests)
            client.bulk_to_csv("Opportunity", soql, Path(tmp) / "bulk")
            n = len(fake.requests) - before
            out.append(("Salesforce Bulk 2.0 (50,000 a page)", records, n, n / records * 10_000))
    finally:
        fake.stop()
    hub = FakeHubSpot(search_rps=None)
    try:
        start = dt.datetime(2024, 3, 1)
        hub.add_many("deals", [{"dealname": f"d{i}", "dealstage": "closedlost",
                                "createdate": (start + dt.timedelta(seconds=60 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
                               for i in range(records)])
        client = HubSpotClient(HubSpotCredentials(hub.token, hub.url), search_rps=None, burst_per_10s=None)
        got = sum(1 for _ in client.search("deals", "createdate", start, start + dt.timedelta(days=90), ["dealname"]))
        assert got == records
        out.append(("HubSpot search (200 a page)", records, client.searches, client.searches / records * 10_000))
    finally:
        hub.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--scaling", default="", help="comma list of extra sizes for the metrics timing, e.g. 100000,5000000")
    parser.add_argument("--api-records", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated data in benchmarks/out")
    parser.add_argument("--repeat", type=int, default=3, help="measurements of the main size; medians are printed")
    args = parser.parse_args()

    from crm_roi_pipeline.sample_data import generate

    work = REPO / "benchmarks" / "out"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows = []
    sizes = [args.deals, *[int(s) for s in args.scaling.split(",") if s]]
    for size in sizes:
        csv_dir = work / f"csv_{size}"
        counts = generate(csv_dir, deals=size)
        db = work / f"db_{size}.duckdb"
        # The report and the Parquet copies land beside each database: db_<size>_reports/, db_<size>_published/.
        env = {**os.environ, "CRM_ROI_CSV_DIR": str(csv_dir), "CRM_ROI_DUCKDB_PATH": str(db), "CRM_ROI_SOURCE": "csv"}
        env.pop("DAGSTER_HOME", None)
        env.pop("CRM_ROI_REPORTS_DIR", None)
        megabytes = sum(f.stat().st_size for f in csv_dir.glob("*.csv")) / 1e6
        # This machine's speed drifts by a third from minute to minute, so the main size is measured
        # `--repeat` times, each full run right after its own floor, and medians are printed.
        repeat = args.repeat if size == args.deals else 1
        floors, fulls, rss = [], [], []
        for _ in range(repeat):
            floors.append(floor(csv_dir, work))
            db.unlink(missing_ok=True)
            full_s, full_rss, _ = timed([str(BIN / "crm-roi"), "run", "-q", "--ephemeral"], env)
            fulls.append(full_s)
            rss.append(full_rss)
        months, month_stages = [], []
        for _ in range(repeat):
            month_s, _, month_out = timed([str(BIN / "crm-roi"), "run", "-q", "--ephemeral", "--from", "2024-03", "--to", "2024-03"], env)
            months.append(month_s)
            # Of which the staging run alone (checks included), as the CLI reports it.
            month_stages.append(float(re.search(r"stage_crm(?: for [^\n]*?)? done in ([0-9.]+)s", month_out).group(1)))
        # The same full run with the partitions starting at the data's first month (54 instead of 143):
        # Dagster records every month of every asset.
        short_s = None
        if size == args.deals:  # the scaling sizes are for the metrics timing
            short_env = {**env, "CRM_ROI_HISTORY_START": "2020-01-01",
                         "CRM_ROI_DUCKDB_PATH": str(work / f"db_{size}_short.duckdb")}
            short_s, _, _ = timed([str(BIN / "crm-roi"), "run", "-q", "--ephemeral"], short_env)
            (work / f"db_{size}_short.duckdb").unlink(missing_ok=True)
        startup_s, _, _ = timed([str(BIN / "python"), "-c", "import crm_roi_pipeline.definitions, dagster"], env)
        # The statistics and charts load on first use (about 1.5 s, once per process), and a Dagster instance
        # takes ~0.7 s to set up; a code server has both after its first run, so they come before the clock.
        code = ("import time, dagster; from crm_roi_pipeline.definitions import defs; "
                "import crm_roi_pipeline.metrics.uplift_tables, crm_roi_pipeline.roi.report; "
                "crm_roi_pipeline.metrics.charts.pyplot(); instance = dagster.DagsterInstance.ephemeral(); "
                "t = time.monotonic(); "
                "r = defs.resolve_job_def('publish_metrics').execute_in_process(instance=instance, raise_on_error=True, "
                "run_config={'loggers': {'console': {'config': {'log_level': 'CRITICAL'}}}}); "
                "print(time.monotonic() - t)")
        metrics = []
        for _ in range(repeat):
            _, _, out = timed([str(BIN / "python"), "-c", code], env)
            metrics.append(float(out.strip().splitlines()[-1]))
        floor_s, full_s, metrics_s = median(floors), median(fulls), median(metrics)
        rows.append((size, counts, megabytes, floor_s, full_s, max(rss), median(months), startup_s, metrics_s,
                     short_s, median(month_stages)))
        print(f"measured {size:,} deals ({repeat} time(s)): floor {_spread(floors)} s, full run {_spread(fulls)} s, "
              f"ratio of each pair {_spread([f / fl for f, fl in zip(fulls, floors)], 2)}, one month {_spread(months)} s "
              f"(staging {_spread(month_stages)} s), metrics {_spread(metrics, 2)} s", flush=True)
        if not args.keep:  # each size's files go once measured: the next size needs the disk
            shutil.rmtree(csv_dir, ignore_errors=True)
            for path in work.glob(f"db_{size}*"):  # the databases, and their _reports/ and _published/ folders
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)

    print(f"\nMachine: {os.cpu_count()} cores; DuckDB memory limit {os.environ.get('CRM_ROI_DUCKDB_MEMORY_LIMIT', '1GB')}")
    print(f"{'deals':>10} {'leads':>10} {'activities':>11} {'CSV MB':>7} {'floor s':>8} {'full run s':>11} "
          f"{'ratio':>6} {'peak RSS MiB':>13} {'1 month s':>10} {'start-up s':>11} {'metrics s':>10} "
          f"{'full from 2020 s':>17} {'ratio':>6} {'1 month staging s':>18}")
    for size, counts, mb, floor_s, full_s, rss, month_s, startup_s, metrics_s, short_s, month_stage_s in rows:
        print(f"{counts['deals.csv'] if 'deals.csv' in counts else size:>10,} {counts.get('leads.csv', 0):>10,} "
              f"{counts.get('activities.csv', 0):>11,} {mb:>7.0f} {floor_s:>8.1f} {full_s:>11.1f} "
              f"{full_s / floor_s:>6.2f} {rss / 1024:>13.0f} {month_s:>10.1f} {startup_s:>11.1f} {metrics_s:>10.2f} "
              + (f"{short_s:>17.1f} {short_s / floor_s:>6.2f}" if short_s else f"{'—':>17} {'—':>6}")
              + f" {month_stage_s:>18.1f}")
    print("\nfull run = staging + checks + metrics + ROI (two Dagster runs, one process); ratio = full run / floor;"
          " 1 month = one month re-staged plus metrics; start-up = importing Dagster and the definitions;"
          " full from 2020 = the full run with CRM_ROI_HISTORY_START=2020-01-01, the data's first month;"
          " 1 month staging = the staging run (with its checks) within the 1-month figure;"
          " metrics = the publish_metrics job in a process that has loaded scipy, statsmodels and matplotlib"
          " and set up its Dagster instance, as a code server has after its first run.")
    print(f"\n{'API path':<38} {'records':>8} {'requests':>9} {'per 10,000':>11}")
    for path, records, requests, per in api_requests(args.api_records):
        print(f"{path:<38} {records:>8,} {requests:>9,} {per:>11.1f}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Where the fixed cost of a run goes: `crm-roi run` on the sample, the second of two runs on one database.

    .venv/bin/python benchmarks/fixed_cost.py                 # in-memory instance, then a persistent one
    .venv/bin/python benchmarks/fixed_cost.py --runs 3        # the warm run repeated, medians printed

For each instance kind it runs the CLI's `main` in this process twice (the first run stages into an empty
database, the second is the warm run measured) and prints the warm run's wall time split into:

- start-up: importing the project's Definitions in a fresh interpreter (measured separately, per run);
- each op (asset or check) from its STEP_START to its STEP_SUCCESS in the run's event log, and inside the
  ops, the time in the pipeline's own parts: staging SQL (read, type, write), statistics (ITS, the second
  opinion, placebo, intervals, time to close), charts, the report;
- Dagster's own bookkeeping: the run's wall time outside every op (planning, events, the run's start and end),
  of which instance writes: the time in the event log storage's `store_event`.

The timers are wrappers this script puts around those functions; the product carries none. Nothing here
asserts a speed: issue 20's targets are read off this output.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]

# (module, function, bucket): the functions timed inside the ops, where they are called from.
TIMED = [
    ("crm_roi_pipeline.sources.csv_exports.source", "CsvSource.load", "staging: read and type the files"),
    ("crm_roi_pipeline.staging.assets", "build_staged", "staging: checks per row (build_staged)"),
    ("crm_roi_pipeline.staging.assets", "replace_months", "staging: write crm.* (replace_months)"),
    ("crm_roi_pipeline.metrics.compute", "build_facts", "metrics: facts"),
    ("crm_roi_pipeline.metrics.evidence", "fit_its", "statistics: interrupted time series"),
    ("crm_roi_pipeline.metrics.evidence", "fit_bsts", "statistics: second opinion (BSTS)"),
    ("crm_roi_pipeline.metrics.evidence", "placebo_test", "statistics: placebo"),
    ("crm_roi_pipeline.metrics.evidence", "adoption_intervals", "statistics: adoption intervals"),
    ("crm_roi_pipeline.metrics.evidence", "time_to_close", "statistics: time to close"),
    ("crm_roi_pipeline.metrics.assets", "monthly_chart", "charts"),
    ("crm_roi_pipeline.metrics.uplift_tables", "counterfactual_chart", "charts"),
    ("crm_roi_pipeline.metrics.uplift_tables", "placebo_chart", "charts"),
    ("crm_roi_pipeline.roi.report", "panels_png", "charts"),
    ("crm_roi_pipeline.roi.report", "cumulative_chart_png", "charts"),
    ("crm_roi_pipeline.roi.assets", "report.render", "report (render, its charts included)"),
]


class Timers:
    def __init__(self):
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.depth: dict[str, int] = collections.defaultdict(int)

    def wrap(self, fn, bucket: str):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self.depth[bucket] += 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth[bucket] -= 1
                if not self.depth[bucket]:  # a nested call of the same bucket is counted once
                    self.seconds[bucket] += time.perf_counter() - started
        return timed


def _install(timers: Timers) -> None:
    import importlib

    for module_name, path, bucket in TIMED:
        owner = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, name, timers.wrap(getattr(owner, name), bucket))


def _startup_seconds() -> float:
    code = "import time; t = time.perf_counter(); import crm_roi_pipeline.definitions; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return float(out.stdout.strip().splitlines()[-1])


def _steps(instance, since: float) -> tuple[dict[str, float], list[tuple[str, float, float]]]:
    """Per op, seconds from STEP_START to STEP_SUCCESS; and each run's (id, start, end) since `since`."""
    from dagster import DagsterEventType

    ops: dict[str, float] = collections.defaultdict(float)
    started: dict[tuple[str, str], float] = {}
    runs = []
    for record in instance.get_runs():
        stats = instance.get_run_stats(record.run_id)
        if stats.start_time and stats.start_time >= since:
            runs.append((record.run_id, stats.start_time, stats.end_time))
    for run_id, _, _ in runs:
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or not event.step_key:
                continue
            key = (run_id, event.step_key)
            if event.event_type == DagsterEventType.STEP_START:
                started[key] = entry.timestamp
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE) and key in started:
                ops[event.step_key] += entry.timestamp - started.pop(key)
    return ops, runs


def run_once(persistent: bool, database: Path, home: Path | None) -> dict:
    """One `crm-roi run` in this process; its wall time and breakdown."""
    from dagster import DagsterInstance

    from crm_roi_pipeline import cli

    env = {
        "CRM_ROI_CSV_DIR": str(REPO / "data" / "sample"),
        "CRM_ROI_ASSUMPTIONS": str(REPO / "data" / "roi_assumptions.yaml"),
        "CRM_ROI_DUCKDB_PATH": str(database),
    }
    if persistent:
        env["DAGSTER_HOME"] = str(home)
    else:
        os.environ.pop("DAGSTER_HOME", None)
    os.environ.update(env)
    timers = Timers()
    _install(timers)
    stores = [0.0]
    captured: list = []
    real_ephemeral, real_from_config = DagsterInstance.ephemeral, DagsterInstance.from_config

    def keep(instance):
        storage = instance._event_storage  # noqa: SLF001 (a benchmark's probe, not product code)
        store = storage.store_event

        def timed_store(event, *a, **k):
            t = time.perf_counter()
            try:
                return store(event, *a, **k)
            finally:
                stores[0] += time.perf_counter() - t
        storage.store_event = timed_store
        captured.append(instance)
        return instance

    DagsterInstance.ephemeral = staticmethod(lambda *a, **k: keep(real_ephemeral(*a, **k)))
    DagsterInstance.from_config = staticmethod(lambda *a, **k: keep(real_from_config(*a, **k)))
    since = time.time()
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = cli.main(["run", "-q"] if persistent else ["run", "-q", "--ephemeral"])
    finally:
        DagsterInstance.ephemeral, DagsterInstance.from_config = real_ephemeral, real_from_config
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"crm-roi run failed ({code}):\n{out.getvalue()[-3000:]}")
    ops, runs = _steps(captured[0], since - 1)  # the CLI's own (resources may make others)
    in_runs = sum((end or 0) - start for _, start, end in runs)
    return {"wall": wall, "ops": dict(ops), "inside": dict(timers.seconds), "runs": in_runs,
            "store_event": stores[0], "run_count": len(runs)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1, help="warm runs to measure per instance kind (medians printed)")
    args = parser.parse_args()
    startup = [_startup_seconds() for _ in range(max(3, args.runs))]
    print(f"start-up (import Definitions in a fresh interpreter): {median(startup):.2f} s, median of {len(startup)}")
    for persistent in (False, True):
        kind = "persistent instance (DAGSTER_HOME, SQLite)" if persistent else "in-memory instance"
        with tempfile.TemporaryDirectory(prefix="crm_roi_fixed_cost_") as work:
            work = Path(work)
            home = work / "dagster_home"
            home.mkdir()
            run_once(persistent, work / "crm.duckdb", home)  # the first run: stages into an empty database
            results = [run_once(persistent, work / "crm.duckdb", home) for _ in range(args.runs)]
        print(f"\n{kind}: warm run {median(r['wall'] for r in results):.2f} s (median of {len(results)}; range "
              f"{min(r['wall'] for r in results):.2f}-{max(r['wall'] for r in results):.2f}), in this process, "
              "start-up excluded")
        ops = collections.defaultdict(list)
        for r in results:
            for name, seconds in r["ops"].items():
                ops[name].append(seconds)
        op_total = median(sum(r["ops"].values()) for r in results)
        print(f"  ops (assets and checks), STEP_START to STEP_SUCCESS: {op_total:.2f} s")
        for name, values in sorted(ops.items(), key=lambda kv: -median(kv[1]))[:14]:
            print(f"    {name:<44} {median(values):6.2f} s")
        inside = collections.defaultdict(list)
        for r in results:
            for name, seconds in r["inside"].items():
                inside[name].append(seconds)
        print("  inside the ops:")
        for name, values in sorted(inside.items(), key=lambda kv: -median(kv[1])):
            print(f"    {name:<44} {median(values):6.2f} s")
        runs = median(r["runs"] for r in results)
        print(f"  Dagster's own bookkeeping (the runs' wall time outside every op): {runs - op_total:.2f} s of "
              f"{runs:.2f} s in {results[0]['run_count']} runs")
        print(f"    of which instance writes (event log store_event): {median(r['store_event'] for r in results):.2f} s")
        outside = median(r["wall"] - r["runs"] for r in results)
        print(f"  the CLI outside the runs (settings, instance, printing): {outside:.2f} s")


if __name__ == "__main__":
    main()

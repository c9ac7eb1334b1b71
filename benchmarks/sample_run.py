"""The warm sample run: `crm-roi run` on data/sample, the second and later of runs in a row on one database. Since
issue 20 that run finds nothing changed (staging/plan.py, last_run.py); `--full` is not used here.

    .venv/bin/python benchmarks/sample_run.py                  # 1 warm-up run, then 5 timed runs
    .venv/bin/python benchmarks/sample_run.py --runs 9
    .venv/bin/python benchmarks/sample_run.py --persistent    # a persistent (SQLite) instance, crm-roi run's default
    .venv/bin/python benchmarks/sample_run.py --code /tmp/before --code .   # before/after, runs interleaved

Prints each run's whole-process wall time, the median and the range per checkout. With several `--code`
checkouts the runs take turns (a, b, a, b, ...), each on its own database, so the machine's drift from minute
to minute falls on all of them alike. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="timed runs after the warm-up run")
    parser.add_argument("--persistent", action="store_true",
                        help="record the runs in a persistent instance (the project's dagster.yaml in a temporary "
                             "DAGSTER_HOME), as `crm-roi run` does by default; without it, `--ephemeral`")
    parser.add_argument("--code", type=Path, action="append",
                        help="a checkout whose crm_roi_pipeline is run (repeat to compare); default this one")
    args = parser.parse_args()
    codes = [c.resolve() for c in args.code or [REPO]]
    work = Path(tempfile.mkdtemp(prefix="crm_roi_sample_run_"))
    times: dict[Path, list[float]] = {code: [] for code in codes}
    try:
        for i in range(args.runs + 1):
            for n, code in enumerate(codes):
                env = {
                    **{k: v for k, v in os.environ.items() if not k.startswith(("CRM_ROI_", "DAGSTER_HOME"))},
                    "PYTHONPATH": str(code),
                    "CRM_ROI_CSV_DIR": str(REPO / "data" / "sample"),
                    "CRM_ROI_ASSUMPTIONS": str(REPO / "data" / "roi_assumptions.yaml"),
                    "CRM_ROI_DUCKDB_PATH": str(work / f"crm_roi_{n}.duckdb"),
                }
                if args.persistent:
                    home = work / f"dagster_home_{n}"
                    home.mkdir(exist_ok=True)
                    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home)
                    env["DAGSTER_HOME"] = str(home)
                started = time.monotonic()
                proc = subprocess.run([str(BIN / "crm-roi"), "run", *([] if args.persistent else ["--ephemeral"])], env=env, capture_output=True, text=True)
                wall = time.monotonic() - started
                if proc.returncode != 0:
                    raise SystemExit(f"{code}: crm-roi run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                                     f"{proc.stderr[-2000:]}")
                print(f"  {code} run {i}{' (warm-up, not counted)' if i == 0 else ''}: {wall:.2f} s", flush=True)
                if i:
                    times[code].append(wall)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for code, walls in times.items():
        kind = "persistent instance" if args.persistent else "in-memory instance (--ephemeral)"
        print(f"{code}: warm sample run, {kind}, {median(walls):.2f} s, median of {len(walls)} (range {min(walls):.2f}–{max(walls):.2f})")


if __name__ == "__main__":
    main()

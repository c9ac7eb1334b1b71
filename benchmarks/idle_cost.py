"""What the deployment costs while nothing happens: the CPU that `dagster dev` (webserver, daemon, code servers)
uses over a stretch of idle time on the sample, and how long each tick of the refresh_metrics sensor takes.

    .venv/bin/python benchmarks/idle_cost.py                # 180 s idle, after 60 s of settling
    .venv/bin/python benchmarks/idle_cost.py --seconds 600

Starts `dagster dev` with the project's dagster.yaml in a temporary DAGSTER_HOME, as test_dagster_dev.py does.
Nothing is staged, so every tick of the sensor evaluates the automation conditions and requests nothing. Nothing
here asserts a figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crm_roi_pipeline_tests.test_dagster_dev import DagsterDev  # noqa: E402


def session_cpu_seconds(session: int) -> float:
    """User and system CPU seconds of every live process in the session (`dagster dev` starts its own)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[3]) == session:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--settle", type=float, default=60, help="seconds to let start-up work finish first")
    args = parser.parse_args()
    from dagster import DagsterInstance

    with tempfile.TemporaryDirectory(prefix="crm_roi_idle_") as root:
        server = DagsterDev(Path(root), REPO / "data" / "sample")
        try:
            time.sleep(args.settle)
            before, since = session_cpu_seconds(server.proc.pid), time.time()
            time.sleep(args.seconds)
            used = session_cpu_seconds(server.proc.pid) - before
            instance = DagsterInstance.from_config(str(server.home))
            ticks = []
            for state in instance.all_instigator_state():
                if state.instigator_name == "refresh_metrics":
                    ticks = [t.end_timestamp - t.timestamp
                             for t in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1000)
                             if t.end_timestamp and t.timestamp >= since]
        finally:
            server.stop()
    tick = f"median {statistics.median(ticks):.2f} s each" if ticks else "none"
    print(f"idle {args.seconds:.0f} s: the deployment's processes used {used:.1f} s of CPU ({used / args.seconds:.1%} "
          f"of one core); refresh_metrics ticked {len(ticks)} times, {tick}")


if __name__ == "__main__":
    main()

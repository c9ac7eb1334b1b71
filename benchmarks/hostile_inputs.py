"""Issue 17's table of hostile or broken inputs and faults, each run through the real CLI (`crm-roi run`, a
process of its own) against a project whose database already holds a good run. For each case it prints
what happened: rejected with a reason, stopped with a clear error, or silently accepted; whether any good
row was lost; whether it hung (300 s); and the process's peak memory. Nothing here asserts.

    .venv/bin/python benchmarks/hostile_inputs.py            # every case (~4 min on 2 cores)
    .venv/bin/python benchmarks/hostile_inputs.py --only nan  # cases whose name contains "nan"

A case counts as "stopped" when the CLI exits non-zero with a message naming the file, URL, setting or
window involved (`expect`), as "rejected" when it exits 0 with a new row in crm.rejects whose reason
contains `expect`, and as "silently accepted" otherwise. Good rows are the 60 deals of the first run; a
case loses one when it is missing afterwards (a case that changes a good row's own line does not count it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

HEADER = "deal_id,is_closed,is_won,amount,created_at,closed_at,lead_source"
GOOD = [f"D{i},true,true,{1000 + 10 * i},{2022 + i // 24}-{1 + i % 12:02d}-05T09:00:00Z,"
        f"{2022 + i // 24}-{1 + i % 12:02d}-20T09:00:00Z,Web" for i in range(60)]
ASSUMPTIONS = """\
adoption_date: 2023-06-01
transition_months: 0
window_months: 12
as_of: 2024-12-31
reporting_currency: USD
gross_margin: 0.7
discount_rate: 0.1
horizon_years: 3
costs:
  - {name: Licences, category: software, recurring: true, amount: 12000}
"""
BILLION_LAUGHS = "entity: deals\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def _deals(*extra: str, header: str = HEADER) -> str:
    return "\n".join([header, *GOOD, *extra]) + "\n"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Case:
    name: str
    expect: str  # a phrase the reject reason or the error message must hold
    files: dict[str, str | bytes | None] = field(default_factory=dict)  # None: a folder of that name
    env: dict[str, str] = field(default_factory=dict)
    assumptions: str | bytes | None = None
    corrupt_db: bool = False
    touches_good_row: bool = False


CASES = [
    Case("closed_at 0001-01-01 on a won deal", "before 1970",
         {"deals.csv": _deals("X1,true,true,500,2024-03-05T09:00:00Z,0001-01-01T00:00:00Z,Web")}),
    Case("closed_at 9999-12-31", "more than a year after",
         {"deals.csv": _deals("X1,true,true,500,2024-03-05T09:00:00Z,9999-12-31T00:00:00Z,Web")}),
    Case("mapping file with nested YAML aliases", "aliases are not accepted", {"deals.mapping.yaml": BILLION_LAUGHS}),
    Case("deals.csv truncated to its header", "would leave 0 of the 60 rows", {"deals.csv": HEADER + "\n"}),
    Case("a folder named deals.csv", "is a folder", {"deals.csv": None}),
    Case("a duplicated header name", "are both named",
         {"deals.csv": _deals(header=HEADER.replace("lead_source", "amount"))}),
    *[Case(f"amount {v}", "amount", {"deals.csv": _deals(f"X1,true,true,{v},2024-03-05T09:00:00Z,2024-03-06T09:00:00Z,Web")})
      for v in ("NaN", "inf", "1e309", "1e308", "-1e308", "1_000")],
    Case("a stray quote", "does not close",
         {"deals.csv": _deals('X1,true,true,"500,2024-03-05T09:00:00Z,2024-03-06T09:00:00Z,Web')}),
    Case("a quote inside a number", "cannot read",
         {"deals.csv": _deals('X1,true,true,5"00,2024-03-05T09:00:00Z,2024-03-06T09:00:00Z,Web')}),
    Case("a short row", "values, but the header has", {"deals.csv": _deals("X1,true,true,500,2024-03-05T09:00:00Z")}),
    Case("a UTF-16 export", "UTF-16", {"deals.csv": _deals().encode("utf-16")}),
    Case("a latin-1 export", "not UTF-8",
         {"deals.csv": _deals("X1,true,true,500,2024-03-05T09:00:00Z,2024-03-06T09:00:00Z,Caf\xe9").encode("latin-1")}),
    Case("a latin-1 mapping file", "is not UTF-8",
         {"deals.mapping.yaml": "entity: deals\n# Caf\xe9\n".encode("latin-1")}),
    Case("a latin-1 assumptions file", "is not UTF-8", assumptions=(ASSUMPTIONS + "# Caf\xe9\n").encode("latin-1")),
    Case("a NUL byte in an id", "NUL byte",
         {"deals.csv": _deals("X\x001,true,true,500,2024-03-05T09:00:00Z,2024-03-06T09:00:00Z,Web")}),
    Case("is_won true but is_closed false", "is_closed 'false'",
         {"deals.csv": _deals("X1,false,true,500,2024-03-05T09:00:00Z,,Web")}),
    Case("adoption after the data with a later as_of", "is empty",
         assumptions=ASSUMPTIONS.replace("adoption_date: 2023-06-01", "adoption_date: 2025-03-01")
         .replace("as_of: 2024-12-31", "as_of: 2026-06-30")),
    Case("HubSpot connection refused", "Cannot reach HubSpot",
         env={"CRM_ROI_SOURCE": "csv,hubspot", "HUBSPOT_ACCESS_TOKEN": "pat-na1-00000000-0000-0000-0000-000000000000",
              "HUBSPOT_BASE_URL": "http://127.0.0.1:{port}"}),
    Case("Salesforce connection refused", "Cannot reach Salesforce",
         env={"CRM_ROI_SOURCE": "csv,salesforce", "SALESFORCE_CONSUMER_KEY": "3MVG9x", "SALESFORCE_CONSUMER_SECRET": "s",
              "SALESFORCE_LOGIN_URL": "http://127.0.0.1:{port}"}),
    Case("a corrupt database file", "damaged", corrupt_db=True),
    Case("an invalid CRM_ROI_DUCKDB_MEMORY_LIMIT", "CRM_ROI_DUCKDB_MEMORY_LIMIT", env={"CRM_ROI_DUCKDB_MEMORY_LIMIT": "lots"}),
]

RUNNER = ("import resource, sys\nfrom crm_roi_pipeline.cli import main\ncode = main(sys.argv[1:])\n"
          "print('peak_rss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(code)\n")


def run_cli(root: Path, env: dict[str, str]) -> tuple[int | None, str, float, int]:
    full = {**os.environ, "CRM_ROI_SOURCE": "csv", "CRM_ROI_CSV_DIR": str(root / "csv"),
            "CRM_ROI_DUCKDB_PATH": str(root / "crm_roi.duckdb"), "CRM_ROI_ASSUMPTIONS": str(root / "assumptions.yaml"),
            **env}
    full.pop("DAGSTER_HOME", None)
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", RUNNER, "run", "--from", "2022-01", "--to", "2024-12", "-q", "--ephemeral"],
                              env=full, capture_output=True, text=True, timeout=300, errors="replace")
    except subprocess.TimeoutExpired:
        return None, "", time.monotonic() - started, 0
    rss = next((int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("peak_rss_kib")), 0)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started, rss


def query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{db}' AS w (READ_ONLY)")
        conn.execute("USE w")
        return conn.execute(sql).fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="hostile_"))
    (base / "csv").mkdir()
    (base / "csv" / "deals.csv").write_text(_deals())
    (base / "assumptions.yaml").write_text(ASSUMPTIONS)
    code, output, seconds, _ = run_cli(base, {})
    assert code == 0, output
    good = set(query(base / "crm_roi.duckdb", "SELECT deal_id FROM crm.deals"))
    print(f"hostile_inputs: baseline run staged {len(good)} good deals in {seconds:.1f}s; each case below starts "
          "from a copy of it")
    rows, tally = [], {"rejected": 0, "stopped": 0, "silently accepted": 0, "hang": 0}
    lost_total, worst = 0, ("", 0)
    for case in CASES:
        if args.only and args.only.lower() not in case.name.lower():
            continue
        root = Path(tempfile.mkdtemp(prefix="case_"))
        shutil.copytree(base, root, dirs_exist_ok=True)
        db = root / "crm_roi.duckdb"
        for name, content in case.files.items():
            path = root / "csv" / name
            if path.exists():
                path.unlink()
            if content is None:
                path.mkdir()
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        if case.assumptions is not None:
            target = root / "assumptions.yaml"
            target.write_bytes(case.assumptions) if isinstance(case.assumptions, bytes) else target.write_text(case.assumptions)
        if case.corrupt_db:
            db.write_bytes(b"not a database " * 1000)
        env = {k: v.format(port=_closed_port()) for k, v in case.env.items()}
        rejects_before = 0 if case.corrupt_db else query(db, "SELECT count(*) FROM crm.rejects")[0][0]
        code, output, seconds, rss = run_cli(root, env)
        if rss > worst[1]:
            worst = (case.name, rss)
        if code is None:
            outcome = "hang"
        elif code != 0:
            outcome = "stopped" if case.expect in output else "stopped, message unclear"
        else:
            reasons = query(db, "SELECT reason FROM crm.rejects")
            new = len(reasons) > rejects_before and any(case.expect in r for (r,) in reasons)
            outcome = "rejected" if new else "silently accepted"
        tally[outcome] = tally.get(outcome, 0) + 1
        lost = 0
        if not case.corrupt_db:
            now = set(query(db, "SELECT deal_id FROM crm.deals"))
            lost = 0 if case.touches_good_row else len(good - now)
        lost_total += lost
        lines = output.splitlines()
        first_line = "" if not code else next((line for line in lines if "FAILED" in line), None) or next(
            (line for line in lines if line.startswith("crm-roi: ")
             and not line.startswith(("crm-roi: months", "crm-roi: the months", "crm-roi: changed since"))), "")
        rows.append((case.name, outcome, lost, f"{seconds:.1f}", f"{rss / 1024:.0f}", first_line[:150]))
        shutil.rmtree(root, ignore_errors=True)
    widths = [max(len(str(r[k])) for r in rows + [("case", "outcome", "good rows lost", "s", "peak MiB", "")])
              for k in range(5)]
    header = ("case", "outcome", "good rows lost", "s", "peak MiB")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  message")
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:5], widths)) + "  " + row[5])
    print(f"\n{len(rows)} cases: " + ", ".join(f"{v} {k}" for k, v in tally.items()) +
          f"; good rows lost: {lost_total}; peak memory of the worst case: {worst[1] / 1024:.0f} MiB ({worst[0]})")
    shutil.rmtree(base, ignore_errors=True)
    print(json.dumps({"cases": len(rows), **tally, "good_rows_lost": lost_total}))


if __name__ == "__main__":
    main()

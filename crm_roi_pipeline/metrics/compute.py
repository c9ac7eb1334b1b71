"""Computing the figures of METRICS.md in DuckDB: facts once, then one aggregation per grouping.

The same `aggregate.sql` serves the monthly series (one bucket per month), the pre/post comparison (two
buckets) and the lead-source comparison (two buckets by source), so a figure cannot mean one thing in one
table and another in the next.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb

from crm_roi_pipeline.metrics.windows import Windows, compute_windows
from crm_roi_pipeline.months import add_months, months_between
from crm_roi_pipeline.settings import Assumptions
from crm_roi_pipeline.sql_files import render_sql

# Every figure, in the order of the contract, with how a window reports it: per month (the window's
# total / N) for counts and sums, pooled over the window for rates, averages and medians.
FIGURES: list[tuple[str, str]] = [
    ("win_count", "per_month"),
    ("loss_count", "per_month"),
    ("win_rate", "pooled"),
    ("won_revenue", "per_month"),
    ("avg_deal_size", "pooled"),
    ("median_days_to_close", "pooled"),
    ("new_customers", "per_month"),
    ("new_business_revenue", "per_month"),
    ("expansion_revenue", "per_month"),
    ("net_new_revenue", "per_month"),
    ("upsell_rate", "pooled"),
    ("spend", "per_month"),
    ("cac", "pooled"),
    ("leads_created", "per_month"),
    ("leads_converted", "per_month"),
    ("lead_conversion_rate", "pooled"),
    ("deals_created", "per_month"),
    ("activities", "per_month"),
    ("activities_per_win", "pooled"),
    # Retention and customer value. The distinct counts are counted once over a window, then / N.
    ("renewals_won", "per_month"),
    ("renewals_lost", "per_month"),
    ("renewal_rate", "pooled"),
    ("churn_rate", "pooled"),
    ("renewal_revenue_rate", "pooled"),
    ("active_customers", "per_month"),
    ("repeat_customers", "per_month"),
    ("repeat_customer_rate", "pooled"),
    ("revenue_per_customer", "pooled"),
    # Service (tickets)
    ("tickets_created", "per_month"),
    ("tickets_closed", "per_month"),
    ("first_response_rate", "pooled"),
    ("median_first_response_hours", "pooled"),
    ("median_resolution_hours", "pooled"),
    ("csat_rate", "pooled"),
]
# Figures of the comparison windows only (metrics.adoption), after those of metrics.monthly.
WINDOW_FIGURES: list[tuple[str, str]] = [("customer_lifetime_value", "pooled")]
ADOPTION_FIGURES = FIGURES + WINDOW_FIGURES
LEAD_SOURCE_FIGURES = [
    "leads_created", "leads_converted", "lead_conversion_rate", "deals_created", "win_count", "win_rate",
    "won_revenue", "avg_deal_size", "spend", "new_customers", "cac", "renewal_rate",
]
BASIS = dict(ADOPTION_FIGURES)
# customer_lifetime_value's revenue per customer is over the 12 months ending with the window's last month,
# whatever N is (METRICS.md): a year's revenue, because its churn rate is read as the share lost a year.
ANNUAL_MONTHS = 12


def today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


FACTS_SCHEMA = "metrics"
FACT_TABLES = ("deals", "leads", "activities", "spend", "tickets")


def staged_stamp(conn: duckdb.DuckDBPyConnection) -> str:
    """What the staged tables were last written by: each staging write comments its crm.* table with its run
    and time (`staging.assets.stamp_staged`) in the same transaction, so the stamp changes with every write,
    whatever it changed, and never with a write that rolled back."""
    return conn.execute(
        "SELECT string_agg(table_name || '=' || coalesce(comment, ''), '; ' ORDER BY table_name) FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'crm' AND table_name IN ("
        + ", ".join(f"'{table}'" for table in FACT_TABLES) + ")"
    ).fetchone()[0] or ""


def build_facts(conn: duckdb.DuckDBPyConnection, temporary: bool = False) -> None:
    """Write the fact tables (metrics.fact_*) from crm.*: the metrics/facts asset, once per ingestion; or,
    `temporary`, as TEMP tables of this connection only. Published facts carry the staged tables' stamp
    they were built from (as fact_deals' comment), which `facts_are_current` compares."""
    if temporary:
        create = "CREATE OR REPLACE TEMP TABLE "
    else:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {FACTS_SCHEMA}")
        create = f"CREATE OR REPLACE TABLE {FACTS_SCHEMA}."
    conn.execute(render_sql("metrics/sql/facts.sql", create=create))
    if not temporary:
        stamp = staged_stamp(conn).replace("'", "''")
        conn.execute(f"COMMENT ON TABLE {FACTS_SCHEMA}.fact_deals IS 'built from: {stamp}'")


def facts_are_current(conn: duckdb.DuckDBPyConnection) -> bool:
    """The fact tables exist and were built from the staged tables as they are now (the stamps match). Row
    counts would not do: a restage that changes an amount but no count would leave old facts looking
    current."""
    if not all(has_table(conn, FACTS_SCHEMA, f"fact_{t}") for t in FACT_TABLES):
        return False
    built_from = conn.execute(
        f"SELECT comment FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = "
        f"'{FACTS_SCHEMA}' AND table_name = 'fact_deals'"
    ).fetchone()
    return bool(built_from) and built_from[0] == f"built from: {staged_stamp(conn)}"


def use_facts(conn: duckdb.DuckDBPyConnection, assumptions: Assumptions) -> bool:
    """Make `_deals`, `_leads`, `_activities`, `_spend` and `_tickets` (what the aggregations read) views over the fact
    tables; where those are missing or behind crm.*, build them for this connection only (TEMP) so a figure
    is never computed from old facts. Returns whether the published facts were used."""
    current = facts_are_current(conn)
    schema = FACTS_SCHEMA
    if not current:
        schema = "temp.main"
        build_facts(conn, temporary=True)
    for table in FACT_TABLES:
        extra = ""
        if table == "leads":
            days = int(assumptions.conversion_window_days)
            extra = f", is_converted AND converted_at <= created_at + INTERVAL ({days}) DAY AS converted_in_window"
        conn.execute(f"CREATE OR REPLACE TEMP VIEW _{table} AS SELECT *{extra} FROM {schema}.fact_{table}")
    return current


def first_data_month(conn: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The earliest month holding a deal's created_at, a deal's closed_at or a lead's created_at.

    Read from crm.* directly (three aggregates), so the windows cost nothing to those that need only them."""
    return conn.execute(
        "SELECT min(m)::DATE FROM (SELECT date_trunc('month', min(created_at)) AS m FROM crm.deals "
        "UNION ALL SELECT date_trunc('month', min(closed_at)) FROM crm.deals "
        "UNION ALL SELECT date_trunc('month', min(created_at)) FROM crm.leads)"
    ).fetchone()[0]


def windows_for(conn: duckdb.DuckDBPyConnection, assumptions: Assumptions) -> Windows:
    windows = compute_windows(
        adoption_date=assumptions.adoption_date,
        transition_months=assumptions.transition_months,
        window_months=assumptions.window_months,
        as_of=assumptions.as_of or today_utc(),
        first_data_month=first_data_month(conn),
    )
    if not windows.n:
        return windows
    # N counts complete months up to as_of, which may lie past the data: a window can be N months long and
    # hold no record. Whether each holds a month with data, by range tests DuckDB answers from min/max
    # statistics of the row groups, not by scanning every row.
    (pre_first, pre_last), (post_first, post_last) = windows.pre, windows.post
    pre, post, last = conn.execute(
        f"SELECT ({_has_data_sql()}), ({_has_data_sql()}), "
        "(SELECT max(m)::DATE FROM (SELECT date_trunc('month', max(created_at)) AS m FROM crm.deals "
        "UNION ALL SELECT date_trunc('month', max(closed_at)) FROM crm.deals "
        "UNION ALL SELECT date_trunc('month', max(created_at)) FROM crm.leads))",
        [pre_first, add_months(pre_last, 1)] * 3 + [post_first, add_months(post_last, 1)] * 3,
    ).fetchone()
    return dataclasses.replace(windows, pre_has_data=pre, post_has_data=post, last_data_month=last)


def _has_data_sql() -> str:
    """True when a month from ? up to, not including, ? holds data as `first_data_month` defines it."""
    return (
        "EXISTS (SELECT 1 FROM crm.deals WHERE created_at >= ? AND created_at < ?) "
        "OR EXISTS (SELECT 1 FROM crm.deals WHERE closed_at >= ? AND closed_at < ?) "
        "OR EXISTS (SELECT 1 FROM crm.leads WHERE created_at >= ? AND created_at < ?)"
    )


def _set_buckets(conn: duckdb.DuckDBPyConnection, rows: list[tuple[dt.date, str]]) -> None:
    conn.execute("CREATE OR REPLACE TEMP TABLE _buckets (month DATE, bucket VARCHAR)")
    if rows:
        conn.executemany("INSERT INTO _buckets VALUES (?, ?)", rows)


def aggregate(*, by_source: bool, presence_per_bucket: bool) -> str:
    return render_sql(
        "metrics/sql/aggregate.sql",
        by_source=str(by_source).upper(), presence_per_bucket=str(presence_per_bucket).upper(),
    )


def monthly_sql(conn: duckdb.DuckDBPyConnection, windows: Windows) -> str:
    """SELECT of metrics.monthly: every month from the first with data to the current one (as_of's month)."""
    months = []
    if windows.first_data_month is not None:
        count = months_between(windows.first_data_month, windows.current_month) + 1
        months = [add_months(windows.first_data_month, i) for i in range(max(0, count))]
    _set_buckets(conn, [(m, m.isoformat()) for m in months])
    periods = " ".join(f"WHEN DATE '{m}' THEN '{windows.period(m)}'" for m in months) or "WHEN NULL THEN NULL"
    figures = ", ".join(name for name, _ in FIGURES)
    return f"""
        SELECT bucket::DATE AS month,
               CASE bucket::DATE {periods} END AS period,
               bucket::DATE + INTERVAL 1 MONTH - INTERVAL 1 DAY < DATE '{windows.as_of}' AS is_complete,
               {figures}
        FROM ({aggregate(by_source=False, presence_per_bucket=False)})
        ORDER BY month"""


def window_buckets(conn: duckdb.DuckDBPyConnection, windows: Windows) -> None:
    rows = []
    for label, bounds in (("pre", windows.pre), ("post", windows.post)):
        first, last = bounds
        rows += [(add_months(first, i), label) for i in range(months_between(first, last) + 1)]
    _set_buckets(conn, rows)


def annual_span(last: dt.date) -> tuple[dt.date, dt.date]:
    """The 12 months ending with `last` (a window's last month): customer_lifetime_value's year."""
    return add_months(last, 1 - ANNUAL_MONTHS), last


def adoption_rows(conn: duckdb.DuckDBPyConnection, windows: Windows, *, gross_margin: float) -> list[tuple]:
    """metrics.adoption: per figure, the pre and post values (per month or pooled), change and pct_change.

    One aggregation serves the two windows and the two 12-month spans of customer_lifetime_value (buckets
    `pre_annual`, `post_annual`, which may share months with the windows)."""
    window_buckets(conn, windows)
    annual = []
    for label, (_, last) in (("pre", windows.pre), ("post", windows.post)):
        first, _ = annual_span(last)
        annual += [(add_months(first, i), f"{label}_annual") for i in range(ANNUAL_MONTHS)]
    conn.executemany("INSERT INTO _buckets VALUES (?, ?)", annual)
    columns = [name for name, _ in FIGURES]
    result = conn.execute(
        f"SELECT bucket, {', '.join(columns)} FROM ({aggregate(by_source=False, presence_per_bucket=True)})"
    ).fetchall()
    values = {row[0]: dict(zip(columns, row[1:])) for row in result}
    for label in ("pre", "post"):
        values[label]["customer_lifetime_value"] = customer_lifetime_value(
            values[f"{label}_annual"]["revenue_per_customer"], gross_margin, values[label]["churn_rate"]
        )
    window_buckets(conn, windows)  # leave the windows alone in _buckets, as the other readers expect
    rows = []
    for name, basis in ADOPTION_FIGURES:
        pre = _per_month(values["pre"][name], basis, windows.n)
        post = _per_month(values["post"][name], basis, windows.n)
        change = None if pre is None or post is None else post - pre
        pct = None if change is None or not pre else change / abs(pre)
        rows.append((name, pre, post, change, pct, windows.n, windows.n, basis))
    return rows


def customer_lifetime_value(annual_revenue_per_customer, gross_margin: float, churn_rate) -> float | None:
    """METRICS.md: annual revenue per customer × gross_margin / churn_rate; NULL when either figure is NULL or
    churn_rate is 0 (nobody lost: a lifetime the data cannot bound). One renewal decision a customer a year
    is assumed, so churn_rate reads as the share of customers lost in a year."""
    if annual_revenue_per_customer is None or churn_rate is None or float(churn_rate) == 0:
        return None
    return float(annual_revenue_per_customer) * gross_margin / float(churn_rate)


def _per_month(value, basis: str, n: int):
    if value is None:
        return None
    return float(value) / n if basis == "per_month" else float(value)


def lead_source_sql(conn: duckdb.DuckDBPyConnection, windows: Windows) -> str:
    window_buckets(conn, windows)
    scaled = [
        f"{name} / {windows.n} AS {name}" if BASIS[name] == "per_month" else name for name in LEAD_SOURCE_FIGURES
    ]
    return f"""
        SELECT bucket AS period, dim AS lead_source, {', '.join(scaled)}
        FROM ({aggregate(by_source=True, presence_per_bucket=True)})
        ORDER BY CASE bucket WHEN 'pre' THEN 0 ELSE 1 END, lead_source"""


def unconverted_yet(conn: duckdb.DuckDBPyConnection, windows: Windows, days: int) -> dict[str, int]:
    """Leads per window created less than the conversion window before as_of: they cannot have converted yet."""
    cutoff = dt.datetime.combine(windows.as_of, dt.time()) - dt.timedelta(days=days)
    out = {}
    for label, (first, last) in (("pre", windows.pre), ("post", windows.post)):
        out[label] = conn.execute(
            "SELECT count(*) FROM _leads WHERE created_month BETWEEN ? AND ? AND created_at > ?",
            [first, last, cutoff],
        ).fetchone()[0]
    return out


def has_table(conn: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, name]
        ).fetchone()[0]
    )

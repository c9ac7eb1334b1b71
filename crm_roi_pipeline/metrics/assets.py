"""`metrics/monthly`, `metrics/adoption`, `metrics/lead_sources`: the figures of METRICS.md, published in
DuckDB after every ingestion. Unpartitioned: they are recomputed whole from `crm.*`, which takes seconds."""


from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    asset_check,
)

from crm_roi_pipeline.errors import user_errors
from crm_roi_pipeline.policies import DUCKDB_POOL, NIGHTLY_CRON, NIGHTLY_TIMEZONE
from crm_roi_pipeline.published_files import publish_parquet
from crm_roi_pipeline.markdown import md_table
from crm_roi_pipeline.metrics import compute, labels
from crm_roi_pipeline.metrics.completeness import completeness_checks
from crm_roi_pipeline.metrics.charts import fmt_month, monthly_chart, png_markdown
from crm_roi_pipeline.metrics.windows import Windows
from crm_roi_pipeline.months import months_between
from crm_roi_pipeline.resources import AssumptionsFile, Reports, Warehouse
from crm_roi_pipeline.sources.fields import ENTITIES
from crm_roi_pipeline.staging.checks import require_error_checks_pass

STAGING_KEYS = [AssetKey(["crm", entity]) for entity in ENTITIES]
FACTS = AssetKey(["metrics", "facts"])
# Recompute after any staged month changes (a backfill, the nightly run, an analyst's materialization).
# Unlike `eager()`, months never staged (say 2015 with data from 2022) do not hold the metrics back; nothing
# is requested while an ERROR (blocking) check of the staged tables fails; and a staging run in progress holds
# them back, but a backfill of the staged tables whose runs have ended does not: Dagster's backfill daemon
# marks a backfill done on its next pass, up to 30 s later (a fixed interval), and the metrics of a UI backfill
# waited for that. A backfill that also targets a metrics table (facts, say) still holds back what reads it.
# And every night at the refresh's time, whether or not anything was staged: without an as_of in the
# assumptions the windows move with the date, and an unchanged export stages nothing (staging/plan.py). Not
# while a staging run is in progress: the eager part then follows it.
AFTER_ANY_INGESTION = (
    AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())
    .without(~AutomationCondition.any_deps_in_progress())
    & ~AutomationCondition.any_deps_match(AutomationCondition.run_in_progress())
    & ~AutomationCondition.any_deps_match(AutomationCondition.backfill_in_progress())
    .ignore(AssetSelection.groups("staging"))
    | (AutomationCondition.cron_tick_passed(NIGHTLY_CRON, NIGHTLY_TIMEZONE)
       & ~AutomationCondition.any_deps_in_progress() & ~AutomationCondition.in_progress())
) & AutomationCondition.all_deps_blocking_checks_passed()


def _window_metadata(windows: Windows) -> dict:
    pre, post = windows.pre, windows.post
    return {
        "as_of": MetadataValue.text(windows.as_of.isoformat()),
        "adoption_month": MetadataValue.text(fmt_month(windows.adoption_month)),
        "first_data_month": MetadataValue.text(fmt_month(windows.first_data_month)),
        "window_months_n": MetadataValue.int(windows.n),
        "pre_window": MetadataValue.text(f"{fmt_month(pre[0])} … {fmt_month(pre[1])}" if pre else "empty"),
        "post_window": MetadataValue.text(f"{fmt_month(post[0])} … {fmt_month(post[1])}" if post else "empty"),
    }


def _comparable(conn, parsed, *, require: bool) -> Windows:
    """Facts and windows, as every metrics asset starts; `require` fails when a window is empty. Nothing is
    computed from data that fails an ERROR check (staging/checks.py), whatever launched the run: current
    facts were built by metrics/facts, which ran the ERROR checks first; facts built here run them here.
    (The checks cost ~1.2 s at a million deals, so they run once per build of the facts, not per asset.)"""
    if not compute.facts_are_current(conn):
        require_error_checks_pass(conn)
    compute.use_facts(conn, parsed)
    windows = compute.windows_for(conn, parsed)
    if require:
        windows.require()
    return windows


def _publish(conn, warehouse: Warehouse, table: str, select: str):
    """Replace a metrics table with `select`, and its Parquet copy for readers."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS metrics")
    conn.execute(f"CREATE OR REPLACE TABLE {table} AS {select}")
    return publish_parquet(conn, table, warehouse.published_path)


def _too_recent_to_convert(waiting: dict[str, int], days: int) -> dict:
    """METRICS.md: leads created less than the conversion window before as_of cannot have converted yet; the
    metadata says when a window holds such leads."""
    if not any(waiting.values()):
        return {}
    return {"leads_too_recent_to_convert": MetadataValue.md(
        f"Leads created less than {days} days before as_of cannot have converted yet: pre window "
        f"{waiting['pre']:,}, post window {waiting['post']:,}. That window's conversion rate is low by that much."
    )}


def _fmt(value, name: str, change: bool = False) -> str:
    if value is None:
        return "—"
    if name.endswith("_rate") and change:
        return f"{value * 100:+.1f} pt"
    if name.endswith("_rate") or name == "pct_change":
        return f"{value * 100:.1f}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _metrics_asset(name: str, description: str, after: tuple[AssetKey, ...] = ()):
    """A table of the `metrics` schema, recomputed whole from the facts after any ingestion."""
    return asset(
        key=AssetKey(["metrics", name]),
        deps=[AssetDep(key) for key in (*after, *([] if name == "facts" else [FACTS]), *STAGING_KEYS)],
        group_name="metrics",
        kinds={"duckdb"},
        automation_condition=AFTER_ANY_INGESTION,
        pool=DUCKDB_POOL,
        description=description,
        metadata={"dagster/table_name": f"metrics.{name}"},
    )


@_metrics_asset(
    "facts",
    "What the figures aggregate, from crm.* once per ingestion: one row per deal (class, acquisition, account, "
    "renewal, resolved lead source, days to close), per lead, per spend line and per ticket (hours to first "
    "response and to close, CSAT rated/satisfied), and completed activities per month (metrics.fact_deals, "
    "fact_leads, fact_activities, fact_spend, fact_tickets). Every other metrics table reads these.",
)
@user_errors
def metrics_facts(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    with warehouse.get_connection() as conn:
        require_error_checks_pass(conn)
        conn.execute("BEGIN TRANSACTION")
        compute.build_facts(conn)
        conn.execute("COMMIT")
        counts = {t: conn.execute(f"SELECT count(*) FROM {compute.FACTS_SCHEMA}.fact_{t}").fetchone()[0]
                  for t in compute.FACT_TABLES}
    context.log.info("metrics facts: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()))
    return MaterializeResult(metadata={
        **{f"{t}_rows": MetadataValue.int(n) for t, n in counts.items()},
        "dagster/row_count": MetadataValue.int(counts["deals"]),
    })


@_metrics_asset(
    "monthly",
    "Every figure of METRICS.md per calendar month, from the first month with data to the current month (that "
    "of as_of), each month labelled pre, transition or post.",
)
@user_errors
def metrics_monthly(context: AssetExecutionContext, warehouse: Warehouse, assumptions: AssumptionsFile) -> MaterializeResult:
    parsed = assumptions.load()
    with warehouse.get_connection() as conn:
        windows = _comparable(conn, parsed, require=False)
        published = _publish(conn, warehouse, "metrics.monthly", compute.monthly_sql(conn, windows))
        recent = conn.execute(
            "SELECT month, period, win_count, win_rate, won_revenue, median_days_to_close FROM metrics.monthly "
            "ORDER BY month DESC LIMIT 12"
        ).fetchall()
        rows = conn.execute("SELECT count(*) FROM metrics.monthly").fetchone()[0]
    table = md_table(["month", "period", "wins", "win rate", "won revenue", "median days"], [
        (f"{month:%Y-%m}", period, wins, _fmt(rate, "win_rate"), _fmt(revenue, "x"), _fmt(days, "x"))
        for month, period, wins, rate, revenue, days in reversed(recent)])
    context.log.info(f"metrics.monthly: {rows} months published")
    return MaterializeResult(
        metadata={
            "dagster/row_count": MetadataValue.int(rows),
            "last_12_months": MetadataValue.md(table),
            "parquet_copy": MetadataValue.path(str(published)),
            **_window_metadata(windows),
        }
    )


@_metrics_asset(
    "adoption",
    "Pre versus post adoption, one row per figure of metrics.monthly plus customer_lifetime_value: counts and "
    "sums per month (window total / N; active and repeat customers counted once over the window, then / N), "
    "rates, averages and medians pooled over each window; each change with its interval and method.",
    after=(AssetKey(["metrics", "monthly"]),),  # its chart plots metrics.monthly
)
@user_errors
def metrics_adoption(
    context: AssetExecutionContext, warehouse: Warehouse, assumptions: AssumptionsFile, reports: Reports
) -> MaterializeResult:
    parsed = assumptions.load()
    with warehouse.get_connection() as conn:
        windows = _comparable(conn, parsed, require=True)
        rows = compute.adoption_rows(conn, windows, gross_margin=parsed.gross_margin)
        level = parsed.confidence_level
        from crm_roi_pipeline.metrics import evidence  # scipy and statsmodels load only when this runs

        intervals = evidence.adoption_intervals(
            conn, windows, {r[0]: (r[1], r[2]) for r in rows}, level=level, gross_margin=parsed.gross_margin
        )
        rows = [(*row, intervals[row[0]].low, intervals[row[0]].high, intervals[row[0]].method, level) for row in rows]
        waiting = compute.unconverted_yet(conn, windows, parsed.conversion_window_days)
        conn.execute("CREATE SCHEMA IF NOT EXISTS metrics")
        conn.execute("BEGIN TRANSACTION")
        conn.execute(
            "CREATE OR REPLACE TABLE metrics.adoption (metric VARCHAR, pre_value DOUBLE, post_value DOUBLE, "
            "change DOUBLE, pct_change DOUBLE, pre_months INTEGER, post_months INTEGER, basis VARCHAR, "
            "ci_low DOUBLE, ci_high DOUBLE, method VARCHAR, ci_level DOUBLE)"
        )
        conn.executemany("INSERT INTO metrics.adoption VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        publish_parquet(conn, "metrics.adoption", warehouse.published_path)
        monthly = conn.execute(
            "SELECT month, won_revenue, win_rate, median_days_to_close FROM metrics.monthly ORDER BY month"
        ).fetchall() if compute.has_table(conn, "metrics", "monthly") else []
    ccy = parsed.reporting_currency
    records = [
        TableRecord({
            "figure": labels.label(name, basis, ccy), "pre": labels.value(name, pre), "post": labels.value(name, post),
            "change": labels.value(name, change, change=True),
            "interval": "—" if low is None else f"{labels.value(name, low, change=True)} to {labels.value(name, high, change=True)}",
            "pct_change": labels.percent_change(pct), "interval_method": method.replace("_", " "),
        })
        for name, pre, post, change, pct, _, _, basis, low, high, method, _ in rows
    ]
    columns = [("figure", "Figure"), ("pre", "Pre"), ("post", "Post"), ("change", "Change"),
               ("interval", f"{level:.0%} interval of the change"), ("pct_change", "% change"),
               ("interval_method", "Interval method")]
    metadata = {
        "dagster/row_count": MetadataValue.int(len(rows)),
        # A table the UI shows as it is (markdown would hide behind "Show Markdown").
        "comparison": MetadataValue.table(records, TableSchema(
            columns=[TableColumn(key, "string", description=text) for key, text in columns])),
        "how_to_read": MetadataValue.text(
            f"Pre {fmt_month(windows.pre[0])} … {fmt_month(windows.pre[1])} versus post {fmt_month(windows.post[0])} … "
            f"{fmt_month(windows.post[1])} (N = {windows.n} months each; as_of {windows.as_of}). Per-month figures are the "
            "window's total / N; rates, averages and medians are pooled. An interval that excludes 0 is a change the "
            "windows' own variation does not explain; it does not say the CRM caused it (metrics/uplift takes the "
            "trend and season out)."),
        **_window_metadata(windows),
    }
    metadata |= _too_recent_to_convert(waiting, parsed.conversion_window_days)
    if monthly:
        chart = monthly_chart(
            [{"month": m, "won_revenue": r, "win_rate": w, "median_days_to_close": d} for m, r, w, d in monthly],
            windows,
            reports.path / "metrics_monthly.png",
            parsed.reporting_currency,
        )
        metadata["chart"] = MetadataValue.path(str(chart))
        metadata["chart_preview"] = MetadataValue.md(png_markdown("monthly metrics", chart))
    context.log.info(f"metrics.adoption: {len(rows)} figures, N = {windows.n}")
    return MaterializeResult(metadata=metadata)


@_metrics_asset(
    "lead_sources",
    "Pre versus post adoption per lead source: counts and sums per month, rates pooled. A deal's source is its "
    "own, else its converting lead's, else its named lead's, else Unknown.",
)
@user_errors
def metrics_lead_sources(context: AssetExecutionContext, warehouse: Warehouse, assumptions: AssumptionsFile) -> MaterializeResult:
    parsed = assumptions.load()
    with warehouse.get_connection() as conn:
        windows = _comparable(conn, parsed, require=True)
        waiting = compute.unconverted_yet(conn, windows, parsed.conversion_window_days)
        _publish(conn, warehouse, "metrics.lead_sources", compute.lead_source_sql(conn, windows))
        rows = conn.execute(
            "SELECT period, lead_source, leads_created, lead_conversion_rate, win_rate, won_revenue, cac "
            "FROM metrics.lead_sources"
        ).fetchall()
    # Lead-source names are the CRM's: md_table escapes a | or newline in them.
    table = md_table(["period", "lead source", "leads/month", "conversion", "win rate", "won revenue/month", "CAC"], [
        (period, source, _fmt(leads, "x"), _fmt(conv, "lead_conversion_rate"), _fmt(win_rate, "win_rate"),
         _fmt(revenue, "x"), _fmt(cac, "x"))
        for period, source, leads, conv, win_rate, revenue, cac in rows])
    metadata = {
        "dagster/row_count": MetadataValue.int(len(rows)),
        "by_source": MetadataValue.md(table),
        **_window_metadata(windows),
    }
    metadata |= _too_recent_to_convert(waiting, parsed.conversion_window_days)
    return MaterializeResult(metadata=metadata)


@asset_check(
    asset=AssetKey(["metrics", "adoption"]),
    name="customer_history_long_enough",
    description="The pre window starts at least 12 months after the first month with data. Otherwise an account "
    "that was already a customer before the data begins looks new at its first win in the data, inflating "
    "new customers and new-business revenue in the pre window.",
    blocking=False,
    pool=DUCKDB_POOL,
)
def customer_history_long_enough(warehouse: Warehouse, assumptions: AssumptionsFile) -> AssetCheckResult:
    parsed = assumptions.load()
    with warehouse.get_connection() as conn:
        windows = compute.windows_for(conn, parsed)
    if not windows.n:
        return AssetCheckResult(passed=True, description="no comparison windows", metadata=_window_metadata(windows))
    history = months_between(windows.first_data_month, windows.pre[0])
    return AssetCheckResult(
        passed=history >= 12,
        severity=AssetCheckSeverity.WARN,
        description=f"{history} months of history before the pre window starts",
        metadata={"months_of_history_before_pre_window": MetadataValue.int(history), **_window_metadata(windows)},
    )


metrics_assets = [metrics_facts, metrics_monthly, metrics_adoption, metrics_lead_sources]
metrics_checks = [customer_history_long_enough, *completeness_checks]

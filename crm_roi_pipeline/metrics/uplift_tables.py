"""What `metrics/uplift` computes and publishes: the five tables, their UI metadata and the charts.

Kept apart from the asset's definition so that scipy, statsmodels and matplotlib load when the asset runs,
not whenever Dagster loads the definitions (about 1.5 s of every start-up).
"""

from dagster import MaterializeResult, MetadataValue, TableColumn, TableRecord, TableSchema

from crm_roi_pipeline.metrics import compute, evidence, lift
from crm_roi_pipeline.metrics.labels import money
from crm_roi_pipeline.metrics.assets import _comparable, _window_metadata
from crm_roi_pipeline.metrics.charts import png_markdown
from crm_roi_pipeline.metrics.uplift_assets import (
    COUNTERFACTUAL, COUNTERFACTUAL_CHART, MIN_PLACEBO_CHART, PLACEBO, PLACEBO_CHART, STAGGERED, TIME_TO_CLOSE, UPLIFT,
)
from crm_roi_pipeline.published_files import publish_parquet, replace_file
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline.statistics.bsts import METHOD as BSTS_METHOD
from crm_roi_pipeline.statistics.bsts import BstsResult
from crm_roi_pipeline.statistics.its import METHOD as ITS_METHOD
from crm_roi_pipeline.statistics.its import ItsResult
from crm_roi_pipeline.metrics.uplift_charts import counterfactual_chart, placebo_chart
from crm_roi_pipeline.statistics.staggered import StaggeredResult


def publish(context, warehouse, assumptions, reports) -> list[MaterializeResult]:
    parsed = assumptions.load()
    level = parsed.confidence_level
    published = warehouse.published_path
    with warehouse.get_connection() as conn:
        windows = _comparable(conn, parsed, require=True)
        ev = evidence.revenue_evidence(conn, windows, parsed)
        ttc = evidence.time_to_close(conn, windows, level=level)
        compute.window_buckets(conn, windows)
        closed_median = dict(conn.execute(
            f"SELECT bucket, median_days_to_close FROM ({compute.aggregate(by_source=False, presence_per_bucket=True)})"
        ).fetchall())
        used = evidence.revenue_lift(ev, parsed.benefit_method)
        verdict = lift.verdict_sentence(used, parsed.reporting_currency, level)
        second = lift.second_opinion_sentence(evidence.its_estimate(ev), evidence.second_opinion_estimate(ev),
                                              parsed.reporting_currency, level)
        rows = _uplift_rows(ev, used, verdict, second, windows.n)
        conn.execute("CREATE SCHEMA IF NOT EXISTS metrics")
        conn.execute("BEGIN TRANSACTION")
        conn.execute(
            "CREATE OR REPLACE TABLE metrics.uplift (estimate VARCHAR, value DOUBLE, ci_low DOUBLE, ci_high DOUBLE, "
            "p_value DOUBLE, months INTEGER, method VARCHAR, note VARCHAR)"
        )
        conn.executemany("INSERT INTO metrics.uplift VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute(
            "CREATE OR REPLACE TABLE metrics.counterfactual (month DATE, actual DOUBLE, expected DOUBLE, "
            "expected_low DOUBLE, expected_high DOUBLE)"
        )
        if isinstance(ev.its, ItsResult):
            cf = ev.its.counterfactual
            conn.executemany(
                "INSERT INTO metrics.counterfactual VALUES (?, ?, ?, ?, ?)",
                [(r.month, float(r.actual), float(r.expected), float(r.expected_low), float(r.expected_high))
                 for r in cf.itertuples()],
            )
        conn.execute("CREATE OR REPLACE TABLE metrics.placebo_tests (adoption_month DATE, estimate DOUBLE, is_real BOOLEAN)")
        placebo_rows = [(m, e, False) for m, e in ev.placebo.placebos]
        if ev.placebo.real is not None:
            placebo_rows.append((windows.adoption_month, ev.placebo.real, True))
        conn.executemany("INSERT INTO metrics.placebo_tests VALUES (?, ?, ?)", placebo_rows)
        conn.execute(
            "CREATE OR REPLACE TABLE metrics.staggered_effects (cohort DATE, month DATE, event_time INTEGER, att DOUBLE, "
            "n_treated INTEGER, n_controls INTEGER)"
        )
        if isinstance(ev.staggered, StaggeredResult):
            conn.executemany(
                "INSERT INTO metrics.staggered_effects VALUES (?, ?, ?, ?, ?, ?)",
                [(r.cohort, r.month, int(r.event_time), float(r.att), int(r.n_treated), int(r.n_controls))
                 for r in ev.staggered.group_time.itertuples()],
            )
        conn.execute(
            "CREATE OR REPLACE TABLE metrics.time_to_close (period VARCHAR, deals INTEGER, closed INTEGER, censored INTEGER, "
            "closed_deals_median DOUBLE, km_median DOUBLE, km_low DOUBLE, km_high DOUBLE, ci_level DOUBLE, "
            "logrank_statistic DOUBLE, logrank_p_value DOUBLE)"
        )
        conn.executemany(
            "INSERT INTO metrics.time_to_close VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(p, km.n, km.events, ttc.censored[p], closed_median.get(p), km.median, km.low, km.high, level,
              ttc.test.statistic, ttc.test.p_value) for p, km in (("pre", ttc.pre), ("post", ttc.post))],
        )
        conn.execute("COMMIT")
        for table in ("uplift", "counterfactual", "placebo_tests", "staggered_effects", "time_to_close"):
            publish_parquet(conn, f"metrics.{table}", published)
    charts = _charts(ev, reports, parsed.reporting_currency)
    context.log.info(f"metrics.uplift: {verdict}")
    window = _window_metadata(windows)
    uplift_meta = {
        "verdict": MetadataValue.text(verdict),
        "second_opinion": MetadataValue.text(second),
        "placebo_test": MetadataValue.text(lift.placebo_sentence(ev.placebo.rank, ev.placebo.n, ev.placebo.p_value)),
        "lift_used": MetadataValue.text(f"{lift.METHOD_LABELS[used.method]}: {used.reason}"),
        "estimates": _estimates_table(rows, level, parsed.reporting_currency),
        "benefit_method": MetadataValue.text(parsed.benefit_method),
        "dagster/row_count": MetadataValue.int(len(rows)),
        **window,
    }
    if "counterfactual" in charts:
        uplift_meta["counterfactual_chart"] = MetadataValue.md(png_markdown("counterfactual", charts["counterfactual"]))
    if "placebo" in charts:
        uplift_meta["placebo_chart"] = MetadataValue.md(png_markdown("placebo test", charts["placebo"]))
    its = ev.its
    if not isinstance(its, ItsResult):
        its_note = its.reason
    else:
        its_note = f"{its.n_pre} pre and {its.n_post} post months, month-of-year effects, " + (
            f"AR(1) errors (rho {its.rho:.2f})" if its.rho is not None else f"{its.errors} errors")
    staggered_note = (
        "no team_adoption_dates in the assumptions" if ev.staggered is None
        else getattr(ev.staggered, "reason", f"{ev.staggered.n_teams} teams in {ev.staggered.n_cohorts} cohorts")
    )
    return [
        MaterializeResult(asset_key=UPLIFT, metadata=uplift_meta),
        MaterializeResult(asset_key=COUNTERFACTUAL, metadata={
            "dagster/row_count": MetadataValue.int(len(ev.its.counterfactual) if isinstance(ev.its, ItsResult) else 0),
            "model": MetadataValue.text(its_note),
            **({"chart": MetadataValue.md(png_markdown("counterfactual", charts["counterfactual"]))} if "counterfactual" in charts else {}),
        }),
        MaterializeResult(asset_key=PLACEBO, metadata={
            "dagster/row_count": MetadataValue.int(len(placebo_rows)),
            "fake_dates": MetadataValue.int(ev.placebo.n),
            "p_value": MetadataValue.float(ev.placebo.p_value) if ev.placebo.p_value is not None else MetadataValue.text("n/a"),
            "estimator": MetadataValue.text(ev.placebo_estimator),
        }),
        MaterializeResult(asset_key=STAGGERED, metadata={
            "dagster/row_count": MetadataValue.int(len(ev.staggered.group_time) if isinstance(ev.staggered, StaggeredResult) else 0),
            "teams": MetadataValue.text(staggered_note),
        }),
        MaterializeResult(asset_key=TIME_TO_CLOSE, metadata={
            "dagster/row_count": MetadataValue.int(2),
            "kaplan_meier": MetadataValue.md(_ttc_markdown(ttc, closed_median, level)),
        }),
    ]


def _uplift_rows(ev: evidence.RevenueEvidence, used: lift.RevenueLift, verdict: str, second: str,
                 window_months: int) -> list[tuple]:
    """metrics.uplift: the revenue effect per month by each method, then the verdict: the lift the ROI
    credits (value and interval), the method it came from (`method`) and the sentence (`note`). The
    second opinion's note is the sentence saying whether it agrees with the ITS."""
    ba = ev.before_after_interval
    rows = [("before_after", ev.before_after, ba.low, ba.high, None, window_months, ba.method,
             "won revenue per month, post window minus pre window (METRICS.md); counts any trend as the CRM's")]
    its = ev.its
    if isinstance(its, ItsResult):
        rows.append(("its", its.uplift_per_month, its.uplift_low, its.uplift_high, its.p_value, its.n_post, its.method,
                     f"won revenue per month above the counterfactual; {its.n_pre} pre months, seasonal terms: {its.seasonal}"))
    else:
        rows.append(("its", None, None, None, None, 0, ITS_METHOD, its.reason))
    so = ev.second_opinion
    if isinstance(so, BstsResult):
        rows.append(("second_opinion", so.estimate, so.low, so.high, so.p_value, so.n_post, so.method, second))
    else:
        rows.append(("second_opinion", None, None, None, None, 0, BSTS_METHOD, second))
    p = ev.placebo
    # The placebo ranks the real date among fake ones; its own point estimates (OLS for the ITS, which stays
    # stable on short fake pre periods) are in metrics.placebo_tests, not shown as a second uplift.
    rows.append(("placebo", None, None, None, p.p_value, p.n, f"placebo_{ev.placebo_estimator}",
                 (f"the real adoption date ranks {p.rank} of {p.n + 1} dates by the size of the effect"
                  if p.rank is not None else "no fake adoption month fits inside the pre period")
                 + ("; every date fitted by OLS, real and fake alike" if ev.placebo_estimator == "its" else "")))
    st = ev.staggered
    if isinstance(st, StaggeredResult):
        rows.append(("staggered", st.att, st.att_low, st.att_high, None, st.n_teams, st.method,
                     f"won revenue per team and month; {st.n_teams} teams, {st.n_cohorts} cohorts"))
    elif st is not None:
        rows.append(("staggered", None, None, None, None, 0, "callaway_santanna_not_yet_treated", st.reason))
    rows.append(("verdict", used.value, used.low, used.high, None, None, used.method, verdict))
    return rows


ESTIMATE_LABELS = {"before_after": "before/after", "its": "interrupted time series",
                   "second_opinion": "second opinion (Bayesian structural time series)",
                   "placebo": "placebo test", "staggered": "staggered rollout"}


def _estimates_table(rows: list[tuple], level: float, currency: str):
    """The estimates as a table the UI shows as it is (no "Show Markdown")."""
    columns = [("estimate", "Estimate"), ("value", f"{currency} per month"), ("interval", f"{level:.0%} interval"),
               ("p_value", "p-value"), ("n", "Months / fake dates / teams"), ("note", "Note")]
    records = [
        TableRecord({"estimate": ESTIMATE_LABELS.get(estimate, estimate), "value": money(value),
                     "interval": "—" if low is None else f"{money(low)} to {money(high)}",
                     "p_value": "—" if p is None else f"{p:.3f}", "n": "" if n is None else f"{n}",
                     "note": lift.table_note(estimate, value, note)})
        for estimate, value, low, high, p, n, _, note in rows if estimate != "verdict"
    ]
    return MetadataValue.table(records, TableSchema(columns=[TableColumn(k, "string", description=t) for k, t in columns]))


def _ttc_markdown(ttc: evidence.TimeToClose, closed_median: dict, level: float) -> str:
    lines = [f"| window | deals | closed | open (censored) | closed-deals median (won) | Kaplan-Meier median | {level:.0%} interval |",
             "|---|---|---|---|---|---|---|"]
    for period, km in (("pre", ttc.pre), ("post", ttc.post)):
        span = f"{_num(km.low)} … {_num(km.high)}"
        lines.append(f"| {period} | {km.n:,} | {km.events:,} | {ttc.censored[period]:,} | {_num(closed_median.get(period))} | "
                     f"{_num(km.median)} | {span} |")
    if ttc.test.p_value is not None:
        lines += ["", f"Log-rank test, pre versus post: χ² = {ttc.test.statistic:.2f}, p = {ttc.test.p_value:.3g}."]
    return "\n".join(lines)


def _num(value) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _charts(ev: evidence.RevenueEvidence, reports: Reports, currency: str) -> dict:
    out = {}
    unit = f"{currency} per month"
    reports.path.mkdir(parents=True, exist_ok=True)
    # A chart this run cannot draw is removed, so the report never embeds an older run's.
    for key, name, draw in (
        ("counterfactual", COUNTERFACTUAL_CHART, counterfactual_chart(ev.its, unit) if isinstance(ev.its, ItsResult) else None),
        ("placebo", PLACEBO_CHART, placebo_chart(ev.placebo, unit) if ev.placebo.n >= MIN_PLACEBO_CHART else None),
    ):
        path = reports.path / name
        if draw is not None:
            # To a temporary file renamed over the old chart: never a cut-off PNG, never no chart meanwhile.
            out[key] = replace_file(path, draw)
    # Old charts are removed only once every new one is written.
    for name in (COUNTERFACTUAL_CHART, PLACEBO_CHART):
        if reports.path / name not in out.values():
            (reports.path / name).unlink(missing_ok=True)
    return out


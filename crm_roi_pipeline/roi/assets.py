"""The ROI asset: `roi.summary`, `roi.cashflows` and `roi.sensitivity` from metrics.adoption and the
assumptions, and the HTML report for a finance lead."""

import datetime as dt

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from crm_roi_pipeline.errors import CrmRoiError, user_errors
from crm_roi_pipeline.policies import DUCKDB_POOL
from crm_roi_pipeline.published_files import publish_parquet, replace_file
from crm_roi_pipeline.metrics import compute
from crm_roi_pipeline.metrics.uplift_assets import COUNTERFACTUAL_CHART, PLACEBO_CHART
from crm_roi_pipeline.resources import AssumptionsFile, Reports, Warehouse
from crm_roi_pipeline.metrics.lift import Estimate, placebo_sentence
from crm_roi_pipeline.roi import headline, quality, report, unpriced
from crm_roi_pipeline.roi.model import Measured, build_model, sensitivity
from crm_roi_pipeline.staging.checks import require_error_checks_pass

ADOPTION = AssetKey(["metrics", "adoption"])
UPLIFT = AssetKey(["metrics", "uplift"])
SUMMARY, CASHFLOWS, SENSITIVITY = (AssetKey(["roi", n]) for n in ("summary", "cashflows", "sensitivity"))
REPORT_FILE = "roi_report.html"


def _spec(key: AssetKey, description: str) -> AssetSpec:
    return AssetSpec(
        key,
        deps=[ADOPTION, UPLIFT],
        group_name="roi",
        kinds={"duckdb"},
        description=description,
        metadata={"dagster/table_name": ".".join(key.path)},
        automation_condition=AutomationCondition.eager(),
    )


def _measured(rows: dict[str, tuple], uplift: dict[str, tuple]) -> Measured:
    """metrics.adoption rows (figure -> pre, post) and metrics.uplift rows (estimate -> value, ci_low,
    ci_high, p_value, months, note)."""
    def interval(estimate: str) -> tuple[float, float] | None:
        row = uplift.get(estimate)
        return (row[1], row[2]) if row and row[1] is not None and row[2] is not None else None

    its = uplift.get("its")
    if its is None:
        its_estimate = Estimate(None, unavailable="metrics/uplift has not been published")
    elif its[0] is None:
        its_estimate = Estimate(None, unavailable=its[5])
    else:
        its_estimate = Estimate(its[0], its[1], its[2])
    return Measured(
        pre_won_revenue=rows["won_revenue"][0] or 0.0,
        post_won_revenue=rows["won_revenue"][1] or 0.0,
        pre_cac=rows["cac"][0],
        post_cac=rows["cac"][1],
        post_new_customers=rows["new_customers"][1],
        before_after_interval=interval("before_after"),
        its=its_estimate,
    )


def _second_opinion(uplift: dict[str, tuple]) -> str | None:
    """metrics.uplift's second-opinion sentence (whether the BSTS agrees with the ITS), as published."""
    row = uplift.get("second_opinion")
    return row[5] if row else None


def _placebo(uplift: dict[str, tuple]) -> str | None:
    row = uplift.get("placebo")
    if row is None:
        return None
    p_value, fakes = row[3], row[4] or 0
    # p = (1 + fakes at least as large) / (1 + fakes), so the real date's rank is p × (1 + fakes).
    rank = None if p_value is None else round(p_value * (1 + fakes))
    return placebo_sentence(rank, fakes, p_value)


@multi_asset(
    specs=[
        _spec(SUMMARY, "The ROI figures (TCO, benefits, ROI and NPV with their ranges, discounted ROI, payback), the lift "
              "used, its method and the verdict: figure, value, unit, text."),
        _spec(CASHFLOWS, "Cash flows by year (0 = initial): costs, benefits, net, discounted net, cumulative net."),
        _spec(SENSITIVITY, "ROI and payback when each assumption moves alone: margin, discount rate, risk haircuts, "
              "each cost line ±20%."),
    ],
    can_subset=False,
    pool=DUCKDB_POOL,
)
@user_errors
def roi(context: AssetExecutionContext, warehouse: Warehouse, assumptions: AssumptionsFile, reports: Reports):
    # Computed whole before the first result is yielded, so a failure happens before any output.
    parsed = assumptions.load()
    with warehouse.get_connection() as conn:
        windows = compute.windows_for(conn, parsed)
        windows.require()
        # Every check's count, for the report; an ERROR check that fails stops the ROI here, naming the rows.
        checked = quality.assess(conn, windows)
        if any(c.severity == "ERROR" and not c.passed for c in checked.checks):
            require_error_checks_pass(conn)
        if not compute.has_table(conn, "metrics", "adoption"):
            raise CrmRoiError("metrics.adoption has not been published yet: materialize metrics/adoption first.")
        adoption = conn.execute(
            "SELECT metric, pre_value, post_value, change, pct_change, pre_months, post_months, basis, ci_low, ci_high, "
            "method FROM metrics.adoption"
        ).fetchall()
        # The comparison must be the one the current assumptions and data give, not an older run's.
        if {row[5] for row in adoption} != {windows.n}:
            raise CrmRoiError(
                f"metrics.adoption was computed with windows of {adoption[0][5] if adoption else 0} months, but the "
                f"current data and assumptions give {windows.n}: materialize metrics/adoption again first."
            )
        uplift = {}
        if compute.has_table(conn, "metrics", "uplift"):
            uplift = {r[0]: r[1:] for r in conn.execute(
                "SELECT estimate, value, ci_low, ci_high, p_value, months, note FROM metrics.uplift").fetchall()}
        measured = _measured({row[0]: (row[1], row[2]) for row in adoption}, uplift)
        time_to_close = conn.execute(
            "SELECT period, deals, censored, closed_deals_median, km_median, km_low, km_high, logrank_p_value "
            "FROM metrics.time_to_close ORDER BY period DESC"
        ).fetchall() if compute.has_table(conn, "metrics", "time_to_close") else []
        # The monthly series of the Customers and Service sections' charts.
        monthly = []
        if compute.has_table(conn, "metrics", "monthly"):
            cursor = conn.execute("SELECT * FROM metrics.monthly ORDER BY month")
            columns = [d[0] for d in cursor.description]
            monthly = [dict(zip(columns, row)) for row in cursor.fetchall()]
        deal_types = unpriced.deal_type_coverage(conn, windows)
        model = build_model(parsed, measured)
        sens = sensitivity(parsed, measured)
        conn.execute("CREATE SCHEMA IF NOT EXISTS roi")
        conn.execute("BEGIN TRANSACTION")
        conn.execute("CREATE OR REPLACE TABLE roi.summary (figure VARCHAR, value DOUBLE, unit VARCHAR, text VARCHAR)")
        conn.executemany("INSERT INTO roi.summary VALUES (?, ?, ?, ?)", model.summary())
        conn.execute(
            "CREATE OR REPLACE TABLE roi.cashflows (year INTEGER, costs DOUBLE, benefits DOUBLE, net DOUBLE, "
            "discounted_net DOUBLE, cumulative_net DOUBLE)"
        )
        conn.executemany(
            "INSERT INTO roi.cashflows VALUES (?, ?, ?, ?, ?, ?)",
            [(f.year, f.costs, f.benefits, f.net, f.discounted_net, f.cumulative_net) for f in model.flows],
        )
        conn.execute(
            "CREATE OR REPLACE TABLE roi.sensitivity (assumption VARCHAR, setting VARCHAR, value DOUBLE, "
            "roi_pct DOUBLE, discounted_roi_pct DOUBLE, payback_months DOUBLE)"
        )
        conn.executemany("INSERT INTO roi.sensitivity VALUES (?, ?, ?, ?, ?, ?)", sens)
        conn.execute("COMMIT")
        for table in ("roi.summary", "roi.cashflows", "roi.sensitivity"):
            publish_parquet(conn, table, warehouse.published_path)
    path = reports.path / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = dt.datetime.now(dt.timezone.utc)
    level = parsed.confidence_level
    naive = (build_model(parsed.model_copy(update={"benefit_method": "before_after"}), measured)
             if model.verdict == "unclear" and model.benefit_method != "before_after" else None)
    warnings = checked.thin_windows + ([
        f"{len(checked.warnings)} data-quality warning(s): " + ", ".join(f"{c.label} ({c.count:,})" for c in checked.warnings)
        + "; see Data quality in the report."] if checked.warnings else [])
    top = headline.build(model, level=level, before_after=naive, placebo=_placebo(uplift),
                         second_opinion=_second_opinion(uplift), warnings=warnings)
    sure = report.Evidence(
        uplift=uplift, time_to_close=time_to_close, level=level,
        counterfactual_png=_read(reports.path / COUNTERFACTUAL_CHART), placebo_png=_read(reports.path / PLACEBO_CHART),
    )
    # Rendered whole, then written beside the old report and renamed over it: never a cut-off report.
    replace_file(path, report.render(model, parsed, windows, adoption, sens, generated, sure, top, checked, monthly,
                                     deal_types))
    context.log.info("\n".join(top.lines()) + f"\nReport: {path}")
    swing = _largest_swing(sens)
    yield from [MaterializeResult(
        asset_key=SUMMARY,
        metadata={
            "headline": MetadataValue.md(top.markdown()),
            "headline_text": MetadataValue.text("\n".join(top.lines())),
            "verdict": MetadataValue.text(model.verdict),
            "benefit_method": MetadataValue.text(f"{model.benefit_method}: {model.benefit_why}"),
            "cash_flows": MetadataValue.md(report.cashflow_markdown(model)),
            "report": MetadataValue.path(str(path)),
            # Rounded as the report shows them: one decimal for percentages and months, whole money.
            "roi_pct": _rounded(model.roi_pct, 1),
            "npv": _rounded(model.npv, 0),
            "currency": MetadataValue.text(model.currency),
            "payback_months": _rounded(model.payback_months, 1, none="never"),
            "data_quality_warnings": MetadataValue.int(len(checked.warnings)),
            "dagster/row_count": MetadataValue.int(len(model.summary())),
        },
    ), MaterializeResult(
        asset_key=CASHFLOWS,
        metadata={"cash_flows": MetadataValue.md(report.cashflow_markdown(model)),
                  "dagster/row_count": MetadataValue.int(len(model.flows))},
    ), MaterializeResult(
        asset_key=SENSITIVITY,
        metadata={"dagster/row_count": MetadataValue.int(len(sens)),
                  "largest_swing": MetadataValue.text(swing)},
    )]


def _rounded(value: float | None, digits: int, none: str = "—"):
    if value is None:
        return MetadataValue.text(none)
    return MetadataValue.float(round(value, digits)) if digits else MetadataValue.int(int(round(value)))


def _read(path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def _largest_swing(rows: list[tuple]) -> str:
    """The assumption whose range moves the ROI most: what the answer hangs on."""
    spans: dict[str, list[float]] = {}
    for name, _, _, roi_pct, _, _ in rows:
        if roi_pct is not None:
            spans.setdefault(name, []).append(roi_pct)
    if not spans:
        return "no ROI to compare (no costs)"
    name, values = max(spans.items(), key=lambda item: max(item[1]) - min(item[1]))
    return f"{name}: ROI from {min(values):,.1f}% to {max(values):,.1f}%"


roi_assets = [roi]

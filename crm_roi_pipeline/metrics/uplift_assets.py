"""`metrics/uplift` and the tables behind it: how sure are we that the CRM, and not the business's own trend,
moved the figures? One multi-asset, because the five tables come from one reading of the facts."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    multi_asset,
)

from crm_roi_pipeline.errors import user_errors
from crm_roi_pipeline.metrics.assets import AFTER_ANY_INGESTION, FACTS, STAGING_KEYS
from crm_roi_pipeline.policies import DUCKDB_POOL
from crm_roi_pipeline.resources import AssumptionsFile, Reports, Warehouse

UPLIFT, COUNTERFACTUAL, PLACEBO, STAGGERED, TIME_TO_CLOSE = (
    AssetKey(["metrics", n]) for n in ("uplift", "counterfactual", "placebo_tests", "staggered_effects", "time_to_close")
)
COUNTERFACTUAL_CHART, PLACEBO_CHART = "counterfactual.png", "placebo.png"
# Fewer fake dates than this make a strip of dots that says nothing; the report says why there is no chart.
MIN_PLACEBO_CHART = 5


def _spec(key: AssetKey, description: str) -> AssetSpec:
    return AssetSpec(
        key,
        deps=[FACTS, *STAGING_KEYS],
        group_name="metrics",
        kinds={"duckdb"},
        description=description,
        metadata={"dagster/table_name": ".".join(key.path)},
        automation_condition=AFTER_ANY_INGESTION,
    )


@multi_asset(
    specs=[
        _spec(UPLIFT, "The revenue effect by each method (before/after, interrupted time series, placebo test, "
              "staggered rollout) with intervals and p-values, and a verdict in plain words: estimate, value, "
              "ci_low, ci_high, p_value, months, method, note."),
        _spec(COUNTERFACTUAL, "Won revenue per post month against what the pre-CRM trend and season predict "
              "(interrupted time series): month, actual, expected, expected_low, expected_high."),
        _spec(PLACEBO, "The same estimate at fake adoption months inside the pre period, and the real one: "
              "adoption_month, estimate, is_real."),
        _spec(STAGGERED, "Team-by-team rollouts (team_adoption_dates): effect per adoption cohort and month with "
              "not-yet-adopted teams as controls: cohort, month, event_time, att, n_treated, n_controls."),
        _spec(TIME_TO_CLOSE, "Days to close per window with open deals counted (Kaplan-Meier, censored at as_of) "
              "beside METRICS.md's closed-deals median, and a log-rank test of pre versus post."),
    ],
    can_subset=False,
    pool=DUCKDB_POOL,
)
@user_errors
def metrics_uplift(context: AssetExecutionContext, warehouse: Warehouse, assumptions: AssumptionsFile, reports: Reports):
    from crm_roi_pipeline.metrics import uplift_tables  # statistics and charts load only when it runs

    yield from uplift_tables.publish(context, warehouse, assumptions, reports)


uplift_assets = [metrics_uplift]

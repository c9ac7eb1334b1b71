"""The jobs: staging over a range of months, and the unpartitioned metrics and ROI after it."""

from dagster import AssetSelection, define_asset_job

STAGING_JOB = "stage_crm"
METRICS_JOB = "publish_metrics"

stage_crm_job = define_asset_job(
    STAGING_JOB,
    selection=AssetSelection.groups("staging"),  # monthly: the assets' partitions
    description="Stage deals, leads, activities and spend from every configured source into crm.*.",
)

publish_metrics_job = define_asset_job(
    METRICS_JOB,
    selection=AssetSelection.groups("metrics", "roi"),
    description="Recompute metrics.* from crm.*, then roi.* and the ROI report.",
)

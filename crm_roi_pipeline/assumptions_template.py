"""`crm-roi init PATH`: a commented assumptions file to start from with one's own data.

Every key of `settings.Assumptions` is in it with what it means. `adoption_date` is left empty, so the
file fails validation, naming that key, until it is filled in; `as_of` is left empty too (it means today).
The costs are examples, marked to be replaced. A test checks that the template names every key of the model.
"""

from __future__ import annotations

from pathlib import Path

from crm_roi_pipeline.errors import CrmRoiError

TEMPLATE = """\
# Business assumptions for crm_roi_pipeline (CRM_ROI_ASSUMPTIONS), written by `crm-roi init`.
# Every key is here with what it means; see "The assumptions file" in docs/settings.md, and docs/METRICS.md.
# Fill in adoption_date (the run refuses to start until you do), then replace the EXAMPLE costs with yours
# and check every other value. Dates are YYYY-MM-DD.

# --- When the CRM went live, and the comparison windows -------------------------------------------
adoption_date:            # FILL IN: the CRM's go-live date, e.g. 2024-01-01
transition_months: 0      # months after go-live left out of the comparison (rollout, data clean-up), e.g. 3
window_months: 12         # length of each comparison window (before / after go-live), at most, in months
as_of:                    # optional: the date the report is made on; empty = today. Fix it for reproducible reruns
conversion_window_days: 90  # a lead counts as converted if it converts within this many days of its creation

# --- Money ---------------------------------------------------------------------------------------
reporting_currency: USD   # ISO code every amount is reported in; other currencies convert with fx_rates.csv
gross_margin: 0.70        # share of revenue that is profit, 0..1 (turns extra revenue into benefit): use yours
discount_rate: 0.10       # yearly rate for present values (NPV, discounted ROI), 0..1
horizon_years: 3          # years the ROI counts, 1..30

# What the CRM costs. One-time costs fall in year 0; `recurring: true` ones in every year 1..horizon_years.
# category: software, implementation, customization, training, integration, data_migration, maintenance,
#           internal_labor or other. Names must be unique (the sensitivity table moves each line alone).
# EXAMPLE COSTS: REPLACE EVERY LINE BELOW WITH YOUR OWN (the figures are made up).
costs:
  - {name: Licences (EXAMPLE - replace), category: software, recurring: true, amount: 72000}
  - {name: Implementation partner (EXAMPLE - replace), category: implementation, amount: 60000}
  - {name: Training (EXAMPLE - replace), category: training, amount: 12000}
  - {name: Admin and support (EXAMPLE - replace), category: maintenance, recurring: true, amount: 18000}

# Optional: gains the data cannot measure, valued as hours_per_user_per_week x users x hourly_cost x 52,
# cut by `risk` (0..1). Empty = none. For example:
#   - {name: Admin time saved, hours_per_user_per_week: 2, users: 25, hourly_cost: 45, risk: 0.2}
benefits: []

# Optional: haircuts (0..1) on the measured benefits: the revenue lift, and the saving in acquisition cost.
risk:
  revenue: 0.1
  acquisition_cost: 0.1

# Optional: your CRM's own deal-type values -> new_business, expansion or renewal (Salesforce's and
# HubSpot's standard values are known already). Empty = none. For example:  {Renewal: renewal, Add-on: expansion}
deal_types: {}

# --- How sure are we -----------------------------------------------------------------------------
confidence_level: 0.95    # the level of every interval, between 0.5 and 1
# What the ROI's revenue benefit comes from: auto (the interrupted time series where it can be fitted,
# i.e. at least 24 complete months before go-live, else before/after), before_after (post minus pre
# monthly won revenue; counts any trend as the CRM's) or its (the interrupted time series' lift over its
# counterfactual; falls back to before_after, saying why, where it cannot be fitted). See docs/METRICS.md.
benefit_method: auto
# Optional: for a rollout team by team, each team's go-live (teams as in crm.deals.team); enables the
# staggered-rollout estimate. Empty = one go-live for everyone. For example:  {Enterprise: 2024-01-01, SMB: 2024-04-01}
team_adoption_dates: {}
"""


def write_template(path: Path) -> Path:
    """Write the template to `path`, never over an existing file (nor a folder of that name)."""
    if path.exists():
        raise CrmRoiError(
            f"{path} already exists; init never overwrites a file. Edit that file, or give another path."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        out = path.open("x", encoding="utf-8")  # "x": fails if the file appeared meanwhile
    except FileExistsError:
        raise CrmRoiError(
            f"{path} already exists; init never overwrites a file. Edit that file, or give another path."
        ) from None
    try:
        with out:
            out.write(TEMPLATE)
    except BaseException:
        path.unlink(missing_ok=True)  # a full disk leaves no half a template (the file was ours: "x")
        raise
    return path

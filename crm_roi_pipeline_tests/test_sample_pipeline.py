"""The bundled sample, staged end to end: every input row is staged or rejected with its reason, no ERROR check
fails, and the shipped files tell the story sample_data.py promises (an effect the ITS finds, which the naive
before/after overstates)."""

from __future__ import annotations

import csv
import shutil
from collections import Counter

from dagster import materialize

from crm_roi_pipeline.metrics.assets import metrics_assets
from crm_roi_pipeline.metrics.uplift_assets import uplift_assets
from crm_roi_pipeline.resources import Reports
from crm_roi_pipeline_tests.conftest import REPO

SAMPLE = REPO / "data" / "sample"
# The WARN checks the generator's planted rows fire (sample_data._plant_bad_rows); every other planted row is rejected.
PLANTED_WARNINGS = {
    ("deals", "won_deals_have_close_date"), ("deals", "closed_after_created"), ("tickets", "answered_after_created"),
}


def _rows(name):
    with (SAMPLE / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _copy_sample(project) -> None:
    for file in SAMPLE.glob("*.csv"):
        shutil.copy(file, project.csv_dir / file.name)
    project.assumptions.write_text((REPO / "data" / "roi_assumptions.yaml").read_text())


def test_every_sample_row_is_staged_or_rejected(staged_sample):
    project = staged_sample  # read only; staged with the checks, which change no row
    for entity in ("deals", "leads", "activities", "spend", "tickets"):
        staged = project.query(f"SELECT count(*) FROM crm.{entity}")[0][0]
        rejected = project.query("SELECT count(*) FROM crm.rejects WHERE entity = ?", [entity])[0][0]
        assert staged + rejected == len(_rows(f"{entity}.csv")), entity

    # The bad rows the generator plants (sample_data.py), found in the files by their defect, each with its reason.
    deals, leads = _rows("deals.csv"), _rows("leads.csv")
    ids = [d["deal_id"] for d in deals if d["deal_id"]]
    (duplicate,) = [i for i, n in Counter(ids).items() if n > 1]
    (not_a_date,) = [d["deal_id"] for d in deals if d["created_at"] == "not a date"]
    (eur,) = [d["deal_id"] for d in deals if d["currency"] == "EUR" and d["closed_at"][:7] == "2023-03"]
    (old,) = [r["lead_id"] for r in leads if r["created_at"] < "2015"]
    (not_a_boolean,) = [r["lead_id"] for r in leads if r["is_converted"] not in ("true", "false")]
    reasons = project.query("SELECT entity, coalesce(source_id, ''), reason FROM crm.rejects ORDER BY ALL")
    found = {(entity, source_id): reason for entity, source_id, reason in reasons}
    assert len(found) == len(reasons) == 8
    assert found == {
        ("activities", ""): "no activity_id",
        ("tickets", ""): "no ticket_id",
        ("deals", ""): "no deal_id",
        ("deals", duplicate): found[("deals", duplicate)],  # checked below: the row number is the file's
        ("deals", not_a_date): "created_at: cannot read 'not a date' as a date",
        ("deals", eur): "no fx rate for EUR in 2023-03 (add it to fx_rates.csv)",
        ("leads", old): "created_at 2014-11 is before CRM_ROI_HISTORY_START (2015-01-01)",
        ("leads", not_a_boolean): "is_converted: cannot read 'yes?' as true/false",
    }
    assert found[("deals", duplicate)].startswith("duplicate deal_id: deals.csv row ")
    # The ticket answered two hours before it was opened is staged: only the WARN check counts it.
    tickets = _rows("tickets.csv")
    (skewed,) = [t["ticket_id"] for t in tickets if t["first_response_at"] and t["first_response_at"] < t["created_at"]]
    assert project.query("SELECT count(*) FROM crm.tickets WHERE ticket_id = ?", [skewed]) == [(1,)]

    # Amounts in EUR are converted with the month's rate from fx_rates.csv.
    rates = {(r["month"], r["currency"]): float(r["rate"]) for r in _rows("fx_rates.csv")}
    converted = next(r for r in deals if r["currency"] == "EUR" and r["is_closed"] == "true" and r["deal_id"] != eur)
    month = converted["closed_at"][:7] + "-01"
    got = project.query("SELECT amount_reporting FROM crm.deals WHERE deal_id = ?", [converted["deal_id"]])[0][0]
    assert abs(got - float(converted["amount"]) * rates[(month, "EUR")]) < 1e-6


def test_the_shipped_sample_shows_a_real_effect_that_before_after_overstates(project, staged_sample):
    """The shipped files, not the generator's intent: staged with their assumptions, checked, and measured."""
    _copy_sample(project)
    failed = staged_sample.failed_checks  # {(entity, check): severity} of the staging run's checks that failed
    # Every planted bad row is rejected or only warns: the first run is clean.
    assert [key for key, severity in failed.items() if severity == "ERROR"] == []
    assert set(failed) <= PLANTED_WARNINGS
    assert staged_sample.success

    project.use_database(staged_sample.database)
    resources = {**project.resources(), "reports": Reports(dir=str(project.root / "reports"))}
    assert materialize([*metrics_assets, *uplift_assets], resources=resources, instance=project.instance).success
    uplift = {r[0]: r[1:] for r in project.query("SELECT estimate, value, ci_low, ci_high, months FROM metrics.uplift")}
    its_value, its_low, its_high, its_months = uplift["its"]
    naive, *_ = uplift["before_after"]
    # 48 months before adoption (2020-01 … 2023-12), 12 after: the ITS is fitted, and its interval excludes 0.
    assert its_months == 12
    assert 0 < its_low < its_value < its_high
    # The before/after also counts a year of the business's growth as the CRM's doing.
    assert naive > its_value

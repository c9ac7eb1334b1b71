"""The bundled sample, staged end to end: every input row is staged or rejected with its reason."""

from __future__ import annotations

import csv
import shutil

from crm_roi_pipeline_tests.conftest import REPO

SAMPLE = REPO / "data" / "sample"


def _rows(name):
    with (SAMPLE / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_sample_row_is_staged_or_rejected(project):
    for file in SAMPLE.glob("*.csv"):
        shutil.copy(file, project.csv_dir / file.name)
    project.assumptions.write_text((REPO / "data" / "roi_assumptions.yaml").read_text())
    project.stage()
    for entity in ("deals", "leads", "activities", "spend"):
        staged = project.query(f"SELECT count(*) FROM crm.{entity}")[0][0]
        rejected = project.query("SELECT count(*) FROM crm.rejects WHERE entity = ?", [entity])[0][0]
        assert staged + rejected == len(_rows(f"{entity}.csv")), entity

    # The bad rows the generator plants (sample_data.py), each with its reason.
    reasons = project.query("SELECT entity, coalesce(source_id, ''), reason FROM crm.rejects ORDER BY ALL")
    assert reasons == [
        ("activities", "", "no activity_id"),
        ("deals", "", "no deal_id"),
        ("deals", "D001651", reasons[2][2]),  # the duplicate: checked below
        ("deals", "D002501", "created_at: cannot read 'not a date' as a date"),
        ("deals", "D002502", "no fx rate for EUR in 2023-03 (add it to fx_rates.csv)"),
        ("leads", "L006251", "created_at 2014-11 is before CRM_ROI_HISTORY_START (2015-01-01)"),
        ("leads", "L006252", "is_converted: cannot read 'yes?' as true/false"),
    ]
    assert reasons[2][2].startswith("duplicate deal_id: deals.csv row ")

    # Amounts in EUR are converted with the month's rate from fx_rates.csv.
    rates = {(r["month"], r["currency"]): float(r["rate"]) for r in _rows("fx_rates.csv")}
    eur = next(r for r in _rows("deals.csv") if r["currency"] == "EUR" and r["is_closed"] == "true" and r["deal_id"] != "D002502")
    month = eur["closed_at"][:7] + "-01"
    got = project.query("SELECT amount_reporting FROM crm.deals WHERE deal_id = ?", [eur["deal_id"]])[0][0]
    assert abs(got - float(eur["amount"]) * rates[(month, "EUR")]) < 1e-6

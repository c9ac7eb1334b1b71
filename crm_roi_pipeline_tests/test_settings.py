"""The assumptions file and the environment settings are validated, naming the key and the problem."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from crm_roi_pipeline.errors import SettingsError
from crm_roi_pipeline.settings import load_assumptions, parse_history_start
from crm_roi_pipeline.sources.registry import parse_sources
from crm_roi_pipeline_tests.conftest import ASSUMPTIONS, REPO


def _write(tmp_path, text):
    path = tmp_path / "a.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_bundled_assumptions_file_is_valid():
    parsed = load_assumptions(REPO / "data" / "roi_assumptions.yaml")
    assert parsed.adoption_date == dt.date(2024, 1, 1)
    assert parsed.reporting_currency == "USD"
    assert {c.category for c in parsed.costs} <= {"software", "implementation", "customization", "training",
                                                  "integration", "data_migration", "maintenance", "internal_labor", "other"}


def test_defaults_of_optional_keys(tmp_path):
    parsed = load_assumptions(_write(tmp_path, ASSUMPTIONS))
    assert parsed.conversion_window_days == 90
    assert parsed.as_of is None
    assert parsed.risk.revenue == 0 and parsed.benefits == []
    assert parsed.costs[0].recurring is True
    assert parsed.confidence_level == 0.95 and parsed.benefit_method == "auto"
    assert parsed.team_adoption_dates == {}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("gross_margin: 0.7", "gross_margin: 1.2"), "gross_margin: Input should be less than or equal to 1 (got 1.2)"),
        (("gross_margin: 0.7", "gross_margin: -0.1"), "gross_margin: Input should be greater than or equal to 0"),
        (("amount: 72000", "amount: -5"), "costs[0].amount: Input should be greater than or equal to 0 (got -5)"),
        (("window_months: 12", "window_months: twelve"), "window_months: Input should be a valid integer"),
        (("window_months: 12", "windows_months: 12"), "windows_months: unknown key"),
        (("horizon_years: 3\n", ""), "horizon_years: missing key"),
        (("category: software", "category: hardware"), "costs[0].category: Input should be"),
        (("adoption_date: 2024-01-01", "adoption_date: soon"), "adoption_date: Input should be a valid date"),
        (("reporting_currency: USD", "reporting_currency: dollars"), "reporting_currency: String should match"),
        (("  Add-on: expansion", "  Add-on: upsell"), "deal_types.Add-on: Input should be 'new_business', 'expansion' or 'renewal'"),
        (("horizon_years: 3", "horizon_years: 3\nconfidence_level: 95"), "confidence_level: Input should be less than 1"),
        (("horizon_years: 3", "horizon_years: 3\nbenefit_method: its_model"), "benefit_method: Input should be 'auto', 'before_after' or 'its'"),
        (("horizon_years: 3", "horizon_years: 3\nteam_adoption_dates: {EMEA: next year}"), "team_adoption_dates.EMEA: Input should be a valid date"),
    ],
)
def test_malformed_assumptions_name_the_key_and_the_problem(tmp_path, change, expected):
    text = ASSUMPTIONS.replace(*change)
    assert text != ASSUMPTIONS
    with pytest.raises(SettingsError) as info:
        load_assumptions(_write(tmp_path, text))
    assert expected in str(info.value)
    assert str(tmp_path / "a.yaml") in str(info.value)


def test_every_problem_is_reported_at_once(tmp_path):
    text = ASSUMPTIONS.replace("gross_margin: 0.7", "gross_margin: 2").replace("amount: 72000", "amount: -1")
    with pytest.raises(SettingsError) as info:
        load_assumptions(_write(tmp_path, text))
    assert "gross_margin" in str(info.value) and "costs[0].amount" in str(info.value)


def test_missing_and_unparseable_files(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_assumptions(tmp_path / "nope.yaml")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_assumptions(_write(tmp_path, "costs: [unclosed"))


def test_sources_setting():
    assert parse_sources("csv") == ("csv",)
    assert parse_sources(" CSV , salesforce") == ("csv", "salesforce")
    with pytest.raises(SettingsError, match="unknown source 'pipedrive'"):
        parse_sources("csv,pipedrive")
    with pytest.raises(SettingsError, match="twice"):
        parse_sources("csv,csv")


def test_history_start_is_a_month():
    assert parse_history_start("2015-01-17") == dt.date(2015, 1, 1)
    with pytest.raises(SettingsError, match="CRM_ROI_HISTORY_START"):
        parse_history_start("Jan 2015")

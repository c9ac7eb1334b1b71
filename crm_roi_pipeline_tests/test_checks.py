"""Each data-quality check fires on the problem it names, with its count, and passes on clean data."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import AssetCheckSeverity

from crm_roi_pipeline.metrics.windows import compute_windows
from crm_roi_pipeline.metrics.completeness import completeness_result
from crm_roi_pipeline_tests.conftest import Project, planned_events_as_ranges

# The comparison windows are 1 month here (data from 2023-12, adoption 2024-01): 2023-12 against 2024-01,
# with as many leads and activities, and half as many deals, in each (not thinner than half: no warning).
CLEAN_DEALS = """
deal_id,account_id,account_name,stage,is_closed,is_won,amount,deal_type,created_at,closed_at
D0,A3,Gamma,Closed Lost,true,false,10,,2023-12-10,2023-12-20
D1,A1,Acme,Closed Won,true,true,100,new_business,2024-01-05,2024-02-01
D2,A2,Beta,Closed Lost,true,false,50,,2024-01-20,2024-03-01
D3,A1,Acme,Proposal,false,false,70,,2024-02-10,
"""
CLEAN_LEADS = """
lead_id,lead_source,created_at,is_converted,converted_at,converted_deal_id
L1,Web,2023-12-01,true,2024-01-05,D1
L2,,2024-01-02,false,,
"""
CLEAN_ACTIVITIES = """
activity_id,type,status,occurred_at
T0,email,completed,2023-12-04
T1,call,completed,2024-01-03
"""
CLEAN_SPEND = """
month,category,channel,amount
2024-01-01,marketing,Web,1000
"""
MONTHS = ("2023-12-01", "2024-03-01")  # the first and the last month of these files and of the edits below


def _evaluations(result) -> dict[tuple[str, str], object]:
    return {
        (e.asset_key.path[-1], e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def _write(project, deals=CLEAN_DEALS, leads=CLEAN_LEADS, activities=CLEAN_ACTIVITIES, spend=CLEAN_SPEND) -> list[str]:
    """Write the four files; the entities whose file is not the clean one."""
    files = {"deals": (deals, CLEAN_DEALS), "leads": (leads, CLEAN_LEADS), "activities": (activities, CLEAN_ACTIVITIES),
             "spend": (spend, CLEAN_SPEND)}
    for entity, (text, _) in files.items():
        project.write(f"{entity}.csv", text)
    return [entity for entity, (text, clean) in files.items() if text != clean]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The clean files staged once with every check: its evaluations, and the database the tests below start
    from (a copy), restaging only the file they break."""
    project = Project(tmp_path_factory.mktemp("clean"))
    _write(project)
    with planned_events_as_ranges():
        # An ERROR check is blocking: its failure fails the run (test_blocking_checks.py); its result is still
        # recorded. The run covers the files' months (2023-12 … 2024-03): the checks read whole tables, and the
        # other 140 months of the history would only add Dagster's events for each.
        result = project.stage(*MONTHS, checks=True, raise_on_error=False)
    return project, _evaluations(result)


def _stage(project, clean, **files):
    """The clean database with the changed files restaged over their months, and every entity's checks."""
    changed = _write(project, **files)
    project.use_database(clean[0].db_path)
    return _evaluations(project.stage(*MONTHS, entities=changed, checks="all", raise_on_error=False))


def test_every_check_passes_on_clean_data(clean):
    _, evaluations = clean
    # 16 SQL checks (renewals_have_account and the tickets' four among them) and 4 completeness checks; the
    # tickets' pass on an empty crm.tickets.
    assert len(evaluations) == 20
    failing = {key: e.description for key, e in evaluations.items() if not e.passed}
    assert failing == {}


@pytest.mark.parametrize(
    ("entity", "check", "edit", "count", "severity"),
    [
        # The same deal twice, written by a second (API) source into the same table: both rows are reported.
        ("deals", "unique_ids", None, 2, AssetCheckSeverity.ERROR),
        ("deals", "won_deals_have_close_date",
         lambda t: t.replace("D1,A1,Acme,Closed Won,true,true,100,new_business,2024-01-05,2024-02-01",
                             "D1,A1,Acme,Closed Won,true,true,100,new_business,2024-01-05,"), 1, AssetCheckSeverity.WARN),
        ("deals", "closed_after_created",
         lambda t: t.replace("2024-01-20,2024-03-01", "2024-01-20,2024-01-19"), 1, AssetCheckSeverity.WARN),
        ("deals", "won_deals_have_amount",
         lambda t: t.replace("Closed Won,true,true,100,", "Closed Won,true,true,,"), 1, AssetCheckSeverity.WARN),
        ("deals", "amounts_not_negative",
         lambda t: t.replace("Closed Lost,true,false,50,", "Closed Lost,true,false,-50,"), 1, AssetCheckSeverity.ERROR),
        # 'Partnership' is in no mapping: two deals carry it.
        ("deals", "deal_types_recognised",
         lambda t: t.replace("Closed Lost,true,false,50,,", "Closed Lost,true,false,50,Partnership,")
                    .replace("Proposal,false,false,70,,", "Proposal,false,false,70,Partnership,"), 2, AssetCheckSeverity.WARN),
    ],
)
def test_deal_checks_fire(project, clean, entity, check, edit, count, severity):
    if edit is None:
        _write(project)  # the first load (a copy of it), then a duplicate arrives from another source
        project.use_database(clean[0].db_path)
        with project.connect() as conn:
            conn.execute("INSERT INTO crm.deals (deal_id, source_system, loaded_from, is_closed, is_won, created_at) "
                         "VALUES ('D1', 'csv', 'salesforce', false, false, '2024-05-01')")
        evaluations = _evaluations(project.stage("2024-06-01", "2024-06-01", checks=True, raise_on_error=False))
    else:
        evaluations = _stage(project, clean, deals=edit(CLEAN_DEALS))
    evaluation = evaluations[(entity, check)]
    assert not evaluation.passed
    assert evaluation.severity == severity
    assert evaluation.metadata["count"].value == count
    assert "examples" in evaluation.metadata
    others = [key for key, e in evaluations.items() if not e.passed and key != (entity, check)]
    assert others == []


def test_lead_checks_fire(project, clean):
    leads = CLEAN_LEADS + "L3,Web,2024-01-03,true,,\nL4,Web,2024-01-04,true,2024-01-09,D99\n"
    evaluations = _stage(project, clean, leads=leads)
    # L3 is converted without a date; L4 points at D99, which is not staged.
    assert evaluations[("leads", "converted_leads_have_date")].metadata["count"].value == 1
    assert evaluations[("leads", "converted_deals_exist")].metadata["count"].value == 1
    assert not evaluations[("leads", "converted_deals_exist")].passed


def test_negative_spend_fires(project, clean):
    evaluations = _stage(project, clean, spend=CLEAN_SPEND + "2024-02-01,sales,,-10\n")
    evaluation = evaluations[("spend", "amounts_not_negative")]
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    assert evaluation.metadata["count"].value == 1


def _windows(as_of=dt.date(2025, 1, 15)):
    return compute_windows(adoption_date=dt.date(2024, 1, 1), transition_months=0, window_months=6,
                           as_of=as_of, first_data_month=dt.date(2023, 1, 1))


def _months(first: dt.date, values: list[int]) -> dict[dt.date, int]:
    out, month = {}, first
    for value in values:
        out[month] = value
        month = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


def test_completeness_flags_a_month_far_below_its_neighbours():
    # 2023-01 … 2024-12, 100 a month, except 2023-05 with 30: its neighbours' median is 100, and 30 < 50.
    values = [100] * 24
    values[4] = 30
    result = completeness_result(_months(dt.date(2023, 1, 1), values), _windows())
    assert not result.passed and result.severity == AssetCheckSeverity.WARN
    assert result.metadata["months_flagged"].value == 1
    assert "2023-05" in result.description


def test_completeness_does_not_flag_a_seasonal_dip_or_the_current_month():
    # A dip to 60 (above half of 100) is not flagged; neither is the month holding as_of (2025-01, 5 so far).
    values = [100] * 24 + [5]
    values[11] = 60
    result = completeness_result(_months(dt.date(2023, 1, 1), values), _windows())
    assert result.passed, result.description
    assert result.metadata["months_flagged"].value == 0


def test_completeness_flags_a_pre_window_much_thinner_than_the_post_window():
    # Windows of 6: pre 2023-07 … 2023-12 at 40 a month, post 2024-01 … 2024-06 at 100: 40 < 0.5 × 100.
    values = [40] * 12 + [100] * 12
    result = completeness_result(_months(dt.date(2023, 1, 1), values), _windows())
    assert not result.passed
    assert result.metadata["pre_records_per_month"].value == 40
    assert result.metadata["post_records_per_month"].value == 100
    assert "pre window has 40.0 records per month against 100.0" in result.description
    # At 60 a month before (over half of 100) it passes.
    result = completeness_result(_months(dt.date(2023, 1, 1), [60] * 12 + [100] * 12), _windows())
    assert result.passed

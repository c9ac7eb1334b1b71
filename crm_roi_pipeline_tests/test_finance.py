"""The finance functions reproduce the two public examples to the unit, and the edge cases."""

from __future__ import annotations

import pytest

from crm_roi_pipeline.roi.finance import (
    cash_flows,
    discounted_roi_pct,
    npv,
    payback_months,
    present_value,
    roi_pct,
)

# Forrester's published TEI example (risk-adjusted, 10%, end-of-year discounting, year 0 undiscounted).
TEI_COSTS = [53_150, 666_715, 636_772, 647_783]
TEI_BENEFITS = [0, 1_606_511, 3_061_331, 4_229_760]


def test_the_guides_example_cost_one_million_benefit_two_million_is_100_percent():
    assert roi_pct(2_000_000, 1_000_000) == 100


def test_forrester_tei_example_to_the_unit():
    flows = cash_flows(TEI_COSTS, TEI_BENEFITS, 0.10)
    pv_costs = present_value(TEI_COSTS, 0.10)
    pv_benefits = present_value(TEI_BENEFITS, 0.10)
    # Published: PV costs 1,672,201; PV benefits 7,168,371; NPV 5,496,170; ROI 329%.
    assert round(pv_costs) == 1_672_201
    assert round(pv_benefits) == 7_168_371
    assert round(npv(flows)) == 5_496_170
    assert round(discounted_roi_pct(npv(flows), pv_costs)) == 329
    # Undiscounted on the same flows: (8,897,602 − 2,004,420) / 2,004,420 = 343.9%.
    assert round(roi_pct(sum(TEI_BENEFITS), sum(TEI_COSTS)), 1) == 343.9


def test_cash_flow_rows():
    flows = cash_flows([100, 10, 10], [0, 60, 60], 0.10)
    assert [(f.year, f.net, f.cumulative_net) for f in flows] == [(0, -100, -100), (1, 50, -50), (2, 50, 0)]
    # Year 0 undiscounted; year 2: 50 / 1.1² = 41.32...
    assert flows[0].discounted_net == -100
    assert flows[2].discounted_net == pytest.approx(50 / 1.21)


def test_payback():
    # One-time 60,000; benefits 100,000 − recurring 28,000 a year = 6,000 a month → 10 months.
    assert payback_months(60_000, 100_000, 28_000) == pytest.approx(10)
    assert payback_months(60_000, 28_000, 28_000) is None  # monthly net zero
    assert payback_months(60_000, 20_000, 28_000) is None  # negative
    assert payback_months(0, 40_000, 28_000) == 0  # recurring-only costs pay back at once


def test_no_costs_gives_no_ratio():
    assert roi_pct(100, 0) is None
    assert discounted_roi_pct(100, 0) is None


def test_cash_flows_need_the_same_years():
    with pytest.raises(ValueError):
        cash_flows([1, 2], [1], 0.1)

"""The finance math of the ROI, as pure functions: no Dagster, no DuckDB, no assumptions file.

Conventions are Forrester's Total Economic Impact ones: year 0 is the initial investment and is not
discounted; years 1..H are discounted at the end of the year. ROI is given two ways: `roi_pct`, the guides'
undiscounted (benefits − costs) / costs, and `discounted_roi_pct`, TEI's NPV / present value of costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class YearFlow:
    year: int
    costs: float
    benefits: float
    net: float
    discounted_net: float
    cumulative_net: float


def discount_factor(year: int, rate: float) -> float:
    return 1.0 / (1.0 + rate) ** year


def present_value(values: Sequence[float], rate: float) -> float:
    """Σ value_t / (1 + rate)^t, t = 0 for the first value (undiscounted)."""
    return sum(v * discount_factor(t, rate) for t, v in enumerate(values))


def cash_flows(costs: Sequence[float], benefits: Sequence[float], rate: float) -> list[YearFlow]:
    """Per year: costs, benefits, net = benefits − costs, net discounted, and the running sum of net."""
    if len(costs) != len(benefits):
        raise ValueError(f"costs cover {len(costs)} years but benefits {len(benefits)}")
    flows, cumulative = [], 0.0
    for year, (cost, benefit) in enumerate(zip(costs, benefits)):
        net = benefit - cost
        cumulative += net
        flows.append(YearFlow(year, cost, benefit, net, net * discount_factor(year, rate), cumulative))
    return flows


def npv(flows: Sequence[YearFlow]) -> float:
    return sum(f.discounted_net for f in flows)


def roi_pct(total_benefits: float, total_costs: float) -> float | None:
    """(benefits − costs) / costs × 100: cost 1,000,000 and benefit 2,000,000 give 100. None without costs."""
    if not total_costs:
        return None
    return (total_benefits - total_costs) / total_costs * 100


def discounted_roi_pct(net_present_value: float, pv_costs: float) -> float | None:
    """Forrester TEI's ROI: NPV / present value of costs × 100. None without costs."""
    if not pv_costs:
        return None
    return net_present_value / pv_costs * 100


def payback_months(one_time_costs: float, annual_benefits: float, annual_recurring_costs: float) -> float | None:
    """Months for the monthly net benefit to repay the one-time costs; None when that net is not positive."""
    monthly_net = (annual_benefits - annual_recurring_costs) / 12
    if monthly_net <= 0:
        return None
    return one_time_costs / monthly_net

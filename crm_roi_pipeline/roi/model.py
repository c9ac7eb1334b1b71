"""The CRM's ROI from the assumptions and the measured pre/post figures: TCO, benefits, cash flows,
ROI, NPV, payback and their sensitivity. Pure Python over small inputs, so every number can be checked by
hand; `assets.py` only reads the inputs and publishes the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_roi_pipeline.roi import finance
from crm_roi_pipeline.settings import Assumptions


@dataclass(frozen=True)
class Measured:
    """What the ROI takes from metrics.adoption (per-month values for counts and sums, pooled for CAC)."""

    pre_won_revenue: float
    post_won_revenue: float
    pre_cac: float | None
    post_cac: float | None
    post_new_customers: float | None
    # From metrics.uplift: the won-revenue change per month with its interval, by each method (None where
    # the method could not be applied, e.g. the ITS with fewer than 24 pre months).
    before_after_interval: tuple[float, float] | None = None
    its_lift: float | None = None
    its_interval: tuple[float, float] | None = None
    its_unavailable: str | None = None

    def revenue_lift(self, method: str) -> tuple[float, str, tuple[float, float] | None, str]:
        """(lift per month, method used, its interval, why): the ITS when asked for and available, else
        METRICS.md's before/after."""
        if method == "its" and self.its_lift is not None:
            return self.its_lift, "its", self.its_interval, "benefit_method: its in the assumptions"
        lift = self.post_won_revenue - self.pre_won_revenue
        if method == "its":
            why = f"benefit_method is its, but the interrupted time series is unavailable ({self.its_unavailable}); before/after used instead"
        else:
            why = "benefit_method: before_after (the default; METRICS.md's comparison)"
        return lift, "before_after", self.before_after_interval, why


@dataclass(frozen=True)
class Benefits:
    revenue: float
    acquisition_cost: float
    estimates: float
    estimate_lines: tuple[tuple[str, float], ...] = ()

    @property
    def annual(self) -> float:
        return self.revenue + self.acquisition_cost + self.estimates


@dataclass(frozen=True)
class RoiModel:
    currency: str
    horizon_years: int
    discount_rate: float
    one_time_costs: float
    annual_recurring_costs: float
    benefits: Benefits
    flows: list[finance.YearFlow]
    cost_lines: list[tuple[str, str, bool, float]] = field(default_factory=list)  # name, category, recurring, amount
    revenue_lift: float = 0.0  # won revenue per month credited to the CRM, before margin and risk
    benefit_method: str = "before_after"  # what the revenue lift came from: before_after or its
    benefit_why: str = ""

    @property
    def total_costs(self) -> float:
        return sum(f.costs for f in self.flows)

    @property
    def total_benefits(self) -> float:
        return sum(f.benefits for f in self.flows)

    @property
    def pv_costs(self) -> float:
        return finance.present_value([f.costs for f in self.flows], self.discount_rate)

    @property
    def pv_benefits(self) -> float:
        return finance.present_value([f.benefits for f in self.flows], self.discount_rate)

    @property
    def npv(self) -> float:
        return finance.npv(self.flows)

    @property
    def roi_pct(self) -> float | None:
        return finance.roi_pct(self.total_benefits, self.total_costs)

    @property
    def discounted_roi_pct(self) -> float | None:
        return finance.discounted_roi_pct(self.npv, self.pv_costs)

    @property
    def payback_months(self) -> float | None:
        return finance.payback_months(self.one_time_costs, self.benefits.annual, self.annual_recurring_costs)

    def summary(self) -> list[tuple[str, float | None, str]]:
        """roi.summary rows: figure, value, unit."""
        ccy = self.currency
        return [
            ("total_costs", self.total_costs, ccy),
            ("total_benefits", self.total_benefits, ccy),
            ("roi_pct", self.roi_pct, "%"),
            ("npv", self.npv, ccy),
            ("discounted_roi_pct", self.discounted_roi_pct, "%"),
            ("payback_months", self.payback_months, "months"),
            ("revenue_lift_per_month", self.revenue_lift, ccy),
            ("benefit_method_its", 1.0 if self.benefit_method == "its" else 0.0, "flag"),
            ("annual_benefit_revenue", self.benefits.revenue, ccy),
            ("annual_benefit_acquisition_cost", self.benefits.acquisition_cost, ccy),
            ("annual_benefit_estimates", self.benefits.estimates, ccy),
            ("annual_benefits", self.benefits.annual, ccy),
            ("one_time_costs", self.one_time_costs, ccy),
            ("annual_recurring_costs", self.annual_recurring_costs, ccy),
            ("pv_costs", self.pv_costs, ccy),
            ("pv_benefits", self.pv_benefits, ccy),
            ("horizon_years", float(self.horizon_years), "years"),
            ("discount_rate", self.discount_rate, "fraction"),
        ]

    def costs_by_category(self) -> list[tuple[str, float, float, float]]:
        """category, one-time (year 0), recurring per year, total over the horizon."""
        out: dict[str, list[float]] = {}
        for _, category, recurring, amount in self.cost_lines:
            row = out.setdefault(category, [0.0, 0.0])
            row[1 if recurring else 0] += amount
        return [
            (category, one, per_year, one + per_year * self.horizon_years) for category, (one, per_year) in sorted(out.items())
        ]


def annual_benefits(assumptions: Assumptions, measured: Measured, lift: float) -> Benefits:
    """METRICS.md: measured benefits, each cut by its risk haircut, plus the estimates of the assumptions.

    `lift` is the won revenue per month credited to the CRM: post − pre (before_after), the uplift over the
    interrupted time series counterfactual (benefit_method: its), or the sensitivity's interval ends."""
    revenue = lift * 12 * assumptions.gross_margin * (1 - assumptions.risk.revenue)
    acquisition = 0.0
    if measured.pre_cac is not None and measured.post_cac is not None and measured.post_new_customers is not None:
        acquisition = (
            (measured.pre_cac - measured.post_cac) * measured.post_new_customers * 12
            * (1 - assumptions.risk.acquisition_cost)
        )
    lines = tuple(
        (b.name, b.hours_per_user_per_week * b.users * b.hourly_cost * 52 * (1 - b.risk)) for b in assumptions.benefits
    )
    return Benefits(revenue, acquisition, sum(v for _, v in lines), lines)


def build_model(assumptions: Assumptions, measured: Measured, lift: float | None = None) -> RoiModel:
    one_time = sum(c.amount for c in assumptions.costs if not c.recurring)
    recurring = sum(c.amount for c in assumptions.costs if c.recurring)
    used_lift, method, _, why = measured.revenue_lift(assumptions.benefit_method)
    lift = used_lift if lift is None else lift
    benefits = annual_benefits(assumptions, measured, lift)
    horizon = assumptions.horizon_years
    costs = [one_time] + [recurring] * horizon
    yearly_benefits = [0.0] + [benefits.annual] * horizon
    return RoiModel(
        currency=assumptions.reporting_currency,
        horizon_years=horizon,
        discount_rate=assumptions.discount_rate,
        one_time_costs=one_time,
        annual_recurring_costs=recurring,
        benefits=benefits,
        flows=finance.cash_flows(costs, yearly_benefits, assumptions.discount_rate),
        cost_lines=[(c.name, c.category, c.recurring, c.amount) for c in assumptions.costs],
        revenue_lift=lift,
        benefit_method=method,
        benefit_why=why,
    )


# --- sensitivity -----------------------------------------------------------------------------------


def _clip(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(high, max(low, value))


def _variants(assumptions: Assumptions):
    """(assumption, setting, value, changed assumptions): each assumption moved alone over a plausible range."""
    a = assumptions
    for setting, value in (("low", _clip(a.gross_margin - 0.1)), ("base", a.gross_margin), ("high", _clip(a.gross_margin + 0.1))):
        yield "gross_margin", setting, value, a.model_copy(update={"gross_margin": value})
    for setting, value in (("low", _clip(a.discount_rate - 0.05)), ("base", a.discount_rate), ("high", _clip(a.discount_rate + 0.05))):
        yield "discount_rate", setting, value, a.model_copy(update={"discount_rate": value})
    for key in ("revenue", "acquisition_cost"):
        base = getattr(a.risk, key)
        for setting, value in (("low", _clip(base - 0.1)), ("base", base), ("high", _clip(base + 0.1))):
            yield f"risk.{key}", setting, value, a.model_copy(update={"risk": a.risk.model_copy(update={key: value})})
    for i, line in enumerate(a.benefits):
        for setting, value in (("low", _clip(line.risk - 0.1)), ("base", line.risk), ("high", _clip(line.risk + 0.1))):
            lines = list(a.benefits)
            lines[i] = line.model_copy(update={"risk": value})
            yield f"benefits.{line.name}.risk", setting, value, a.model_copy(update={"benefits": lines})
    for i, cost in enumerate(a.costs):
        for setting, factor in (("-20%", 0.8), ("base", 1.0), ("+20%", 1.2)):
            lines = list(a.costs)
            lines[i] = cost.model_copy(update={"amount": cost.amount * factor})
            yield f"costs.{cost.name}", setting, cost.amount * factor, a.model_copy(update={"costs": lines})


def sensitivity(assumptions: Assumptions, measured: Measured) -> list[tuple]:
    """roi.sensitivity rows: assumption, setting, value, roi_pct, discounted_roi_pct, payback_months."""
    rows = []
    for name, setting, value, changed in _variants(assumptions):
        model = build_model(changed, measured)
        rows.append((name, setting, value, model.roi_pct, model.discounted_roi_pct, model.payback_months))
    # How sure are we: the ROI at either end of the revenue lift's interval, and under each benefit method.
    lift, method, interval, _ = measured.revenue_lift(assumptions.benefit_method)
    if interval is not None:
        for setting, value in (("ci_low", interval[0]), ("estimate", lift), ("ci_high", interval[1])):
            model = build_model(assumptions, measured, value)
            rows.append((f"revenue_lift.{method}", setting, value, model.roi_pct, model.discounted_roi_pct,
                         model.payback_months))
    for other in ("before_after", "its"):
        value, used, _, _ = measured.revenue_lift(other)
        if used == other:
            model = build_model(assumptions, measured, value)
            rows.append(("benefit_method", other, value, model.roi_pct, model.discounted_roi_pct, model.payback_months))
    return rows

"""The CRM's ROI from the assumptions and the measured pre/post figures: TCO, benefits, cash flows,
ROI, NPV, payback and their sensitivity. Pure Python over small inputs, so every number can be checked by
hand; `assets.py` only reads the inputs and publishes the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from crm_roi_pipeline.metrics.lift import Estimate, RevenueLift, choose_lift
from crm_roi_pipeline.roi import finance
from crm_roi_pipeline.settings import Assumptions


@dataclass(frozen=True)
class Measured:
    """What the ROI takes from metrics.adoption (per-month values for counts and sums, pooled for CAC) and
    from metrics.uplift (the won-revenue change per month by each method, with its interval)."""

    pre_won_revenue: float
    post_won_revenue: float
    pre_cac: float | None
    post_cac: float | None
    post_new_customers: float | None
    before_after_interval: tuple[float, float] | None = None
    its: Estimate = Estimate(None, unavailable="metrics/uplift has not been published")

    def revenue_lift(self, method: str) -> RevenueLift:
        """METRICS.md: the lift `benefit_method` chooses (auto: the ITS where it could be fitted)."""
        low, high = self.before_after_interval or (None, None)
        before_after = Estimate(self.post_won_revenue - self.pre_won_revenue, low, high)
        return choose_lift(method, before_after, self.its)


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
    lift: RevenueLift | None = None  # the lift benefit_method chose: method, interval, reason, verdict
    revenue_lift: float = 0.0  # won revenue per month credited to the CRM, before margin and risk
    # The ROI and NPV with the lift at either end of its interval, all else equal (None without an interval).
    roi_pct_range: tuple[float | None, float | None] = (None, None)
    npv_range: tuple[float | None, float | None] = (None, None)

    @property
    def benefit_method(self) -> str:
        return self.lift.method if self.lift else "before_after"

    @property
    def benefit_why(self) -> str:
        return self.lift.reason if self.lift else ""

    @property
    def verdict(self) -> str:
        return self.lift.verdict if self.lift else "unclear"

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

    def summary(self) -> list[tuple[str, float | None, str | None, str | None]]:
        """roi.summary rows: figure, value, unit, text (text rows have no value and no unit)."""
        ccy = self.currency
        lift_low, lift_high = self.lift.interval if self.lift and self.lift.interval else (None, None)
        numbers = [
            ("total_costs", self.total_costs, ccy),
            ("total_benefits", self.total_benefits, ccy),
            ("roi_pct", self.roi_pct, "%"),
            ("roi_pct_low", self.roi_pct_range[0], "%"),
            ("roi_pct_high", self.roi_pct_range[1], "%"),
            ("npv", self.npv, ccy),
            ("npv_low", self.npv_range[0], ccy),
            ("npv_high", self.npv_range[1], ccy),
            ("discounted_roi_pct", self.discounted_roi_pct, "%"),
            ("payback_months", self.payback_months, "months"),
            ("revenue_lift_per_month", self.revenue_lift, ccy),
            ("revenue_lift_low", lift_low, ccy),
            ("revenue_lift_high", lift_high, ccy),
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
        texts = [
            ("benefit_method", self.benefit_method),
            ("benefit_method_reason", self.benefit_why),
            ("verdict", self.verdict),
        ]
        return [(f, v, u, None) for f, v, u in numbers] + [(f, None, None, t) for f, t in texts]

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
    """The ROI with the lift `benefit_method` chooses, or with `lift` (won revenue per month) in its place,
    as the sensitivity does; the chosen lift's interval ends give the ROI and NPV ranges."""
    chosen = measured.revenue_lift(assumptions.benefit_method)
    model = _model(assumptions, measured, chosen.value if lift is None else lift, chosen)
    if lift is not None or chosen.interval is None:
        return model
    low, high = (_model(assumptions, measured, end, chosen) for end in chosen.interval)
    return replace(model, roi_pct_range=(low.roi_pct, high.roi_pct), npv_range=(low.npv, high.npv))


def _model(assumptions: Assumptions, measured: Measured, lift: float, chosen: RevenueLift) -> RoiModel:
    one_time = sum(c.amount for c in assumptions.costs if not c.recurring)
    recurring = sum(c.amount for c in assumptions.costs if c.recurring)
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
        lift=chosen,
        revenue_lift=lift,
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
    chosen = measured.revenue_lift(assumptions.benefit_method)
    if chosen.interval is not None:
        for setting, value in (("ci_low", chosen.low), ("estimate", chosen.value), ("ci_high", chosen.high)):
            model = build_model(assumptions, measured, value)
            rows.append((f"revenue_lift.{chosen.method}", setting, value, model.roi_pct, model.discounted_roi_pct,
                         model.payback_months))
    for other in ("before_after", "its"):
        used = measured.revenue_lift(other)
        if used.method == other:
            model = build_model(assumptions, measured, used.value)
            rows.append(("benefit_method", other, used.value, model.roi_pct, model.discounted_roi_pct,
                         model.payback_months))
    return rows

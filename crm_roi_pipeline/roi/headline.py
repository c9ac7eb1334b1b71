"""The headline a finance lead reads first, built once and shown the same way by the report, the CLI and
the UI: ROI and NPV with their ranges, payback, the method behind the lift and the one-sentence verdict
directly under the numbers, then whether a second method (CausalImpact's Bayesian structural time series)
agrees with the interrupted time series. When the verdict is `unclear`, the headline says so before the number and
shows what the before/after comparison would have credited, labelled as not adjusted for trend or season.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_roi_pipeline.metrics.labels import money, percent
from crm_roi_pipeline.metrics.lift import BEFORE_AFTER, METHOD_LABELS, NOT_ADJUSTED, UNCLEAR, verdict_sentence
from crm_roi_pipeline.roi.model import RoiModel


def months(value: float | None) -> str:
    return "never (the monthly net benefit is not positive)" if value is None else f"{value:,.1f} months"


def _range(low: float | None, high: float | None, fmt) -> str:
    return "" if low is None or high is None else f" ({fmt(low)} to {fmt(high)})"


@dataclass(frozen=True)
class Headline:
    lead: str | None  # said before the numbers when the verdict is unclear
    figures: list[tuple[str, str, str]]  # label, value, its range ("" when it has none)
    method: str
    verdict: str
    placebo: str | None = None
    naive: str | None = None  # what the before/after would have credited, when the verdict is unclear
    warnings: list[str] = field(default_factory=list)  # thin windows, failed data-quality checks
    second_opinion: str | None = None  # whether CausalImpact's BSTS agrees with the ITS (metrics.lift)

    def lines(self) -> list[str]:
        """Plain text, one statement a line: what the CLI prints and the UI's text metadata holds."""
        out = [self.lead] if self.lead else []
        out.append(", ".join(f"{label} {value}" + (f" ({span})" if span else "") for label, value, span in self.figures))
        out += [self.method, self.verdict]
        out += [x for x in (self.naive, self.second_opinion, self.placebo) if x]
        out += self.warnings
        return out

    def markdown(self) -> str:
        """The UI's `headline` entry. Dagster shows markdown inline only under 1,000 characters (longer, it
        hides it behind "[Show Markdown]"), so this keeps what a reader must see at once: the lead, the
        figures, the verdict, the second opinion, the before/after when the verdict is unclear, and the
        warnings. The method and the placebo sentence are in `headline_text` beside it, with every line."""
        out = [f"**{self.lead}**", ""] if self.lead else []
        out += ["| " + " | ".join(label for label, _, _ in self.figures) + " |",
                "|" + "---|" * len(self.figures),
                "| " + " | ".join(f"**{value}**" for _, value, _ in self.figures) + " |",
                "| " + " | ".join(span for _, _, span in self.figures) + " |", "",
                f"**{self.verdict}**"]
        for extra in (self.naive, self.second_opinion, *self.warnings):
            if extra:
                out += ["", extra]
        return "\n".join(out)


def build(model: RoiModel, *, level: float, before_after: RoiModel | None = None, placebo: str | None = None,
          warnings: list[str] | None = None, second_opinion: str | None = None) -> Headline:
    """`before_after`: the same ROI with the before/after lift, shown when the verdict is unclear and the
    lift used is the ITS's."""
    ccy, lift = model.currency, model.lift
    assert lift is not None, "a headline needs the lift the ROI was built on"
    pct = f"{level:.0%}"
    low_roi, high_roi = model.roi_pct_range
    low_npv, high_npv = model.npv_range
    ranged = low_roi is not None and low_npv is not None
    figures = [
        ("ROI", percent(model.roi_pct), f"{pct} range {percent(low_roi)} to {percent(high_roi)}" if ranged else ""),
        ("NPV", money(model.npv, ccy), f"{pct} range {money(low_npv)} to {money(high_npv)}" if ranged else ""),
        ("Payback", months(model.payback_months), ""),
    ]
    method = (f"Revenue lift credited to the CRM: {money(lift.value, ccy)} a month, from the "
              f"{METHOD_LABELS[lift.method]}. Why: {lift.reason}.")
    lead = naive = None
    if lift.verdict == UNCLEAR:
        lead = ("No clear evidence either way that the CRM changed won revenue: the figures below are what the "
                "assumptions give if the measured lift is real, and its interval includes zero.")
        if lift.method != BEFORE_AFTER and before_after is not None and before_after.lift is not None:
            naive = (f"The before/after comparison would have credited {money(before_after.revenue_lift, ccy)} a "
                     f"month (ROI {percent(before_after.roi_pct)}); it is {NOT_ADJUSTED}.")
    return Headline(lead, figures, method, verdict_sentence(lift, ccy, level), placebo, naive, list(warnings or []),
                    second_opinion)

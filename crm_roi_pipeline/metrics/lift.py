"""The revenue lift that feeds the ROI, and the verdict on it (METRICS.md, "The revenue lift and the verdict").

Pure functions over the two estimates `metrics/uplift` publishes, so that `metrics/uplift`, the ROI, the
report, the CLI and the UI all state the same lift, the same interval and the same verdict: each of them
calls `choose_lift` on the same numbers, and every sentence about the effect comes from `verdict_sentence`.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_roi_pipeline.metrics.labels import money

GAIN, LOSS, UNCLEAR = "gain", "loss", "unclear"
ITS, BEFORE_AFTER = "its", "before_after"
METHOD_LABELS = {ITS: "interrupted time series", BEFORE_AFTER: "before/after comparison"}
NOT_ADJUSTED = ("not adjusted for trend or season: it credits the CRM with every other change in the business "
                "between the windows, up or down")


@dataclass(frozen=True)
class Estimate:
    """One method's won-revenue change per month with its interval; `value` None when the method could not
    be applied, and then `unavailable` says why."""

    value: float | None
    low: float | None = None
    high: float | None = None
    unavailable: str | None = None

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.low is None or self.high is None else (self.low, self.high)


@dataclass(frozen=True)
class RevenueLift:
    """The lift per month credited to the CRM, with its interval, the method it came from and why."""

    method: str  # its | before_after
    value: float
    low: float | None
    high: float | None
    reason: str  # one sentence: why this method
    verdict: str  # gain | loss | unclear

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.low is None or self.high is None else (self.low, self.high)


def verdict_code(low: float | None, high: float | None) -> str:
    """METRICS.md's table: low > 0 is a gain, high < 0 a loss, anything else (or no interval) unclear."""
    if low is not None and high is not None:
        if low > 0:
            return GAIN
        if high < 0:
            return LOSS
    return UNCLEAR


def choose_lift(benefit_method: str, before_after: Estimate, its: Estimate) -> RevenueLift:
    """`auto` (the default): the interrupted time series where it could be fitted, else the before/after;
    `its`: the same, but the fallback is named as one; `before_after`: always the plain comparison."""
    if benefit_method not in ("auto", ITS, BEFORE_AFTER):
        raise ValueError(f"benefit_method must be auto, its or before_after; got {benefit_method!r}")
    if benefit_method != BEFORE_AFTER and its.value is not None:
        reason = ("benefit_method is auto and the interrupted time series could be fitted, so the lift is measured "
                  "above the pre-CRM trend and season" if benefit_method == "auto"
                  else "benefit_method: its in the assumptions; the lift is measured above the pre-CRM trend and season")
        return RevenueLift(ITS, its.value, its.low, its.high, reason, verdict_code(its.low, its.high))
    if benefit_method == BEFORE_AFTER:
        reason = "benefit_method: before_after in the assumptions (post window minus pre window)"
    else:
        why = its.unavailable or "the interrupted time series was not computed"
        reason = (f"benefit_method is {benefit_method}, but the interrupted time series cannot be fitted ({why}); "
                  "the before/after comparison is used instead")
    value = before_after.value if before_after.value is not None else 0.0
    return RevenueLift(BEFORE_AFTER, value, before_after.low, before_after.high, reason,
                       verdict_code(before_after.low, before_after.high))


def verdict_sentence(lift: RevenueLift, currency: str, level: float) -> str:
    """The one sentence that states the verdict; its words follow METRICS.md's table, and under the
    before/after it says the figure is not adjusted for trend or season."""
    span = (f" ({level:.0%} interval {money(lift.low, currency)} to {money(lift.high, currency)})"
            if lift.interval else " (no interval could be computed)")
    amount = money(abs(lift.value), currency)
    its = lift.method == ITS
    caveat = "" if its else f" This before/after figure is {NOT_ADJUSTED}."
    if lift.verdict == GAIN:
        where = "above what the pre-CRM trend and season predict" if its else "more after adoption than before"
        return f"Won revenue rose: {amount} a month {where}{span}.{caveat}"
    if lift.verdict == LOSS:
        where = "below what the pre-CRM trend and season predict" if its else "less after adoption than before"
        return f"Won revenue fell: {amount} a month {where}{span}.{caveat}"
    noise = "the pre-CRM trend, season and month-to-month noise produce" if its else "month-to-month noise produces"
    return (f"No clear evidence either way: the change in won revenue, {money(lift.value, currency)} a month"
            f"{span}, is within what {noise}.{caveat}")


SECOND_OPINION = "CausalImpact's Bayesian structural time series"
# How to read its figures, where a table shows them; whether it agrees is `second_opinion_sentence`'s.
SECOND_OPINION_NOTE = ("local level, trend and month-of-year; p is the posterior probability of an effect of the other "
                       "sign, and the interval also counts each post month's own noise")


def table_note(estimate: str, value: float | None, note: str | None) -> str:
    """The note a table of the estimates shows beside metrics.uplift's row: the row's own note, except for a
    computed second opinion, whose note is its agreement sentence (shown on its own) and whose table note
    says how to read its figures."""
    return SECOND_OPINION_NOTE if estimate == "second_opinion" and value is not None else note or ""
_SIDE = {GAIN: "is entirely above zero", LOSS: "is entirely below zero", UNCLEAR: "includes zero"}
_ALSO = {GAIN: "is also entirely above zero", LOSS: "is also entirely below zero", UNCLEAR: "also includes zero"}


def agree(its: Estimate, second: Estimate) -> bool | None:
    """Whether the second opinion gives the ITS's verdict (METRICS.md's table applied to each interval);
    None when either could not be computed."""
    if its.value is None or second.value is None:
        return None
    return verdict_code(its.low, its.high) == verdict_code(second.low, second.high)


def second_opinion_sentence(its: Estimate, second: Estimate, currency: str, level: float) -> str:
    """One sentence: the second opinion's estimate with its interval, and whether it agrees with the ITS."""
    if second.value is None:
        return f"Second opinion ({SECOND_OPINION}): not computed; {second.unavailable or 'no reason given'}."
    found = (f"{SECOND_OPINION} puts the effect at {money(second.value, currency)} a month "
             f"({level:.0%} interval {money(second.low, currency)} to {money(second.high, currency)})")
    code = verdict_code(second.low, second.high)
    same = agree(its, second)
    if same is None:
        return f"Second opinion: {found}; there is no interrupted time series to compare it with."
    if same:
        return f"A second method agrees: {found}; its interval {_ALSO[code]}."
    return (f"A second method does not agree: {found}; its interval {_SIDE[code]}, while the interrupted time "
            f"series' {_SIDE[verdict_code(its.low, its.high)]}. Read the verdict with that in mind.")


def placebo_sentence(rank: int | None, fakes: int, p_value: float | None) -> str:
    """The placebo test, reported beside the verdict; it never changes it."""
    if rank is None or p_value is None:
        return "Placebo test: no fake adoption date fits inside the pre-CRM months, so there is none."
    larger = rank - 1
    return (f"Placebo test: {larger} of {fakes} fake adoption dates before the real one show an effect at least "
            f"as large (p = {p_value:.2f}); it is reported beside the verdict and does not change it.")

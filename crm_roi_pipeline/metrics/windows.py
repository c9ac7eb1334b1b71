"""Periods and comparison windows, as METRICS.md defines them: pure date arithmetic, no Dagster, no DuckDB.

Months are the first day of a calendar month (UTC). A month is complete when its last day is before
`as_of`. The windows have the same length N = min(window_months, complete post months, whole months of
data before the adoption month); the post window is the first N complete post months, the pre window the
N months just before the adoption month.

N counts months, not records: with an `as_of` past the data, complete post months can hold nothing (an
adoption date after the last record). So a window is also empty, for `require`, when none of its months is a
month with data (a deal created or closed, a lead created in it), which `compute.windows_for` looks up. A
window that is only partly filled is not empty; the completeness check on crm.* flags thin months.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from crm_roi_pipeline.errors import CrmRoiError
from crm_roi_pipeline.months import add_months, month_start, months_between


@dataclass(frozen=True)
class Windows:
    adoption_month: dt.date
    first_post_month: dt.date
    as_of: dt.date
    first_data_month: dt.date | None
    complete_post_months: int
    pre_months_available: int
    n: int
    # Whether a month of each window holds data, and the last month that does (set by `compute.windows_for`;
    # date arithmetic alone cannot know, so by default a window of N > 0 months counts as holding data).
    pre_has_data: bool = True
    post_has_data: bool = True
    last_data_month: dt.date | None = None

    @property
    def current_month(self) -> dt.date:
        return month_start(self.as_of)

    @property
    def pre(self) -> tuple[dt.date, dt.date] | None:
        if self.n == 0:
            return None
        return add_months(self.adoption_month, -self.n), add_months(self.adoption_month, -1)

    @property
    def post(self) -> tuple[dt.date, dt.date] | None:
        if self.n == 0:
            return None
        return self.first_post_month, add_months(self.first_post_month, self.n - 1)

    def period(self, month: dt.date) -> str:
        if month < self.adoption_month:
            return "pre"
        if month < self.first_post_month:
            return "transition"
        return "post"

    def require(self) -> None:
        """Fail, naming the empty window, the first month with data and the adoption month."""
        if self.n > 0 and self.pre_has_data and self.post_has_data:
            return
        first = f"{self.first_data_month:%Y-%m}" if self.first_data_month else "none (no deals or leads staged)"
        empty = []
        if self.pre_months_available <= 0:
            empty.append("the pre window is empty: no month with data before the adoption month")
        if self.complete_post_months <= 0:
            empty.append(
                f"the post window is empty: no complete month from {self.first_post_month:%Y-%m} "
                f"(the first post month) before as_of {self.as_of}"
            )
        last = f" (the last month with data is {self.last_data_month:%Y-%m})" if self.last_data_month else ""
        for label, bounds, has_data in (("pre", self.pre, self.pre_has_data), ("post", self.post, self.post_has_data)):
            if bounds and not has_data:
                empty.append(
                    f"the {label} window {bounds[0]:%Y-%m} … {bounds[1]:%Y-%m} is empty: no deal created or closed "
                    f"and no lead created in it{last}"
                )
        raise CrmRoiError(
            "Cannot compare before and after adoption: " + "; ".join(empty or ["window_months is 0"])
            + f". First month with data: {first}; adoption month: {self.adoption_month:%Y-%m}. "
            "Check adoption_date, transition_months and as_of in the assumptions, or stage more history."
        )


def compute_windows(
    *,
    adoption_date: dt.date,
    transition_months: int,
    window_months: int,
    as_of: dt.date,
    first_data_month: dt.date | None,
) -> Windows:
    adoption_month = month_start(adoption_date)
    first_on_or_after = adoption_month if adoption_date.day == 1 else add_months(adoption_month, 1)
    first_post_month = add_months(first_on_or_after, transition_months)
    # The month holding as_of never ends before as_of, so the complete months are those before it.
    complete_post = max(0, months_between(first_post_month, month_start(as_of)))
    pre_available = months_between(first_data_month, adoption_month) if first_data_month else 0
    n = max(0, min(window_months, complete_post, pre_available))
    return Windows(
        adoption_month=adoption_month,
        first_post_month=first_post_month,
        as_of=as_of,
        first_data_month=first_data_month,
        complete_post_months=complete_post,
        pre_months_available=max(0, pre_available),
        n=n,
    )

"""Month arithmetic on first-of-month dates: a leaf every layer may use (staging, metrics, the statistics in
`statistics/`), so that none of them imports another for a date sum."""

from __future__ import annotations

import datetime as dt


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def months_between(first: dt.date, last: dt.date) -> int:
    """Whole months from `first` up to, not including, `last` (both month starts)."""
    return (last.year - first.year) * 12 + last.month - first.month


def month_end(month: dt.date) -> dt.date:
    return add_months(month, 1) - dt.timedelta(days=1)


def is_complete(month: dt.date, as_of: dt.date) -> bool:
    return month_end(month) < as_of

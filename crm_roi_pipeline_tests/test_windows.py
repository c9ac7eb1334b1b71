"""Periods and windows as METRICS.md defines them (pure functions)."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_roi_pipeline.errors import CrmRoiError
from crm_roi_pipeline.metrics.windows import compute_windows

D = dt.date


def test_metrics_md_example_data_from_2023_07_and_adoption_in_2024_01_give_6():
    w = compute_windows(adoption_date=D(2024, 1, 1), transition_months=0, window_months=12,
                        as_of=D(2025, 6, 30), first_data_month=D(2023, 7, 1))
    assert w.n == 6
    assert w.pre == (D(2023, 7, 1), D(2023, 12, 1))
    assert w.post == (D(2024, 1, 1), D(2024, 6, 1))


def test_as_of_month_is_not_complete():
    # as_of 2024-04-30: April's last day is not before as_of, so complete post months are Jan, Feb, Mar.
    w = compute_windows(adoption_date=D(2024, 1, 1), transition_months=0, window_months=12,
                        as_of=D(2024, 4, 30), first_data_month=D(2020, 1, 1))
    assert w.complete_post_months == 3 and w.n == 3
    # One day later April is complete.
    w = compute_windows(adoption_date=D(2024, 1, 1), transition_months=0, window_months=12,
                        as_of=D(2024, 5, 1), first_data_month=D(2020, 1, 1))
    assert w.n == 4


def test_mid_month_adoption_and_transition_months():
    # Adoption on 2024-01-15: January is the adoption month but not post; the first post month starts on or
    # after the adoption date (February), moved on by 2 transition months: April.
    w = compute_windows(adoption_date=D(2024, 1, 15), transition_months=2, window_months=3,
                        as_of=D(2025, 1, 1), first_data_month=D(2023, 1, 1))
    assert w.adoption_month == D(2024, 1, 1)
    assert w.first_post_month == D(2024, 4, 1)
    assert [w.period(D(2024, m, 1)) for m in (1, 2, 3, 4)] == ["transition", "transition", "transition", "post"]
    assert w.period(D(2023, 12, 1)) == "pre"
    assert w.pre == (D(2023, 10, 1), D(2023, 12, 1))
    assert w.post == (D(2024, 4, 1), D(2024, 6, 1))


def test_empty_windows_name_the_window_the_first_month_and_the_adoption_month():
    w = compute_windows(adoption_date=D(2024, 1, 1), transition_months=0, window_months=12,
                        as_of=D(2024, 1, 20), first_data_month=D(2024, 2, 1))
    assert w.n == 0 and w.pre is None and w.post is None
    with pytest.raises(CrmRoiError) as info:
        w.require()
    message = str(info.value)
    assert "the pre window is empty" in message and "the post window is empty" in message
    assert "First month with data: 2024-02" in message and "adoption month: 2024-01" in message

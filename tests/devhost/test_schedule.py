"""Timer schedules: six-field NCRONTAB, seconds first, UTC; or a TimeSpan."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from devhost.errors import ScheduleError
from devhost.timers import Schedule

T0 = datetime(2024, 1, 1, 0, 0, 0, tzinfo=timezone.utc)


def test_the_first_field_is_seconds():
    assert Schedule.parse("*/15 * * * * *", "t").next_after(T0) == datetime(2024, 1, 1, 0, 0, 15, tzinfo=timezone.utc)


def test_a_daily_schedule_fires_at_that_utc_time():
    assert Schedule.parse("0 30 3 * * *", "t").next_after(T0) == datetime(2024, 1, 1, 3, 30, tzinfo=timezone.utc)


def test_five_fields_are_rejected_with_a_hint_about_seconds():
    with pytest.raises(ScheduleError, match="has 5 fields; an NCRONTAB schedule has six, seconds first"):
        Schedule.parse("*/5 * * * *", "function 't' timer schedule")


def test_garbage_is_rejected():
    with pytest.raises(ScheduleError, match="not a valid NCRONTAB"):
        Schedule.parse("a b c d e f", "t")


def test_a_timespan_is_a_fixed_interval():
    assert Schedule.parse("00:05:00", "t").next_after(T0) == datetime(2024, 1, 1, 0, 5, tzinfo=timezone.utc)

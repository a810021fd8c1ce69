"""The one clock core is given (core/clock.py): epoch seconds, and the aware UTC time they read as."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import time

from custom_components.arcade_pay.core.clock import clock_of, moment, system_clock


def test_the_system_clock_is_now_in_utc() -> None:
    before = time.time()
    now = moment(system_clock)
    after = time.time()
    assert now.utcoffset() == timedelta(0)
    assert before - 1 <= now.timestamp() <= after + 1


def test_a_clock_reads_the_utcnow_it_is_given() -> None:
    times = [datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC), datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)]
    clock = clock_of(lambda: times.pop(0))
    assert clock() == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert moment(clock) == datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)

"""The one clock core is given: seconds since the epoch, read by whoever runs core.

Plain Python (no Home Assistant import). Nothing in core reads the time by itself: what needs it
(the ledger, the dispatcher and its publish notes, the echoes of published messages) is passed a
``Clock``. Home Assistant's side passes Home Assistant's clock (``clock_of(dt_util.utcnow)``,
which its tests freeze and move); ``system_clock`` is for core used on its own (tools, tests).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
import time

# Seconds since the epoch (UTC): what pulses fall due by and what the ledger's times are.
type Clock = Callable[[], float]


def system_clock() -> float:
    """The system's time, for core used without Home Assistant."""
    return time.time()


def clock_of(utcnow: Callable[[], datetime]) -> Clock:
    """A clock that reads ``utcnow`` (an aware datetime, as Home Assistant's ``dt_util.utcnow``)."""
    return lambda: utcnow().timestamp()


def moment(clock: Clock) -> datetime:
    """The clock's time as an aware datetime in UTC."""
    return datetime.fromtimestamp(clock(), UTC)

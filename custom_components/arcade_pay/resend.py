"""How often a pulse for a cabinet that acknowledges is sent again.

Plain Python (no Home Assistant import), used by the delivery planner.
"""

from __future__ import annotations

from typing import Final

BACKOFF_INITIAL: Final = 2.0
BACKOFF_MAX: Final = 60.0


def backoff(attempts: int, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> float:
    """Seconds to wait after the ``attempts``-th publish before the next one (doubling, capped)."""
    # Cap the exponent first: 2.0 ** 1024 overflows, and a cabinet whose acks never arrive
    # is retried for as long as it takes.
    return min(maximum, initial * 2.0 ** min(max(0, attempts - 1), 32))

"""How many checkout sessions a scan may create: per cabinet and per client address.

Standard library only. Anyone can open a cabinet's public URL, and every scan that is let
through creates a Stripe Checkout Session: a bot looping over the URL must not create
thousands of them (Stripe rate-limits the account, which would stop the honest players too).
A sliding window per key: at most ``limit`` admissions in the last ``window`` seconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
import time
from typing import Final

# A player who cancels and scans again a few times is well inside these; a loop is not.
SESSIONS_PER_CABINET_PER_MINUTE: Final = 10
SESSIONS_PER_CLIENT_PER_MINUTE: Final = 4
# Keys remembered at most: an attacker varying its address must not grow memory without end.
MAX_KEYS: Final = 4096


@dataclass(slots=True)
class SlidingWindow:
    """At most ``limit`` admissions per key within any ``window`` seconds."""

    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _admitted: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may be admitted again (0: now)."""
        times = self._recent(key)
        if len(times) < self.limit:
            return 0.0
        return max(0.0, times[0] + self.window - self.clock())

    def admit(self, key: str) -> None:
        """Count one admission of ``key`` now (check retry_after first)."""
        if key not in self._admitted and len(self._admitted) >= MAX_KEYS:
            self._forget_idle()
        self._admitted.setdefault(key, deque()).append(self.clock())

    def _recent(self, key: str) -> deque[float]:
        times = self._admitted.get(key)
        if times is None:
            return deque()
        horizon = self.clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._admitted[key]
        return times

    def _forget_idle(self) -> None:
        for key in list(self._admitted):
            self._recent(key)
        if len(self._admitted) >= MAX_KEYS:  # All busy: the oldest activity goes first.
            oldest = min(self._admitted, key=lambda k: self._admitted[k][-1])
            del self._admitted[oldest]


@dataclass(slots=True)
class ScanLimits:
    """The two limits a scan must pass before a session is created."""

    clock: Callable[[], float] = time.monotonic
    per_cabinet: SlidingWindow = field(init=False)
    per_client: SlidingWindow = field(init=False)

    def __post_init__(self) -> None:
        """Both windows read the same clock."""
        self.per_cabinet = SlidingWindow(SESSIONS_PER_CABINET_PER_MINUTE, 60.0, self.clock)
        self.per_client = SlidingWindow(SESSIONS_PER_CLIENT_PER_MINUTE, 60.0, self.clock)

    def try_admit(self, machine_id: str, client: str) -> float:
        """Admit one scan and return 0, or admit nothing and return the seconds to wait."""
        wait = max(self.per_cabinet.retry_after(machine_id), self.per_client.retry_after(client))
        if wait > 0:
            return wait
        self.per_cabinet.admit(machine_id)
        self.per_client.admit(client)
        return 0.0

"""Messages Arcade Pay published on a topic it also subscribes to, told apart when they come back.

The earlier system's HTTP game over is published on ``<prefix>/<id>/gameover`` as it did, and
Arcade Pay's own subscription to that topic receives it back; it was counted when it was
published, so it must not count again. MQTT 3.1.1 has no "no local" subscription option, and the
message must stay the earlier system's, so it cannot carry a mark of its sender: it is known by
its topic and exact bytes (the broker passes them unchanged; its timestamp makes it differ from
a cabinet's own game over of another second).
"""

from __future__ import annotations

from typing import Final

from .clock import Clock, system_clock
from .protocol import Payload

# The broker sends a message back within milliseconds, but one published while MQTT is down is
# sent (QoS 1, queued by the client) when it is back. Only a copy of the very message (same second
# in its timestamp) can be mistaken for it, so waiting long costs nothing but a few bytes.
ECHO_SECONDS: Final = 3600.0


class PublishedEchoes:
    """What was published and is still expected back, each copy recognised once."""

    def __init__(self, clock: Clock = system_clock) -> None:
        """Nothing published yet; ``clock`` (core's, clock.py) counts seconds."""
        self._clock = clock
        self._deadlines: dict[tuple[str, bytes], list[float]] = {}

    def expect(self, topic: str, payload: bytes) -> None:
        """``payload`` is about to be published on ``topic`` (before: it may come back at once)."""
        self._deadlines.setdefault((topic, payload), []).append(self._clock() + ECHO_SECONDS)

    def is_echo(self, topic: str, payload: Payload) -> bool:
        """Whether a received message is a copy published here, not yet received back."""
        if not self._deadlines:
            return False
        raw = payload.encode() if isinstance(payload, str) else bytes(payload)
        return self._take((topic, raw))

    def _take(self, key: tuple[str, bytes]) -> bool:
        now = self._clock()
        for stale in [k for k, deadlines in self._deadlines.items() if deadlines[-1] <= now]:
            del self._deadlines[stale]
        deadlines = [deadline for deadline in self._deadlines.pop(key, []) if deadline > now]
        if not deadlines:
            return False
        if deadlines[1:]:
            self._deadlines[key] = deadlines[1:]
        return True

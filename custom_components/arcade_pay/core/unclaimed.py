"""The newest messages of cabinets the entry does not have, for a cabinet added while it runs.

A cabinet's status and state are retained: the subscriptions made at start get them at once,
but a cabinet added later was already passed over by the wildcard subscriptions. Keeping the
newest status, state and announcement of up to ``MAX_MACHINES`` unknown machine ids (each
message at most a few KiB, checked by the handlers when replayed) gives a new cabinet what a
reload would have given it, without reloading the entry.
"""

from __future__ import annotations

from typing import Final

MAX_MACHINES: Final = 200


class UnclaimedMessages[M]:
    """The newest message of each kind from machine ids nobody has claimed yet."""

    def __init__(self, max_machines: int = MAX_MACHINES) -> None:
        """Keep at most ``max_machines`` machine ids; the one heard from longest ago goes first."""
        self._max_machines = max_machines
        self._messages: dict[str, dict[str, M]] = {}

    def keep(self, machine_id: str, kind: str, message: M, *, cleared: bool = False) -> None:
        """Remember ``message`` as the newest of its kind (``cleared``: forget that kind)."""
        kept = self._messages.pop(machine_id, {})
        kept.pop(kind, None)
        if not cleared:
            kept[kind] = message
        if kept:
            self._messages[machine_id] = kept
        while len(self._messages) > self._max_machines:
            del self._messages[next(iter(self._messages))]

    def claim(self, machine_id: str) -> list[M]:
        """Hand over (and forget) what ``machine_id`` said, oldest first."""
        return list(self._messages.pop(machine_id, {}).values())

    def __len__(self) -> int:
        """How many machine ids are remembered."""
        return len(self._messages)

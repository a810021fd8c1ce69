"""Publishes the broker took that the ledger has not noted yet, written (again) until it has.

Plain Python (no Home Assistant import), used by the dispatcher. Once the broker took a pulse it
is delivered (or one attempt more) whatever the ledger write does: a write that fails (a disk
error, another program holding the SQLite write lock) is retried, never the publish, which
would double a credit on a cabinet that applies every pulse it gets. A note carries the count
of publishes, so that writing it twice counts nothing twice. Until a note is written, a restart
sends its pulse once more, as after a crash between the publish and the write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
import logging
from typing import Any

from .clock import Clock, moment
from .ledger import LedgerError, PaymentLedger
from .resend import backoff

_LOGGER = logging.getLogger(__name__)

type RunBlocking = Callable[..., Awaitable[Any]]


@dataclass(slots=True)
class _Note:
    at: datetime
    awaiting_ack: bool
    attempts: int
    unconfirmed: bool


class PublishNotes:
    """The ledger's publish notes still to write."""

    def __init__(self, ledger: PaymentLedger, run_blocking: RunBlocking, clock: Clock) -> None:
        """Write to ``ledger`` through ``run_blocking``; ``clock``: the dispatcher's (epoch seconds)."""
        self._ledger = ledger
        self._run = run_blocking
        self._clock = clock
        self._notes: dict[str, _Note] = {}
        self._failures = 0
        self._retry_at: float | None = None

    def __contains__(self, payment_id: object) -> bool:
        """Whether a publish of this payment is not noted in the ledger yet."""
        return payment_id in self._notes

    def payment_ids(self) -> set[str]:
        """The payments with a note to write."""
        return set(self._notes)

    def add(self, payment_id: str, awaiting_ack: bool, attempts: int, unconfirmed: bool = False) -> None:
        """MQTT took a pulse (the ``attempts``-th); note it (the latest publish wins).

        ``unconfirmed``: the broker did not confirm it (delivery.py); False again once proven.
        """
        earlier = self._notes.get(payment_id)
        at = earlier.at if earlier else moment(self._clock)
        self._notes[payment_id] = _Note(at, awaiting_ack, attempts, unconfirmed)

    def discard(self, payment_id: str) -> None:
        """Nothing to note any more (acknowledged: the ledger has it final)."""
        self._notes.pop(payment_id, None)

    @property
    def retry_at(self) -> float | None:
        """When failed writes are tried again, or None."""
        return self._retry_at if self._notes else None

    def due(self) -> bool:
        """Whether writing now is not just failing again."""
        return self._retry_at is None or self._retry_at <= self._clock()

    async def write_all(self) -> None:
        """Write the notes (oldest first, until one fails)."""
        for payment_id in list(self._notes):
            if not await self.write(payment_id):
                return

    async def write(self, payment_id: str) -> bool:
        """Write one note; on failure keep it, to write it again later. Return False then."""
        if (note := self._notes.get(payment_id)) is None:
            return True
        try:
            await self._run(
                self._ledger.mark_published,
                payment_id,
                note.at,
                note.awaiting_ack,
                note.attempts,
                note.unconfirmed,
            )
        except LedgerError as err:
            if not self._failures:
                _LOGGER.warning(
                    "Could not note in the ledger that coin pulse %s was sent (%s); the note is "
                    "written again later, the pulse is not sent again",
                    payment_id,
                    err,
                )
            self._failures += 1
            self._retry_at = self._clock() + backoff(self._failures)
            return False
        if self._notes.get(payment_id) is note:  # Not superseded by a newer publish meanwhile.
            del self._notes[payment_id]
        if self._failures and not self._notes:
            _LOGGER.info("The ledger notes every coin pulse sent again")
            self._failures = 0
            self._retry_at = None
        return True

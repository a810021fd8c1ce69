"""The records of credit delivery: a pulse, its delivery, and what the dispatcher answers.

Plain Python (no Home Assistant import). ``Outstanding`` is the one record per pulse still owed
(delivery_planner.py keeps them, and alone changes them); ``Pulse`` is what is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .ledger_records import Payment, PaymentRecord, PaymentSource, Undelivered


class AckResult(StrEnum):
    """What an acknowledgement meant."""

    ACKNOWLEDGED = "acknowledged"
    REPEATED = "repeated"  # Already acknowledged: the cabinet lost our earlier view of it.
    UNKNOWN = "unknown"  # Not a payment of this cabinet.
    NOT_SENT = "not_sent"  # Its pulse was never sent: proves nothing, the credits stay owed.


class PublishResult(StrEnum):
    """What became of one publish (a publish function may answer True for CONFIRMED, False for REFUSED)."""

    CONFIRMED = "confirmed"  # The broker took it (its PUBACK came).
    # Handed to the MQTT client, no PUBACK in time: the client keeps it and sends it again when it
    # reconnects, but only while this process runs (delivery.py's docstring).
    UNCONFIRMED = "unconfirmed"
    REFUSED = "refused"  # MQTT refused it: not sent.

    @classmethod
    def of(cls, answer: bool | PublishResult) -> PublishResult:
        """A publish function's answer as a PublishResult (True: confirmed, False: refused)."""
        if isinstance(answer, PublishResult):
            return answer
        return cls.CONFIRMED if answer else cls.REFUSED


@dataclass(frozen=True, slots=True)
class Pulse:
    """A coin pulse to publish."""

    payment_id: str
    machine_id: str
    credits: int
    timestamp: datetime
    source: PaymentSource

    @classmethod
    def owed(cls, payment: Payment | PaymentRecord | Undelivered, credits: int) -> Pulse:
        """The pulse that carries ``credits`` of a payment to its cabinet."""
        return cls(payment.payment_id, payment.machine_id, credits, payment.received_at, payment.source)


@dataclass(slots=True)
class Outstanding:
    """A pulse that the cabinet has not yet (knowingly) received, and how its delivery goes."""

    pulse: Pulse
    attempts: int = 0  # publishes the broker took, across restarts
    next_attempt: float = 0.0
    in_flight: bool = False
    round_start: int = 0  # ``attempts`` when the current round of sends began (resend.py)
    # Its last publish went unconfirmed: how many publishes had started when it returned (the
    # planner's count); a later publish the broker confirms proves it. None: not unconfirmed.
    unconfirmed_at: int | None = None

    @property
    def payment_id(self) -> str:
        """The payment the pulse carries credits of."""
        return self.pulse.payment_id

    @property
    def machine_id(self) -> str:
        """The cabinet the pulse goes to."""
        return self.pulse.machine_id

    @property
    def sent(self) -> bool:
        """Whether the pulse went (or is going) to MQTT at least once."""
        return self.in_flight or self.attempts > 0


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """A pulse taken out of delivery while its payment is refunded: its record, as it was."""

    outstanding: Outstanding

    @property
    def pulse(self) -> Pulse:
        """The pulse that was withdrawn."""
        return self.outstanding.pulse

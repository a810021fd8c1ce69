"""When to send which coin pulse: the exactly-once delivery rules, without any I/O.

Plain Python (no Home Assistant import), driven by the hub and by the property tests.

* A pulse is held while MQTT is disconnected or its cabinet is known to be offline, or has
  never shown a sign of life (unless its owner said it never reports anything).
* A cabinet that acknowledges credits (``…/ack`` with the ``paymentId``) gets the same pulse,
  same ``paymentId``, again and again with a bounded backoff until it acknowledges; at once
  when it comes back online or MQTT reconnects. Cabinets drop pulses they already applied.
* A cabinet that never acknowledges (the seed's) gets each pulse once: a QoS 1 publish the
  broker accepted while connected is all that can be known.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
import logging
from typing import Any, Final

from .ledger import Adjustment, Payment, PaymentLedger, PaymentSource

_LOGGER = logging.getLogger(__name__)

BACKOFF_INITIAL: Final = 2.0
BACKOFF_MAX: Final = 60.0


def backoff(attempts: int, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> float:
    """Seconds to wait after the ``attempts``-th publish before the next one (doubling, capped)."""
    # Cap the exponent first: 2.0 ** 1024 overflows, and a cabinet whose acks never arrive
    # is retried for as long as it takes.
    return min(maximum, initial * 2.0 ** min(max(0, attempts - 1), 32))


@dataclass(slots=True)
class Outstanding:
    """A pulse that the cabinet has not yet (knowingly) received."""

    payment_id: str
    machine_id: str
    attempts: int = 0
    next_attempt: float = 0.0
    in_flight: bool = False


@dataclass
class DeliveryPlanner:
    """Which pulses are due, and when to look again."""

    connected: bool = True
    online: dict[str, bool | None] = field(default_factory=dict)
    acknowledges: dict[str, bool] = field(default_factory=dict)
    # Cabinets that never showed a sign of life: a pulse sent there would reach nobody.
    waiting_first_sign: set[str] = field(default_factory=set)
    _outstanding: dict[str, Outstanding] = field(default_factory=dict)

    def add(self, payment_id: str, machine_id: str, attempts: int = 0, due_at: float = 0.0) -> None:
        """Track a pulse to deliver; ``attempts`` counts earlier successful publishes."""
        if payment_id not in self._outstanding:
            self._outstanding[payment_id] = Outstanding(payment_id, machine_id, attempts, due_at)

    def __contains__(self, payment_id: object) -> bool:
        """Return whether a pulse is still outstanding."""
        return payment_id in self._outstanding

    def __len__(self) -> int:
        """Return the number of outstanding pulses."""
        return len(self._outstanding)

    def outstanding(self, machine_id: str | None = None) -> list[Outstanding]:
        """Return the outstanding pulses, of one cabinet or all, oldest first."""
        return [o for o in self._outstanding.values() if machine_id in (None, o.machine_id)]

    def _held(self, machine_id: str) -> bool:
        return (
            not self.connected
            or self.online.get(machine_id) is False
            or machine_id in self.waiting_first_sign
        )

    def take_due(self, now: float, payment_id: str | None = None) -> list[Outstanding]:
        """Return the pulses to publish now (or just ``payment_id``), marking them in flight.

        A pulse in flight is not handed out again until ``published`` or ``failed``, so that
        concurrent callers never publish the same pulse twice at once.
        """
        candidates = (
            self._outstanding.values()
            if payment_id is None
            else [p for p in (self._outstanding.get(payment_id),) if p is not None]
        )
        due = [
            o
            for o in candidates
            if not o.in_flight and o.next_attempt <= now and not self._held(o.machine_id)
        ]
        for pulse in due:
            pulse.in_flight = True
        return due

    def published(self, payment_id: str, now: float) -> bool:
        """Note a successful publish; return True when the pulse counts as delivered."""
        pulse = self._outstanding.get(payment_id)
        if pulse is None:
            return False
        pulse.in_flight = False
        if not self.acknowledges.get(pulse.machine_id, False):
            del self._outstanding[payment_id]
            return True
        pulse.attempts += 1
        pulse.next_attempt = now + backoff(pulse.attempts)
        return False

    def failed(self, payment_id: str, now: float) -> None:
        """A publish failed (MQTT refused it): try again after the backoff."""
        if (pulse := self._outstanding.get(payment_id)) is not None:
            pulse.in_flight = False
            pulse.next_attempt = now + backoff(max(1, pulse.attempts))

    def acknowledged(self, payment_id: str) -> Outstanding | None:
        """The cabinet confirmed a pulse; return it, or None if it was not outstanding."""
        return self._outstanding.pop(payment_id, None)

    def forget(self, payment_id: str) -> None:
        """Stop delivering a pulse (for example because it was refunded)."""
        self._outstanding.pop(payment_id, None)

    def hurry(self, machine_id: str | None = None) -> None:
        """Make pulses due now: the cabinet (or MQTT) just came back."""
        for pulse in self._outstanding.values():
            if machine_id in (None, pulse.machine_id):
                pulse.next_attempt = 0.0

    def next_wakeup(self) -> float | None:
        """Return when the earliest pulse that is not held falls due, or None."""
        times = [
            o.next_attempt
            for o in self._outstanding.values()
            if not o.in_flight and not self._held(o.machine_id)
        ]
        return min(times, default=None)


class AckResult(StrEnum):
    """What an acknowledgement meant."""

    ACKNOWLEDGED = "acknowledged"
    REPEATED = "repeated"  # Already acknowledged: the cabinet lost our earlier view of it.
    UNKNOWN = "unknown"  # Not a payment of this cabinet.


@dataclass(frozen=True, slots=True)
class Pulse:
    """A coin pulse to publish."""

    payment_id: str
    machine_id: str
    credits: int
    timestamp: datetime
    source: PaymentSource


type Publish = Callable[[Pulse], Awaitable[bool]]
type RunBlocking = Callable[..., Awaitable[Any]]
type Delivered = Callable[[Pulse], None]


async def _run_inline[T](function: Callable[..., T], *args: Any) -> T:
    return function(*args)


class CreditDispatcher:
    """Gets every recorded payment's credits to its cabinet, exactly once.

    The ledger is the truth: a payment is recorded before anything is published, and what
    is outstanding after a restart is read back from it. ``publish`` returns False when
    MQTT refused the message; ``run_blocking`` runs ledger calls off the event loop;
    ``delivered`` is told when a pulse first reaches MQTT (to update entities).
    """

    def __init__(
        self,
        ledger: PaymentLedger,
        publish: Publish,
        clock: Callable[[], float],
        run_blocking: RunBlocking = _run_inline,
        delivered: Delivered | None = None,
    ) -> None:
        """Wire the dispatcher to its ledger and its ways to publish and tell the time."""
        self.ledger = ledger
        self.planner = DeliveryPlanner()
        self._publish = publish
        self._clock = clock
        self._run = run_blocking
        self._delivered = delivered
        self._pulses: dict[str, Pulse] = {}

    async def load(self, known_cabinets: set[str] | None = None) -> None:
        """Read what is still outstanding from the ledger; due at once (we just restarted)."""
        for pending in await self._run(self.ledger.undelivered):
            if known_cabinets is not None and pending.machine_id not in known_cabinets:
                _LOGGER.warning(
                    "%d credit(s) of %s wait for cabinet %s, which is not configured",
                    pending.credits, pending.payment_id, pending.machine_id,
                )  # fmt: skip
                continue
            self._track(
                Pulse(
                    pending.payment_id,
                    pending.machine_id,
                    pending.credits,
                    pending.received_at,
                    pending.source,
                )
            )
            # Due at once, whatever its backoff was: we just restarted.
            self.planner.add(pending.payment_id, pending.machine_id, pending.attempts)

    def _track(self, pulse: Pulse) -> None:
        self._pulses[pulse.payment_id] = pulse

    def outstanding_credits(self, machine_id: str) -> int:
        """Credits recorded for a cabinet but not yet known to be delivered."""
        return sum(self._pulses[o.payment_id].credits for o in self.planner.outstanding(machine_id))

    def oldest_outstanding(self, machine_id: str | None = None) -> Pulse | None:
        """Return the oldest pulse still outstanding."""
        pulses = [self._pulses[o.payment_id] for o in self.planner.outstanding(machine_id)]
        return min(pulses, key=lambda p: p.timestamp, default=None)

    def pulse(self, payment_id: str) -> Pulse | None:
        """Return an outstanding pulse."""
        return self._pulses.get(payment_id)

    def published_once(self, payment_id: str) -> bool:
        """Return whether a pulse has reached MQTT at least once (or is no longer outstanding)."""
        found = [o for o in self.planner.outstanding() if o.payment_id == payment_id]
        return not found or found[0].attempts > 0

    async def accept(
        self,
        payment: Payment,
        recorded: Callable[[Adjustment | None], None] | None = None,
        deliver: bool = True,
    ) -> bool:
        """Record a payment and (unless ``deliver`` is False) deliver it now.

        Return False if it was already recorded. ``recorded`` runs once the payment is durably
        recorded, before anything is published, with the refunds and disputes that came before
        the payment and were applied as it was recorded (early_money.py), or None: only the
        credits still paid for are sent, none if nothing is.
        """
        if not await self._run(self.ledger.record, payment):
            return False
        applied = self.ledger.take_applied_on_record(payment.payment_id)
        if recorded is not None:
            recorded(applied)
        credits = payment.credits if applied is None else applied.credits_left
        if credits <= 0:
            return True
        self._track(
            Pulse(payment.payment_id, payment.machine_id, credits, payment.received_at, payment.source)
        )
        self.planner.add(payment.payment_id, payment.machine_id)
        if deliver:
            await self.deliver(payment.payment_id)
        return True

    async def deliver(self, payment_id: str) -> None:
        """Publish one pulse now, if it is due and not held."""
        await self._send(self.planner.take_due(self._clock(), payment_id))

    async def flush(self) -> None:
        """Publish everything that is due."""
        await self._send(self.planner.take_due(self._clock()))

    async def _send(self, due: list[Outstanding]) -> None:
        remaining = list(due)
        try:
            while remaining:
                await self._send_one(remaining[0])
                remaining.pop(0)
        finally:
            # Whatever went wrong with one pulse, the others must not stay "in flight" for ever.
            for outstanding in remaining:
                self.planner.failed(outstanding.payment_id, self._clock())

    async def _send_one(self, outstanding: Outstanding) -> None:
        pulse = self._pulses[outstanding.payment_id]
        first_time = outstanding.attempts == 0
        if not await self._publish(pulse):
            self.planner.failed(pulse.payment_id, self._clock())
            return
        awaiting_ack = self.planner.acknowledges.get(pulse.machine_id, False)
        # Written after the publish: a crash in between re-sends, and cabinets drop repeats.
        await self._run(self.ledger.mark_published, pulse.payment_id, datetime.now(UTC), awaiting_ack)
        if self.planner.published(pulse.payment_id, self._clock()):
            self._pulses.pop(pulse.payment_id, None)
        if first_time and self._delivered is not None:
            self._delivered(pulse)

    async def acknowledge(self, machine_id: str, payment_id: str) -> AckResult:
        """A cabinet acknowledged a pulse."""
        pulse = self._pulses.get(payment_id)
        if pulse is not None and pulse.machine_id != machine_id:
            return AckResult.UNKNOWN
        if not await self._run(self.ledger.mark_acknowledged, payment_id, machine_id, datetime.now(UTC)):
            record = await self._run(self.ledger.payment, payment_id)
            if record is None or record.machine_id != machine_id:
                return AckResult.UNKNOWN
            return AckResult.REPEATED
        if self.planner.acknowledged(payment_id) is not None:
            self._pulses.pop(payment_id, None)
        return AckResult.ACKNOWLEDGED

    def forget(self, payment_id: str) -> None:
        """Stop delivering a payment (it was refunded)."""
        self.planner.forget(payment_id)
        self._pulses.pop(payment_id, None)

    def adjust(self, payment_id: str, credits: int) -> None:
        """A refund or dispute: the pulse still to send carries ``credits`` (0: stop sending it)."""
        if credits <= 0:
            self.forget(payment_id)
        elif (pulse := self._pulses.get(payment_id)) is not None:
            self._pulses[payment_id] = replace(pulse, credits=credits)

"""Every recorded payment's credits to its cabinet, exactly once: the dispatcher.

Plain Python (no Home Assistant import), driven by the integration and by the property tests.

* A pulse is held while MQTT is disconnected or its cabinet is known to be offline, or has
  never shown a sign of life (unless its owner said it never reports anything).
* A cabinet that acknowledges credits (``…/ack`` with the ``paymentId``) gets the same pulse,
  same ``paymentId``, again with a backoff until it acknowledges, a bounded number of times
  (resend.py: also what makes a cabinet count as acknowledging); at once when it comes back
  online or MQTT reconnects. Cabinets drop pulses they already applied.
* A cabinet that never acknowledges (the earlier system's) gets each pulse once: a QoS 1 publish the
  broker confirmed (PUBACK) is all that can be known. One left unconfirmed stays with the MQTT
  client, which sends it on reconnecting, while this process runs: not published again here (a
  doubled credit), it stays owed and ``unconfirmed`` in the ledger, sent once more after a restart;
  a later publish the broker confirms proves it delivered (planner's ``confirmed_by``). The
  at-least-once boundary this leaves is in docs/payments.md (Known limit).

What is owed and when it is due is the planner's (delivery_planner.py, without I/O, one record
per pulse); the dispatcher adds the ledger, the publish and the notes of what was published.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
import logging
from typing import Any

from .clock import Clock, moment
from .delivery_planner import DeliveryPlanner
from .delivery_queries import DeliveryQueries

# Re-exported: callers import the records of delivery from here.
from .delivery_records import (
    AckResult as AckResult,  # noqa: PLC0414
    Outstanding,
    PublishResult as PublishResult,  # noqa: PLC0414
    Pulse as Pulse,  # noqa: PLC0414
    Withdrawn as Withdrawn,  # noqa: PLC0414
)
from .ledger import Adjustment, LedgerError, Payment, PaymentLedger, PaymentState
from .mqtt_connection import MqttConnection
from .publish_notes import PublishNotes, RunBlocking

_LOGGER = logging.getLogger(__name__)


# True: confirmed by the broker, False: refused (the simple answer of a publish that always confirms).
type Publish = Callable[[Pulse], Awaitable[bool | PublishResult]]
type Delivered = Callable[[Pulse], None]


async def _run_inline[T](function: Callable[..., T], *args: Any) -> T:
    return function(*args)


class CreditDispatcher(DeliveryQueries):
    """Gets every recorded payment's credits to its cabinet, exactly once.

    The ledger is the truth: a payment is recorded before anything is published, and what
    is outstanding after a restart is read back from it. ``publish`` answers a PublishResult
    (True: confirmed, False: refused); ``clock`` is the one clock, in seconds since the epoch: when
    pulses fall due and the times noted in the ledger; ``run_blocking`` runs ledger calls off
    the event loop; ``delivered`` is told when a pulse first reaches MQTT (to update entities);
    ``mqtt``: whether MQTT is connected, the entry's one answer (shared with its cabinets).
    """

    def __init__(
        self,
        ledger: PaymentLedger,
        publish: Publish,
        clock: Clock,
        run_blocking: RunBlocking = _run_inline,
        delivered: Delivered | None = None,
        mqtt: MqttConnection | None = None,
    ) -> None:
        """Wire the dispatcher to its ledger and its ways to publish and tell the time."""
        self.ledger = ledger
        self.planner = DeliveryPlanner() if mqtt is None else DeliveryPlanner(mqtt)
        self._publish = publish
        self._clock = clock
        self._run = run_blocking
        self._delivered = delivered
        # Every payment tracked since start-up (a few dozen bytes each): none of them is stranded.
        self._ever_tracked: set[str] = set()
        self._notes = PublishNotes(ledger, run_blocking, clock)

    async def load(
        self,
        known_cabinets: set[str] | None = None,
        held: Collection[str] = (),
        *,
        cabinet: str | None = None,
    ) -> None:
        """Read what is still outstanding from the ledger; due at once (we just restarted).

        ``held``: unconfirmed pulses the MQTT client still holds (an entry reload): not sent again.
        ``cabinet``: only the untracked pulses of a cabinet added while running.
        """
        for pending in await self._run(self.ledger.undelivered):
            if cabinet is not None and (pending.machine_id != cabinet or pending.payment_id in self.planner):
                continue
            if known_cabinets is not None and pending.machine_id not in known_cabinets:
                _LOGGER.warning(
                    "%d credit(s) of %s wait for cabinet %s, which is not configured",
                    pending.credits,
                    pending.payment_id,
                    pending.machine_id,
                )
                continue
            self._ever_tracked.add(pending.payment_id)
            if pending.unconfirmed and pending.payment_id in held:
                self._track(Pulse.owed(pending, pending.credits), pending.attempts, awaiting_broker=True)
                continue
            # Unconfirmed: sent again, the MQTT client that held it ended with the last process.
            confirmed = pending.attempts and not pending.unconfirmed
            if confirmed and not self.planner.acknowledges(pending.machine_id):
                # Sent while the cabinet counted as acknowledging; it does not (any more): a
                # confirmed pulse is delivered, as for any cabinet that does not acknowledge.
                at = moment(self._clock)
                await self._run(self.ledger.mark_published, pending.payment_id, at, False, pending.attempts)
                continue
            # Due at once, whatever its backoff was: we just restarted (unless given up on).
            self._track(Pulse.owed(pending, pending.credits), pending.attempts)

    def _track(self, pulse: Pulse, attempts: int = 0, awaiting_broker: bool = False) -> None:
        self.planner.add(pulse, attempts, awaiting_broker=awaiting_broker)
        self._ever_tracked.add(pulse.payment_id)

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
            if await self._track_if_stranded(payment.payment_id) and deliver:
                await self.deliver(payment.payment_id)
            return False
        applied = self.ledger.take_applied_on_record(payment.payment_id)
        if recorded is not None:
            recorded(applied)
        credits = payment.credits if applied is None else applied.credits_left
        # A duplicate delivery can see the record before this call returns (group commit) and
        # take the payment for stranded: it is then tracked, maybe sent already. Once is enough.
        if credits <= 0 or payment.payment_id in self._ever_tracked:
            return True
        self._track(Pulse.owed(payment, credits))
        if deliver:
            await self.deliver(payment.payment_id)
        return True

    async def _track_if_stranded(self, payment_id: str) -> bool:
        """Track a payment that is owed but not tracked: recorded, then cut off before tracking.

        At once, not only at the next start. Return whether it was stranded.
        """
        record = await self._run(self.ledger.payment, payment_id)
        if record is None or not record.undelivered or record.credits_still_paid <= 0:
            return False
        if record.being_refunded:  # Never sent meanwhile (undelivered_refunds.py).
            return False
        # Tracked by this process once: its fate is known here (sent, acknowledged, refunded)
        # even if the record just read is older than that (the first delivery published it
        # while this one read). Only a payment never tracked here is stranded.
        if payment_id in self._ever_tracked:
            return False
        self._track(Pulse.owed(record, record.credits_still_paid), record.attempts)
        return True

    async def deliver(self, payment_id: str) -> None:
        """Publish one pulse now, if it is due and not held."""
        await self._send(self.planner.take_due(self._clock(), payment_id))

    async def flush(self) -> None:
        """Write the publish notes the ledger still owes, then publish everything that is due."""
        if self._notes.due():
            await self._notes.write_all()
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
        pulse = outstanding.pulse
        first_time = outstanding.attempts == 0
        number = self.planner.publish_starting()
        result = PublishResult.of(await self._publish(pulse))
        if result is PublishResult.REFUSED:
            self.planner.failed(pulse.payment_id, self._clock())
            return
        # MQTT took it: delivered (or one attempt more) in memory, whatever the ledger write does.
        # Publishing again because a write failed doubled credits on cabinets that cannot tell.
        confirmed = result is PublishResult.CONFIRMED
        acknowledges = self.planner.acknowledges(pulse.machine_id)
        self._notes.add(pulse.payment_id, acknowledges, outstanding.attempts + 1, unconfirmed=not confirmed)
        self.planner.published(pulse.payment_id, self._clock(), confirmed)
        proven = self.planner.confirmed_by(number) if confirmed else []
        for earlier in proven:  # Delivered now: the ledger must not send them again after a restart.
            self._notes.add(earlier.payment_id, False, earlier.attempts, unconfirmed=False)
        if first_time and self._delivered is not None:
            self._delivered(pulse)
        # Written after the publish: a crash in between re-sends, and cabinets drop repeats.
        await self._notes.write(pulse.payment_id)
        for earlier in proven:
            await self._notes.write(earlier.payment_id)

    async def write_notes(self) -> None:
        """Write the publish notes the ledger still owes (publish_notes.py)."""
        await self._notes.write_all()

    async def acknowledge(self, machine_id: str, payment_id: str) -> AckResult:
        """A cabinet acknowledged a pulse.

        Only the ack of a pulse that was sent counts; it shows that the cabinet acknowledges
        (remembered, unless its owner said otherwise) and that its acks get through, so its
        pulses given up on get another round.
        """
        pulse = self.planner.pulse(payment_id)
        if pulse is not None and pulse.machine_id != machine_id:
            return AckResult.UNKNOWN
        if not self._sent(payment_id):
            record = await self._run(self.ledger.payment, payment_id)
            if record is None or record.machine_id != machine_id:
                return AckResult.UNKNOWN
            if record.state is PaymentState.PENDING and not self._sent(payment_id):
                return AckResult.NOT_SENT
        if not await self._run(self.ledger.mark_acknowledged, payment_id, machine_id, moment(self._clock)):
            record = await self._run(self.ledger.payment, payment_id)
            if record is None or record.machine_id != machine_id:
                return AckResult.UNKNOWN
            return AckResult.REPEATED
        self.forget(payment_id)
        self._notes.discard(payment_id)  # Acknowledged: the publish note has nothing to add.
        if self.planner.learn_acknowledges(machine_id):
            _LOGGER.info("Cabinet %s acknowledges credits: pulses are now re-sent until it does", machine_id)
            await self._run(self.ledger.set_cabinet_acknowledges, machine_id)
        if self.planner.resume(machine_id):
            await self.flush()
        return AckResult.ACKNOWLEDGED

    def _sent(self, payment_id: str) -> bool:
        """Whether this process sent (or is sending) the pulse, noted in the ledger or not."""
        outstanding = self.planner.get(payment_id)
        return payment_id in self._notes or (outstanding is not None and outstanding.sent)

    def forget(self, payment_id: str) -> None:
        """Stop delivering a payment (it was refunded)."""
        self.planner.forget(payment_id)

    def adjust(self, payment_id: str, credits: int) -> None:
        """A refund or dispute: the pulse still to send carries ``credits`` (0: stop sending it)."""
        if credits <= 0:
            self.forget(payment_id)
        else:
            self.planner.adjust(payment_id, credits)

    def withdraw(self, payment_id: str) -> Withdrawn | None:
        """Take a pulse out of delivery, to refund it; None if it is in flight (or not owed).

        Then a cabinet that comes back during the refund call cannot get credits the player
        gets back; ``put_back`` if the refund fails.
        """
        outstanding = self.planner.get(payment_id)
        # Held by the MQTT client, unconfirmed: it may reach the cabinet at any moment too.
        if outstanding is None or outstanding.in_flight or self.planner.awaiting_broker(outstanding):
            return None
        self.forget(payment_id)
        return Withdrawn(outstanding)

    async def put_back(self, withdrawn: Withdrawn) -> None:
        """Deliver a withdrawn pulse again, unless the ledger settled it meanwhile (an ack, a refund)."""
        try:
            record = await self._run(self.ledger.payment, withdrawn.pulse.payment_id)
        except LedgerError:
            record = None  # Unreadable now: owing it is the state it was withdrawn in.
        if record is not None and not (record.owed and record.credits_still_paid > 0):
            return  # Settled meanwhile: acknowledged, or refunded or disputed in full.
        # A partial refund or a dispute that came meanwhile may have left fewer credits to send.
        credits = None if record is None else record.credits_still_paid
        self._ever_tracked.add(withdrawn.pulse.payment_id)
        self.planner.put_back(withdrawn.outstanding, credits)

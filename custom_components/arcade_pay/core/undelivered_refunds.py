"""Refunds of credits that did not reach their cabinet in time, safe against a crash half-way.

Plain Python (no Home Assistant import), driven by catch_up.py and by the property tests.
catch_up.py picks the overdue payments and withdraws their pulses from delivery; here:

1. the ledger marks the payment as being refunded, durably, before Stripe is asked
   (ledger_refunds.py): from then on its credits are never sent, after a restart too;
2. Stripe refunds it with an idempotency key of the payment (``arcade_pay_refund_<payment id>``),
   so that asking again, after a lost answer or a crash, gets the first refund back, never a
   second one;
3. the ledger records the refund and drops the mark, in one transaction.

What Stripe's answer decides:

* refunded: recorded;
* no answer (Stripe, or the way to it, down; a time-out): the refund may have happened. The mark
  stays and ``finish`` settles it at the next run; the credits are not sent meanwhile;
* refused (a charge refunded in full already, or disputed; a key without permission): Stripe is
  asked how much was refunded, that is recorded (a refund from the dashboard, say), the mark goes
  and what is still paid for is delivered again. If Stripe cannot say, the mark stays.

``finish`` (at start-up and at every housekeeping run) settles each payment still marked: one a
crash, an unload or a lost answer left half-way. Refunded in Stripe (its refunded total reaches
the amount): recorded. Not refunded, and its credits still not known delivered: refunded again
with the same key. Acknowledged or disputed meanwhile: nothing to refund, the mark goes. Stripe
out of reach: left marked, tried at the next run; never delivered meanwhile. Stripe keeps a key's
answer for at least 24 hours (an error too), so a refund that met a server error is settled when
Stripe refunds it, or forgets the key: the ledger stays true throughout (the payment is pending).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
import logging
from typing import Final, Protocol

from .delivery import CreditDispatcher
from .delivery_records import Outstanding, Pulse, Withdrawn
from .ledger import Adjustment, LedgerError, PaymentRecord
from .publish_notes import RunBlocking
from .stripe_gateway import StripeConnectionError, StripeGatewayError, StripeUnavailableError

_LOGGER = logging.getLogger(__name__)

REFUND_KEY_PREFIX: Final = "arcade_pay_refund_"
# Failures after which the refund may or may not have happened in Stripe.
_NO_ANSWER: Final = (StripeConnectionError, StripeUnavailableError)


def refund_key(payment_id: str) -> str:
    """The idempotency key of a payment's automatic refund: one refund per payment, ever."""
    return f"{REFUND_KEY_PREFIX}{payment_id}"


class RefundGateway(Protocol):
    """The two Stripe calls a refund needs (stripe_gateway.py)."""

    async def refund(self, payment_intent: str, idempotency_key: str) -> None:
        """Refund a payment in full."""

    async def refunded_amount(self, payment_intent: str) -> int:
        """How much of a payment is refunded."""


class UndeliveredRefunds:
    """Refunds of one entry's undelivered payments, and the finishing of those left half-way."""

    def __init__(
        self,
        dispatcher: CreditDispatcher,
        gateway: Callable[[], RefundGateway],
        run_blocking: RunBlocking,
        applied: Callable[[Adjustment], None],
        delivery_changed: Callable[[str], None],
    ) -> None:
        """Refund through ``gateway`` (the current Stripe client: a new key replaces it).

        ``applied`` is told of each refund recorded (revenue, pending credits), and
        ``delivery_changed`` of each pulse put back into delivery.
        """
        self._dispatcher = dispatcher
        self._gateway = gateway
        self._run = run_blocking
        self._applied = applied
        self._delivery_changed = delivery_changed
        # Payments this process is refunding now: ``finish`` leaves them to it.
        self._in_progress: set[str] = set()

    async def refund(self, withdrawn: Withdrawn, now: datetime) -> None:
        """Refund a payment whose pulse was withdrawn from delivery (see the module docstring)."""
        payment_id = withdrawn.pulse.payment_id
        self._in_progress.add(payment_id)
        try:
            record: PaymentRecord | None = None
            try:
                record = await self._start(payment_id, now)
            finally:
                if record is None:  # Not marked, not refunded: the credits are owed again, due now.
                    await self._put_back(withdrawn)
            if record is not None:
                await self._refund_marked(record, withdrawn)
        finally:
            self._in_progress.discard(payment_id)
        # Out of delivery whatever Stripe answered: its credits are not on their way any more.
        self._delivery_changed(withdrawn.pulse.machine_id)

    async def _start(self, payment_id: str, now: datetime) -> PaymentRecord | None:
        """Mark the payment, durably; None if it cannot (or need not) be refunded."""
        ledger = self._dispatcher.ledger
        try:
            record = await self._run(ledger.payment, payment_id)
            if record is None or record.payment_intent is None:
                return None
            marked: PaymentRecord | None = await self._run(ledger.start_refund, payment_id, now)
        except LedgerError as err:  # Not marked: Stripe is not asked.
            _LOGGER.error("Could not refund undelivered payment %s now: %s", payment_id, err)  # noqa: TRY400
            return None
        return marked

    async def _refund_marked(self, record: PaymentRecord, withdrawn: Withdrawn | None) -> None:
        """Ask Stripe to refund a marked payment, and record what it answers."""
        intent = record.payment_intent
        assert intent is not None  # Only payments with one are marked (``_start``).
        try:
            await self._gateway().refund(intent, refund_key(record.payment_id))
        except _NO_ANSWER as err:
            # Said once; the runs that finish it ask again every 30 seconds (for a day, at worst).
            log = _LOGGER.warning if withdrawn is not None else _LOGGER.debug
            log(
                "No answer from Stripe to the refund of undelivered payment %s (%s); its credits stay"
                " withheld and Arcade Pay asks Stripe again at its next run",
                record.payment_id,
                err,
            )
            return
        except StripeGatewayError as err:
            _LOGGER.error("Could not refund undelivered payment %s: %s", record.payment_id, err)  # noqa: TRY400
            await self._refused(record, withdrawn)
            return
        _LOGGER.warning(
            "Refunded payment %s: its %d credit(s) did not reach %s in time",
            record.payment_id,
            record.credits_still_paid,
            record.machine_id,
        )
        await self._record(record, record.amount, f"auto_refund:{record.payment_id}", ends_refund=True)

    async def _refused(self, record: PaymentRecord, withdrawn: Withdrawn | None) -> None:
        """Stripe refused the refund: record what Stripe says was refunded, and owe the rest again."""
        assert record.payment_intent is not None
        try:
            refunded = await self._gateway().refunded_amount(record.payment_intent)
        except StripeGatewayError:
            return  # Not known: left marked, finished at the next run.
        await self._not_refunded(record, refunded, withdrawn)

    async def _not_refunded(self, record: PaymentRecord, refunded: int, withdrawn: Withdrawn | None) -> None:
        """Our refund did not happen: record Stripe's ``refunded`` total, drop the mark, owe the rest."""
        intent = record.payment_intent
        event_id = f"reconcile_refund:{intent}:{refunded}"
        if intent is not None and refunded and not await self._record(record, refunded, event_id):
            return
        try:
            await self._run(self._dispatcher.ledger.end_refund, record.payment_id)
        except LedgerError as err:
            _LOGGER.warning("Could not note the refused refund of %s now: %s", record.payment_id, err)
            return
        # Delivered again unless settled meanwhile (acknowledged, refunded or disputed in full).
        await self._put_back(withdrawn or _withdrawn_of(record))

    async def _record(
        self, record: PaymentRecord, refunded_total: int, event_id: str, *, ends_refund: bool = False
    ) -> bool:
        """Record a refund Stripe made; return False if the ledger could not (the mark stays)."""
        intent = record.payment_intent
        assert intent is not None
        try:
            adjustment: Adjustment | None = await self._run(
                self._dispatcher.ledger.record_refund, intent, refunded_total, event_id, ends_refund
            )
        except LedgerError as err:
            _LOGGER.warning(
                "Refunded payment %s, but could not record it now (%s); Arcade Pay records it at its"
                " next run, and never sends its credits",
                record.payment_id,
                err,
            )
            return False
        if adjustment is not None:
            self._applied(adjustment)
        return True

    async def _put_back(self, withdrawn: Withdrawn) -> None:
        await self._dispatcher.put_back(withdrawn)
        self._delivery_changed(withdrawn.pulse.machine_id)

    # --- refunds left half-way ------------------------------------------------------------------

    async def unfinished(self) -> list[PaymentRecord]:
        """Payments marked as being refunded that no refund of this process is working on."""
        records: list[PaymentRecord] = await self._run(self._dispatcher.ledger.refunds_started)
        return [record for record in records if record.payment_id not in self._in_progress]

    async def finish(self, record: PaymentRecord) -> None:
        """Settle a payment a crash, an unload or a lost answer left marked (module docstring)."""
        if record.payment_id in self._in_progress:
            return
        self._in_progress.add(record.payment_id)
        try:
            await self._finish(record)
        finally:
            self._in_progress.discard(record.payment_id)

    async def _finish(self, listed: PaymentRecord) -> None:
        # As it is now: an ack, a dispute or another run may have come since it was listed.
        try:
            record: PaymentRecord | None = await self._run(self._dispatcher.ledger.payment, listed.payment_id)
        except LedgerError as err:
            _LOGGER.warning("Cannot finish the refund of %s now: %s", listed.payment_id, err)
            return
        if record is None or not record.being_refunded:
            return
        if record.payment_intent is None:  # Never marked so (``_start``): nothing to refund.
            await self._not_refunded(record, 0, None)
            return
        try:
            refunded = await self._gateway().refunded_amount(record.payment_intent)
        except StripeGatewayError as err:
            _LOGGER.debug("Cannot finish the refund of %s now: %s", record.payment_id, err)
            return
        if refunded >= record.amount:  # Refunded in Stripe: the answer or the record was lost.
            await self._record(record, refunded, f"auto_refund:{record.payment_id}", ends_refund=True)
        elif not record.undelivered:  # Acknowledged or disputed meanwhile: nothing to give back.
            await self._not_refunded(record, refunded, None)
        else:
            await self._refund_marked(record, None)


def _withdrawn_of(record: PaymentRecord) -> Withdrawn:
    """A marked payment's pulse, as a withdrawn one (its delivery starts again, due now)."""
    return Withdrawn(Outstanding(Pulse.owed(record, record.credits_still_paid), attempts=record.attempts))

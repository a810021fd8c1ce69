"""Money that moves after a payment: refunds, disputes, automatic refunds, reconciliation.

Split from hub.py, which keeps the payment path itself; these run on Stripe's events, on
the 30-second housekeeping and on the hourly reconciliation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from homeassistant.helpers import issue_registry as ir

from . import not_credited
from .const import LOGGER
from .core import reconciliation
from .core.early_money import Dispute
from .core.ledger import Adjustment, LedgerError, Payment, PaymentRecord, PaymentSource, PaymentState
from .core.payments import (
    DisputeNotice,
    PaidSession,
    RefundNotice,
    WebhookRejected,
    from_minor_units,
    paid_session,
    utcnow,
)
from .core.reconciliation import LinkCursor
from .core.stripe_gateway import StripeGatewayError
from .core.stripe_health import OUTAGE_ERRORS

if TYPE_CHECKING:
    from .core.cabinet import Cabinet
    from .core.delivery import Pulse, Withdrawn
    from .hub import ArcadePayHub


class Outcome(StrEnum):
    """What the webhook did with an event."""

    CREDITED = "credited"
    DUPLICATE = "duplicate"
    UNKNOWN_CABINET = "unknown_cabinet"
    NOT_CREDITABLE = "not_creditable"
    RECORDED = "recorded"
    # A refund or dispute of a payment not recorded (yet): kept and applied when it is.
    AWAITING_PAYMENT = "awaiting_payment"
    IGNORED = "ignored"


class MoneyEvents:
    """Refunds, disputes and reconciliation of one hub."""

    def __init__(self, hub: ArcadePayHub) -> None:
        """Work on ``hub``'s cabinets, ledger and Stripe client."""
        self._hub = hub

    async def async_handle_refund(self, notice: RefundNotice) -> Outcome:
        """Record a refund against its payment and take it out of revenue."""
        adjustment = await self._hub.hass.async_add_executor_job(
            self._hub.ledger.record_refund, notice.payment_intent, notice.refunded_total, notice.event_id
        )
        if adjustment is None:
            LOGGER.info(
                "Refund for payment intent %s matches no payment yet; kept for when it arrives",
                notice.payment_intent,
            )
            return Outcome.AWAITING_PAYMENT
        self._apply(adjustment)
        await self._async_settled(adjustment)
        if adjustment.revenue_delta:
            LOGGER.info(
                "Payment %s was refunded (%s %s)",
                adjustment.payment.payment_id,
                from_minor_units(adjustment.revenue_delta, adjustment.payment.currency),
                adjustment.payment.currency.upper(),
            )
        return Outcome.RECORDED

    async def async_handle_dispute(self, notice: DisputeNotice) -> Outcome:
        """Record a dispute, take it out of revenue and tell the owner."""
        adjustment = await self._hub.hass.async_add_executor_job(
            self._hub.ledger.record_dispute,
            notice.payment_intent,
            notice.amount,
            notice.event_id,
            notice.dispute_id,
            notice.reason,
        )
        if adjustment is None:
            LOGGER.info("Dispute %s matches no payment yet; kept for when it arrives", notice.dispute_id)
            return Outcome.AWAITING_PAYMENT
        self._apply(adjustment)
        await self._async_settled(adjustment)
        self.raise_dispute_issue(adjustment.payment, Dispute(notice.dispute_id, notice.amount, notice.reason))
        return Outcome.RECORDED

    def raise_dispute_issue(self, payment: PaymentRecord, dispute: Dispute) -> None:
        """Tell the owner to respond to a dispute in Stripe."""
        cabinet = self._hub.cabinets.get(payment.machine_id)
        self._hub.raise_issue(
            f"dispute_{dispute.dispute_id}",
            "payment_disputed",
            {
                "cabinet": cabinet.config.name if cabinet else payment.machine_id,
                "amount": f"{from_minor_units(dispute.amount, payment.currency)} {payment.currency.upper()}",
                "session": payment.payment_id,
                "reason": dispute.reason or "unknown",
                "url": f"https://dashboard.stripe.com/disputes/{dispute.dispute_id}",
            },
            severity=ir.IssueSeverity.ERROR,
        )

    async def async_not_creditable(
        self, session: PaidSession, machine_id: str | None, reason: str
    ) -> Outcome:
        """A paid session nobody can be credited for: recorded, with a repair (not_credited.py)."""
        if await not_credited.async_record(self._hub, session, machine_id, reason):
            return Outcome.UNKNOWN_CABINET
        return Outcome.NOT_CREDITABLE

    async def _async_settled(self, adjustment: Adjustment) -> None:
        """An uncreditable payment was refunded or disputed: its repair goes once it is settled."""
        if adjustment.payment.state is PaymentState.UNCREDITABLE:
            record = await self._hub.hass.async_add_executor_job(
                self._hub.ledger.payment, adjustment.payment.payment_id
            )
            if record is not None:
                not_credited.raise_repair(self._hub, record)

    def after_record(self, cabinet: Cabinet, payment: Payment, applied: Adjustment | None) -> None:
        """A payment was recorded: count its money, and what came back before it did (early_money.py)."""
        cabinet.paid(payment.amount, payment.received_at)
        if applied is None:
            return
        self._apply(applied)
        LOGGER.info(
            "Payment %s was refunded or disputed before it arrived: %d of its %d credit(s) are sent",
            payment.payment_id,
            applied.credits_left,
            payment.credits,
        )
        if applied.dispute is not None:
            self.raise_dispute_issue(applied.payment, applied.dispute)

    def _apply(self, adjustment: Adjustment) -> None:
        payment = adjustment.payment
        self._hub.apply_adjustment(
            payment.payment_id, payment.machine_id, adjustment.revenue_delta, adjustment.credits_left
        )

    async def async_refund_overdue(self, now: float) -> None:
        """Refund Stripe payments whose credits did not reach their cabinet in time."""
        dispatcher = self._hub.dispatcher
        for outstanding in dispatcher.planner.outstanding():
            pulse = dispatcher.pulse(outstanding.payment_id)
            if pulse is None or pulse.source is not PaymentSource.STRIPE or self._hub.work.stopping:
                continue
            if now - pulse.timestamp.timestamp() < self._hub.options.refund_after:
                continue
            # Out of delivery before the first await (None: in flight, it may be on the cabinet in
            # a moment; never refund what was delivered). An overlapping run no longer sees it.
            if (withdrawn := dispatcher.withdraw(pulse.payment_id)) is not None:
                # The hub's own task: cancelling housekeeping (unload) must not cut a refund short.
                await self._hub.work.run(self._async_refund_undelivered(withdrawn))

    async def _async_refund_undelivered(self, withdrawn: Withdrawn) -> None:
        refunded: tuple[PaymentRecord, str] | None = None
        try:
            refunded = await self._async_refund(withdrawn.pulse)
        finally:
            if refunded is None:  # Not refunded: the credits are owed again, and due now.
                await self._hub.dispatcher.put_back(withdrawn)
                self._hub._after_delivery_change(withdrawn.pulse.machine_id)
        if refunded is None:
            return
        record, payment_intent = refunded
        adjustment = await self._hub.hass.async_add_executor_job(
            self._hub.ledger.record_refund, payment_intent, record.amount, f"auto_refund:{record.payment_id}"
        )
        if adjustment is not None:
            self._apply(adjustment)

    async def _async_refund(self, pulse: Pulse) -> tuple[PaymentRecord, str] | None:
        """Refund a payment in Stripe; return its record and payment intent, or None if not refunded."""
        record = await self._hub.hass.async_add_executor_job(self._hub.ledger.payment, pulse.payment_id)
        if record is None or record.payment_intent is None:
            return None
        try:
            await self._hub.gateway.refund(record.payment_intent)
        except StripeGatewayError as err:
            LOGGER.error("Could not refund undelivered payment %s: %s", pulse.payment_id, err)
            return None
        LOGGER.warning(
            "Refunded payment %s: its %d credit(s) did not reach %s in time",
            pulse.payment_id,
            pulse.credits,
            pulse.machine_id,
        )
        return record, record.payment_intent

    async def _async_check_refunds(self, notice: PaidSession) -> None:
        """Ask Stripe whether a payment the webhook never delivered was refunded, before crediting it.

        Its refund's event may be lost too; recorded first, the refund applies as the payment is.
        """
        if notice.payment_intent is None:
            return
        refunded = await self._hub.gateway.refunded_amount(notice.payment_intent)
        if refunded:
            event_id = f"reconcile_refund:{notice.payment_intent}:{refunded}"
            await self.async_handle_refund(RefundNotice(event_id, notice.payment_intent, refunded))

    async def async_reconcile(self) -> int:
        """Credit paid sessions the webhook never delivered (reconciliation.py); return how many."""
        now = int(utcnow().timestamp())
        current = {machine_id: c.config.payment_link_id for machine_id, c in self._hub.cabinets.items()}
        credited = 0
        try:
            links = await self._hub.hass.async_add_executor_job(
                self._hub.ledger.links_to_reconcile, current, now
            )
            for link in links:
                try:
                    credited += await self._async_reconcile_link(link, now)
                except StripeGatewayError as err:
                    # An outage is logged once by StripeHealth; a refused request is this link's.
                    log = LOGGER.debug if isinstance(err, OUTAGE_ERRORS) else LOGGER.warning
                    log("Could not check Stripe for missed payments of %s now: %s", link.machine_id, err)
        except LedgerError as err:  # A background job: say it, the next run tries again.
            LOGGER.warning("Could not reconcile payments with Stripe now: %s", err)
        return credited

    async def _async_reconcile_link(self, link: LinkCursor, now: int) -> int:
        """List a link's sessions since its cursor, credit the missed ones, move the cursor.

        Raises StripeGatewayError with the cursor left where it was: all is listed again next time.
        """
        sessions = await self._hub.gateway.checkout_sessions(link.link_id, link.since)
        paid: list[PaidSession] = []
        for obj in sessions:
            try:
                notice = paid_session(obj, f"reconcile:{obj.get('id')}", "reconciliation")
            except WebhookRejected as err:
                LOGGER.warning("Skipping a session Stripe listed for %s: %s", link.machine_id, err)
                continue
            if isinstance(notice, PaidSession):
                paid.append(notice)
        known = await self._hub.hass.async_add_executor_job(
            self._hub.ledger.known_payments, [notice.session_id for notice in paid]
        )
        credited = 0
        for notice in paid:
            if notice.session_id in known:
                continue
            await self._async_check_refunds(notice)
            if await self._hub.async_handle_paid_session(notice) is Outcome.CREDITED:
                credited += 1
                LOGGER.warning(
                    "Credited payment %s for %s that the webhook never delivered; "
                    "check the webhook URL and secret in Stripe",
                    notice.session_id,
                    link.machine_id,
                )
        moved = reconciliation.move(link, sessions, now)
        if moved.done or moved.since != link.since:
            await self._hub.hass.async_add_executor_job(
                self._hub.ledger.move_reconcile_cursor, link.link_id, moved.since, moved.done
            )
        return credited

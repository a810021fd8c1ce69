"""Payments in: paid sessions, refunds, disputes and manual credits, recorded once in the ledger.

webhook.py hands each verified Stripe event here; catch_up.py hands what the webhook missed
(reconciliation) and refunds of credits that never arrived. A recorded payment goes to the
courier (courier.py), which sends its pulse: intake calls the courier, never the other way.
Paid sessions nobody can be credited for are recorded by not_credited.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
import uuid

from homeassistant.core import HomeAssistant
from homeassistant.util.dt import utcnow

from . import not_credited
from .const import LOGGER
from .core.cabinet import Cabinet
from .core.early_money import Dispute
from .core.ledger import Adjustment, Payment, PaymentLedger, PaymentRecord, PaymentSource, PaymentState
from .core.payments import (
    CreditError,
    DisputeNotice,
    PaidSession,
    RefundNotice,
    from_minor_units,
)
from .core.routing import AmbiguousLink, LinkIndex
from .core.stripe_gateway import StripeGateway
from .courier import Courier
from .issues import raise_dispute_issue, sync_not_credited_issue
from .session_credits import SessionCredits, unit_amount_charged


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


@dataclass(frozen=True, slots=True)
class ManualCredit:
    """Free credits recorded in the ledger: published now, or waiting for a cabinet never seen yet."""

    payment_id: str
    waits_for_cabinet: bool  # it never sent a message: they go when it does
    sent: bool  # MQTT took the pulse now (else it follows: cabinet offline, MQTT down)


class Intake:
    """Payments in for one entry's cabinets."""

    def __init__(
        self,
        hass: HomeAssistant,
        ledger: PaymentLedger,
        gateway: StripeGateway,
        cabinets: Mapping[str, Cabinet],
        courier: Courier,
    ) -> None:
        """Record in ``ledger``, ask Stripe through ``gateway``, send through ``courier``."""
        self.hass = hass
        self.ledger = ledger
        self.gateway = gateway
        self.cabinets = cabinets
        self._courier = courier
        self._links = LinkIndex(cabinets.values())
        self._credits = SessionCredits(lambda: self.gateway)

    def cabinets_changed(self) -> None:
        """A cabinet was added or deleted while the entry runs: route by the cabinets there are now."""
        self._links = LinkIndex(self.cabinets.values())

    def cabinet_for_session(self, session: PaidSession) -> Cabinet | None:
        """Find the cabinet whose payment link was paid (rules in routing.py).

        Raises AmbiguousLink when several cabinets claim the link and nothing tells them apart.
        """
        return self._links.cabinet_for(session.payment_link_id, session.machine_id)

    # --- paid sessions ---------------------------------------------------------------------

    async def async_handle_paid_session(self, session: PaidSession) -> Outcome:
        """Credit a paid checkout session exactly once.

        Raises StripeGatewayError or LedgerError when the session could not be
        handled now; the webhook answers 500 so that Stripe delivers it again.
        """
        try:
            cabinet = self.cabinet_for_session(session)
        except AmbiguousLink:  # The repair names the cabinets (not_credited.py).
            reason = f"payment link {session.payment_link_id} is used by several cabinets"
            return await self.async_not_creditable(session, session.machine_id, reason)
        if cabinet is None:
            return await self.async_not_creditable(session, session.machine_id, not_credited.NO_CABINET)
        if session.currency != cabinet.config.currency:
            reason = f"paid in {session.currency.upper()}, priced in {cabinet.config.currency.upper()}"
            return await self.async_not_creditable(session, cabinet.machine_id, reason)
        try:
            credits = await self._credits.async_credits(cabinet, session)
        except CreditError as err:
            return await self.async_not_creditable(session, cabinet.machine_id, str(err))
        payment = Payment.of_session(
            session, cabinet.machine_id, credits, utcnow(), unit_amount_charged(cabinet, session)
        )
        came_before: list[Adjustment | None] = []

        def recorded(applied: Adjustment | None) -> None:
            came_before.append(applied)
            self._after_record(cabinet, payment, applied)

        if not await self._courier.async_accept(payment, recorded):
            # It may have been cut off before it was tracked (accept tracks it now): send it.
            self._courier.deliver_soon(payment.payment_id, cabinet.machine_id)
            LOGGER.info(
                "Payment %s for %s was already credited; ignoring this delivery (event %s)",
                session.session_id,
                cabinet.machine_id,
                session.event_id,
            )
            return Outcome.DUPLICATE
        early = came_before[0] if came_before else None
        if early is not None and early.credits_left <= 0:  # Refunded or disputed before it came.
            return Outcome.RECORDED
        # (A retry that saw the record first may have sent it already: still this delivery's credit.)
        # Recorded durably: Stripe can have its answer now. Eagerly started, the pulse is on its
        # way before the answer; waiting for the broker's PUBACK is not the webhook's business.
        self._courier.deliver_soon(payment.payment_id, cabinet.machine_id)
        LOGGER.info(
            "Payment %s: %d credit(s) for %s (%s %s)",
            session.session_id,
            credits,
            cabinet.machine_id,
            from_minor_units(session.amount_total, session.currency),
            session.currency.upper(),
        )
        return Outcome.CREDITED

    async def async_not_creditable(
        self, session: PaidSession, machine_id: str | None, reason: str
    ) -> Outcome:
        """A paid session nobody can be credited for: recorded, with a repair (not_credited.py)."""
        record, applied = await not_credited.async_record(self.hass, self.ledger, session, machine_id, reason)
        if applied is not None and applied.dispute is not None:
            self.raise_dispute_issue(applied.payment, applied.dispute)
        # The repair is the session's first record's (it stands); the answer is this delivery's.
        sync_not_credited_issue(self.hass, record, not_credited.claimant(record, self._links))
        if reason == not_credited.NO_CABINET:
            return Outcome.UNKNOWN_CABINET
        return Outcome.NOT_CREDITABLE

    def _after_record(self, cabinet: Cabinet, payment: Payment, applied: Adjustment | None) -> None:
        """A payment was recorded: count its money, and what came back before it did (early_money.py)."""
        cabinet.paid(payment.amount, payment.received_at)
        if applied is None:
            return
        self.apply(applied)
        LOGGER.info(
            "Payment %s was refunded or disputed before it arrived: %d of its %d credit(s) are sent",
            payment.payment_id,
            applied.credits_left,
            payment.credits,
        )
        if applied.dispute is not None:
            self.raise_dispute_issue(applied.payment, applied.dispute)

    # --- money given back ----------------------------------------------------------------------

    async def async_handle_refund(self, notice: RefundNotice) -> Outcome:
        """Record a refund against its payment and take it out of revenue."""
        adjustment = await self.hass.async_add_executor_job(
            self.ledger.record_refund, notice.payment_intent, notice.refunded_total, notice.event_id
        )
        if adjustment is None:
            LOGGER.info(
                "Refund for payment intent %s matches no payment yet; kept for when it arrives",
                notice.payment_intent,
            )
            return Outcome.AWAITING_PAYMENT
        self.apply(adjustment)
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
        adjustment = await self.hass.async_add_executor_job(
            self.ledger.record_dispute,
            notice.payment_intent,
            notice.amount,
            notice.event_id,
            notice.dispute_id,
            notice.reason,
        )
        if adjustment is None:
            LOGGER.info("Dispute %s matches no payment yet; kept for when it arrives", notice.dispute_id)
            return Outcome.AWAITING_PAYMENT
        self.apply(adjustment)
        await self._async_settled(adjustment)
        self.raise_dispute_issue(adjustment.payment, Dispute(notice.dispute_id, notice.amount, notice.reason))
        return Outcome.RECORDED

    def raise_dispute_issue(self, payment: PaymentRecord, dispute: Dispute) -> None:
        """Tell the owner to respond to a dispute in Stripe."""
        cabinet = self.cabinets.get(payment.machine_id)
        raise_dispute_issue(
            self.hass, cabinet.config.name if cabinet else payment.machine_id, payment, dispute
        )

    async def _async_settled(self, adjustment: Adjustment) -> None:
        """An uncreditable payment was refunded or disputed: its repair goes once it is settled."""
        if adjustment.payment.state is PaymentState.UNCREDITABLE:
            record = await self.hass.async_add_executor_job(
                self.ledger.payment, adjustment.payment.payment_id
            )
            if record is not None:
                sync_not_credited_issue(self.hass, record, not_credited.claimant(record, self._links))

    def apply(self, adjustment: Adjustment) -> None:
        """Money given back: send only the undelivered credits still paid for, lower revenue."""
        payment = adjustment.payment
        self._courier.adjust(payment.payment_id, adjustment.credits_left)
        if (cabinet := self.cabinets.get(payment.machine_id)) is not None and adjustment.revenue_delta:
            cabinet.refunded(adjustment.revenue_delta)
        self._courier.after_delivery_change(payment.machine_id)

    # --- credits given away ----------------------------------------------------------------------

    async def async_add_manual_credit(self, cabinet: Cabinet, credits: int) -> ManualCredit:
        """Give free credits (button or action): recorded, then published unless the cabinet was never seen.

        Once recorded it is delivered like a payment, now or later: no error after that (a retry
        would give the credits twice).
        """
        payment = Payment(
            payment_id=f"manual_{uuid.uuid4().hex}",
            machine_id=cabinet.machine_id,
            credits=credits,
            amount=0,
            currency=cabinet.config.currency,
            source=PaymentSource.MANUAL,
            received_at=utcnow(),
        )
        published = await self._courier.async_accept_now(payment)
        waits = not published and cabinet.awaiting_first_sign
        return ManualCredit(payment.payment_id, waits_for_cabinet=waits, sent=published)

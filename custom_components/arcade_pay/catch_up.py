"""What the payment path missed: payments the webhook never delivered, credits that never arrived.

Reconciliation (hourly, and once at start-up) lists each link's paid sessions in Stripe and
hands the ones the ledger does not know to intake.py, as if the webhook had delivered them.
Housekeeping (every 30 seconds) refunds Stripe payments whose credits did not reach their
cabinet in time, when the owner asked for it, and (always, and at start-up) finishes refunds a
crash left half-way (core/undelivered_refunds.py). Both run on the intake and the courier;
neither calls back.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util.dt import utcnow

from .const import LOGGER
from .core import reconciliation
from .core.ledger import LedgerError, PaymentLedger
from .core.ledger_checkout import CheckoutStatus
from .core.payments import PaidSession, RefundNotice, WebhookRejected, paid_session
from .core.reconciliation import LinkCursor
from .core.stripe_gateway import StripeGatewayError
from .core.stripe_health import OUTAGE_ERRORS
from .courier import Courier
from .entry_work import EntryWork
from .intake import Intake, Outcome


class CatchUp:
    """Reconciliation and automatic refunds of one entry."""

    def __init__(
        self, hass: HomeAssistant, intake: Intake, courier: Courier, work: EntryWork, refund_after: float
    ) -> None:
        """Refund credits still undelivered ``refund_after`` seconds after they were paid."""
        self._hass = hass
        self._intake = intake
        self._courier = courier
        self._work = work
        self._refund_after = refund_after
        self._refunds = courier.undelivered_refunds(lambda: intake.gateway, intake.apply)

    @property
    def _ledger(self) -> PaymentLedger:
        return self._intake.ledger

    # --- overdue refunds -------------------------------------------------------------------------

    async def async_refund_overdue(self, now: float) -> None:
        """Refund Stripe payments whose credits did not reach their cabinet in time."""
        for payment_id in self._courier.outstanding_payments():
            if self._work.stopping:
                return
            # Out of delivery before the first await, unless in flight: an overlapping run no longer sees it.
            if (withdrawn := self._courier.withdraw_overdue(payment_id, now, self._refund_after)) is not None:
                # The entry's own task: cancelling housekeeping (unload) must not cut a refund short.
                await self._work.run(self._refunds.refund(withdrawn, utcnow()))

    async def async_finish_refunds(self) -> None:
        """Finish the refunds a crash, an unload or a lost answer left half-way.

        Each payment is settled from what Stripe says (undelivered_refunds.py); those Stripe
        cannot be asked about now stay marked, undelivered, until the next run.
        """
        try:
            unfinished = await self._refunds.unfinished()
        except LedgerError as err:  # A background job: say it, the next run tries again.
            LOGGER.warning("Could not look for unfinished refunds now: %s", err)
            return
        for record in unfinished:
            if self._work.stopping:
                return
            await self._work.run(self._refunds.finish(record))

    # --- reconciliation -------------------------------------------------------------------------

    async def _async_check_refunds(self, notice: PaidSession) -> None:
        """Ask Stripe whether a payment the webhook never delivered was refunded, before crediting it.

        Its refund's event may be lost too; recorded first, the refund applies as the payment is.
        """
        if notice.payment_intent is None:
            return
        refunded = await self._intake.gateway.refunded_amount(notice.payment_intent)
        if refunded:
            event_id = f"reconcile_refund:{notice.payment_intent}:{refunded}"
            await self._intake.async_handle_refund(RefundNotice(event_id, notice.payment_intent, refunded))

    async def async_reconcile(self) -> int:
        """Credit paid sessions the webhook never delivered (reconciliation.py); return how many."""
        now = int(utcnow().timestamp())
        current = {machine_id: c.config.payment_link_id for machine_id, c in self._intake.cabinets.items()}
        credited = 0
        try:
            links = await self._hass.async_add_executor_job(self._ledger.links_to_reconcile, current, now)
            for link in links:
                try:
                    credited += await self._async_reconcile_link(link, now)
                except StripeGatewayError as err:
                    # An outage is logged once by StripeHealth; a refused request is this link's.
                    log = LOGGER.debug if isinstance(err, OUTAGE_ERRORS) else LOGGER.warning
                    log("Could not check Stripe for missed payments of %s now: %s", link.machine_id, err)
            credited += await self._async_reconcile_scans()
        except LedgerError as err:  # A background job: say it, the next run tries again.
            LOGGER.warning("Could not reconcile payments with Stripe now: %s", err)
        return credited

    async def _async_reconcile_scans(self) -> int:
        """Sessions opened for scans (no payment link): ask Stripe about those the ledger has open.

        Listed by creation time from the oldest still open, and taken only if the ledger made them.
        """
        offers = await self._hass.async_add_executor_job(self._ledger.unsettled_checkout_offers)
        if not offers:
            return 0
        ours = {offer.session_id for offer in offers}
        try:
            listed = await self._intake.gateway.checkout_sessions_since(min(o.created for o in offers))
        except StripeGatewayError as err:
            log = LOGGER.debug if isinstance(err, OUTAGE_ERRORS) else LOGGER.warning
            log("Could not check Stripe for missed payments of scanned checkouts now: %s", err)
            return 0
        sessions = [obj for obj in listed if obj.get("id") in ours]
        for obj in sessions:
            if obj.get("status") == "expired":
                await self._hass.async_add_executor_job(
                    self._ledger.set_checkout_status, obj["id"], CheckoutStatus.EXPIRED
                )
        return await self._async_credit_missed(sessions, "a scanned checkout")

    async def _async_reconcile_link(self, link: LinkCursor, now: int) -> int:
        """List a link's sessions since its cursor, credit the missed ones, move the cursor.

        Raises StripeGatewayError with the cursor left where it was: all is listed again next time.
        """
        sessions = await self._intake.gateway.checkout_sessions(link.link_id, link.since)
        credited = await self._async_credit_missed(sessions, link.machine_id)
        moved = reconciliation.move(link, sessions, now)
        if moved.done or moved.since != link.since:
            await self._hass.async_add_executor_job(
                self._ledger.move_reconcile_cursor, link.link_id, moved.since, moved.done
            )
        return credited

    async def _async_credit_missed(self, sessions: list[dict[str, Any]], source: str) -> int:
        """Credit the paid ones of ``sessions`` the ledger does not know; return how many."""
        paid: list[PaidSession] = []
        for obj in sessions:
            try:
                notice = paid_session(obj, f"reconcile:{obj.get('id')}", "reconciliation")
            except WebhookRejected as err:
                LOGGER.warning("Skipping a session Stripe listed for %s: %s", source, err)
                continue
            if isinstance(notice, PaidSession):
                paid.append(notice)
        known = await self._hass.async_add_executor_job(
            self._ledger.known_payments, [notice.session_id for notice in paid]
        )
        credited = 0
        for notice in paid:
            if notice.session_id in known:
                continue
            await self._async_check_refunds(notice)
            if await self._intake.async_handle_paid_session(notice) is Outcome.CREDITED:
                credited += 1
                LOGGER.warning(
                    "Credited payment %s for %s that the webhook never delivered; "
                    "check the webhook URL and secret in Stripe",
                    notice.session_id,
                    source,
                )
        return credited

"""Paid sessions Arcade Pay cannot credit: recorded, and a repair for each until it is settled.

Another currency than the cabinet's, a quantity that cannot be worked out, a link several
cabinets use, or no cabinet at all: the money was taken and nobody gets credits. The ledger
keeps the payment (state ``uncreditable``, no credits, not in revenue) so that the export shows
it, its payment id is never credited later, and its repair is raised again at every start-up
(Home Assistant does not keep repairs that are not persistent across restarts; one the owner
ignored stays ignored). Refunding it in Stripe (or a dispute) settles it and the repair goes.
"""

from __future__ import annotations

from typing import Protocol

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util.dt import utcnow

from .const import DOMAIN, LOGGER
from .core.cabinet import Cabinet
from .core.early_money import Dispute
from .core.ledger import LedgerError, Payment, PaymentLedger, PaymentRecord, PaymentState
from .core.payments import PaidSession
from .core.routing import AmbiguousLink
from .repairs import raise_issue


class Books(Protocol):
    """What this module needs of intake.py (a Protocol, so that it does not import it)."""

    @property
    def hass(self) -> HomeAssistant:
        """Home Assistant."""

    @property
    def ledger(self) -> PaymentLedger:
        """The entry's ledger."""

    def cabinet_for_session(self, session: PaidSession) -> Cabinet | None:
        """The cabinet a session pays (routing.py); raises AmbiguousLink."""

    def raise_dispute_issue(self, payment: PaymentRecord, dispute: Dispute) -> None:
        """Tell the owner to respond to a dispute."""


NO_CABINET = "no cabinet of Arcade Pay has its payment link or machine ID"


async def async_record(books: Books, session: PaidSession, machine_id: str | None, reason: str) -> bool:
    """Record a paid session that credits nothing, log it, raise its repair.

    Return whether the repair is about an unknown cabinet (the webhook answers ``unknown_cabinet``).
    """
    payment = Payment.of_session(session, machine_id or "", 0, utcnow())
    record = await books.hass.async_add_executor_job(books.ledger.record_uncreditable, payment, reason)
    if (applied := books.ledger.take_applied_on_record(record.payment_id)) and applied.dispute:
        books.raise_dispute_issue(applied.payment, applied.dispute)
    if reason == NO_CABINET:
        LOGGER.warning(
            "Payment %s is for an unknown cabinet (payment link %s, machine_id %s); no credit sent",
            session.session_id,
            session.payment_link_id,
            session.machine_id,
        )
    else:
        LOGGER.error(
            "Payment %s for %s cannot be credited (%s); no credit sent. Refund it or credit it by hand",
            session.session_id,
            machine_id,
            reason,
        )
    raise_repair(books, record)  # The first record of a session stands; the answer is about this one.
    return reason == NO_CABINET


def raise_repair(books: Books, record: PaymentRecord) -> None:
    """Raise the repair of an uncreditable payment, or delete it once the payment is settled."""
    if record.state is not PaymentState.UNCREDITABLE:
        ir.async_delete_issue(books.hass, DOMAIN, f"not_credited_{record.payment_id}")
        return
    session = record.payment_id
    reason = record.note or "-"
    paid = PaidSession(
        "",
        "",
        session,
        record.payment_link,
        record.machine_id or None,
        None,
        record.amount,
        record.currency,
        record.payment_intent,
    )
    try:  # Routed as when it was paid (routing.py): the cabinets may have changed since.
        cabinet = books.cabinet_for_session(paid)
    except AmbiguousLink as err:
        placeholders = {"session": session, "cabinet": str(err), "reason": reason}
        raise_issue(books.hass, f"not_credited_{session}", "payment_not_credited", placeholders)
        return
    if cabinet is None:
        raise_issue(
            books.hass,
            f"unknown_cabinet_{record.machine_id or record.payment_link}",
            "unknown_cabinet",
            {
                "session": session,
                "machine_id": record.machine_id or "-",
                "payment_link": record.payment_link or "-",
            },
        )
        return
    placeholders = {"session": session, "cabinet": cabinet.config.name, "reason": reason}
    raise_issue(books.hass, f"not_credited_{session}", "payment_not_credited", placeholders)


async def async_raise_repairs(books: Books) -> None:
    """At start-up: the repair of every payment still uncreditable, from the ledger."""
    try:
        records = await books.hass.async_add_executor_job(books.ledger.uncreditable)
    except LedgerError as err:
        LOGGER.warning("Could not read the payments that were not credited: %s", err)
        return
    for record in records:
        raise_repair(books, record)

"""Paid sessions Arcade Pay cannot credit: recorded, and a repair for each until it is settled.

Another currency than the cabinet's, a quantity that cannot be worked out, a link several
cabinets use, or no cabinet at all: the money was taken and nobody gets credits. The ledger
keeps the payment (state ``uncreditable``, no credits, not in revenue) so that the export shows
it, its payment id is never credited later, and its repair is raised again at every start-up
(Home Assistant does not keep repairs that are not persistent across restarts; one the owner
ignored stays ignored). Refunding it in Stripe (or a dispute) settles it and the repair goes.
What the repair says follows from the record and the cabinet it was paid for (issues.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.core import HomeAssistant
from homeassistant.util.dt import utcnow

from .const import LOGGER
from .core.cabinet import Cabinet
from .core.ledger import Adjustment, LedgerError, Payment, PaymentLedger, PaymentRecord
from .core.payments import PaidSession
from .core.routing import AmbiguousLink, LinkIndex
from .issues import sync_not_credited_issue

NO_CABINET = "no cabinet of Arcade Pay has its payment link or machine ID"


async def async_record(
    hass: HomeAssistant, ledger: PaymentLedger, session: PaidSession, machine_id: str | None, reason: str
) -> tuple[PaymentRecord, Adjustment | None]:
    """Record a paid session that credits nothing and log it.

    Return its record (the first record of a session stands) and what came back for it before
    it did (early_money.py), whose dispute the caller raises.
    """
    payment = Payment.of_session(session, machine_id or "", 0, utcnow())
    record = await hass.async_add_executor_job(ledger.record_uncreditable, payment, reason)
    applied = ledger.take_applied_on_record(record.payment_id)
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
    return record, applied


def claimant(record: PaymentRecord, links: LinkIndex) -> str | None:
    """Whom an uncreditable payment was for, routed as when it was paid (routing.py).

    The cabinets may have changed since: the name of the cabinet it pays now, the cabinets
    that share its link, or None when no cabinet claims it.
    """
    try:
        cabinet = links.cabinet_for(record.payment_link, record.machine_id or None)
    except AmbiguousLink as err:
        return str(err)
    return cabinet.config.name if cabinet is not None else None


async def async_raise_repairs(
    hass: HomeAssistant, ledger: PaymentLedger, cabinets: Iterable[Cabinet]
) -> None:
    """At start-up (and when cabinets are added): the repair of every payment still uncreditable."""
    try:
        records = await hass.async_add_executor_job(ledger.uncreditable)
    except LedgerError as err:
        LOGGER.warning("Could not read the payments that were not credited: %s", err)
        return
    links = LinkIndex(cabinets)
    for record in records:
        sync_not_credited_issue(hass, record, claimant(record, links))

"""How many credits a paid checkout session bought, and at what price per credit.

From the event itself whenever it can (no Stripe call on the payment path): a session opened for a
scan carries its offer (core/pricing.py), whose single credits are its subtotal over the price of
one; a managed link's price is known. Packs are the session's own line items, matched to its offer;
a link made elsewhere is asked about once and its price remembered. Never today's price.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .const import LOGGER
from .core.cabinet import Cabinet
from .core.payments import CreditError, PaidSession, checked_credits, credits_from_subtotal
from .core.pricing import (
    OFFER_METADATA_KEY,
    CreditError as PricingError,
    Pack,
    credits_for_items,
    credits_for_subtotal,
    offer_from_metadata,
)
from .core.stripe_gateway import StripeGateway


@dataclass(frozen=True, slots=True)
class LearnedPrice:
    """The one price a payment link sells, learned from Stripe."""

    unit_amount: int
    currency: str


def _offer_lines(session: PaidSession) -> tuple[Pack, ...] | None:
    """The lines a scanned session was made with; raise CreditError for metadata that is not an offer."""
    try:
        return offer_from_metadata({OFFER_METADATA_KEY: session.offer} if session.offer else None)
    except PricingError as err:
        raise CreditError(str(err)) from err


def unit_amount_charged(cabinet: Cabinet, session: PaidSession) -> int | None:
    """The price of one credit the player was charged: the session's offer's, else the link's."""
    try:
        lines = _offer_lines(session)
    except CreditError:
        lines = None
    return lines[0].amount if lines else cabinet.config.unit_amount


class SessionCredits:
    """Counts the credits of paid sessions for one entry."""

    def __init__(self, gateway: Callable[[], StripeGateway]) -> None:
        """Ask Stripe through ``gateway`` when the event does not say."""
        self._gateway = gateway
        self._learned_prices: dict[str, LearnedPrice] = {}

    async def async_credits(self, cabinet: Cabinet, session: PaidSession) -> int:
        """Credits bought; raise CreditError when nobody can say, StripeGatewayError to try again."""
        if (lines := _offer_lines(session)) is not None:
            try:
                if len(lines) == 1 and session.amount_subtotal is not None:
                    return checked_credits(credits_for_subtotal(lines, session.amount_subtotal))
                bought = await self._gateway().checkout_session_lines(session.session_id)
                return checked_credits(
                    credits_for_items(lines, [(b.unit_amount, b.quantity) for b in bought])
                )
            except PricingError as err:
                raise CreditError(str(err)) from err
        link = session.payment_link_id
        config = cabinet.config
        known: LearnedPrice | None = None
        if config.managed_link and link == config.payment_link_id and config.unit_amount:
            known = LearnedPrice(config.unit_amount, config.currency)
        elif link is not None:
            known = self._learned_prices.get(link)
        if known is not None and known.currency == session.currency and session.amount_subtotal is not None:
            try:
                return credits_from_subtotal(session.amount_subtotal, known.unit_amount)
            except CreditError:
                LOGGER.debug("Subtotal of %s does not fit the known price; asking Stripe", session.session_id)
        items = await self._gateway().session_items(session.session_id)
        if link is not None and items.unit_amount and items.currency:
            self._learned_prices[link] = LearnedPrice(items.unit_amount, items.currency)
        return checked_credits(items.quantity)

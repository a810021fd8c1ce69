"""Checkout Sessions Arcade Pay opens itself, for a scan of a cabinet's stable QR code.

Plain Python (no Home Assistant import). Mixed into StripeGateway (stripe_gateway.py), whose
``_client`` and ``_translated_errors`` these calls use, so that their errors are the gateway's.

What Stripe's API reference says, and what follows here (POST /v1/checkout/sessions):

* ``line_items[].price_data`` (currency, unit_amount, product_data.name) sells a price made for
  this session only: the price of the moment of the scan, no Price object to keep.
* ``adjustable_quantity`` (enabled, minimum, maximum ≤ 999 999): with several line items a line
  may go down to 0; one alone cannot. A line cannot *start* at 0 (Stripe answers "This value
  must be greater than or equal to 1"), so with packs on sale every line starts at 1 and the
  player sets what they want; the checkout shows the total before Pay.
* ``expires_at``: between 30 minutes and 24 hours after creation. The shortest is used: a
  checkout left open is one more way to pay a cabinet that may stop taking money.
* ``client_reference_id``: up to 200 characters; ``metadata`` values up to 500 characters.
* ``success_url`` may hold ``{CHECKOUT_SESSION_ID}``, which Stripe replaces with the session id.
* ``allow_promotion_codes`` shows the promotion code field; ``amount_subtotal`` stays the price
  before discounts, so credits never depend on a code.
* ``payment_intent_data.metadata`` puts the machine on the payment too (refunds find it).
* Expiring a session that is not ``open`` any more is a 400: the session as it is now is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, cast

from .stripe_sdk import stripe

METADATA_MACHINE_ID = "machine_id"


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """A session opened for a scan: where to send the player, and until when it can be paid."""

    id: str
    url: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class SessionLine:
    """One line item of a session as the player bought it."""

    unit_amount: int
    quantity: int


class CheckoutCalls:
    """The Checkout Session API (``/v1/checkout/sessions``) for sessions Arcade Pay creates."""

    _client: stripe.StripeClient
    _translated_errors: Callable[[], AbstractAsyncContextManager[None]]

    async def create_checkout_session(
        self,
        *,
        machine_id: str,
        currency: str,
        lines: Sequence[tuple[int, str]],
        max_quantity: int,
        metadata: Mapping[str, str],
        allow_promotion_codes: bool,
        client_reference_id: str,
        success_url: str,
        cancel_url: str,
        expires_at: int,
        idempotency_key: str | None = None,
    ) -> CheckoutSession:
        """Open a session selling ``lines`` (unit amount, name shown), each 0..max_quantity."""
        alone = len(lines) == 1
        params = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": currency,
                        "unit_amount": amount,
                        "product_data": {"name": name},
                    },
                    "quantity": 1,
                    "adjustable_quantity": {
                        "enabled": True,
                        "minimum": 1 if alone else 0,
                        "maximum": max_quantity,
                    },
                }
                for amount, name in lines
            ],
            "metadata": {METADATA_MACHINE_ID: machine_id, **metadata},
            "payment_intent_data": {"metadata": {METADATA_MACHINE_ID: machine_id}},
            "allow_promotion_codes": allow_promotion_codes,
            "client_reference_id": client_reference_id,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "expires_at": expires_at,
        }
        options = {"idempotency_key": idempotency_key} if idempotency_key else {}
        async with self._translated_errors():
            session = await self._client.v1.checkout.sessions.create_async(
                cast(Any, params), cast(Any, options)
            )
        return CheckoutSession(session.id, str(session.url), int(session.expires_at))

    async def checkout_session(self, session_id: str) -> dict[str, Any]:
        """The session as Stripe has it now."""
        async with self._translated_errors():
            session = await self._client.v1.checkout.sessions.retrieve_async(session_id)
        return session.to_dict()

    async def checkout_session_lines(self, session_id: str) -> list[SessionLine]:
        """What the player bought, line by line, in the order of the session's line items."""
        async with self._translated_errors():
            items = await self._client.v1.checkout.sessions.line_items.list_async(session_id, {"limit": 100})
        return [
            SessionLine((item.price.unit_amount or 0) if item.price else 0, item.quantity or 0)
            for item in items.data
        ]

    async def expire_checkout_session(self, session_id: str) -> dict[str, Any]:
        """Expire an open session; one already complete or expired is returned as it is."""
        try:
            async with self._translated_errors():
                session = await self._client.v1.checkout.sessions.expire_async(session_id)
        except Exception as err:  # Translated: a 400 (not open) or Stripe out of reach.
            current = await self.checkout_session(session_id)
            if current.get("status") == "open":
                raise err from None
            return current
        return session.to_dict()

    async def checkout_sessions_since(self, created_since: int) -> list[dict[str, Any]]:
        """Every session created at or after ``created_since``, whatever made it or its status."""
        sessions: list[dict[str, Any]] = []
        async with self._translated_errors():
            page = await self._client.v1.checkout.sessions.list_async(
                {"created": {"gte": created_since}, "limit": 100}
            )
            async for session in page.auto_paging_iter():
                sessions.append(session.to_dict())
        return sessions

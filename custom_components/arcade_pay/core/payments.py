"""From a Stripe webhook delivery to the credits it buys.

No Home Assistant import: signature check (the ``stripe`` SDK), what an event means, credit
arithmetic. Every function here is deterministic and cheap, so the webhook handler can decide
what to do before it touches the network or the disk. The shapes events must have are in
stripe_schemas.py; money arithmetic, which needs no Stripe, in currencies.py (re-exported here
for callers that import it from this module).
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from typing import Any, Final

import voluptuous as vol

# Re-exported (``x as x``): callers import money arithmetic and MAX_AMOUNT from here.
from .currencies import (
    THREE_DECIMAL_CURRENCIES as THREE_DECIMAL_CURRENCIES,  # noqa: PLC0414
    ZERO_DECIMAL_CURRENCIES as ZERO_DECIMAL_CURRENCIES,  # noqa: PLC0414
    currency_exponent as currency_exponent,  # noqa: PLC0414
    from_minor_units as from_minor_units,  # noqa: PLC0414
    to_minor_units as to_minor_units,  # noqa: PLC0414
)
from .protocol import MAX_CREDITS_PER_PULSE
from .stripe_schemas import (
    CHARGE_SCHEMA,
    DISPUTE_SCHEMA,
    EVENT_SCHEMA,
    MAX_AMOUNT as MAX_AMOUNT,  # noqa: PLC0414
    SESSION_SCHEMA,
)
from .stripe_scope import metadata_machine_id, refusal
from .stripe_sdk import stripe

SIGNATURE_TOLERANCE_SECONDS: Final = 300
MAX_BODY_BYTES: Final = 64 * 1024

EVENT_SESSION_COMPLETED: Final = "checkout.session.completed"
EVENT_SESSION_ASYNC_SUCCEEDED: Final = "checkout.session.async_payment_succeeded"
EVENT_SESSION_ASYNC_FAILED: Final = "checkout.session.async_payment_failed"
EVENT_CHARGE_REFUNDED: Final = "charge.refunded"
EVENT_DISPUTE_CREATED: Final = "charge.dispute.created"
CREDITING_EVENTS: Final = frozenset({EVENT_SESSION_COMPLETED, EVENT_SESSION_ASYNC_SUCCEEDED})
SESSION_EVENTS: Final = CREDITING_EVENTS | {EVENT_SESSION_ASYNC_FAILED}

# The events a Stripe webhook endpoint for Arcade Pay should send.
SUBSCRIBED_EVENTS: Final = (
    EVENT_SESSION_COMPLETED,
    EVENT_SESSION_ASYNC_SUCCEEDED,
    EVENT_CHARGE_REFUNDED,
    EVENT_DISPUTE_CREATED,
)


class WebhookRejected(ValueError):
    """A delivery that is not a genuine, well-formed Stripe event (HTTP 400)."""

    def __init__(self, reason: str, signature_failed: bool = False, foreign: bool = False) -> None:
        """Say why; ``signature_failed``: the signature was wrong; ``foreign``: another mode or account."""
        super().__init__(reason)
        self.signature_failed = signature_failed
        self.foreign = foreign


class CreditError(ValueError):
    """A paid session whose credits cannot be worked out from what is known."""


def credits_from_subtotal(amount_subtotal: int, unit_amount: int) -> int:
    """Credits bought on a single-price link: subtotal ÷ unit price.

    ``amount_subtotal`` is before discounts and taxes, so it is exactly quantity × unit
    amount. Anything else means the event is not about the price we think it is.
    """
    if unit_amount <= 0:
        raise CreditError(f"unit amount {unit_amount} is not positive")
    quantity, remainder = divmod(amount_subtotal, unit_amount)
    if remainder or quantity < 1:
        raise CreditError(f"subtotal {amount_subtotal} is not a positive multiple of {unit_amount}")
    return checked_credits(quantity)


def checked_credits(credits: int) -> int:
    """Refuse a number of credits that no coin pulse may carry."""
    if not 1 <= credits <= MAX_CREDITS_PER_PULSE:
        raise CreditError(f"{credits} credits is outside 1 to {MAX_CREDITS_PER_PULSE}")
    return credits


@dataclass(frozen=True, slots=True)
class PaidSession:
    """A checkout session that Stripe says is paid."""

    event_id: str
    event_type: str
    session_id: str
    payment_link_id: str | None
    machine_id: str | None
    amount_subtotal: int | None
    amount_total: int
    currency: str
    payment_intent: str | None
    amount_discount: int = 0  # taken off by promotion codes: amount_total is what was paid
    offer: str | None = None  # metadata ``arcade_pay_offer``: the packs the checkout sold (pricing.py)
    client_reference_id: str | None = None


@dataclass(frozen=True, slots=True)
class IgnoredEvent:
    """A genuine event that credits nothing; ``reason`` is for the log."""

    event_id: str
    event_type: str
    reason: str


def verify_and_parse(
    payload: bytes,
    signature_header: str | None,
    secret: str,
    livemode: bool | None = None,
) -> StripeNotice:
    """Verify a delivery and say what it means; raise WebhookRejected for bad input.

    The signature is checked over the raw bytes before anything is parsed. With ``livemode``
    (the key's mode), an event of the other mode or of a connected account is refused.
    """
    if not signature_header:
        raise WebhookRejected("missing Stripe-Signature header")
    if len(payload) > MAX_BODY_BYTES:
        raise WebhookRejected("body too large")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as err:
        raise WebhookRejected("body is not UTF-8") from err
    try:
        stripe.WebhookSignature.verify_header(text, signature_header, secret, SIGNATURE_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as err:
        raise WebhookRejected(
            f"signature check failed: {err.user_message or err}", signature_failed=True
        ) from None
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as err:  # ValueError: also ints beyond int_max_str_digits
        raise WebhookRejected("body is not JSON") from err
    return interpret_event(raw, livemode)


def interpret_event(raw: Any, livemode: bool | None = None) -> StripeNotice:
    """Say what a (verified) Stripe event means for Arcade Pay."""
    if not isinstance(raw, dict):
        raise WebhookRejected("event is not a JSON object")
    try:
        event = EVENT_SCHEMA(raw)
    except vol.Invalid as err:
        raise WebhookRejected(f"not a Stripe event: {err}") from None
    if (reason := refusal(event, livemode)) is not None:
        raise WebhookRejected(reason, foreign=True)
    event_id: str = event["id"]
    event_type: str = event["type"]
    obj = event["data"]["object"]
    if event_type == EVENT_CHARGE_REFUNDED:
        return _refund_notice(event_id, obj)
    if event_type == EVENT_DISPUTE_CREATED:
        return _dispute_notice(event_id, obj)
    if event_type not in SESSION_EVENTS:
        return IgnoredEvent(event_id, event_type, "event type is not one Arcade Pay handles")
    if event_type == EVENT_SESSION_ASYNC_FAILED:
        return IgnoredEvent(event_id, event_type, f"payment of {_session(obj)['id']} failed")
    return paid_session(obj, event_id, event_type)


def _session(obj: Any) -> dict[str, Any]:
    try:
        session: dict[str, Any] = SESSION_SCHEMA(obj)
    except vol.Invalid as err:
        raise WebhookRejected(f"not a checkout session: {err}") from None
    return session


def paid_session(obj: Any, event_id: str, event_type: str) -> PaidSession | IgnoredEvent:
    """Read a checkout session (from an event or from Stripe's list); raise WebhookRejected if malformed."""
    session = _session(obj)
    if session["payment_status"] != "paid":
        return IgnoredEvent(event_id, event_type, f"{session['id']} is {session['payment_status']}, not paid")
    metadata = session.get("metadata") or {}
    subtotal, total, currency = session.get("amount_subtotal"), session["amount_total"], session["currency"]
    discount = (session.get("total_details") or {}).get("amount_discount") or 0
    if conversion := session.get("currency_conversion"):
        # Adaptive pricing: the customer paid in their currency; we priced in ours.
        subtotal = conversion["amount_subtotal"]
        total = conversion["amount_total"]
        currency = conversion["source_currency"]
        # Stripe gives the discount in the customer's currency only; ours is what it took off.
        discount = max(0, subtotal - total) if discount else 0
    return PaidSession(
        event_id=event_id,
        event_type=event_type,
        session_id=session["id"],
        payment_link_id=session.get("payment_link"),
        machine_id=metadata_machine_id(metadata.get("machine_id")),
        amount_subtotal=subtotal,
        amount_total=total,
        currency=currency,
        payment_intent=session.get("payment_intent"),
        amount_discount=discount,
        offer=metadata.get("arcade_pay_offer"),
        client_reference_id=session.get("client_reference_id"),
    )


@dataclass(frozen=True, slots=True)
class RefundNotice:
    """Stripe refunded (part of) a charge; ``refunded_total`` is cumulative."""

    event_id: str
    payment_intent: str
    refunded_total: int


@dataclass(frozen=True, slots=True)
class DisputeNotice:
    """A player disputed a charge."""

    event_id: str
    dispute_id: str
    payment_intent: str
    amount: int
    reason: str | None


def _refund_notice(event_id: str, obj: Any) -> RefundNotice | IgnoredEvent:
    try:
        charge = CHARGE_SCHEMA(obj)
    except vol.Invalid as err:
        raise WebhookRejected(f"not a charge: {err}") from None
    if charge["payment_intent"] is None:
        return IgnoredEvent(event_id, EVENT_CHARGE_REFUNDED, f"{charge['id']} has no payment intent")
    return RefundNotice(event_id, charge["payment_intent"], charge["amount_refunded"])


def _dispute_notice(event_id: str, obj: Any) -> DisputeNotice | IgnoredEvent:
    try:
        dispute = DISPUTE_SCHEMA(obj)
    except vol.Invalid as err:
        raise WebhookRejected(f"not a dispute: {err}") from None
    if dispute["payment_intent"] is None:
        return IgnoredEvent(event_id, EVENT_DISPUTE_CREATED, f"{dispute['id']} has no payment intent")
    return DisputeNotice(
        event_id, dispute["id"], dispute["payment_intent"], dispute["amount"], dispute.get("reason")
    )


type StripeNotice = PaidSession | RefundNotice | DisputeNotice | IgnoredEvent

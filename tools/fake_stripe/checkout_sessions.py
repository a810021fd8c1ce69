"""Checkout Sessions made through the API (not from a payment link), and their checkout page.

As Stripe's API reference describes them (POST /v1/checkout/sessions, retrieve, expire, list,
line items): ``mode=payment`` with ``line_items[n][price_data]`` and ``adjustable_quantity``,
``metadata``, ``client_reference_id``, ``allow_promotion_codes``, ``expires_at`` (30 minutes to
24 hours from now), ``success_url`` with the ``{CHECKOUT_SESSION_ID}`` template, ``cancel_url``.
A session past its ``expires_at`` reads as expired; expiring one that is not open is a 400.

The page at ``/checkout/<id>`` is the player's: a quantity per line (0 removes it), a promotion
code when allowed, Pay (the session completes, its event is signed and delivered, after
``FakeStripe.webhook_delay`` seconds if set) and a 303 to success_url; Cancel goes to cancel_url.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import html
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from . import FakeStripe

MIN_LIFETIME = 30 * 60
MAX_LIFETIME = 24 * 60 * 60


@dataclass(frozen=True, slots=True)
class PromotionCode:
    """A code a player may type: a percentage or an amount off the subtotal."""

    code: str
    percent_off: int | None = None
    amount_off: int | None = None

    def discount(self, subtotal: int) -> int:
        """What the code takes off ``subtotal``."""
        if self.percent_off is not None:
            return subtotal * self.percent_off // 100
        return min(subtotal, self.amount_off or 0)


class BadRequest(ValueError):
    """A request Stripe answers 400 ``invalid_request_error``; the message is Stripe's kind."""

    def __init__(self, message: str, param: str | None = None) -> None:
        """Say what is wrong, and with which parameter."""
        super().__init__(message)
        self.param = param


def _int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid integer: {value}", param) from None


def _lines(fake: FakeStripe, params: dict[str, Any]) -> list[dict[str, Any]]:
    raw = params.get("line_items")
    if not isinstance(raw, list) or not raw or None in raw:
        raise BadRequest("Missing required param: line_items.", "line_items")
    items = []
    for item in raw:
        data = item.get("price_data")
        if not isinstance(data, dict):
            raise BadRequest(
                "You must specify either `price` or `price_data` for each line item.", "line_items"
            )
        adjustable = item.get("adjustable_quantity") or {}
        minimum = _int(adjustable.get("minimum", 0), "line_items")
        maximum = _int(adjustable.get("maximum", 99), "line_items")
        quantity = _int(item.get("quantity", 1), "line_items")
        if quantity < 1:  # As Stripe: a line may be set to 0 by the player, not created at 0.
            raise BadRequest("This value must be greater than or equal to 1.", "line_items")
        if not minimum <= quantity <= maximum:
            raise BadRequest("The quantity must be between the adjustable minimum and maximum.", "line_items")
        name = str((data.get("product_data") or {}).get("name", "Credits"))
        price = {
            "id": fake._id("price"),
            "object": "price",
            "unit_amount": _int(data.get("unit_amount"), "line_items"),
            "currency": str(data.get("currency", "")).lower(),
            "product": fake._id("prod"),
        }
        items.append(
            {
                "id": fake._id("li"),
                "object": "item",
                "description": name,
                "price": price,
                "quantity": quantity,
                "currency": price["currency"],
                "adjustable_quantity": {"enabled": True, "minimum": minimum, "maximum": maximum},
            }
        )
    return items


def create_session(fake: FakeStripe, params: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/checkout/sessions; raise BadRequest as Stripe would answer 400."""
    if params.get("mode") != "payment":
        raise BadRequest("Only mode=payment is supported here.", "mode")
    if not params.get("success_url"):
        raise BadRequest("Missing required param: success_url.", "success_url")
    now = int(time.time())
    expires_at = _int(params.get("expires_at", now + MAX_LIFETIME), "expires_at")
    if not now + MIN_LIFETIME - 5 <= expires_at <= now + MAX_LIFETIME + 5:
        raise BadRequest(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session"
            " creation.",
            "expires_at",
        )
    items = _lines(fake, params)
    session_id = fake._id("cs_test")
    subtotal = sum(item["price"]["unit_amount"] * item["quantity"] for item in items)
    session = {
        "id": session_id,
        "object": "checkout.session",
        "payment_link": None,
        "metadata": dict(params.get("metadata") or {}),
        "client_reference_id": params.get("client_reference_id"),
        "allow_promotion_codes": str(params.get("allow_promotion_codes", "false")).lower() == "true",
        "amount_subtotal": subtotal,
        "amount_total": subtotal,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "currency": items[0]["currency"],
        "payment_status": "unpaid",
        "status": "open",
        "payment_intent": None,
        "mode": "payment",
        "created": now,
        "expires_at": expires_at,
        "success_url": params["success_url"],
        "cancel_url": params.get("cancel_url"),
        "url": f"{fake.public_url or fake.url}/checkout/{session_id}",
        "livemode": False,
    }
    fake.sessions[session_id] = session
    fake.session_items[session_id] = items
    fake.session_intent_metadata[session_id] = dict(
        (params.get("payment_intent_data") or {}).get("metadata") or {}
    )
    return session


def refresh(session: dict[str, Any]) -> dict[str, Any]:
    """A session past its expiry is expired, as Stripe shows it."""
    if session["status"] == "open" and session.get("expires_at") and session["expires_at"] <= time.time():
        session["status"] = "expired"
    return session


def expire_session(session: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/checkout/sessions/{id}/expire."""
    if refresh(session)["status"] != "open":
        raise BadRequest(
            f"Only Checkout Sessions with a status of `open` can be expired. This one is {session['status']}."
        )
    session["status"] = "expired"
    return session


def pay_session(
    fake: FakeStripe, session_id: str, quantities: list[int], promotion_code: str | None = None
) -> dict[str, Any]:
    """The player pays ``quantities`` (one per line) with an optional code; raise BadRequest."""
    session = refresh(fake.sessions[session_id])
    if session["status"] != "open":
        raise BadRequest(f"This checkout is {session['status']} and cannot be paid.")
    items = fake.session_items[session_id]
    if len(quantities) != len(items) or sum(quantities) < 1:
        raise BadRequest("Choose at least one credit.")
    for item, quantity in zip(items, quantities, strict=True):
        bounds = item["adjustable_quantity"]
        if not bounds["minimum"] <= quantity <= bounds["maximum"]:
            raise BadRequest("That quantity cannot be bought.")
    discount = 0
    subtotal = sum(item["price"]["unit_amount"] * q for item, q in zip(items, quantities, strict=True))
    if promotion_code:
        code = fake.promotion_codes.get(promotion_code.upper())
        if code is None or not session["allow_promotion_codes"]:
            raise BadRequest("This code is invalid.")
        discount = code.discount(subtotal)
    kept = []
    for item, quantity in zip(items, quantities, strict=True):
        if quantity:
            amount = item["price"]["unit_amount"] * quantity
            kept.append(item | {"quantity": quantity, "amount_subtotal": amount, "amount_total": amount})
    fake.session_items[session_id] = kept
    free = subtotal - discount <= 0  # As Stripe: nothing to pay, no payment intent.
    session.update(
        status="complete",
        payment_status="no_payment_required" if free else "paid",
        amount_subtotal=subtotal,
        amount_total=max(0, subtotal - discount),
        payment_intent=None if free else fake._id("pi"),
    )
    session["total_details"]["amount_discount"] = discount
    return session


def _page(body: str) -> web.Response:
    return web.Response(content_type="text/html", text=f"<!doctype html><title>Pay</title>{body}")


async def checkout_page(fake: FakeStripe, request: web.Request) -> web.Response:
    """GET /checkout/{id}: the player's checkout page."""
    session = fake.sessions.get(request.match_info["id"])
    if session is None or session["payment_link"] is not None:
        raise web.HTTPNotFound
    if refresh(session)["status"] != "open":
        return _page(f"<h1>This checkout is {html.escape(session['status'])}</h1><p>It cannot be paid.</p>")
    error = request.query.get("error", "")
    rows = "".join(
        f"<p><label>{html.escape(item['description'])}: {item['price']['unit_amount']} "
        f"{html.escape(item['currency'].upper())} (minor units) "
        f'<input name="quantity" type="number" min="{item["adjustable_quantity"]["minimum"]}" '
        f'max="{item["adjustable_quantity"]["maximum"]}" value="{item["quantity"]}"></label></p>'
        for item in fake.session_items[session["id"]]
    )
    promo = (
        '<p><label>Promotion code <input name="promotion_code"></label></p>'
        if session["allow_promotion_codes"]
        else ""
    )
    cancel = (
        f'<p><a href="{html.escape(session["cancel_url"])}">Cancel</a></p>'
        if session.get("cancel_url")
        else ""
    )
    shown_error = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return _page(
        f"<h1>{html.escape(str(session['metadata'].get('machine_id', '')))}</h1>{shown_error}"
        f'<form method="post">{rows}{promo}<button>Pay</button></form>{cancel}'
    )


async def checkout_pay(fake: FakeStripe, request: web.Request) -> web.StreamResponse:
    """POST /checkout/{id}: pay, deliver the event (after the webhook delay), redirect to success_url."""
    session_id = request.match_info["id"]
    if session_id not in fake.sessions:
        raise web.HTTPNotFound
    post = await request.post()
    try:
        quantities = [int(str(q)) for q in post.getall("quantity", [])]
        session = pay_session(
            fake, session_id, quantities, str(post.get("promotion_code", "")).strip() or None
        )
    except (BadRequest, ValueError) as err:
        raise web.HTTPSeeOther(f"/checkout/{session_id}?error={err}") from None
    delivery = fake.event_delivery("checkout.session.completed", session)
    if fake.webhook_delay > 0:
        task = asyncio.get_running_loop().create_task(_deliver_later(fake, delivery))
        fake.background.add(task)
        task.add_done_callback(fake.background.discard)
    else:
        await fake.deliver(delivery)
    raise web.HTTPSeeOther(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id))


async def _deliver_later(fake: FakeStripe, delivery: Any) -> None:
    await asyncio.sleep(fake.webhook_delay)
    await fake.deliver(delivery)

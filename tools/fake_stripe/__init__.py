"""A stateful fake of the parts of Stripe's API that Arcade Pay uses, on localhost.

Used by the test suite and by ``scripts/develop``: products, prices, payment links
(create, update, retrieve, line items), checkout sessions (retrieve, list, line items),
webhook endpoints (create, retrieve, update, delete, list: webhook_endpoints.py), restricted
keys that lack a permission (permissions.py), and a
checkout page that "pays" a link and delivers the event, signed exactly as Stripe signs it, to
every endpoint that receives it.

It speaks Stripe's wire format (form-encoded requests with nested ``a[b][0]=c`` keys,
JSON answers with ``object`` fields, Stripe-shaped errors) so that the real ``stripe``
SDK talks to it unchanged through ``ARCADE_PAY_STRIPE_API_BASE``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
import hashlib
import hmac
import html
import itertools
import json
import secrets
import time
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from . import checkout_sessions
from .checkout_sessions import BadRequest, PromotionCode
from .idempotency import IdempotentRequests
from .permissions import refusal_message, refused_resource
from .webhook_endpoints import EndpointError, apply_update, new_endpoint, public, receives

DEFAULT_WEBHOOK_SECRET = "whsec_arcadepay_fake_stripe_secret"  # Only ever valid against this fake.
ACCOUNT_ID = "acct_1FakeArcadePay"
REJECTED_KEY = "sk_test_rejected"

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """Return a ``Stripe-Signature`` header for ``payload``, as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Decode Stripe's nested form encoding (``a[b][0][c]=v``) into dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = root
        for part, following in itertools.pairwise(parts):
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None:
                    node[index] = container
                node = node[index]
            else:
                node = node.setdefault(part, container)
        last = parts[-1]
        if isinstance(node, list):
            index = int(last)
            while len(node) <= index:
                node.append(None)
            node[index] = value
        else:
            node[last] = value
    return root


def _bool(value: Any) -> bool:
    return str(value).lower() == "true"


def _adjustable(params: dict[str, Any]) -> dict[str, Any]:
    """A line item's adjustable_quantity, from Stripe's form parameters."""
    return {
        "enabled": _bool(params.get("enabled")),
        "minimum": int(params.get("minimum", 1)),
        "maximum": int(params.get("maximum", 99)),
    }


def _error(
    status: int, message: str, error_type: str = "invalid_request_error", code: str | None = None
) -> web.Response:
    return web.json_response({"error": {"type": error_type, "message": message, "code": code}}, status=status)


def _api_key(request: web.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ").strip()


@dataclass
class Delivery:
    """A signed webhook delivery: what Stripe would POST."""

    event: dict[str, Any]
    body: str
    headers: dict[str, str]


@dataclass
class FakeStripe:
    """The fake's state and its HTTP server."""

    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    default_currency: str = "usd"
    public_url: str | None = None
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_links: dict[str, dict[str, Any]] = field(default_factory=dict)
    link_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    session_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    webhook_endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    session_intent_metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    promotion_codes: dict[str, PromotionCode] = field(default_factory=dict)
    # Seconds between a player's Pay on a checkout session and its webhook (the redirect is at once).
    webhook_delay: float = 0.0
    background: set[asyncio.Task[None]] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # Test controls: answer the next N API requests with this HTTP status.
    fail_next: int = 0
    fail_status: int = 500
    idempotency: IdempotentRequests = field(default_factory=IdempotentRequests)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    url: str = ""

    # --- ids and objects --------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}{secrets.token_hex(6)}"

    def api_requests(self, method: str, path_prefix: str) -> list[str]:
        """Paths of the API requests made so far (for tests that count round trips)."""
        return [p for m, p in self.requests if m == method and p.startswith(path_prefix)]

    # --- HTTP -------------------------------------------------------------------

    def app(self) -> web.Application:
        """Build the aiohttp application."""
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/healthcheck", self._healthcheck)
        r.add_get("/v1/account", self._account)
        r.add_post("/v1/products", self._create_product)
        r.add_get("/v1/products", self._list_products)
        r.add_get("/v1/prices", self._list_prices)
        r.add_get("/v1/payment_links", self._list_links)
        r.add_post("/v1/products/{id}", self._update_product)
        r.add_post("/v1/prices", self._create_price)
        r.add_post("/v1/payment_links", self._create_link)
        r.add_get("/v1/payment_links/{id}", self._get_link)
        r.add_post("/v1/payment_links/{id}", self._update_link)
        r.add_get("/v1/payment_links/{id}/line_items", self._link_line_items)
        r.add_get("/v1/checkout/sessions", self._list_sessions)
        r.add_post("/v1/checkout/sessions", self._create_session)
        r.add_get("/v1/checkout/sessions/{id}", self._get_session)
        r.add_post("/v1/checkout/sessions/{id}/expire", self._expire_session)
        r.add_get("/v1/checkout/sessions/{id}/line_items", self._session_line_items)
        r.add_post("/v1/refunds", self._create_refund)
        r.add_get("/v1/refunds", self._list_refunds)
        r.add_post("/v1/webhook_endpoints", self._create_endpoint)
        r.add_get("/v1/webhook_endpoints", self._list_endpoints)
        r.add_get("/v1/webhook_endpoints/{id}", self._get_endpoint)
        r.add_post("/v1/webhook_endpoints/{id}", self._update_endpoint)
        r.add_delete("/v1/webhook_endpoints/{id}", self._delete_endpoint)
        r.add_get("/", self._home)
        r.add_post("/", self._home_add_endpoint)
        r.add_get("/pay/{id}", self._checkout_page)
        r.add_post("/pay/{id}", self._checkout_pay)
        r.add_get("/checkout/{id}", partial(checkout_sessions.checkout_page, self))
        r.add_post("/checkout/{id}", partial(checkout_sessions.checkout_pay, self))
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        self.requests.append((request.method, request.path))
        key = _api_key(request)
        if not key.startswith(("sk_", "rk_")) or key == REJECTED_KEY:
            return _error(401, "Invalid API Key provided: " + key[:8] + "****")
        if resource := refused_resource(key, request.path):
            return _error(403, refusal_message(key, resource), "permission_error")
        if self.fail_next > 0:
            self.fail_next -= 1
            return _error(self.fail_status, "Simulated failure", "api_error")
        params = await self._params(request) if request.method == "POST" else {}
        return await self.idempotency.answer(request, params, handler)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = a free port); return the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.method == "GET":
            return decode_form(list(request.query.items()))
        post = await request.post()
        return decode_form([(k, str(v)) for k, v in post.items()])

    # --- API handlers -------------------------------------------------------------

    async def _healthcheck(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _account(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "id": ACCOUNT_ID,
                "object": "account",
                "default_currency": self.default_currency,
                "business_profile": {"name": "Fake Arcade"},
                "settings": {"dashboard": {"display_name": "Fake Arcade"}},
            }
        )

    async def _create_product(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        product = {
            "id": self._id("prod"),
            "object": "product",
            "name": params["name"],
            "metadata": params.get("metadata", {}),
            "active": True,
        }
        self.products[product["id"]] = product
        return web.json_response(product)

    async def _update_product(self, request: web.Request) -> web.Response:
        product = self.products.get(request.match_info["id"])
        if product is None:
            return _error(404, "No such product", code="resource_missing")
        product.update(await self._params(request))
        return web.json_response(product)

    async def _create_price(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        if params.get("product") not in self.products:
            return _error(400, "No such product", code="resource_missing")
        price = {
            "id": self._id("price"),
            "object": "price",
            "product": params["product"],
            "unit_amount": int(params["unit_amount"]),
            "currency": params["currency"].lower(),
            "active": True,
            "type": "one_time",
        }
        self.prices[price["id"]] = price
        return web.json_response(price)

    async def _create_link(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        items = []
        for item in params.get("line_items", []):
            price = self.prices.get(item["price"])
            if price is None:
                return _error(400, "No such price", code="resource_missing")
            adjustable = item.get("adjustable_quantity", {})
            items.append(
                {
                    "id": self._id("li"),
                    "object": "item",
                    "price": price,
                    "quantity": int(item.get("quantity", 1)),
                    "adjustable_quantity": _adjustable(adjustable),
                }
            )
        if not items:
            return _error(400, "line_items is required")
        return web.json_response(self.add_payment_link(items, params.get("metadata", {})))

    def add_payment_link(self, items: list[dict[str, Any]], metadata: dict[str, str]) -> dict[str, Any]:
        """Create a payment link directly (also how tests make links of the earlier system)."""
        link_id = self._id("plink")
        base = self.public_url or self.url
        link = {
            "id": link_id,
            "object": "payment_link",
            "active": True,
            "url": f"{base}/pay/{link_id}",
            "metadata": metadata,
            "currency": items[0]["price"]["currency"],
        }
        self.payment_links[link_id] = link
        self.link_items[link_id] = items
        return link

    def add_older_link(self, machine_id: str, unit_amount: int, currency: str = "usd") -> dict[str, Any]:
        """A link as the earlier system made it: a price, metadata machine_id."""
        product = {"id": self._id("prod"), "object": "product", "name": machine_id, "metadata": {}}
        self.products[product["id"]] = product
        price = {
            "id": self._id("price"),
            "object": "price",
            "product": product["id"],
            "unit_amount": unit_amount,
            "currency": currency,
        }
        self.prices[price["id"]] = price
        item = {
            "id": self._id("li"),
            "object": "item",
            "price": price,
            "quantity": 1,
            "adjustable_quantity": {"enabled": True, "minimum": 1, "maximum": 10},
        }
        return self.add_payment_link([item], {"machine_id": machine_id})

    async def _get_link(self, request: web.Request) -> web.Response:
        link = self.payment_links.get(request.match_info["id"])
        if link is None:
            return _error(404, f"No such payment_link: '{request.match_info['id']}'", code="resource_missing")
        return web.json_response(link)

    async def _update_link(self, request: web.Request) -> web.Response:
        link = self.payment_links.get(request.match_info["id"])
        if link is None:
            return _error(404, "No such payment_link", code="resource_missing")
        params = await self._params(request)
        if "active" in params:
            link["active"] = _bool(params["active"])
        for update in params.get("line_items", []):
            for item in self.link_items[link["id"]]:
                if item["id"] == update["id"] and "adjustable_quantity" in update:
                    item["adjustable_quantity"] = _adjustable(update["adjustable_quantity"])
        return web.json_response(link)

    def _list(self, request: web.Request, data: list[dict[str, Any]]) -> web.Response:
        return web.json_response({"object": "list", "data": data, "has_more": False, "url": request.path})

    async def _list_products(self, request: web.Request) -> web.Response:
        return self._list(request, list(self.products.values())[:1])

    async def _list_prices(self, request: web.Request) -> web.Response:
        return self._list(request, list(self.prices.values())[:1])

    async def _list_links(self, request: web.Request) -> web.Response:
        return self._list(request, list(self.payment_links.values())[:1])

    async def _link_line_items(self, request: web.Request) -> web.Response:
        items = self.link_items.get(request.match_info["id"])
        if items is None:
            return _error(404, "No such payment_link", code="resource_missing")
        return self._list(request, items)

    async def _list_sessions(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        created = params.get("created", {})
        since = int(created.get("gte", 0)) if isinstance(created, dict) else 0
        sessions = sorted(
            (
                s
                for s in self.sessions.values()
                if params.get("payment_link") in (None, s["payment_link"])
                and checkout_sessions.refresh(s)
                and params.get("status") in (None, s["status"])
                and s["created"] >= since
            ),
            key=lambda s: (s["created"], s["id"]),
            reverse=True,
        )
        if after := params.get("starting_after"):
            ids = [s["id"] for s in sessions]
            sessions = sessions[ids.index(after) + 1 :] if after in ids else []
        limit = int(params.get("limit", 10))
        return web.json_response(
            {
                "object": "list",
                "data": sessions[:limit],
                "has_more": len(sessions) > limit,
                "url": "/v1/checkout/sessions",
            }
        )

    async def _get_session(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return _error(404, "No such checkout.session", code="resource_missing")
        return web.json_response(checkout_sessions.refresh(session))

    async def _create_session(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(checkout_sessions.create_session(self, await self._params(request)))
        except BadRequest as err:
            return _error(400, str(err), code="parameter_invalid")

    async def _expire_session(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return _error(404, "No such checkout.session", code="resource_missing")
        try:
            return web.json_response(checkout_sessions.expire_session(session))
        except BadRequest as err:
            return _error(400, str(err))

    def add_promotion_code(
        self, code: str, *, percent_off: int | None = None, amount_off: int | None = None
    ) -> None:
        """A promotion code players may type on checkouts that allow them."""
        self.promotion_codes[code.upper()] = PromotionCode(code.upper(), percent_off, amount_off)

    def pay_session(
        self, session_id: str, quantities: list[int], promotion_code: str | None = None
    ) -> Delivery:
        """A player pays an API-made checkout session: return its signed ``checkout.session.completed``."""
        session = checkout_sessions.pay_session(self, session_id, quantities, promotion_code)
        return self.event_delivery("checkout.session.completed", session)

    async def _session_line_items(self, request: web.Request) -> web.Response:
        items = self.session_items.get(request.match_info["id"])
        if items is None:
            return _error(404, "No such checkout.session", code="resource_missing")
        return self._list(request, items)

    async def _create_refund(self, request: web.Request) -> web.Response:
        """Refund what is left of a payment (Stripe's refund without an ``amount``)."""
        params = await self._params(request)
        intent = params.get("payment_intent")
        session = next((s for s in self.sessions.values() if s["payment_intent"] == intent), None)
        if session is None:
            return _error(400, f"No such payment_intent: '{intent}'", code="resource_missing")
        left = session["amount_total"] - sum(
            r["amount"]
            for r in self.refunds
            if r["payment_intent"] == intent and r["status"] not in ("failed", "canceled")
        )
        if left <= 0:
            return _error(400, "Charge has already been refunded.", code="charge_already_refunded")
        if session.get("disputed"):
            return _error(400, "Charge has been disputed.", code="charge_disputed")
        refund = {
            "id": self._id("re"),
            "object": "refund",
            "payment_intent": intent,
            "amount": left,
            "status": "succeeded",
        }
        self.refunds.append(refund)
        return web.json_response(refund)

    async def _list_refunds(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        intent = params.get("payment_intent")
        return self._list(request, [r for r in self.refunds if intent in (None, r["payment_intent"])])

    def refund_session(
        self, session_id: str, amount: int | None = None, status: str = "succeeded"
    ) -> Delivery:
        """Refund (the rest of, or ``amount`` of) a session's payment, as from Stripe's dashboard.

        Return the ``charge.refunded`` event Stripe sends (with the cumulative amount refunded).
        """
        session = self.sessions[session_id]
        intent = session["payment_intent"]
        before = sum(
            r["amount"] for r in self.refunds if r["payment_intent"] == intent and r["status"] == "succeeded"
        )
        refund = {
            "id": self._id("re"),
            "object": "refund",
            "payment_intent": intent,
            "status": status,
            "amount": session["amount_total"] - before if amount is None else amount,
        }
        self.refunds.append(refund)
        total = before + refund["amount"] if status == "succeeded" else before
        return self.refund_event(session_id, amount_refunded=total)

    def refund_event(self, session_id: str, amount_refunded: int | None = None) -> Delivery:
        """A ``charge.refunded`` event for a session's payment (cumulative amount refunded)."""
        session = self.sessions[session_id]
        charge = {
            "id": self._id("ch"),
            "object": "charge",
            "payment_intent": session["payment_intent"],
            "amount": session["amount_total"],
            "amount_refunded": session["amount_total"] if amount_refunded is None else amount_refunded,
            "currency": session["currency"],
            "refunded": amount_refunded in (None, session["amount_total"]),
        }
        return self.event_delivery("charge.refunded", charge)

    def dispute_event(self, session_id: str, reason: str = "fraudulent") -> Delivery:
        """A ``charge.dispute.created`` event for a session's payment; Stripe refunds it no more."""
        session = self.sessions[session_id]
        session["disputed"] = True
        dispute = {
            "id": self._id("dp"),
            "object": "dispute",
            "payment_intent": session["payment_intent"],
            "charge": self._id("ch"),
            "amount": session["amount_total"],
            "currency": session["currency"],
            "reason": reason,
            "status": "needs_response",
        }
        return self.event_delivery("charge.dispute.created", dispute)

    # --- webhook endpoints (rules in webhook_endpoints.py) -----------------------------

    async def _create_endpoint(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        try:
            endpoint = new_endpoint(self._id("we"), params, _api_key(request), len(self.webhook_endpoints))
        except EndpointError as err:
            return _error(err.status, str(err), code=err.code or None)
        self.webhook_endpoints[endpoint["id"]] = endpoint
        return web.json_response(endpoint)  # The only answer that carries the secret.

    def add_webhook_endpoint(self, url: str) -> dict[str, Any]:
        """Register a URL by hand (the manual path): every event, signed with ``webhook_secret``."""
        endpoint = {
            "id": self._id("we"),
            "object": "webhook_endpoint",
            "url": url,
            "enabled_events": ["*"],
            "metadata": {},
            "status": "enabled",
            "secret": self.webhook_secret,
        }
        self.webhook_endpoints[endpoint["id"]] = endpoint
        return endpoint

    def disable_endpoint(self, endpoint_id: str) -> None:
        """What Stripe does to an endpoint whose deliveries have failed for days."""
        self.webhook_endpoints[endpoint_id]["status"] = "disabled"

    def _endpoint(self, request: web.Request) -> dict[str, Any]:
        endpoint = self.webhook_endpoints.get(request.match_info["id"])
        if endpoint is None:
            raise EndpointError(
                404, f"No such webhook endpoint: '{request.match_info['id']}'", "resource_missing"
            )
        return endpoint

    async def _get_endpoint(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(public(self._endpoint(request)))
        except EndpointError as err:
            return _error(err.status, str(err), code=err.code)

    async def _update_endpoint(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        try:
            endpoint = self._endpoint(request)
            apply_update(endpoint, params, _api_key(request))
        except EndpointError as err:
            return _error(err.status, str(err), code=err.code)
        return web.json_response(public(endpoint))

    async def _delete_endpoint(self, request: web.Request) -> web.Response:
        try:
            endpoint = self._endpoint(request)
        except EndpointError as err:
            return _error(err.status, str(err), code=err.code)
        del self.webhook_endpoints[endpoint["id"]]
        return web.json_response({"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True})

    async def _list_endpoints(self, request: web.Request) -> web.Response:
        return self._list(request, [public(e) for e in self.webhook_endpoints.values()])

    # --- paying -------------------------------------------------------------------

    def complete_checkout(
        self,
        link_id: str,
        quantity: int = 1,
        *,
        payment_status: str = "paid",
        event_type: str = "checkout.session.completed",
        timestamp: int | None = None,
        secret: str | None = None,
        status: str = "complete",
        created: int | None = None,
    ) -> Delivery:
        """A player pays ``quantity`` on a link: record the session and sign its event.

        ``status="open"`` (with ``payment_status="unpaid"``): the checkout page is still open;
        ``payment_status="unpaid"``: a delayed method (bank debit) that is paid later. Either
        becomes paid with ``pay_later``. ``created`` backdates the session.
        """
        link = self.payment_links[link_id]
        price = self.link_items[link_id][0]["price"]
        subtotal = price["unit_amount"] * quantity
        session_id = self._id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "payment_link": link_id,
            "metadata": dict(link["metadata"]),
            "amount_subtotal": subtotal,
            "amount_total": subtotal,
            "currency": price["currency"],
            "payment_status": payment_status,
            "status": status,
            "payment_intent": self._id("pi"),
            "mode": "payment",
            "created": int(time.time()) if created is None else created,
            "livemode": False,
        }
        self.sessions[session_id] = session
        self.session_items[session_id] = [
            {
                "id": self._id("li"),
                "object": "item",
                "price": price,
                "quantity": quantity,
                "amount_subtotal": subtotal,
                "amount_total": subtotal,
                "currency": price["currency"],
            }
        ]
        return self.event_delivery(event_type, session, timestamp=timestamp, secret=secret)

    def pay_later(self, session_id: str) -> Delivery:
        """An open checkout is paid, or a delayed payment succeeds: the session is paid now.

        Return the event Stripe sends then.
        """
        session = self.sessions[session_id]
        event_type = (
            "checkout.session.completed"
            if session["status"] == "open"
            else "checkout.session.async_payment_succeeded"
        )
        session.update(status="complete", payment_status="paid")
        return self.event_delivery(event_type, session)

    def event_delivery(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> Delivery:
        """Wrap ``obj`` in a signed event of ``event_type``."""
        event = {
            "id": self._id("evt"),
            "object": "event",
            "api_version": "2025-03-31.basil",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": obj},
        }
        body = json.dumps(event)
        header = sign(body, secret or self.webhook_secret, timestamp)
        return Delivery(event, body, {"Stripe-Signature": header, "Content-Type": "application/json"})

    async def deliver(self, delivery: Delivery) -> list[int]:
        """POST a delivery to every endpoint that receives its event type; return their HTTP statuses.

        Each endpoint gets the body signed with its own secret, as Stripe signs it.
        """
        statuses = []
        event_type = str(delivery.event.get("type", ""))
        async with ClientSession(timeout=ClientTimeout(total=30)) as session:
            for endpoint in list(self.webhook_endpoints.values()):
                if not receives(endpoint, event_type):
                    continue
                headers = delivery.headers
                if endpoint["secret"] != self.webhook_secret:  # Made through the API: its own secret.
                    headers = headers | {"Stripe-Signature": sign(delivery.body, endpoint["secret"])}
                async with session.post(endpoint["url"], data=delivery.body, headers=headers) as resp:
                    statuses.append(resp.status)
        return statuses

    # --- pages for people ----------------------------------------------------------

    async def _home(self, request: web.Request) -> web.Response:
        links = "".join(
            f'<li><a href="/pay/{html.escape(i)}">{html.escape(i)}</a> '
            f"{html.escape(str(link['metadata'].get('machine_id', '')))}"
            f"{'' if link['active'] else ' (inactive)'}</li>"
            for i, link in self.payment_links.items()
        )
        endpoints = "".join(f"<li>{html.escape(e['url'])}</li>" for e in self.webhook_endpoints.values())
        return web.Response(
            content_type="text/html",
            text=f"""<!doctype html><title>Fake Stripe</title>
<h1>Fake Stripe</h1>
<p>Any key starting with <code>sk_test_</code> works. Webhook signing secret:
<code>{html.escape(self.webhook_secret)}</code></p>
<h2>Webhook endpoints</h2><ul>{endpoints or "<li>none yet</li>"}</ul>
<form method="post"><input name="url" size="80" placeholder="Webhook URL shown by Home Assistant">
<button>Add endpoint</button></form>
<h2>Payment links</h2><ul>{links or "<li>none yet: add a cabinet in Home Assistant</li>"}</ul>""",
        )

    async def _home_add_endpoint(self, request: web.Request) -> web.StreamResponse:
        post = await request.post()
        url = str(post.get("url", "")).strip()
        if url.startswith(("http://", "https://")):
            self.add_webhook_endpoint(url)
        raise web.HTTPSeeOther("/")

    async def _checkout_page(self, request: web.Request) -> web.Response:
        link = self.payment_links.get(request.match_info["id"])
        if link is None:
            raise web.HTTPNotFound
        if not link["active"]:
            return web.Response(content_type="text/html", text="<h1>This link is no longer active</h1>")
        item = self.link_items[link["id"]][0]
        price = item["price"]
        maximum = item["adjustable_quantity"]["maximum"]
        title = html.escape(str(link["metadata"].get("machine_id", "")))
        return web.Response(
            content_type="text/html",
            text=f"""<!doctype html><title>Pay</title><h1>{title}</h1>
<p>{price["unit_amount"]} {html.escape(price["currency"].upper())} (minor units) per credit</p>
<form method="post">Credits: <input name="quantity" type="number" min="1" max="{maximum}" value="1">
<button>Pay</button></form>""",
        )

    async def _checkout_pay(self, request: web.Request) -> web.Response:
        link = self.payment_links.get(request.match_info["id"])
        if link is None or not link["active"]:
            raise web.HTTPNotFound
        post = await request.post()
        quantity = int(str(post.get("quantity", "1")))
        delivery = self.complete_checkout(link["id"], quantity)
        statuses = await self.deliver(delivery)
        return web.Response(
            content_type="text/html",
            text=f"<h1>Paid {quantity} credit(s)</h1><p>Webhook deliveries answered: {statuses}</p>"
            f'<p><a href="/pay/{html.escape(link["id"])}">Pay again</a></p>',
        )

"""The few Stripe API calls Arcade Pay makes, on the caller's aiohttp session.

Plain Python (no Home Assistant import). Stripe's SDK types are turned into small
dataclasses here, and its many exceptions into three, so that the rest of the
integration never depends on the SDK's object model. The SDK itself is loaded, with its
telemetry off, by stripe_sdk.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, NoReturn, Protocol, cast

import aiohttp

from .stripe_checkout import CheckoutCalls
from .stripe_endpoints import WebhookEndpointCalls
from .stripe_sdk import stripe

ENV_API_BASE: Final = "ARCADE_PAY_STRIPE_API_BASE"
DEFAULT_API_BASE: Final = "https://api.stripe.com"
METADATA_MACHINE_ID: Final = "machine_id"
_REFUNDS_THAT_GIVE_NOTHING_BACK: Final = frozenset({"failed", "canceled"})
MAX_ADJUSTABLE_QUANTITY: Final = 99
# What a restricted key (rk_…) needs for the calls below; README and the setup form say the same.
# Refunds: refund-undelivered, and reconciliation's check for refunds before it credits.
# Webhook Endpoints: the one-step setup creates, updates and deletes the endpoint (stripe_endpoints.py).
# Checkout Sessions are written too: a scan of a stable QR code opens one, and a cabinet that
# stops taking money expires its open ones.
RESTRICTED_KEY_PERMISSIONS: Final = {
    "write": ("Products", "Prices", "Payment Links", "Checkout Sessions", "Refunds", "Webhook Endpoints"),
}


class StripeGatewayError(Exception):
    """Stripe answered with an error or could not be asked."""


class StripeAuthError(StripeGatewayError):
    """The API key is wrong, revoked or lacks a permission we need."""


class StripeUnavailableError(StripeGatewayError):
    """Stripe answered with a server error or asked us to slow down: an outage, not our request."""


class StripeNotFoundError(StripeGatewayError):
    """What the call names does not exist (any more) in Stripe."""


class StripeConnectionError(StripeGatewayError):
    """Stripe could not be reached."""


@dataclass(frozen=True, slots=True)
class StripeAccount:
    """The Stripe account an API key belongs to."""

    id: str
    name: str
    default_currency: str | None


@dataclass(frozen=True, slots=True)
class PaymentLink:
    """A payment link and, when it sells one price, that price."""

    id: str
    url: str
    active: bool
    machine_id: str | None
    price_id: str | None
    product_id: str | None
    unit_amount: int | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class SessionItems:
    """What a checkout session sold: total quantity and, if single-priced, the price."""

    quantity: int
    price_id: str | None
    unit_amount: int | None
    currency: str | None


class GatewayObserver(Protocol):
    """Told about every call's outcome (to log outages once and start reauthentication)."""

    def failed(self, err: StripeGatewayError) -> None:
        """A call failed."""

    def answered(self) -> None:
        """A call succeeded."""


def _single_price(items: list[Any]) -> tuple[str | None, str | None, int | None, str | None]:
    """Return (price id, product id, unit amount, currency) if every item has the same price."""
    prices = {item.price.id: item.price for item in items if item.price is not None}
    if len(prices) != 1:
        return None, None, None, None
    price = next(iter(prices.values()))
    product = price.product if isinstance(price.product, str) else getattr(price.product, "id", None)
    return price.id, product, price.unit_amount, price.currency


class StripeGateway(WebhookEndpointCalls, CheckoutCalls):
    """Async Stripe client for one API key."""

    def __init__(self, api_key: str, session: aiohttp.ClientSession, api_base: str | None = None) -> None:
        """Create the client; nothing is sent until the first call."""
        self.api_base = (api_base or DEFAULT_API_BASE).rstrip("/")
        self.observer: GatewayObserver | None = None
        self._client = stripe.StripeClient(
            api_key,
            http_client=stripe.AIOHTTPClient(session=session, timeout=20),
            base_addresses={"api": self.api_base},
            max_network_retries=2,
        )

    @asynccontextmanager
    async def _translated_errors(self) -> AsyncIterator[None]:
        try:
            yield
        except (stripe.AuthenticationError, stripe.PermissionError) as err:
            self._failed(StripeAuthError(err.user_message or "authentication failed"))
        except stripe.APIConnectionError as err:
            self._failed(StripeConnectionError(err.user_message or "cannot reach Stripe"))
        except stripe.InvalidRequestError as err:
            if err.code == "resource_missing":
                self._failed(StripeNotFoundError(err.user_message or "no such object"))
            self._failed(StripeGatewayError(err.user_message or str(err.code or "Stripe error")))
        except (stripe.APIError, stripe.RateLimitError) as err:
            self._failed(StripeUnavailableError(err.user_message or str(err.code or "Stripe unavailable")))
        except stripe.StripeError as err:
            self._failed(StripeGatewayError(err.user_message or str(err.code or "Stripe error")))
        else:
            if self.observer is not None:
                self.observer.answered()

    def _failed(self, err: StripeGatewayError) -> NoReturn:
        if self.observer is not None:
            self.observer.failed(err)
        raise err from None

    async def account(self) -> StripeAccount:
        """Return the account the key belongs to (checks the key)."""
        async with self._translated_errors():
            account = await self._client.v1.accounts.retrieve_current_async()
        name = None
        if account.settings is not None and account.settings.dashboard is not None:
            name = account.settings.dashboard.display_name
        if not name and account.business_profile is not None:
            name = account.business_profile.name
        return StripeAccount(account.id, name or account.id, account.default_currency)

    async def create_cabinet_link(
        self,
        machine_id: str,
        name: str,
        unit_amount: int,
        currency: str,
        max_quantity: int,
    ) -> PaymentLink:
        """Create product, price and an adjustable-quantity payment link for a cabinet."""
        metadata = {METADATA_MACHINE_ID: machine_id}
        async with self._translated_errors():
            product = await self._client.v1.products.create_async({"name": name, "metadata": metadata})
            price = await self._client.v1.prices.create_async(
                {"product": product.id, "unit_amount": unit_amount, "currency": currency}
            )
            link = await self._client.v1.payment_links.create_async(
                cast(
                    Any,
                    {
                        "line_items": [
                            {
                                "price": price.id,
                                "quantity": 1,
                                "adjustable_quantity": _adjustable(max_quantity),
                            }
                        ],
                        # Where the earlier system kept it; payment_intent_data lets refunds find the cabinet.
                        "metadata": metadata,
                        "payment_intent_data": {"metadata": metadata},
                    },
                )
            )
        return PaymentLink(
            link.id, link.url, link.active, machine_id, price.id, product.id, unit_amount, currency
        )

    async def payment_link(self, link_id: str) -> PaymentLink:
        """Retrieve a payment link and the price it sells."""
        async with self._translated_errors():
            link = await self._client.v1.payment_links.retrieve_async(link_id)
            items = await self._client.v1.payment_links.line_items.list_async(link_id, {"limit": 10})
        price_id, product_id, unit_amount, currency = _single_price(list(items.data))
        return PaymentLink(
            link.id,
            link.url,
            link.active,
            _metadata_machine_id(link.metadata),
            price_id,
            product_id,
            unit_amount,
            currency,
        )

    async def update_cabinet_link(self, link_id: str, price_id: str, max_quantity: int) -> None:
        """Change how many credits a player may buy at once."""
        async with self._translated_errors():
            items = await self._client.v1.payment_links.line_items.list_async(link_id, {"limit": 10})
            line_items = [
                {"id": item.id, "adjustable_quantity": _adjustable(max_quantity)}
                for item in items.data
                if item.price is not None and item.price.id == price_id
            ]
            await self._client.v1.payment_links.update_async(link_id, cast(Any, {"line_items": line_items}))

    async def rename_product(self, product_id: str, name: str) -> None:
        """Rename the product players see on the checkout page."""
        async with self._translated_errors():
            await self._client.v1.products.update_async(product_id, {"name": name})

    async def set_link_active(self, link_id: str, active: bool) -> None:
        """Activate or deactivate a payment link (a deactivated link takes no money)."""
        async with self._translated_errors():
            await self._client.v1.payment_links.update_async(link_id, {"active": active})

    async def session_items(self, session_id: str) -> SessionItems:
        """Return what a checkout session sold."""
        async with self._translated_errors():
            items = await self._client.v1.checkout.sessions.line_items.list_async(session_id, {"limit": 100})
        data = list(items.data)
        price_id, _, unit_amount, currency = _single_price(data)
        return SessionItems(sum(item.quantity or 0 for item in data), price_id, unit_amount, currency)

    async def checkout_sessions(self, link_id: str, created_since: int) -> list[dict[str, Any]]:
        """Return a link's checkout sessions created at or after a time, whatever their status.

        Open and unpaid ones too: reconciliation.py must not move past one that may still be paid.
        """
        sessions: list[dict[str, Any]] = []
        async with self._translated_errors():
            page = await self._client.v1.checkout.sessions.list_async(
                {"payment_link": link_id, "created": {"gte": created_since}, "limit": 100}
            )
            async for session in page.auto_paging_iter():
                sessions.append(session.to_dict())
        return sessions

    async def refunded_amount(self, payment_intent: str) -> int:
        """Return how much of a payment is refunded, or on its way back (pending) to the player."""
        total = 0
        async with self._translated_errors():
            page = await self._client.v1.refunds.list_async({"payment_intent": payment_intent, "limit": 100})
            async for refund in page.auto_paging_iter():
                if refund.status not in _REFUNDS_THAT_GIVE_NOTHING_BACK:
                    total += refund.amount
        return total

    async def refund(self, payment_intent: str, idempotency_key: str) -> None:
        """Refund (what is left of) a payment; a retry with the same key refunds nothing more.

        Stripe answers a request with a key it has seen with its first answer (for 24 hours at
        least), so asking again after a lost answer cannot refund twice.
        """
        async with self._translated_errors():
            await self._client.v1.refunds.create_async(
                {"payment_intent": payment_intent}, {"idempotency_key": idempotency_key}
            )


def _metadata_machine_id(metadata: Any) -> str | None:
    # A StripeObject supports `in` and `[]` but not `.get`.
    if metadata and METADATA_MACHINE_ID in metadata:
        return str(metadata[METADATA_MACHINE_ID])
    return None


def _adjustable(max_quantity: int) -> dict[str, Any]:
    return {"enabled": True, "minimum": 1, "maximum": max_quantity}

"""Arcade Pay's webhook endpoint in Stripe, and the permissions of a restricted key.

Plain Python (no Home Assistant import). Mixed into StripeGateway (stripe_gateway.py), whose
``_client`` and ``_translated_errors`` these calls use, so that their errors are the gateway's.

An endpoint is found again by its metadata, never by its URL (which changes): it carries
``METADATA_OWNER`` = the entry's webhook id. That id is the entry's own, is known before the
entry exists (the config flow creates the endpoint first) and stays when the URL changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Final, cast

from .payments import SUBSCRIBED_EVENTS
from .stripe_sdk import stripe

METADATA_OWNER: Final = "arcade_pay_webhook_id"
# The version of the events Stripe sends to the endpoint: the one the SDK pins, which is the one
# every other call of the gateway uses, so that events and API answers have the same shape.
EVENTS_API_VERSION: Final = stripe.api_version
ENDPOINT_DISABLED: Final = "disabled"


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """A webhook endpoint as Stripe shows it; ``secret`` only in the answer to create."""

    id: str
    url: str
    status: str
    secret: str | None

    @property
    def disabled(self) -> bool:
        """Stripe stopped delivering to it (or someone disabled it)."""
        return self.status == ENDPOINT_DISABLED


def endpoint_description(location: str) -> str:
    """What the operator reads next to the endpoint in Stripe's dashboard."""
    return f"Arcade Pay on Home Assistant {location}".strip()


def _endpoint(obj: Any) -> WebhookEndpoint:
    return WebhookEndpoint(obj.id, obj.url, obj.status, getattr(obj, "secret", None))


class WebhookEndpointCalls:
    """The webhook endpoint API (``/v1/webhook_endpoints``)."""

    _client: stripe.StripeClient
    _translated_errors: Callable[[], AbstractAsyncContextManager[None]]

    async def create_webhook_endpoint(self, url: str, owner: str, location: str) -> WebhookEndpoint:
        """Create the endpoint for exactly the events Arcade Pay handles; the answer has its secret."""
        params = {
            "url": url,
            "enabled_events": list(SUBSCRIBED_EVENTS),
            "description": endpoint_description(location),
            "metadata": {METADATA_OWNER: owner},
            "api_version": EVENTS_API_VERSION,
        }
        async with self._translated_errors():
            endpoint = await self._client.v1.webhook_endpoints.create_async(cast(Any, params))
        return _endpoint(endpoint)

    async def own_webhook_endpoints(self, owner: str) -> list[WebhookEndpoint]:
        """The endpoints whose metadata names this owner (normally one, or none)."""
        found: list[WebhookEndpoint] = []
        async with self._translated_errors():
            page = await self._client.v1.webhook_endpoints.list_async({"limit": 100})
            async for endpoint in cast(AsyncIterator[Any], page.auto_paging_iter()):
                metadata = endpoint.metadata
                if metadata and METADATA_OWNER in metadata and metadata[METADATA_OWNER] == owner:
                    found.append(_endpoint(endpoint))
        return found

    async def webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        """Retrieve an endpoint (its status says whether Stripe disabled it)."""
        async with self._translated_errors():
            return _endpoint(await self._client.v1.webhook_endpoints.retrieve_async(endpoint_id))

    async def update_webhook_endpoint(
        self, endpoint_id: str, *, url: str | None = None, enabled: bool | None = None
    ) -> WebhookEndpoint:
        """Point the endpoint at a new URL, or re-enable (or disable) it."""
        params: dict[str, Any] = {}
        if url is not None:
            params["url"] = url
        if enabled is not None:
            params["disabled"] = not enabled
        async with self._translated_errors():
            endpoint = await self._client.v1.webhook_endpoints.update_async(endpoint_id, cast(Any, params))
        return _endpoint(endpoint)

    async def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        """Delete the endpoint: Stripe sends nothing more to it."""
        async with self._translated_errors():
            await self._client.v1.webhook_endpoints.delete_async(endpoint_id)

    async def missing_permissions(self) -> list[str]:
        """The resources (RESTRICTED_KEY_PERMISSIONS' names) a restricted key may not use.

        Each is asked with a list of one, which changes nothing. A list only proves read access;
        Stripe offers no harmless write, and a key set up from the README has both or neither.
        """
        client = self._client.v1
        checks: dict[str, Callable[[], Awaitable[Any]]] = {
            "Products": lambda: client.products.list_async({"limit": 1}),
            "Prices": lambda: client.prices.list_async({"limit": 1}),
            "Payment Links": lambda: client.payment_links.list_async({"limit": 1}),
            "Checkout Sessions": lambda: client.checkout.sessions.list_async({"limit": 1}),
            "Webhook Endpoints": lambda: client.webhook_endpoints.list_async({"limit": 1}),
            "Refunds": lambda: client.refunds.list_async({"limit": 1}),
        }
        missing: list[str] = []
        # Anything but a refusal (an outage, a revoked key) fails the way every other call does.
        async with self._translated_errors():
            for resource, check in checks.items():
                try:
                    await check()
                except stripe.PermissionError:
                    missing.append(resource)
        return missing

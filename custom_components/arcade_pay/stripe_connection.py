"""Where Stripe reaches this Home Assistant, and the webhook endpoint Arcade Pay keeps there.

The URL is a Home Assistant Cloud webhook (cloudhook) when Home Assistant Cloud is connected,
else the external URL (Settings → System → Network; ``https`` for a live key, as Stripe requires).
The internal URL is never used: Stripe could not reach it. Entries whose endpoint was made by
hand (no CONF_WEBHOOK_ENDPOINT_ID) are left alone: their URL is the operator's to keep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import ClientError

from homeassistant.components import cloud, webhook
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.network import NoURLAvailableError, get_url

from .const import CONF_CLOUDHOOK_URL, LOGGER
from .core.stripe_endpoints import WebhookEndpoint
from .core.stripe_gateway import StripeGateway
from .core.stripe_scope import key_livemode

NETWORK_SETTINGS = "/config/network"
CLOUD_SETTINGS = "/config/cloud"


class CloudhookFailed(HomeAssistantError):
    """Home Assistant Cloud is connected but would not make a webhook URL."""


def cloud_connected(hass: HomeAssistant) -> bool:
    """Home Assistant Cloud is set up, subscribed and connected: its webhook URLs work."""
    return (
        "cloud" in hass.config.components
        and cloud.async_active_subscription(hass)
        and cloud.async_is_connected(hass)
    )


def external_webhook_url(hass: HomeAssistant, webhook_id: str, api_key: str) -> str | None:
    """The webhook's URL on the external URL, if there is one Stripe accepts for this key."""
    try:
        base = get_url(
            hass,
            allow_internal=False,
            allow_cloud=False,
            allow_ip=True,
            prefer_external=True,
            require_ssl=key_livemode(api_key) is True,
        )
    except NoURLAvailableError:
        return None
    return base + webhook.async_generate_path(webhook_id)


async def async_public_url(
    hass: HomeAssistant, webhook_id: str, api_key: str, entry_data: Mapping[str, Any] | None = None
) -> tuple[str | None, str | None]:
    """(URL for Stripe, cloudhook URL if that is the one) or (None, None) when there is none.

    An entry's existing cloudhook is reused; a new one is made only when there is none.
    """
    if cloud_connected(hass):
        if entry_data and (existing := entry_data.get(CONF_CLOUDHOOK_URL)):
            return str(existing), str(existing)
        try:
            url = await cloud.async_create_cloudhook(hass, webhook_id)
        except (HomeAssistantError, ClientError, TimeoutError, ValueError) as err:
            LOGGER.warning("Home Assistant Cloud could not make a webhook URL: %s", err)
            raise CloudhookFailed from err
        return url, url
    return external_webhook_url(hass, webhook_id, api_key), None


async def async_new_endpoint(
    hass: HomeAssistant, gateway: StripeGateway, webhook_id: str, url: str
) -> WebhookEndpoint:
    """Create the entry's endpoint, then delete any other it made before (whose secret is lost).

    Stripe shows a secret only when it creates the endpoint, so an earlier one (a setup that
    stopped half way, the one a rotation replaces) cannot be reused: it is replaced, never
    duplicated. Created first, so that a failure leaves the old endpoint working.
    """
    new = await gateway.create_webhook_endpoint(url, webhook_id, hass.config.location_name)
    for old in await gateway.own_webhook_endpoints(webhook_id):
        if old.id != new.id:
            await gateway.delete_webhook_endpoint(old.id)
    return new

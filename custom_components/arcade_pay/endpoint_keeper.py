"""Keeps the webhook endpoint Arcade Pay made in Stripe pointing here, enabled, and gone on removal.

Checked at start-up, every hour (with reconciliation's rhythm), when the external URL is edited
(core config update) and when Home Assistant Cloud connects or disconnects. A URL that changed is
updated in Stripe; an endpoint Stripe disabled (deliveries failing for days) or that was deleted
raises a repair (issues.py) whose fix re-enables or replaces it (repairs.py). Entries whose
endpoint was made by hand (no CONF_WEBHOOK_ENDPOINT_ID) are not touched.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components import cloud
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID, EVENT_CORE_CONFIG_UPDATE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval

from .const import CONF_CLOUDHOOK_URL, CONF_WEBHOOK_ENDPOINT_ID, DOMAIN, LOGGER, RECONCILE_INTERVAL
from .core.stripe_gateway import StripeGateway, StripeGatewayError, StripeNotFoundError
from .helpers import create_gateway
from .issues import (
    ENDPOINT_DELETED,
    ENDPOINT_DISABLED,
    ENDPOINT_LEFT_BEHIND,
    delete_endpoint_issue,
    raise_endpoint_issue,
)
from .stripe_connection import CloudhookFailed, async_public_url


async def async_check_endpoint(hass: HomeAssistant, entry: ConfigEntry, gateway: StripeGateway) -> None:
    """Compare the endpoint in Stripe with what it should be; fix the URL, report the rest."""
    endpoint_id = entry.data.get(CONF_WEBHOOK_ENDPOINT_ID)
    if endpoint_id is None:
        return
    try:
        endpoint = await gateway.webhook_endpoint(endpoint_id)
    except StripeNotFoundError:
        LOGGER.error("The webhook endpoint %s of %s was deleted in Stripe", endpoint_id, entry.title)
        raise_endpoint_issue(hass, entry, ENDPOINT_DELETED, endpoint_id)
        return
    except StripeGatewayError as err:
        LOGGER.debug("Could not check the webhook endpoint %s: %s", endpoint_id, err)
        return  # An outage: StripeHealth reports it; the next check runs in an hour.
    delete_endpoint_issue(hass, ENDPOINT_DELETED, entry.entry_id)
    if endpoint.disabled:
        LOGGER.error("Stripe disabled the webhook endpoint %s of %s", endpoint_id, entry.title)
        raise_endpoint_issue(hass, entry, ENDPOINT_DISABLED, endpoint_id)
    else:
        delete_endpoint_issue(hass, ENDPOINT_DISABLED, entry.entry_id)
    try:
        url, cloudhook = await async_public_url(
            hass, entry.data[CONF_WEBHOOK_ID], entry.data[CONF_API_KEY], entry.data
        )
    except CloudhookFailed:
        return  # Logged; the endpoint keeps its URL until the next check.
    if url is None:
        LOGGER.warning(
            "Stripe cannot reach Home Assistant any more: no Home Assistant Cloud and no external URL "
            "(Settings → System → Network); the webhook endpoint keeps %s",
            endpoint.url,
        )
        return
    if url != endpoint.url:
        try:
            await gateway.update_webhook_endpoint(endpoint_id, url=url)
        except StripeGatewayError as err:
            LOGGER.warning("Could not point the webhook endpoint %s at the new URL: %s", endpoint_id, err)
            return
        LOGGER.info("Webhook endpoint %s now points at %s", endpoint_id, url)
    if cloudhook and cloudhook != entry.data.get(CONF_CLOUDHOOK_URL):
        # Reloads the entry (its update listener): the cloudhook is now this entry's.
        hass.config_entries.async_update_entry(entry, data=entry.data | {CONF_CLOUDHOOK_URL: cloudhook})


@callback
def async_keep_endpoint(hass: HomeAssistant, entry: ConfigEntry, gateway: StripeGateway) -> None:
    """Check now, hourly, and whenever the URL Stripe should use may have changed."""
    if CONF_WEBHOOK_ENDPOINT_ID not in entry.data:
        return

    @callback
    def check(*_: Any) -> None:
        entry.async_create_background_task(
            hass, async_check_endpoint(hass, entry, gateway), f"{DOMAIN} webhook endpoint {entry.title}"
        )

    @callback
    def config_updated(event: Event[Any]) -> None:
        check()

    entry.async_on_unload(hass.bus.async_listen(EVENT_CORE_CONFIG_UPDATE, config_updated))
    entry.async_on_unload(async_track_time_interval(hass, check, RECONCILE_INTERVAL))
    if "cloud" in hass.config.components:
        entry.async_on_unload(cloud.async_listen_connection_change(hass, check))
    check()


async def async_delete_endpoint(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """The entry is removed: Stripe sends nothing more. A failure is logged and raised as a repair."""
    endpoint_id = entry.data.get(CONF_WEBHOOK_ENDPOINT_ID)
    if endpoint_id is None:
        return
    try:
        await create_gateway(hass, entry.data[CONF_API_KEY]).delete_webhook_endpoint(endpoint_id)
    except StripeNotFoundError:
        return  # Already gone.
    except StripeGatewayError as err:
        LOGGER.error(
            "Arcade Pay was removed but its webhook endpoint %s could not be deleted (%s): delete it "
            "in the Stripe dashboard (Developers → Webhooks)",
            endpoint_id,
            err,
        )
        raise_endpoint_issue(hass, entry, ENDPOINT_LEFT_BEHIND, endpoint_id)
    delete_endpoint_issue(hass, ENDPOINT_DISABLED, entry.entry_id)
    delete_endpoint_issue(hass, ENDPOINT_DELETED, entry.entry_id)

"""Keeps the webhook endpoint Arcade Pay made in Stripe pointing here, enabled, and gone on removal.

Checked at start-up, every hour (with reconciliation's rhythm), when the external URL is edited
(core config update) and when Home Assistant Cloud connects or disconnects. A URL that changed is
updated in Stripe; an endpoint Stripe disabled (deliveries failing for days) or that was deleted
raises a repair whose fix re-enables or replaces it. Entries whose endpoint was made by hand
(no CONF_WEBHOOK_ENDPOINT_ID) are not touched.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components import cloud
from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID, EVENT_CORE_CONFIG_UPDATE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResult
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval

from .const import CONF_CLOUDHOOK_URL, CONF_WEBHOOK_ENDPOINT_ID, CONF_WEBHOOK_SECRET, DOMAIN, LOGGER
from .core.stripe_gateway import StripeGateway, StripeGatewayError, StripeNotFoundError
from .runtime import RECONCILE_INTERVAL, create_gateway
from .stripe_connection import CloudhookFailed, async_new_endpoint, async_public_url

DISABLED = "webhook_endpoint_disabled"
DELETED = "webhook_endpoint_deleted"
LEFT_BEHIND = "webhook_endpoint_left"


def issue_id(kind: str, entry_id: str) -> str:
    """The repair of one entry's endpoint."""
    return f"{kind}_{entry_id}"


async def async_check_endpoint(hass: HomeAssistant, entry: ConfigEntry, gateway: StripeGateway) -> None:
    """Compare the endpoint in Stripe with what it should be; fix the URL, report the rest."""
    endpoint_id = entry.data.get(CONF_WEBHOOK_ENDPOINT_ID)
    if endpoint_id is None:
        return
    try:
        endpoint = await gateway.webhook_endpoint(endpoint_id)
    except StripeNotFoundError:
        LOGGER.error("The webhook endpoint %s of %s was deleted in Stripe", endpoint_id, entry.title)
        _raise(hass, entry, DELETED)
        return
    except StripeGatewayError as err:
        LOGGER.debug("Could not check the webhook endpoint %s: %s", endpoint_id, err)
        return  # An outage: StripeHealth reports it; the next check runs in an hour.
    ir.async_delete_issue(hass, DOMAIN, issue_id(DELETED, entry.entry_id))
    if endpoint.disabled:
        LOGGER.error("Stripe disabled the webhook endpoint %s of %s", endpoint_id, entry.title)
        _raise(hass, entry, DISABLED)
    else:
        ir.async_delete_issue(hass, DOMAIN, issue_id(DISABLED, entry.entry_id))
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
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id(LEFT_BEHIND, entry.entry_id),
            is_fixable=False,
            is_persistent=True,
            severity=ir.IssueSeverity.WARNING,
            translation_key=LEFT_BEHIND,
            translation_placeholders={"account": entry.title, "endpoint": endpoint_id},
        )
    ir.async_delete_issue(hass, DOMAIN, issue_id(DISABLED, entry.entry_id))
    ir.async_delete_issue(hass, DOMAIN, issue_id(DELETED, entry.entry_id))


@callback
def _raise(hass: HomeAssistant, entry: ConfigEntry, kind: str) -> None:
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(kind, entry.entry_id),
        data={"entry_id": entry.entry_id},
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=kind,
        translation_placeholders={"account": entry.title, "endpoint": entry.data[CONF_WEBHOOK_ENDPOINT_ID]},
    )


class NoPublicUrl(Exception):
    """Stripe cannot reach this Home Assistant: nowhere to point a new endpoint."""


class EndpointRepairFlow(RepairsFlow):
    """Re-enable a disabled endpoint, or replace a deleted one, on the operator's confirmation."""

    def __init__(self, kind: str, entry_id: str) -> None:
        """Fix ``kind`` (DISABLED or DELETED) of the entry ``entry_id``."""
        self._kind = kind
        self._entry_id = entry_id

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Start with the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Say what happens, then do it."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="entry_removed")
        errors: dict[str, str] = {}
        if user_input is not None:
            gateway = create_gateway(self.hass, entry.data[CONF_API_KEY])
            try:
                await self._async_fix(entry, gateway)
            except CloudhookFailed:
                errors["base"] = "cloudhook_failed"
            except NoPublicUrl:
                errors["base"] = "no_public_url"
            except StripeGatewayError as err:
                LOGGER.warning("Could not fix the webhook endpoint of %s: %s", entry.title, err)
                errors["base"] = "stripe_failed"
            else:
                ir.async_delete_issue(self.hass, DOMAIN, issue_id(self._kind, entry.entry_id))
                return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm",
            errors=errors,
            description_placeholders={
                "account": entry.title,
                "endpoint": entry.data[CONF_WEBHOOK_ENDPOINT_ID],
            },
        )

    async def _async_fix(self, entry: ConfigEntry, gateway: StripeGateway) -> None:
        if self._kind == DISABLED:
            await gateway.update_webhook_endpoint(entry.data[CONF_WEBHOOK_ENDPOINT_ID], enabled=True)
            return
        url, cloudhook = await async_public_url(
            self.hass, entry.data[CONF_WEBHOOK_ID], entry.data[CONF_API_KEY], entry.data
        )
        if url is None:
            raise NoPublicUrl
        new = await async_new_endpoint(self.hass, gateway, entry.data[CONF_WEBHOOK_ID], url)
        changes = {CONF_WEBHOOK_ENDPOINT_ID: new.id, CONF_WEBHOOK_SECRET: new.secret}
        if cloudhook:
            changes[CONF_CLOUDHOOK_URL] = cloudhook
        self.hass.config_entries.async_update_entry(entry, data=entry.data | changes)  # Reloads it.

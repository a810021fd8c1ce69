"""Home Assistant's repairs platform: the fix flows of Arcade Pay's fixable issues (issues.py raises them).

The webhook endpoint's repairs fix it in Stripe (re-enable a disabled endpoint, or replace a
deleted one); the new QR code reminder is fixed by the operator confirming the new code is printed.
"""

from __future__ import annotations

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult

from .const import CONF_CLOUDHOOK_URL, CONF_WEBHOOK_ENDPOINT_ID, CONF_WEBHOOK_SECRET, LOGGER
from .core.stripe_gateway import StripeGateway, StripeGatewayError
from .helpers import create_gateway
from .issues import ENDPOINT_DISABLED, delete_endpoint_issue, fixable_endpoint_kind
from .stripe_connection import CloudhookFailed, async_new_endpoint, async_public_url


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The webhook endpoint's repairs fix it; the others are fixed by the operator confirming them."""
    kind = fixable_endpoint_kind(issue_id)
    if kind is not None and data and isinstance(data.get("entry_id"), str):
        return EndpointRepairFlow(kind, str(data["entry_id"]))
    return ConfirmRepairFlow()


class NoPublicUrl(Exception):
    """Stripe cannot reach this Home Assistant: nowhere to point a new endpoint."""


class EndpointRepairFlow(RepairsFlow):
    """Re-enable a disabled endpoint, or replace a deleted one, on the operator's confirmation."""

    def __init__(self, kind: str, entry_id: str) -> None:
        """Fix ``kind`` (ENDPOINT_DISABLED or ENDPOINT_DELETED) of the entry ``entry_id``."""
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
                delete_endpoint_issue(self.hass, self._kind, entry.entry_id)
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
        if self._kind == ENDPOINT_DISABLED:
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

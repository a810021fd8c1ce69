"""System health: can we reach Stripe, take webhooks, talk MQTT, and are cabinets online."""

from __future__ import annotations

from typing import Any

from homeassistant.components import mqtt, system_health, webhook
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant, callback

from .const import DOMAIN


@callback
def async_register(hass: HomeAssistant, register: system_health.SystemHealthRegistration) -> None:
    """Register the system health info."""
    register.async_register_info(system_health_info)


async def system_health_info(hass: HomeAssistant) -> dict[str, Any]:
    """Return the health of every loaded Stripe account."""
    entries = hass.config_entries.async_loaded_entries(DOMAIN)
    handlers = hass.data.get(webhook.DOMAIN, {})
    info: dict[str, Any] = {
        "mqtt_connected": mqtt.is_connected(hass)
        if hass.config_entries.async_loaded_entries(mqtt.DOMAIN)
        else False,
        "webhooks_registered": f"{sum(e.data[CONF_WEBHOOK_ID] in handlers for e in entries)}/{len(entries)}",
    }
    cabinets = [cabinet for entry in entries for cabinet in entry.runtime_data.cabinets.values()]
    info["cabinets_online"] = f"{sum(c.online is True for c in cabinets)}/{len(cabinets)}"
    if entries:
        info["stripe_reachable"] = system_health.async_check_can_reach_url(
            hass, f"{entries[0].runtime_data.gateway.api_base}/healthcheck"
        )
    return info

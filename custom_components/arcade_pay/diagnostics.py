"""Diagnostics: configuration, cabinets and ledger counts, with every secret redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant

from . import ArcadePayConfigEntry
from .const import CONF_CLOUDHOOK_URL, CONF_WEBHOOK_SECRET
from .core.ledger import LedgerError
from .hub import ArcadePayHub

TO_REDACT = {CONF_API_KEY, CONF_WEBHOOK_SECRET, CONF_WEBHOOK_ID, CONF_CLOUDHOOK_URL}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: ArcadePayConfigEntry
) -> dict[str, Any]:
    """Return what helps to debug a report, and nothing that lets anyone take money."""
    hub = entry.runtime_data
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "topic_prefix": hub.topic_prefix,
        "cabinets": {
            cabinet.machine_id: {
                "payment_link_id": cabinet.config.payment_link_id,
                "managed_link": cabinet.config.managed_link,
                "currency": cabinet.config.currency,
                "unit_amount": cabinet.config.unit_amount,
                "credits": cabinet.credits,
                "game_state": cabinet.game_state.value,
                "online": cabinet.online,
                "plays": cabinet.plays,
                "payments": cabinet.payments,
                "revenue": cabinet.revenue,
                "last_payment": cabinet.last_payment.isoformat() if cabinet.last_payment else None,
            }
            for cabinet in hub.cabinets.values()
        },
        "delivery": {
            "mqtt_connected": hub.dispatcher.planner.connected,
            "outstanding_pulses": len(hub.dispatcher.planner),
            "acknowledging_cabinets": sorted(
                m for m, on in hub.dispatcher.planner.acknowledges.items() if on
            ),
        },
        "ledger": await _ledger_summary(hass, hub),
    }


async def _ledger_summary(hass: HomeAssistant, hub: ArcadePayHub) -> dict[str, Any]:
    try:
        return {"payments_by_state": await hass.async_add_executor_job(hub.ledger.count_by_state)}
    except LedgerError as err:  # For example while the entry reloads.
        return {"error": str(err)}

"""Diagnostics: configuration, cabinets and ledger counts, with every secret redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant

from .const import (
    CONF_CLOUDHOOK_URL,
    CONF_GAME_OVER_WEBHOOK_ID,
    CONF_PLAYER_WEBHOOK_ID,
    CONF_SCAN_TOKEN,
    CONF_WEBHOOK_SECRET,
)
from .core.currencies import from_minor_units
from .core.ledger import LedgerError, PaymentLedger
from .data import ArcadePayConfigEntry

TO_REDACT = {
    CONF_API_KEY,
    CONF_WEBHOOK_SECRET,
    CONF_WEBHOOK_ID,
    CONF_CLOUDHOOK_URL,
    CONF_GAME_OVER_WEBHOOK_ID,
    # Together they are a cabinet's stable URL: anyone holding it can open checkouts on it.
    CONF_PLAYER_WEBHOOK_ID,
    CONF_SCAN_TOKEN,
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: ArcadePayConfigEntry
) -> dict[str, Any]:
    """Return what helps to debug a report, and nothing that lets anyone take money."""
    data = entry.runtime_data
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "topic_prefix": data.options.topic_prefix,
        "cabinets": {
            cabinet.machine_id: {
                "payment_link_id": cabinet.config.payment_link_id,
                "managed_link": cabinet.config.managed_link,
                "currency": cabinet.config.currency,
                "unit_amount": cabinet.config.unit_amount,
                "qr_target": cabinet.config.qr_target.value,
                "unit_amount_now": cabinet.unit_amount_now,
                "pack_set": cabinet.pack_set.value,
                "credits": cabinet.credits,
                "game_state": cabinet.game_state.value,
                "online": cabinet.online,
                "plays": cabinet.plays,
                "payments": cabinet.payments,
                # As the Revenue sensor shows it: 400 (Stripe's minor units) read as 400.00 before.
                "revenue": _money(cabinet.revenue, cabinet.config.currency),
                "last_payment": cabinet.last_payment.isoformat() if cabinet.last_payment else None,
            }
            for cabinet in data.cabinets.values()
        },
        "delivery": {
            "mqtt_connected": data.courier.mqtt_connected,
            "outstanding_pulses": data.courier.outstanding_pulses,
            "acknowledging_cabinets": data.courier.acknowledging_cabinets(),
        },
        "ledger": await _ledger_summary(hass, data.ledger),
    }


def _money(amount: int, currency: str) -> str:
    return f"{from_minor_units(amount, currency)} {currency.upper()}"


async def _ledger_summary(hass: HomeAssistant, ledger: PaymentLedger) -> dict[str, Any]:
    try:
        return {"payments_by_state": await hass.async_add_executor_job(ledger.count_by_state)}
    except LedgerError as err:  # For example while the entry reloads.
        return {"error": str(err)}

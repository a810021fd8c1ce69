"""Starting the cabinet subentry flows as the frontend does."""

from __future__ import annotations

from typing import Any

from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.arcade_pay.const import (
    CONF_CURRENCY,
    CONF_MACHINE_ID,
    CONF_MAX_QUANTITY,
    CONF_NEVER_REPORTS,
    CONF_PRICE,
    SUBENTRY_CABINET,
)

# What an owner enters for a new cabinet with a new payment link.
NEW_CABINET = {
    CONF_MACHINE_ID: "galaga-2",
    CONF_NAME: "Galaga",
    CONF_PRICE: "1.50",
    CONF_CURRENCY: "USD",
    CONF_MAX_QUANTITY: 5,
    CONF_NEVER_REPORTS: False,
}


async def start_cabinet_flow(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> dict[str, Any]:
    """Open "Add cabinet" and choose ``step`` (a new link, or an existing one) from its menu."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CABINET), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["new_link", "existing_link"]
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], {"next_step_id": step})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    return result


async def start_reconfigure(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """Open the Reconfigure form of the entry's first cabinet."""
    subentry_id = next(iter(entry.subentries))
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CABINET),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )

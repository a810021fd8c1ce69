"""Insert one free credit."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .core.cabinet import Cabinet
from .data import ArcadePayConfigEntry, ArcadePayData
from .entity import ArcadePayEntity, add_cabinet_entities
from .services import async_add_credit

PARALLEL_UPDATES = 1

INSERT_CREDIT = ButtonEntityDescription(key="insert_credit", translation_key="insert_credit")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ArcadePayConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add one button per cabinet."""
    add_cabinet_entities(
        entry,
        async_add_entities,
        lambda account, data, cabinet: [ArcadePayInsertCreditButton(account, data, cabinet)],
    )


class ArcadePayInsertCreditButton(ArcadePayEntity, ButtonEntity):
    """Send the cabinet one free credit, as a coin pulse like any other."""

    _needs_mqtt = True

    def __init__(self, account_id: str, data: ArcadePayData, cabinet: Cabinet) -> None:
        """Remember the intake, which records the credit."""
        super().__init__(account_id, cabinet, INSERT_CREDIT)
        self._data = data
        self._attr_available_written = True

    def _handle_cabinet_change(self, event: object) -> None:
        """A button has no state that follows the cabinet, only its availability."""
        if self.available != self._attr_available_written:
            self._attr_available_written = self.available
            self.async_write_ha_state()

    async def async_press(self) -> None:
        """Publish one credit."""
        await async_add_credit(self._data, self.cabinet, 1)

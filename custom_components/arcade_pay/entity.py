"""Base entity: one cabinet device, pushed updates."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN, cabinet_added_signal
from .core.cabinet import Cabinet, CabinetEvent
from .data import ArcadePayConfigEntry, ArcadePayData


def add_cabinet_entities(
    entry: ArcadePayConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[str, ArcadePayData, Cabinet], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every cabinet, and for each one added later, under its subentry."""
    account_id = entry.unique_id
    assert account_id is not None
    data = entry.runtime_data

    @callback
    def add(cabinet: Cabinet) -> None:
        async_add_entities(
            list(build(account_id, data, cabinet)), config_subentry_id=cabinet.config.subentry_id
        )

    for cabinet in data.cabinets.values():
        add(cabinet)
    entry.async_on_unload(async_dispatcher_connect(data.hass, cabinet_added_signal(entry.entry_id), add))


class ArcadePayEntity(Entity):
    """An entity of one cabinet; updated when the cabinet changes, never polled."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    # What the cabinet says over MQTT (or needs MQTT to act): unavailable while MQTT is down.
    _needs_mqtt = False

    def __init__(self, account_id: str, cabinet: Cabinet, description: EntityDescription) -> None:
        """Attach to the cabinet's device (created by the integration at setup)."""
        self.entity_description = description
        self.cabinet = cabinet
        self._attr_unique_id = f"{account_id}_{cabinet.machine_id}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, f"{account_id}_{cabinet.machine_id}")})

    async def async_added_to_hass(self) -> None:
        """Listen to the cabinet."""
        await super().async_added_to_hass()
        self.async_on_remove(self.cabinet.add_listener(self._handle_cabinet_change))

    @property
    def available(self) -> bool:
        """Unavailable while MQTT is down, for what only MQTT tells or does."""
        return super().available and (not self._needs_mqtt or self.cabinet.mqtt_connected)

    def _handle_cabinet_change(self, event: CabinetEvent | None) -> None:
        self.async_write_ha_state()

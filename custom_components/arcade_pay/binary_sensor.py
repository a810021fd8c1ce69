"""Cabinet connectivity, from its retained MQTT status (last will)."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import ArcadePayConfigEntry
from .entity import ArcadePayEntity, add_cabinet_entities

PARALLEL_UPDATES = 0

ONLINE = BinarySensorEntityDescription(
    key="online",
    translation_key="online",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ArcadePayConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add one connectivity sensor per cabinet."""
    add_cabinet_entities(
        entry,
        async_add_entities,
        lambda account, _, cabinet: [ArcadePayOnlineSensor(account, cabinet, ONLINE)],
    )


class ArcadePayOnlineSensor(ArcadePayEntity, BinarySensorEntity):
    """Online while the cabinet's retained status says so; unknown for cabinets that never say."""

    _needs_mqtt = True

    @property
    def is_on(self) -> bool | None:
        """Return the last status the cabinet published."""
        return self.cabinet.online

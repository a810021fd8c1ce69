"""Game events of a cabinet: game over, credit added."""

from __future__ import annotations

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import ArcadePayConfigEntry
from .cabinet import CabinetEvent
from .const import EVENT_TYPE_CREDIT_ADDED, EVENT_TYPE_GAME_OVER
from .entity import ArcadePayEntity

PARALLEL_UPDATES = 0

GAME = EventEntityDescription(
    key="game",
    translation_key="game",
    event_types=[EVENT_TYPE_GAME_OVER, EVENT_TYPE_CREDIT_ADDED],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ArcadePayConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add one event entity per cabinet."""
    assert entry.unique_id is not None
    for cabinet in entry.runtime_data.cabinets.values():
        async_add_entities(
            [ArcadePayGameEvent(entry.unique_id, cabinet, GAME)],
            config_subentry_id=cabinet.config.subentry_id,
        )


class ArcadePayGameEvent(ArcadePayEntity, EventEntity):
    """Fires when a game ends or credits arrive."""

    def _handle_cabinet_change(self, event: CabinetEvent | None) -> None:
        if event is None:
            return
        self._trigger_event(event.event_type, dict(event.attributes))
        self.async_write_ha_state()

"""Game events of a cabinet: game over, credit added."""

from __future__ import annotations

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import EVENT_TYPE_CREDIT_ADDED, EVENT_TYPE_GAME_OVER
from .core.cabinet import CabinetEvent
from .data import ArcadePayConfigEntry
from .entity import ArcadePayEntity, add_cabinet_entities

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
    add_cabinet_entities(
        entry, async_add_entities, lambda account, _, cabinet: [ArcadePayGameEvent(account, cabinet, GAME)]
    )


class ArcadePayGameEvent(ArcadePayEntity, EventEntity):
    """Fires when a game ends or credits arrive."""

    def _handle_cabinet_change(self, event: CabinetEvent | None) -> None:
        if event is None:
            return
        self._trigger_event(event.event_type, dict(event.attributes))
        self.async_write_ha_state()

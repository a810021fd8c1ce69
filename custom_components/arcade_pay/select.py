"""Which packs a Home Assistant QR code sells besides single credits, for automations to switch."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .core.cabinet import Cabinet
from .core.pricing import PackSet
from .data import ArcadePayConfigEntry, ArcadePayData
from .entity import ArcadePayEntity, add_cabinet_entities
from .live_price import async_set_price, sells_live_price

PARALLEL_UPDATES = 1

PACKS = SelectEntityDescription(
    key="packs",
    translation_key="packs",
    entity_category=EntityCategory.CONFIG,
    options=[pack_set.value for pack_set in PackSet],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ArcadePayConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the pack choice of each cabinet whose QR code is Home Assistant's."""
    add_cabinet_entities(
        entry,
        async_add_entities,
        lambda account, data, cabinet: (
            [ArcadePayPacks(account, data, cabinet)] if sells_live_price(cabinet) else []
        ),
    )


class ArcadePayPacks(ArcadePayEntity, SelectEntity):
    """None, the cabinet's Packs, or its Happy hour packs (both set in the cabinet's settings).

    A set left empty in the settings sells single credits only.
    """

    def __init__(self, account_id: str, data: ArcadePayData, cabinet: Cabinet) -> None:
        """Remember the ledger, which keeps the choice across restarts."""
        super().__init__(account_id, cabinet, PACKS)
        self._data = data

    @property
    def current_option(self) -> str:
        """The packs on sale now."""
        return self.cabinet.pack_set.value

    async def async_select_option(self, option: str) -> None:
        """Sell these packs from the next scan on (Home Assistant checks the option is one of ours)."""
        await async_set_price(self.hass, self._data.ledger, self.cabinet, pack_set=PackSet(option))

"""Whether a cabinet's payment link takes money."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .core.cabinet import Cabinet
from .data import ArcadePayConfigEntry, ArcadePayData
from .entity import ArcadePayEntity, add_cabinet_entities
from .errors import translated_errors

PARALLEL_UPDATES = 1

ACCEPTING_PAYMENTS = SwitchEntityDescription(
    key="accepting_payments",
    translation_key="accepting_payments",
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ArcadePayConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add one switch per cabinet."""
    add_cabinet_entities(
        entry,
        async_add_entities,
        lambda account, data, cabinet: [ArcadePayAcceptingPayments(account, data, cabinet)],
    )


class ArcadePayAcceptingPayments(ArcadePayEntity, SwitchEntity):
    """On while the payment link takes money; the "Payments" sensor says why it is off.

    Turning it on lifts the operator's pause only: a cabinet never seen, or offline too
    long, still takes no money until it shows up (payment_links.py).
    """

    def __init__(self, account_id: str, data: ArcadePayData, cabinet: Cabinet) -> None:
        """Remember the payment links, which talk to Stripe."""
        super().__init__(account_id, cabinet, ACCEPTING_PAYMENTS)
        self._links = data.links.payment_links

    @property
    def is_on(self) -> bool:
        """Return whether the link takes payments."""
        return self.cabinet.accepting_payments

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Take payments again."""
        await self._async_set(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Stop taking payments (the link shows as inactive to players)."""
        await self._async_set(False)

    async def _async_set(self, accepting: bool) -> None:
        with translated_errors():
            await self._links.async_pause(self.cabinet, not accepting)

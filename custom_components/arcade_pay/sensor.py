"""Cabinet sensors: credits, game state, revenue, plays, last payment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .core.cabinet import Cabinet, PaymentsState
from .core.payments import currency_exponent, from_minor_units
from .core.protocol import GameState
from .data import ArcadePayConfigEntry
from .entity import ArcadePayEntity, add_cabinet_entities

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class ArcadePaySensorDescription(SensorEntityDescription):
    """A cabinet sensor: how to read it, and how to restore it after a restart."""

    value_fn: Callable[[Cabinet], int | str | Decimal | datetime | None]
    unit_fn: Callable[[Cabinet], str | None] = lambda _: None
    # Digits shown: a money sensor follows its currency (¥0, not ¥0.00).
    precision_fn: Callable[[Cabinet], int | None] = lambda _: None
    restore_fn: Callable[[Cabinet, str], None] | None = None
    needs_mqtt: bool = False


def _currency(cabinet: Cabinet) -> str:
    return cabinet.config.currency.upper()


def _currency_exponent(cabinet: Cabinet) -> int:
    return currency_exponent(cabinet.config.currency)


def _price_per_credit(cabinet: Cabinet) -> Decimal | None:
    """What one credit costs now (Cabinet.unit_amount_now), as a number: the unit is the currency."""
    unit_amount = cabinet.unit_amount_now
    return None if unit_amount is None else from_minor_units(unit_amount, cabinet.config.currency)


def _restore_credits(cabinet: Cabinet, value: str) -> None:
    cabinet.restore(credits=int(float(value)))


def _restore_plays(cabinet: Cabinet, value: str) -> None:
    cabinet.restore(plays=int(float(value)))


def _restore_game_state(cabinet: Cabinet, value: str) -> None:
    cabinet.restore(game_state=GameState(value))


SENSORS: tuple[ArcadePaySensorDescription, ...] = (
    ArcadePaySensorDescription(
        key="credits",
        translation_key="credits",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda cabinet: cabinet.credits,
        restore_fn=_restore_credits,
        needs_mqtt=True,
    ),
    ArcadePaySensorDescription(
        key="game_state",
        translation_key="game_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in GameState],
        value_fn=lambda cabinet: cabinet.game_state.value,
        restore_fn=_restore_game_state,
        needs_mqtt=True,
    ),
    ArcadePaySensorDescription(
        key="revenue",
        translation_key="revenue",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        value_fn=lambda cabinet: cabinet.revenue_amount,
        unit_fn=_currency,
        precision_fn=_currency_exponent,
    ),
    ArcadePaySensorDescription(
        key="plays",
        translation_key="plays",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda cabinet: cabinet.plays,
        restore_fn=_restore_plays,
    ),
    ArcadePaySensorDescription(
        key="pending_credits",
        translation_key="pending_credits",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda cabinet: cabinet.pending_credits,
    ),
    ArcadePaySensorDescription(
        key="payments",
        translation_key="payments",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in PaymentsState],
        value_fn=lambda cabinet: cabinet.payments_state.value,
    ),
    ArcadePaySensorDescription(
        key="last_payment",
        translation_key="last_payment",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda cabinet: cabinet.last_payment,
    ),
    ArcadePaySensorDescription(
        key="price_per_credit",
        translation_key="price_per_credit",
        device_class=SensorDeviceClass.MONETARY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_price_per_credit,
        unit_fn=_currency,
        precision_fn=_currency_exponent,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ArcadePayConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of every cabinet, each under its subentry."""
    add_cabinet_entities(
        entry,
        async_add_entities,
        lambda account, _, cabinet: (ArcadePaySensor(account, cabinet, d) for d in SENSORS),
    )


class ArcadePaySensor(ArcadePayEntity, RestoreSensor):
    """A cabinet sensor."""

    entity_description: ArcadePaySensorDescription

    def __init__(self, account_id: str, cabinet: Cabinet, description: ArcadePaySensorDescription) -> None:
        """Set the unit, which follows the cabinet's currency."""
        super().__init__(account_id, cabinet, description)
        self._attr_native_unit_of_measurement = description.unit_fn(cabinet)
        self._attr_suggested_display_precision = description.precision_fn(cabinet)
        self._needs_mqtt = description.needs_mqtt

    async def async_added_to_hass(self) -> None:
        """Give the cabinet back what this sensor showed before the restart."""
        await super().async_added_to_hass()
        restore = self.entity_description.restore_fn
        if restore is None or (last := await self.async_get_last_state()) is None:
            return
        try:
            restore(self.cabinet, last.state)
        except ValueError:
            return  # 'unknown' or 'unavailable': nothing to restore.

    @property
    def native_value(self) -> int | str | Decimal | datetime | None:
        """Read the value from the cabinet."""
        return self.entity_description.value_fn(self.cabinet)

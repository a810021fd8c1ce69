"""The price per credit a Home Assistant QR code sells at, for automations (happy hour) to set."""

from __future__ import annotations

from decimal import Decimal

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .core.cabinet import Cabinet
from .core.currencies import (
    STRIPE_MAX_AMOUNT,
    PriceError,
    PriceTooHigh,
    from_minor_units,
    parse_price,
    smallest_amount,
)
from .data import ArcadePayConfigEntry, ArcadePayData
from .entity import ArcadePayEntity, add_cabinet_entities
from .flow_helpers import price_placeholders
from .live_price import async_set_price, sells_live_price

PARALLEL_UPDATES = 1

PRICE_PER_CREDIT = NumberEntityDescription(
    key="price_per_credit",
    translation_key="price_per_credit",
    device_class=NumberDeviceClass.MONETARY,
    entity_category=EntityCategory.CONFIG,
    mode=NumberMode.BOX,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ArcadePayConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the price of each cabinet whose QR code is Home Assistant's."""
    add_cabinet_entities(
        entry,
        async_add_entities,
        lambda account, data, cabinet: (
            [ArcadePayPricePerCredit(account, data, cabinet)] if sells_live_price(cabinet) else []
        ),
    )


class ArcadePayPricePerCredit(ArcadePayEntity, NumberEntity):
    """What one credit costs from the next scan on, in the cabinet's currency.

    Checked as the cabinet form checks a price (currencies.parse_price): above zero, the
    currency's decimals, at most what Stripe takes; anything else is refused with a translated
    error and changes nothing. Checkouts already open keep the price they were opened at.
    """

    def __init__(self, account_id: str, data: ArcadePayData, cabinet: Cabinet) -> None:
        """The range and step follow the currency (1 yen, 0.01 dollar, 0.010 dinar)."""
        super().__init__(account_id, cabinet, PRICE_PER_CREDIT)
        self._data = data
        currency = cabinet.config.currency
        self._attr_native_unit_of_measurement = currency.upper()
        self._attr_native_step = float(from_minor_units(smallest_amount(currency), currency))
        self._attr_native_min_value = self._attr_native_step
        self._attr_native_max_value = float(from_minor_units(STRIPE_MAX_AMOUNT, currency))

    @property
    def native_value(self) -> float | None:
        """The price now."""
        unit_amount = self.cabinet.unit_amount_now
        return (
            None
            if unit_amount is None
            else float(from_minor_units(unit_amount, self.cabinet.config.currency))
        )

    async def async_set_native_value(self, value: float) -> None:
        """Sell at this price from the next scan on."""
        currency = self.cabinet.config.currency
        # As typed: 2.5 (not 2.5000000001), 300 (a float's 300.0 has no decimals), 0.00001 (not 1e-05).
        typed = format(Decimal(str(value)).normalize(), "f")
        placeholders = price_placeholders(currency) | {"value": typed}
        try:
            unit_amount = parse_price(typed, currency)
        except PriceTooHigh as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="price_too_high",
                translation_placeholders=placeholders,
            ) from err
        except PriceError as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_price",
                translation_placeholders=placeholders,
            ) from err
        await async_set_price(self.hass, self._data.ledger, self.cabinet, unit_amount=unit_amount)

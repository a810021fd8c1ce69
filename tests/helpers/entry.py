"""The test account and its cabinet, as the integration creates them in (the fake) Stripe."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from custom_components.arcade_pay.const import (
    CONF_CURRENCY,
    CONF_MACHINE_ID,
    CONF_MANAGED_LINK,
    CONF_MAX_QUANTITY,
    CONF_PAYMENT_LINK_ID,
    CONF_PAYMENT_LINK_URL,
    CONF_PRICE_ID,
    CONF_PRODUCT_ID,
    CONF_UNIT_AMOUNT,
    DOMAIN,
    SUBENTRY_CABINET,
)
from fake_stripe import ACCOUNT_ID, FakeStripe

API_KEY = "sk_test_arcadepay_1234567890"
WEBHOOK_ID = "arcade_pay_test_webhook"
MACHINE_ID = "arcadeCabinet-123"
UNIT_AMOUNT = 200
PREFIX = f"arcade/machine/{MACHINE_ID}"  # The test cabinet's topics, under the entry's prefix.


def cabinet_device_id(hass: HomeAssistant, machine_id: str = MACHINE_ID) -> str:
    """The device registry's id of a cabinet of the test account."""
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{ACCOUNT_ID}_{machine_id}")})
    assert device is not None
    return device.id


def cabinet_subentry(
    link: dict[str, Any], machine_id: str = MACHINE_ID, title: str = "Pac-Man"
) -> ConfigSubentryData:
    """A cabinet subentry for a link the integration created."""
    return ConfigSubentryData(
        data={
            CONF_MACHINE_ID: machine_id,
            CONF_CURRENCY: link["currency"],
            CONF_MAX_QUANTITY: 10,
            CONF_PAYMENT_LINK_ID: link["id"],
            CONF_PAYMENT_LINK_URL: link["url"],
            CONF_MANAGED_LINK: True,
            CONF_UNIT_AMOUNT: UNIT_AMOUNT,
            CONF_PRICE_ID: link["price_id"],
            CONF_PRODUCT_ID: link["product_id"],
        },
        subentry_type=SUBENTRY_CABINET,
        title=title,
        unique_id=machine_id,
    )


def managed_link(
    fake: FakeStripe, machine_id: str = MACHINE_ID, unit_amount: int = UNIT_AMOUNT
) -> dict[str, Any]:
    """Create in the fake what the integration creates for a new cabinet."""
    link = fake.add_older_link(machine_id, unit_amount)
    price = fake.link_items[link["id"]][0]["price"]
    return link | {"price_id": price["id"], "product_id": price["product"]}

"""The test account and its cabinet, as the integration creates them in (the fake) Stripe."""

from __future__ import annotations

from typing import Any

from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from custom_components.arcade_pay.const import (
    CONF_ALLOW_PROMOTION_CODES,
    CONF_CURRENCY,
    CONF_HAPPY_HOUR_PACKS,
    CONF_MACHINE_ID,
    CONF_MANAGED_LINK,
    CONF_MAX_QUANTITY,
    CONF_PACKS,
    CONF_PAYMENT_LINK_ID,
    CONF_PAYMENT_LINK_URL,
    CONF_PLAYER_WEBHOOK_ID,
    CONF_PRICE_ID,
    CONF_PRODUCT_ID,
    CONF_QR_TARGET,
    CONF_SCAN_TOKEN,
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


def stable_qr_subentry(
    link: dict[str, Any], machine_id: str = MACHINE_ID, title: str = "Pac-Man"
) -> ConfigSubentryData:
    """A cabinet as this version makes one: its QR code on Home Assistant, packs and promotion codes.

    Packs: 3 credits for 5.00, 10 for 15.00; happy hour: 3 for 3.00.
    """
    subentry = cabinet_subentry(link, machine_id, title)
    settings = {
        CONF_QR_TARGET: "home_assistant",
        CONF_PACKS: [[3, 500], [10, 1500]],
        CONF_HAPPY_HOUR_PACKS: [[3, 300]],
        CONF_ALLOW_PROMOTION_CODES: True,
        CONF_SCAN_TOKEN: f"scan-{machine_id}",
    }
    return ConfigSubentryData(
        data={**subentry["data"], **settings},
        subentry_type=SUBENTRY_CABINET,
        title=title,
        unique_id=machine_id,
    )


def stable_qr_entry(entry: MockConfigEntry, *cabinets: ConfigSubentryData) -> MockConfigEntry:
    """``entry`` as this version stores it (1.2: nothing to migrate), with these cabinets.

    A test file of such cabinets defines ``config_entry`` to return it (``setup_entry`` sets it up).
    """
    return MockConfigEntry(
        domain=DOMAIN,
        title=entry.title,
        unique_id=entry.unique_id,
        data={**entry.data, CONF_PLAYER_WEBHOOK_ID: "player_webhook_test"},
        options=entry.options,
        subentries_data=list(cabinets),
        minor_version=2,
    )

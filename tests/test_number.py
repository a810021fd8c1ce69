"""The Price per credit number: what the next scan of a Home Assistant QR code charges, without a reload."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigEntryState, ConfigSubentryData
from homeassistant.const import CONF_NAME, EVENT_STATE_CHANGED, STATE_UNAVAILABLE, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er

from custom_components.arcade_pay.const import (
    CONF_CURRENCY,
    CONF_PRICE,
    CONF_QR_TARGET,
    CONF_SCAN_TOKEN,
    CONF_UNIT_AMOUNT,
    DOMAIN,
    SUBENTRY_CABINET,
)
from fake_stripe import FakeStripe

from .helpers import (
    cabinet_subentry,
    failing_ledger,
    managed_link,
    on_ledger_file,
    stable_qr_entry,
    stable_qr_subentry,
)
from .platform_snapshot import assert_on_cabinet_device

PRICE = "number.pac_man_price_per_credit"


@pytest.fixture
def platform() -> Platform:
    return Platform.NUMBER


def on_payment_link(link: dict[str, Any], machine_id: str, title: str) -> ConfigSubentryData:
    """A cabinet whose QR code is its payment link (as every cabinet made before)."""
    subentry = cabinet_subentry(link, machine_id, title)
    return ConfigSubentryData(
        data={**subentry["data"], CONF_QR_TARGET: "payment_link", CONF_SCAN_TOKEN: f"scan-{machine_id}"},
        subentry_type=SUBENTRY_CABINET,
        title=title,
        unique_id=machine_id,
    )


@pytest.fixture
def config_entry(
    config_entry: MockConfigEntry, cabinet_link: dict[str, Any], fake_stripe: FakeStripe
) -> MockConfigEntry:
    """Pac-Man's QR code is Home Assistant's; Frogger's is still its payment link."""
    frogger = on_payment_link(managed_link(fake_stripe, "frogger"), "frogger", "Frogger")
    return stable_qr_entry(config_entry, stable_qr_subentry(cabinet_link), frogger)


async def set_price(hass: HomeAssistant, value: float, entity_id: str = PRICE) -> None:
    await hass.services.async_call(
        "number", "set_value", {"entity_id": entity_id, "value": value}, blocking=True
    )


def price(hass: HomeAssistant, entity_id: str = PRICE) -> str:
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


async def remembered_price(
    hass: HomeAssistant, entry: MockConfigEntry, machine_id: str = "arcadeCabinet-123"
) -> Any:
    memory = await on_ledger_file(hass, entry, lambda ledger: ledger.cabinet_memory([machine_id], 0))
    return memory[machine_id].unit_amount_now


async def test_numbers(
    hass: HomeAssistant,
    platform_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """One per cabinet with the QR code on Home Assistant (none for Frogger), in its currency."""
    await snapshot_platform(hass, entity_registry, snapshot, platform_entry.entry_id)
    pac_man = next(s for s in platform_entry.subentries.values() if s.title == "Pac-Man")
    assert_on_cabinet_device(device_registry, entity_registry, platform_entry.entry_id, pac_man.subentry_id)
    assert hass.states.get("number.frogger_price_per_credit") is None


async def test_a_new_price_holds_from_the_next_scan_without_a_reload(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    links = dict(fake_stripe.payment_links)
    gone: list[str] = []

    @callback
    def watch(event: Event[Any]) -> None:
        if (new := event.data["new_state"]) is None or new.state == STATE_UNAVAILABLE:
            gone.append(event.data["entity_id"])

    unsubscribe = hass.bus.async_listen(EVENT_STATE_CHANGED, watch)
    await set_price(hass, 1.5)
    await hass.async_block_till_done()
    unsubscribe()

    assert price(hass) == "1.5"
    assert hass.states.get("sensor.pac_man_price_per_credit").state == "1.50"
    assert hass.states.get("image.pac_man_payment_qr_code").attributes["price_per_credit"] == "1.50 USD"
    assert await remembered_price(hass, setup_entry) == 150
    # No reload (nothing went unavailable), no new payment link, the form's price unchanged.
    assert gone == []
    assert fake_stripe.payment_links == links
    assert next(iter(setup_entry.subentries.values())).data[CONF_UNIT_AMOUNT] == 200


async def test_the_price_survives_a_restart(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    await set_price(hass, 0.75)
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert price(hass) == "0.75"


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (2.555, "invalid_price"),  # more decimals than dollars have
        (0.001, "out_of_range"),  # below one cent: Home Assistant's own range check
        (0, "out_of_range"),
        (-1, "out_of_range"),
        (1_000_000, "out_of_range"),  # above Stripe's largest amount
    ],
)
async def test_a_price_the_form_would_refuse_changes_nothing(
    hass: HomeAssistant, setup_entry: MockConfigEntry, value: float, key: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await set_price(hass, value)
    assert err.value.translation_key == key
    assert price(hass) == "2.0"
    assert await remembered_price(hass, setup_entry) is None


async def test_the_refusal_says_what_was_wrong(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await set_price(hass, 2.555)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_placeholders == {
        "value": "2.555",
        "currency": "USD",
        "example": "1.50 or 1,50",
        "max_price": "999999.99",
        "max_quantity_limit": "99",
    }


async def test_a_ledger_that_cannot_be_written_changes_nothing(
    hass: HomeAssistant, setup_entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_ledger(monkeypatch, "set_cabinet_price", "disk full")
    with pytest.raises(HomeAssistantError) as err:
        await set_price(hass, 1.5)
    assert err.value.translation_key == "ledger_failed"
    assert price(hass) == "2.0"
    assert hass.states.get("sensor.pac_man_price_per_credit").state == "2.00"


async def reconfigure(hass: HomeAssistant, entry: MockConfigEntry, changes: dict[str, Any]) -> None:
    subentry = next(s for s in entry.subentries.values() if s.title == "Pac-Man")
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CABINET),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    form = {key: key.description["suggested_value"] for key in result["data_schema"].schema}
    await hass.config_entries.subentries.async_configure(result["flow_id"], form | changes)
    await hass.async_block_till_done()


async def test_a_new_price_in_the_form_is_the_price_now(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    await set_price(hass, 1.5)
    await reconfigure(hass, setup_entry, {CONF_NAME: "Pac-Man"})  # another setting: the live price stays
    assert price(hass) == "1.5"

    await reconfigure(hass, setup_entry, {CONF_PRICE: "2,50"})
    assert setup_entry.state is ConfigEntryState.LOADED
    assert price(hass) == "2.5"


@pytest.fixture
def yen_entry(
    config_entry: MockConfigEntry, cabinet_link: dict[str, Any], fake_stripe: FakeStripe
) -> MockConfigEntry:
    link = fake_stripe.add_older_link("galaga", 500, "jpy")
    item = fake_stripe.link_items[link["id"]][0]["price"]
    galaga = stable_qr_subentry(
        link | {"price_id": item["id"], "product_id": item["product"]}, "galaga", "Galaga"
    )
    galaga["data"] = {**galaga["data"], CONF_CURRENCY: "jpy", CONF_UNIT_AMOUNT: 500}
    return stable_qr_entry(config_entry, galaga)


async def test_a_currency_without_decimals(
    hass: HomeAssistant, mqtt_mock: Any, fake_stripe: FakeStripe, yen_entry: MockConfigEntry
) -> None:
    yen_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(yen_entry.entry_id)
    await hass.async_block_till_done()
    entity_id = "number.galaga_price_per_credit"
    state = hass.states.get(entity_id)
    assert (state.state, state.attributes["unit_of_measurement"]) == ("500.0", "JPY")
    assert (state.attributes["min"], state.attributes["step"], state.attributes["max"]) == (1, 1, 99_999_999)
    with pytest.raises(ServiceValidationError) as err:
        await set_price(hass, 2.5, entity_id)
    assert err.value.translation_key == "invalid_price"
    await set_price(hass, 300, entity_id)
    assert price(hass, entity_id) == "300.0"
    assert await remembered_price(hass, yen_entry, "galaga") == 300

"""What an operator reads on the device page: primary entities, units, precision, price."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, mock_restore_cache

from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er

from fake_stripe import FakeStripe

from .conftest import cabinet_subentry
from .test_config_flow import NEW_CABINET, start_cabinet_flow


async def test_what_an_operator_watches_is_primary(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    registry = er.async_get(hass)
    for entity_id in (
        "binary_sensor.pac_man_online",
        "sensor.pac_man_pending_credits",
        "switch.pac_man_accepting_payments",
    ):
        entry = registry.async_get(entity_id)
        assert entry is not None
        assert entry.entity_category is None, entity_id


async def test_counts_have_no_unit(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    """A unit would read "1 credits" and "1 plays"; the entity names say what is counted."""
    for key in ("credits", "plays", "pending_credits"):
        assert "unit_of_measurement" not in hass.states.get(f"sensor.pac_man_{key}").attributes, key


async def test_price_per_credit_on_the_device_page(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    state = hass.states.get("sensor.pac_man_price_per_credit")
    assert state.state == "2.00"
    assert state.attributes["unit_of_measurement"] == "USD"
    assert state.attributes["device_class"] == "monetary"
    entry = er.async_get(hass).async_get("sensor.pac_man_price_per_credit")
    assert entry.options["sensor"]["suggested_display_precision"] == 2
    assert er.async_get(hass).async_get("sensor.pac_man_revenue").options["sensor"] == {
        "suggested_display_precision": 2
    }


async def test_yen_is_shown_without_decimals(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe, config_entry: MockConfigEntry
) -> None:
    link: dict[str, Any] = fake_stripe.add_older_link("yen-1", 200, "jpy")
    price = fake_stripe.link_items[link["id"]][0]["price"]
    yen = cabinet_subentry(
        link | {"price_id": price["id"], "product_id": price["product"]}, machine_id="yen-1", title="Tokyo"
    )
    entry = MockConfigEntry(
        domain=config_entry.domain,
        title=config_entry.title,
        unique_id=config_entry.unique_id,
        data=config_entry.data,
        options=config_entry.options,
        subentries_data=[yen],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    registry = er.async_get(hass)
    for entity_id in ("sensor.tokyo_revenue", "sensor.tokyo_price_per_credit"):
        assert registry.async_get(entity_id).options["sensor"]["suggested_display_precision"] == 0
    assert hass.states.get("sensor.tokyo_price_per_credit").state == "200"
    assert hass.states.get("sensor.tokyo_revenue").attributes["unit_of_measurement"] == "JPY"


QR_CODE = "image.pac_man_payment_qr_code"
EARLIER = "2026-01-01T12:00:00+00:00"


async def test_qr_code_time_survives_a_restart_with_the_same_link(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    cabinet_link: dict[str, Any],
) -> None:
    mock_restore_cache(hass, [State(QR_CODE, EARLIER, {"url": cabinet_link["url"]})])
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(QR_CODE).state == EARLIER
    # Reloading (as adding another cabinet does) keeps it too.
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(QR_CODE).state == EARLIER


async def test_qr_code_time_changes_with_the_link(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe, config_entry: MockConfigEntry
) -> None:
    mock_restore_cache(hass, [State(QR_CODE, EARLIER, {"url": "https://buy.stripe.com/old"})])
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(QR_CODE).state > EARLIER


@pytest.mark.xfail(
    strict=True,
    reason="Issue 7 §2, open: adding a cabinet reloads the entry, so every other cabinet's entities "
    "go unavailable and back. Needs the hub to add and remove one cabinet without a reload.",
)
async def test_adding_a_cabinet_leaves_the_others_logbook_alone(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    changes: list[str] = []

    @callback
    def _record(event: Event[EventStateChangedData]) -> None:
        old, new = event.data["old_state"], event.data["new_state"]
        # What the logbook records: a state that changed from one value to another.
        if (
            event.data["entity_id"].split(".")[1].startswith("pac_man")
            and old
            and new
            and old.state != new.state
        ):
            changes.append(f"{event.data['entity_id']}: {old.state} -> {new.state}")

    hass.bus.async_listen(EVENT_STATE_CHANGED, _record)
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_CABINET)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert hass.states.get("sensor.galaga_credits") is not None
    assert changes == []

"""Cabinet sensors: what they show, how they follow the cabinet, and what an operator reads."""

from __future__ import annotations

from http import HTTPStatus
import json
from typing import Any
from unittest.mock import MagicMock

import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    mock_restore_cache,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNAVAILABLE, Platform
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util

from custom_components.arcade_pay.const import DOMAIN
from fake_stripe import ACCOUNT_ID, FakeStripe

from .helpers import MACHINE_ID, NEW_CABINET, PREFIX, WEBHOOK_ID, cabinet_subentry, start_cabinet_flow
from .platform_snapshot import assert_on_cabinet_device


@pytest.fixture
def platform() -> Platform:
    return Platform.SENSOR


def sensor(hass: HomeAssistant, key: str) -> str:
    state = hass.states.get(f"sensor.pac_man_{key}")
    assert state is not None
    return state.state


async def test_sensors(
    hass: HomeAssistant,
    platform_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    await snapshot_platform(hass, entity_registry, snapshot, platform_entry.entry_id)
    assert_on_cabinet_device(
        device_registry, entity_registry, platform_entry.entry_id, next(iter(platform_entry.subentries))
    )


async def test_cabinet_device(
    hass: HomeAssistant,
    platform_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """One device per cabinet, under the cabinet's subentry; the identifier survives re-adding."""
    device = device_registry.async_get_device(identifiers={(DOMAIN, f"{ACCOUNT_ID}_{MACHINE_ID}")})
    assert device == snapshot
    assert device.config_entries_subentries == {platform_entry.entry_id: set(platform_entry.subentries)}


async def test_sensors_follow_what_the_cabinet_reports(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    async_fire_mqtt_message(hass, f"{PREFIX}/state", json.dumps({"credits": 3, "state": "playing"}))
    await hass.async_block_till_done()
    assert (sensor(hass, "credits"), sensor(hass, "game_state"), sensor(hass, "plays")) == (
        "3",
        "playing",
        "0",
    )

    game_over = {"machineId": MACHINE_ID, "status": "game_over", "timestamp": "2024-07-01T12:30:00Z"}
    async_fire_mqtt_message(hass, f"{PREFIX}/gameover", json.dumps(game_over))
    await hass.async_block_till_done()
    assert (sensor(hass, "credits"), sensor(hass, "plays")) == ("2", "1")


async def test_a_paid_payment_shows_in_revenue_and_last_payment(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    platform_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
) -> None:
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=3)
    before = dt_util.utcnow().replace(microsecond=0)
    client = await hass_client_no_auth()
    resp = await client.post(f"/api/webhook/{WEBHOOK_ID}", data=delivery.body, headers=delivery.headers)
    assert resp.status == HTTPStatus.OK
    await hass.async_block_till_done()
    assert (sensor(hass, "credits"), sensor(hass, "game_state")) == ("3", "playing")
    assert sensor(hass, "revenue") == "6.00"
    # When Arcade Pay took the payment, to the second.
    paid_at = dt_util.parse_datetime(sensor(hass, "last_payment"))
    assert paid_at is not None
    assert before <= paid_at <= dt_util.utcnow()
    # Paid credits are not free ones: the price per credit stays what the link asks.
    assert sensor(hass, "price_per_credit") == "2.00"


async def test_pending_credits_is_primary(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    """What an operator watches is on the device page, not under diagnostics."""
    entry = er.async_get(hass).async_get("sensor.pac_man_pending_credits")
    assert entry is not None
    assert entry.entity_category is None


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


@pytest.mark.parametrize(
    ("restored", "expected"),
    [
        (
            {"credits": "4", "plays": "17", "game_state": "playing"},
            {"credits": "4", "plays": "17", "game_state": "playing"},
        ),
        (
            {"credits": "unavailable", "plays": "unknown", "game_state": "bogus"},
            {"credits": "0", "plays": "0", "game_state": "attract"},
        ),
    ],
)
async def test_state_is_restored_after_restart(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: Any,
    config_entry: MockConfigEntry,
    restored: dict[str, str],
    expected: dict[str, str],
) -> None:
    mock_restore_cache(hass, [State(f"sensor.pac_man_{key}", value) for key, value in restored.items()])
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert {key: sensor(hass, key) for key in expected} == expected


async def test_what_only_mqtt_tells_is_unavailable_while_it_is_down(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """entity-unavailable: credits and game state come from the cabinet over MQTT."""
    needs_mqtt = ("credits", "game_state")
    async_dispatcher_send(hass, "mqtt_connection_state", False)
    await hass.async_block_till_done()
    for key in needs_mqtt:
        assert sensor(hass, key) == STATE_UNAVAILABLE, key
    # What Arcade Pay knows from Stripe and its ledger stays.
    assert sensor(hass, "revenue") != STATE_UNAVAILABLE

    async_dispatcher_send(hass, "mqtt_connection_state", True)
    await hass.async_block_till_done()
    for key in needs_mqtt:
        assert sensor(hass, key) != STATE_UNAVAILABLE, key


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

"""Cabinet connectivity: online from the cabinet's retained MQTT status (its last will)."""

from __future__ import annotations

import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .helpers import MACHINE_ID
from .platform_snapshot import assert_on_cabinet_device

ONLINE = "binary_sensor.pac_man_online"


@pytest.fixture
def platform() -> Platform:
    return Platform.BINARY_SENSOR


async def test_binary_sensors(
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


async def test_online_follows_the_cabinets_status(
    hass: HomeAssistant, platform_entry: MockConfigEntry
) -> None:
    # Unknown until the cabinet (or its broker, through the last will) says.
    assert hass.states.get(ONLINE).state == "unknown"
    for payload, expected in (("online", "on"), ("offline", "off"), ("online", "on")):
        async_fire_mqtt_message(hass, f"arcade/machine/{MACHINE_ID}/status", payload)
        await hass.async_block_till_done()
        assert hass.states.get(ONLINE).state == expected, payload


async def test_online_is_primary(hass: HomeAssistant, platform_entry: MockConfigEntry) -> None:
    """What an operator watches is on the device page, not under diagnostics."""
    entry = er.async_get(hass).async_get(ONLINE)
    assert entry is not None
    assert entry.entity_category is None


async def test_online_is_unavailable_while_mqtt_is_down(
    hass: HomeAssistant, platform_entry: MockConfigEntry
) -> None:
    """entity-unavailable: without MQTT nobody knows whether the cabinet is there."""
    async_fire_mqtt_message(hass, f"arcade/machine/{MACHINE_ID}/status", "online")
    async_dispatcher_send(hass, "mqtt_connection_state", False)
    await hass.async_block_till_done()
    assert hass.states.get(ONLINE).state == STATE_UNAVAILABLE
    async_dispatcher_send(hass, "mqtt_connection_state", True)
    await hass.async_block_till_done()
    assert hass.states.get(ONLINE).state == "on"

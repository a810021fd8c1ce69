"""The Game event entity: fires when a game ends or credits arrive, for automations."""

from __future__ import annotations

from http import HTTPStatus
import json
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util

from fake_stripe import FakeStripe

from .helpers import MACHINE_ID, PREFIX, WEBHOOK_ID
from .platform_snapshot import assert_on_cabinet_device

GAME = "event.pac_man_game"


@pytest.fixture
def platform() -> Platform:
    return Platform.EVENT


async def test_events(
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


async def test_game_over_fires_and_a_state_report_does_not(
    hass: HomeAssistant, platform_entry: MockConfigEntry
) -> None:
    # The cabinet reporting its credits is a state, not an event: automations must not fire.
    async_fire_mqtt_message(hass, f"{PREFIX}/state", json.dumps({"credits": 2, "state": "playing"}))
    await hass.async_block_till_done()
    assert hass.states.get(GAME).state == "unknown"

    game_over = {"machineId": MACHINE_ID, "status": "game_over", "timestamp": "2024-07-01T12:30:00Z"}
    async_fire_mqtt_message(hass, f"{PREFIX}/gameover", json.dumps(game_over))
    await hass.async_block_till_done()
    event = hass.states.get(GAME)
    # An event entity's state is when it last fired.
    assert dt_util.parse_datetime(event.state) is not None
    assert event.attributes["event_type"] == "game_over"


async def test_a_paid_payment_fires_credit_added(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    platform_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
) -> None:
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=2)
    client = await hass_client_no_auth()
    resp = await client.post(f"/api/webhook/{WEBHOOK_ID}", data=delivery.body, headers=delivery.headers)
    assert resp.status == HTTPStatus.OK
    await hass.async_block_till_done()
    event = hass.states.get(GAME)
    assert dt_util.parse_datetime(event.state) is not None
    assert {key: event.attributes.get(key) for key in ("event_type", "credits", "payment_id", "source")} == {
        "event_type": "credit_added",
        "credits": 2,
        "payment_id": delivery.event["data"]["object"]["id"],
        "source": "stripe",
    }

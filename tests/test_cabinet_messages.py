"""What cabinets publish: game over, status (last will) and self-reported state."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import MagicMock

import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_mqtt_message,
)

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from custom_components.arcade_pay.const import DOMAIN, EVENT_GAME_OVER
from fake_stripe import ACCOUNT_ID

from .helpers import MACHINE_ID, PREFIX, cabinet_device_id

GAME_OVER = json.dumps({"machineId": MACHINE_ID, "status": "game_over", "timestamp": "2024-07-01T12:30:00Z"})


def state(hass: HomeAssistant, key: str) -> str:
    entity = hass.states.get(f"sensor.pac_man_{key}")
    assert entity is not None
    return entity.state


async def give_credits(hass: HomeAssistant, credits: int) -> None:
    async_fire_mqtt_message(hass, f"{PREFIX}/state", json.dumps({"credits": credits, "state": "playing"}))
    await hass.async_block_till_done()


async def test_game_over(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    events = async_capture_events(hass, EVENT_GAME_OVER)
    await give_credits(hass, 3)
    assert (state(hass, "credits"), state(hass, "game_state")) == ("3", "playing")

    async_fire_mqtt_message(hass, f"{PREFIX}/gameover", GAME_OVER)
    await hass.async_block_till_done()

    # Credits are left, so the next game is on its way: no `attract` flicker.
    assert state(hass, "game_state") == "playing"
    assert state(hass, "plays") == "1"
    assert state(hass, "credits") == "2"
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{ACCOUNT_ID}_{MACHINE_ID}")})
    assert device is not None
    assert [e.data for e in events] == [{"machine_id": MACHINE_ID, "device_id": device.id}]
    game = hass.states.get("event.pac_man_game")
    assert game.attributes["event_type"] == "game_over"


async def test_game_over_with_credits_left_never_shows_attract(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """With credits left after a game over the state stays `playing`.

    Going `attract` and back to `playing` within the second would double logbook entries and
    fire automations that trigger on `attract`.
    """
    await give_credits(hass, 2)
    seen: list[str] = []
    hass.bus.async_listen(
        "state_changed",
        lambda event: (
            seen.append(event.data["new_state"].state)
            if event.data["entity_id"] == "sensor.pac_man_game_state"
            else None
        ),
    )
    async_fire_mqtt_message(hass, f"{PREFIX}/gameover", GAME_OVER)
    await hass.async_block_till_done()
    assert (state(hass, "credits"), state(hass, "game_state")) == ("1", "playing")
    assert "attract" not in seen

    async_fire_mqtt_message(hass, f"{PREFIX}/gameover", GAME_OVER)
    await hass.async_block_till_done()
    assert (state(hass, "credits"), state(hass, "game_state")) == ("0", "attract")


async def test_game_over_without_timestamp_and_credits_never_negative(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    events = async_capture_events(hass, EVENT_GAME_OVER)
    for _ in range(2):
        async_fire_mqtt_message(
            hass, f"{PREFIX}/gameover", json.dumps({"machineId": MACHINE_ID, "status": "game_over"})
        )
    await hass.async_block_till_done()
    assert len(events) == 2
    assert state(hass, "credits") == "0"
    assert state(hass, "plays") == "2"


async def test_credits_per_game_option(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    hass.config_entries.async_update_entry(setup_entry, options=setup_entry.options | {"credits_per_game": 2})
    await hass.async_block_till_done()
    await give_credits(hass, 5)
    async_fire_mqtt_message(hass, f"{PREFIX}/gameover", GAME_OVER)
    await hass.async_block_till_done()
    assert state(hass, "credits") == "3"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe\x00binary",
        b"[]",
        json.dumps({"machineId": MACHINE_ID, "status": "started"}).encode(),
        json.dumps({"machineId": "someoneElse", "status": "game_over"}).encode(),
        json.dumps({"machineId": MACHINE_ID, "status": "game_over", "timestamp": "yesterday"}).encode(),
        b"{" + b" " * 10_000 + b"}",
    ],
)
async def test_malformed_game_over_is_ignored(
    hass: HomeAssistant, setup_entry: MockConfigEntry, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    events = async_capture_events(hass, EVENT_GAME_OVER)
    await give_credits(hass, 2)
    async_fire_mqtt_message(hass, f"{PREFIX}/gameover", payload)
    await hass.async_block_till_done()
    assert events == []
    assert (state(hass, "credits"), state(hass, "plays")) == ("2", "0")
    assert caplog.text.count("Ignoring malformed message") == 1


async def test_malformed_messages_are_warned_about_once_per_topic(
    hass: HomeAssistant, setup_entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(5):
        async_fire_mqtt_message(hass, f"{PREFIX}/gameover", b"junk")
    await hass.async_block_till_done()
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "malformed" in r.getMessage()]
    assert len(warnings) == 1


async def test_messages_of_unknown_cabinets_are_ignored(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    events = async_capture_events(hass, EVENT_GAME_OVER)
    async_fire_mqtt_message(
        hass, "arcade/machine/unknown/gameover", json.dumps({"machineId": "unknown", "status": "game_over"})
    )
    async_fire_mqtt_message(hass, "arcade/machine/unknown/status", "online")
    await hass.async_block_till_done()
    assert events == []


async def test_status_drives_online(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    online = "binary_sensor.pac_man_online"
    assert hass.states.get(online).state == "unknown"
    for payload, expected in (
        ("online", "on"),
        ("offline", "off"),
        (" ONLINE\n", "on"),
        ("", "on"),
        ("maybe", "on"),
    ):
        async_fire_mqtt_message(hass, f"{PREFIX}/status", payload)
        await hass.async_block_till_done()
        assert hass.states.get(online).state == expected, payload


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps({"credits": -1, "state": "playing"}),
        json.dumps({"credits": 1.5, "state": "playing"}),
        json.dumps({"credits": True, "state": "playing"}),
        json.dumps({"credits": 1, "state": "dancing"}),
        json.dumps({"state": "playing"}),
        "garbage",
    ],
)
async def test_malformed_state_is_ignored(
    hass: HomeAssistant, setup_entry: MockConfigEntry, payload: str
) -> None:
    await give_credits(hass, 4)
    async_fire_mqtt_message(hass, f"{PREFIX}/state", payload)
    await hass.async_block_till_done()
    assert (state(hass, "credits"), state(hass, "game_state")) == ("4", "playing")


async def test_reported_state_overrides_estimate(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    await give_credits(hass, 4)
    async_fire_mqtt_message(
        hass, f"{PREFIX}/state", json.dumps({"credits": 0, "state": "attract", "extra": 1})
    )
    await hass.async_block_till_done()
    assert (state(hass, "credits"), state(hass, "game_state")) == ("0", "attract")
    async_fire_mqtt_message(hass, f"{PREFIX}/state", "")  # retained state cleared: keep what we know
    await hass.async_block_till_done()
    assert state(hass, "credits") == "0"


async def test_custom_topic_prefix(
    hass: HomeAssistant, mqtt_mock: MagicMock, config_entry: MockConfigEntry, fake_stripe: Any
) -> None:
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={"topic_prefix": "venue/a", "credits_per_game": 1}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    subscribed = {c.args[0] for c in mqtt_mock.async_subscribe.call_args_list}
    assert {"venue/a/+/gameover", "venue/a/+/status", "venue/a/+/state"} <= subscribed
    events = async_capture_events(hass, EVENT_GAME_OVER)
    async_fire_mqtt_message(hass, f"{PREFIX}/gameover", GAME_OVER)
    async_fire_mqtt_message(hass, f"venue/a/{MACHINE_ID}/gameover", GAME_OVER)
    await hass.async_block_till_done()
    assert len(events) == 1


async def test_the_announcement_shows_model_and_version_on_the_device(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    device_registry = dr.async_get(hass)
    device_id = cabinet_device_id(hass)
    assert device_registry.async_get(device_id).model == "Arcade cabinet"  # type: ignore[union-attr]
    announcement = {
        "machineId": MACHINE_ID,
        "name": "Pac-Man",
        "model": "Pac-Man upright",
        "swVersion": "0.2.0",
    }
    async_fire_mqtt_message(hass, f"{PREFIX}/info", json.dumps(announcement), retain=True)
    await hass.async_block_till_done()
    device = device_registry.async_get(device_id)
    assert device is not None
    assert (device.model, device.sw_version) == ("Pac-Man upright", "0.2.0")
    # The operator's name for the cabinet stays: the announcement only offers a name to new ones.
    assert device.name == "Pac-Man"

    # A later version (after an update) replaces it; what an announcement leaves out stays.
    async_fire_mqtt_message(
        hass, f"{PREFIX}/info", json.dumps({"machineId": MACHINE_ID, "name": "x", "swVersion": "0.3.0"})
    )
    await hass.async_block_till_done()
    device = device_registry.async_get(device_id)
    assert device is not None
    assert (device.model, device.sw_version) == ("Pac-Man upright", "0.3.0")


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps({"machineId": "someone-else", "name": "x", "model": "Wrong", "swVersion": "9"}),
        json.dumps({"machineId": MACHINE_ID, "model": "No name"}),
        b"\xff",
        "",
    ],
)
async def test_an_announcement_that_is_not_one_changes_nothing(
    hass: HomeAssistant, setup_entry: MockConfigEntry, payload: str | bytes
) -> None:
    async_fire_mqtt_message(hass, f"{PREFIX}/info", payload)
    await hass.async_block_till_done()
    device = dr.async_get(hass).async_get(cabinet_device_id(hass))
    assert device is not None
    assert (device.model, device.sw_version) == ("Arcade cabinet", None)

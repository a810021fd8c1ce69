"""The earlier system's HTTP game over: ``POST {"machine_id": "…"}`` to the
entry's second webhook counts exactly like an MQTT game over, and its MQTT echo does not count again."""

from __future__ import annotations

from datetime import datetime
import json
import threading
from typing import Any
from unittest.mock import MagicMock, patch

from aiohttp.test_utils import TestClient
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_mqtt_message,
)

from homeassistant.components import mqtt
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.util import dt as dt_util

from custom_components.arcade_pay.const import CONF_GAME_OVER_WEBHOOK_ID, EVENT_GAME_OVER
from custom_components.arcade_pay.core.cabinet import Cabinet
from custom_components.arcade_pay.core.ledger import PaymentLedger
from fake_stripe import FakeStripe

from .helpers import MACHINE_ID, cabinet_device_id, patch_ledger, published, settle, wait_for

TOPIC = f"arcade/machine/{MACHINE_ID}/gameover"
GAME = "event.pac_man_game"


def url(entry: MockConfigEntry) -> str:
    return f"/api/webhook/{entry.data[CONF_GAME_OVER_WEBHOOK_ID]}"


def state(hass: HomeAssistant, key: str) -> str:
    entity = hass.states.get(f"sensor.pac_man_{key}")
    assert entity is not None
    return entity.state


def game_overs_published(mqtt_mock: MagicMock) -> list[tuple[str, str, int, bool]]:
    return [call for call in published(mqtt_mock) if call[0].endswith("/gameover")]


async def post(client: TestClient, entry: MockConfigEntry, body: bytes | str) -> tuple[int, Any]:
    resp = await client.post(url(entry), data=body)
    await settle(client)
    return resp.status, await resp.json() if resp.content_type == "application/json" else None


async def give_credits(hass: HomeAssistant, credits: int) -> None:
    state_topic = f"arcade/machine/{MACHINE_ID}/state"
    async_fire_mqtt_message(hass, state_topic, json.dumps({"credits": credits, "state": "playing"}))
    await hass.async_block_till_done()


async def test_a_game_over_by_http_counts_once_and_is_published_as_the_earlier_system_did(
    hass: HomeAssistant, client: TestClient, mqtt_mock: MagicMock, setup_entry: MockConfigEntry
) -> None:
    await give_credits(hass, 3)
    events = async_capture_events(hass, EVENT_GAME_OVER)
    # What any subscriber of the topic gets, Arcade Pay's own subscription included.
    on_the_topic: list[bytes] = []
    unsubscribe = await mqtt.async_subscribe(
        hass, TOPIC, lambda msg: on_the_topic.append(msg.payload), encoding=None
    )
    before = dt_util.utcnow().replace(microsecond=0)

    status, answer = await post(client, setup_entry, json.dumps({"machine_id": MACHINE_ID}))

    assert (status, answer) == (200, {"received": True, "machine_id": MACHINE_ID, "published": True})
    # Exactly the MQTT game over's effects: the event entity, the bus event, the game state.
    game = hass.states.get(GAME)
    assert game is not None
    assert game.attributes["event_type"] == "game_over"
    assert [e.data for e in events] == [{"machine_id": MACHINE_ID, "device_id": cabinet_device_id(hass)}]
    assert (state(hass, "plays"), state(hass, "credits"), state(hass, "game_state")) == ("1", "2", "playing")
    # The earlier system's message, once, on the earlier system's topic.
    [(topic, payload, qos, retain)] = game_overs_published(mqtt_mock)
    assert (topic, qos, retain) == (TOPIC, 1, False)
    message = json.loads(payload)
    assert message.keys() == {"machineId", "status", "timestamp"}
    assert (message["machineId"], message["status"]) == (MACHINE_ID, "game_over")
    assert before <= datetime.fromisoformat(message["timestamp"]) <= dt_util.utcnow()
    # The broker brought it back to the subscribers, and it was not counted a second time.
    assert on_the_topic == [payload.encode()]
    assert len(events) == 1
    assert state(hass, "plays") == "1"
    unsubscribe()

    # A cabinet's own game over on MQTT still counts, and the same cabinet's HTTP one again too.
    async_fire_mqtt_message(hass, TOPIC, json.dumps({"machineId": MACHINE_ID, "status": "game_over"}))
    await hass.async_block_till_done()
    assert (await post(client, setup_entry, json.dumps({"machine_id": MACHINE_ID})))[0] == 200
    assert (len(events), state(hass, "plays"), state(hass, "credits")) == (3, "3", "0")


async def test_two_game_overs_in_the_same_second_both_count_and_neither_echo(
    hass: HomeAssistant, client: TestClient, mqtt_mock: MagicMock, setup_entry: MockConfigEntry
) -> None:
    """Same cabinet, same second: the same message twice; each published copy is expected back once."""
    events = async_capture_events(hass, EVENT_GAME_OVER)
    with patch("custom_components.arcade_pay.cabinet_messages.utcnow", return_value=dt_util.utcnow()):
        for _ in range(2):
            assert (await post(client, setup_entry, json.dumps({"machine_id": MACHINE_ID})))[0] == 200
    first, second = game_overs_published(mqtt_mock)
    assert first == second
    assert (len(events), state(hass, "plays")) == (2, "2")

    # A third copy of that message (a replay, not ours) is a game over again.
    async_fire_mqtt_message(hass, TOPIC, first[1])
    await hass.async_block_till_done()
    assert (len(events), state(hass, "plays")) == (3, "3")


async def test_a_game_over_that_cannot_be_published_still_counts_and_its_late_echo_does_not(
    hass: HomeAssistant, client: TestClient, mqtt_mock: MagicMock, setup_entry: MockConfigEntry
) -> None:
    events = async_capture_events(hass, EVENT_GAME_OVER)
    mqtt_mock.async_publish.side_effect = HomeAssistantError("not connected")

    status, answer = await post(client, setup_entry, json.dumps({"machine_id": MACHINE_ID}))

    assert (status, answer) == (200, {"received": True, "machine_id": MACHINE_ID, "published": False})
    assert (len(events), state(hass, "plays")) == (1, "1")
    # The MQTT client keeps a QoS 1 message it could not send and sends it once connected again.
    [(_, payload, _, _)] = game_overs_published(mqtt_mock)
    async_fire_mqtt_message(hass, TOPIC, payload)
    await hass.async_block_till_done()
    assert (len(events), state(hass, "plays")) == (1, "1")


async def test_unknown_machine_id_is_400_and_changes_nothing(
    hass: HomeAssistant, client: TestClient, mqtt_mock: MagicMock, setup_entry: MockConfigEntry
) -> None:
    events = async_capture_events(hass, EVENT_GAME_OVER)
    status, answer = await post(client, setup_entry, json.dumps({"machine_id": "galaga-2"}))
    assert status == 400
    assert "galaga-2" in answer["error"]
    assert events == []
    assert game_overs_published(mqtt_mock) == []
    assert hass.states.get(GAME).state == "unknown"
    assert state(hass, "plays") == "0"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "not JSON"),
        (b"machine_id=arcadeCabinet-123", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[" * 100_000, "larger than 4096 bytes"),
        (json.dumps([MACHINE_ID]).encode(), "not a JSON object"),
        (json.dumps({"machineId": MACHINE_ID}).encode(), "machine_id is missing"),
        (json.dumps({"machine_id": 123}).encode(), "machine_id must be"),
        (json.dumps({"machine_id": None}).encode(), "machine_id must be"),
        (json.dumps({"machine_id": [MACHINE_ID]}).encode(), "machine_id must be"),
        (json.dumps({"machine_id": ""}).encode(), "machine_id must be"),
        (json.dumps({"machine_id": f"{MACHINE_ID}/+"}).encode(), "machine_id must be"),
        (json.dumps({"machine_id": MACHINE_ID, "pad": "x" * 5000}).encode(), "larger than 4096 bytes"),
    ],
    ids=[
        "empty",
        "form",
        "not-utf8",
        "oversized-nesting",
        "array",
        "camel-case-key",
        "number",
        "null",
        "list",
        "empty-id",
        "topic-wildcard",
        "oversized",
    ],
)
async def test_malformed_bodies_are_400_and_change_nothing(
    hass: HomeAssistant,
    client: TestClient,
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    body: bytes,
    error: str,
) -> None:
    events = async_capture_events(hass, EVENT_GAME_OVER)
    status, answer = await post(client, setup_entry, body)
    assert status == 400
    assert error in answer["error"]
    assert events == []
    assert game_overs_published(mqtt_mock) == []
    assert state(hass, "plays") == "0"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405(
    hass: HomeAssistant, client: TestClient, mqtt_mock: MagicMock, setup_entry: MockConfigEntry, method: str
) -> None:
    events = async_capture_events(hass, EVENT_GAME_OVER)
    resp = await client.request(method, url(setup_entry), data=json.dumps({"machine_id": MACHINE_ID}))
    await settle(client)
    assert resp.status == 405
    assert events == []
    assert game_overs_published(mqtt_mock) == []


async def test_a_request_from_outside_the_local_network_is_not_handled(
    hass: HomeAssistant, client: TestClient, mqtt_mock: MagicMock, setup_entry: MockConfigEntry
) -> None:
    """Local only (game_over_webhook.py): Home Assistant drops it, with its own 200."""
    events = async_capture_events(hass, EVENT_GAME_OVER)
    with patch("homeassistant.components.webhook.network_util.is_local", return_value=False):
        status, _ = await post(client, setup_entry, json.dumps({"machine_id": MACHINE_ID}))
    assert status == 200
    assert events == []
    assert game_overs_published(mqtt_mock) == []


async def test_unloaded_entry_takes_no_game_over_and_its_reload_takes_them_again_on_the_same_url(
    hass: HomeAssistant, client: TestClient, mqtt_mock: MagicMock, setup_entry: MockConfigEntry
) -> None:
    events = async_capture_events(hass, EVENT_GAME_OVER)
    webhook_id = setup_entry.data[CONF_GAME_OVER_WEBHOOK_ID]
    assert await hass.config_entries.async_unload(setup_entry.entry_id)

    await post(client, setup_entry, json.dumps({"machine_id": MACHINE_ID}))
    assert events == []
    assert game_overs_published(mqtt_mock) == []

    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert setup_entry.data[CONF_GAME_OVER_WEBHOOK_ID] == webhook_id
    assert (await post(client, setup_entry, json.dumps({"machine_id": MACHINE_ID})))[0] == 200
    assert len(events) == 1
    assert len(game_overs_published(mqtt_mock)) == 1


async def test_an_entry_from_before_gets_its_own_id_once_and_keeps_it_across_reloads(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """The conftest entry has no game over webhook id, as entries made by older releases."""
    webhook_id = setup_entry.data[CONF_GAME_OVER_WEBHOOK_ID]
    assert webhook_id not in ("", setup_entry.data[CONF_WEBHOOK_ID])
    for _ in range(2):
        assert await hass.config_entries.async_reload(setup_entry.entry_id)
        await hass.async_block_till_done()
        assert setup_entry.data[CONF_GAME_OVER_WEBHOOK_ID] == webhook_id


async def test_the_options_form_shows_the_local_network_url(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    hass.config.internal_url = "http://192.168.1.20:8123"
    hass.config.external_url = "https://arcade.example.com"
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    assert result["description_placeholders"]["game_over_url"] == (
        f"http://192.168.1.20:8123/api/webhook/{setup_entry.data[CONF_GAME_OVER_WEBHOOK_ID]}"
    )
    hass.config_entries.options.async_abort(result["flow_id"])

    # Home Assistant knows no URL of itself: the path, to put after its address.
    with patch("homeassistant.components.webhook.get_url", side_effect=NoURLAvailableError):
        result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    assert result["description_placeholders"]["game_over_url"] == url(setup_entry)
    hass.config_entries.options.async_abort(result["flow_id"])


async def test_the_options_form_of_an_entry_never_set_up_shows_the_url_it_will_have(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    shown = result["description_placeholders"]["game_over_url"]
    hass.config_entries.options.async_abort(result["flow_id"])
    assert shown.endswith(url(config_entry))

    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert shown.endswith(url(config_entry))


class BodyOnly:
    """What the handler reads of a request, for calling it the way Home Assistant does."""

    method = "POST"
    remote = "127.0.0.1"

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.content = self

    async def read(self, size: int) -> bytes:
        body, self._body = self._body[:size], self._body[size:]
        return body


async def test_a_game_over_reaching_an_unloading_entry_is_503_and_changes_nothing(
    hass: HomeAssistant, mqtt_mock: MagicMock, setup_entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the webhook's unregistration, before the entry is gone: the cabinet may send it again."""
    webhook_id = setup_entry.data[CONF_GAME_OVER_WEBHOOK_ID]
    handler = hass.data["webhook"][webhook_id]["handler"]  # As a request already routed holds it.
    events = async_capture_events(hass, EVENT_GAME_OVER)
    closing, release = threading.Event(), threading.Event()
    real_close = PaymentLedger.close

    def slow_close(ledger: PaymentLedger) -> None:
        closing.set()
        release.wait(5)
        real_close(ledger)

    patch_ledger(monkeypatch, "close", slow_close)
    unload = hass.async_create_task(hass.config_entries.async_unload(setup_entry.entry_id))
    await wait_for(closing)
    response = await handler(hass, webhook_id, BodyOnly(json.dumps({"machine_id": MACHINE_ID}).encode()))
    release.set()
    assert await unload
    assert response.status == 503
    assert events == []
    assert game_overs_published(mqtt_mock) == []


async def test_an_unexpected_error_is_a_500_not_home_assistants_200(
    hass: HomeAssistant,
    client: TestClient,
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(cabinet: Cabinet, *args: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(Cabinet, "game_over", broken)
    status, answer = await post(client, setup_entry, json.dumps({"machine_id": MACHINE_ID}))
    assert (status, answer) == (500, {"error": "internal error"})
    assert game_overs_published(mqtt_mock) == []


async def test_refusals_are_warned_about_once_per_reason(
    client: TestClient, setup_entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """A misconfigured cabinet repeats its mistake every game: the log says it once."""
    for body in ("junk", "junk", json.dumps({"machine_id": "galaga-2"}), "junk"):
        assert (await post(client, setup_entry, body))[0] == 400
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and "HTTP game over" in r.getMessage()
    ]
    assert len(warnings) == 2
    assert "body is not JSON" in warnings[0]
    assert "galaga-2" in warnings[1]

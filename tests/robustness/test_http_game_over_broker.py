"""The HTTP game over against a real mosquitto: the broker sends Arcade Pay's game over message
back to Arcade Pay's own subscription, which counts it once (tests/test_http_game_over.py has
the same with Home Assistant's MQTT mock); one published while MQTT is down goes out once it is
back, and it counted once too.

A game over the test publishes through Home Assistant (a "probe", without timestamp, so not one
Arcade Pay expects back) is received after every message published before it on the same
connection: once the probe has counted, the echo before it has been handled.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
import json
import shutil
import subprocess
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant

from custom_components.arcade_pay.const import CONF_GAME_OVER_WEBHOOK_ID, EVENT_GAME_OVER

from ..helpers import MACHINE_ID
from ..mosquitto import Mosquitto, find_mosquitto
from .real_mqtt import ClientFactory, mqtt_disconnected, setup_arcade_pay, setup_mqtt, wait_until

pytestmark = [
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
    pytest.mark.usefixtures("fast_reconnect", "configuration_yaml"),
]

TOPIC = f"arcade/machine/{MACHINE_ID}/gameover"
PING = "arcade-pay-test/ping"
PROBE = json.dumps({"machineId": MACHINE_ID, "status": "game_over"})


def watch(broker: Mosquitto, seconds: float = 10) -> str:
    """The next game over message a persistent subscriber gets (waiting at most ``seconds``)."""
    command = [find_mosquitto_sub(), "-p", str(broker.port), "-t", TOPIC, "-q", "1", "-c", "-i", "watcher"]
    done = subprocess.run(
        [*command, "-C", "1", "-W", str(seconds)], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def find_mosquitto_sub() -> str:
    return shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"


async def subscriptions_on_the_broker(hass: HomeAssistant) -> None:
    """Wait until a subscription made last is on the broker: Home Assistant subscribes in order,
    and again all at once after a reconnect, so Arcade Pay's are on it too."""
    pings: list[object] = []
    unsubscribe = await mqtt.async_subscribe(hass, PING, pings.append)

    async def answered() -> bool:
        await mqtt.async_publish(hass, PING, "ping", qos=1)
        return bool(pings)

    await wait_until(hass, answered, "the subscriptions to be on the broker", deadline=15)
    unsubscribe()


def plays(hass: HomeAssistant) -> int:
    return int(hass.states.get("sensor.pac_man_plays").state)


async def probe_counted(hass: HomeAssistant, expected: int) -> None:
    """Publish a game over of our own and wait until it is the ``expected``-th play."""
    await mqtt.async_publish(hass, TOPIC, PROBE, qos=1)

    async def counted() -> bool:
        return plays(hass) >= expected

    await wait_until(hass, counted, f"play {expected}", deadline=10)


async def test_the_echo_of_an_http_game_over_counts_once_now_and_after_an_outage(
    hass: HomeAssistant,
    hass_client_no_auth: ClientFactory,
    fake_stripe: Any,
    config_entry: MockConfigEntry,
    brokers: Callable[..., Mosquitto],
    real_mqtt: None,
) -> None:
    broker = brokers(persistence=True)
    await setup_mqtt(hass, broker.port)
    entry = await setup_arcade_pay(hass, config_entry, cabinet_online=False)
    client = await hass_client_no_auth()
    url = f"/api/webhook/{entry.data[CONF_GAME_OVER_WEBHOOK_ID]}"
    on_the_topic: list[bytes] = []
    await mqtt.async_subscribe(hass, TOPIC, lambda msg: on_the_topic.append(msg.payload), encoding=None)
    await subscriptions_on_the_broker(hass)
    played = plays(hass)
    events = async_capture_events(hass, EVENT_GAME_OVER)

    resp = await client.post(url, json={"machine_id": MACHINE_ID})
    assert (await resp.json())["published"] is True
    assert plays(hass) == played + 1
    await probe_counted(hass, played + 2)
    sent = [payload for payload in on_the_topic if payload != PROBE.encode()]
    assert len(sent) == 1  # The broker sent it back, to every subscriber of the topic.
    assert (len(events), plays(hass)) == (2, played + 2)

    # MQTT down: the game over counts, the MQTT client keeps the message and sends it once back
    # (before Home Assistant subscribes again, so here only a subscriber with a session gets it).
    await hass.async_add_executor_job(
        partial(watch, broker, seconds=1)
    )  # Makes the watcher's session, which the broker keeps (persistence).
    broker.stop()
    await wait_until(hass, partial(mqtt_disconnected, hass), "Home Assistant to notice the broker is gone")
    resp = await client.post(url, json={"machine_id": MACHINE_ID})
    assert (resp.status, (await resp.json())["published"]) == (200, False)
    assert plays(hass) == played + 3
    broker.start()

    async def reconnected() -> bool:
        return mqtt.is_connected(hass)

    await wait_until(hass, reconnected, "Home Assistant to reconnect")
    await subscriptions_on_the_broker(hass)
    await probe_counted(hass, played + 4)
    late = await hass.async_add_executor_job(watch, broker)
    assert json.loads(late)["machineId"] == MACHINE_ID
    assert (len(events), plays(hass)) == (4, played + 4)

"""With the README's ACL a cabinet's broker user speaks for that cabinet only.

A real mosquitto (tests/mosquitto.py) runs tools/dev/mosquitto.acl, the file scripts/develop and the
end-to-end test use, with a user for Home Assistant and one per cabinet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import queue
import re
import time

from paho.mqtt import client as mqtt
import pytest

from ..mosquitto import ACL_FILE, Mosquitto, find_mosquitto

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")

REPO = Path(__file__).resolve().parents[2]
USERS = {"homeassistant": "ha-secret", "cab1": "cab1-secret", "cab2": "cab2-secret"}
WAIT = 5.0  # seconds; every wait below is bounded


class Client:
    """A paho client that collects what it receives."""

    def __init__(self, port: int, user: str | None, password: str | None = None) -> None:
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connected: queue.Queue[int] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{user}")
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, m.payload))
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.put(rc.value)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def connect_result(self) -> int:
        return self.connected.get(timeout=WAIT)

    def subscribe(self, topic: str) -> None:
        done: queue.Queue[bool] = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, codes, p: done.put(True)
        self.client.subscribe(topic, qos=1)
        done.get(timeout=WAIT)

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT)

    def topics_until(self, last: str) -> list[str]:
        """Topics received up to and including ``last`` (which must come)."""
        topics: list[str] = []
        deadline = time.monotonic() + WAIT
        while not topics or topics[-1] != last:
            topics.append(self.received.get(timeout=max(0.01, deadline - time.monotonic()))[0])
        return topics

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(tmp_path: Path, socket_enabled: None) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path, acl=ACL_FILE.read_text(encoding="utf-8"), users=USERS)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def clients(broker: Mosquitto) -> Iterator[dict[str, Client]]:
    made = {user: Client(broker.port, user, password) for user, password in USERS.items()}
    for client in made.values():
        assert client.connect_result() == 0
    yield made
    for client in made.values():
        client.stop()


def test_cabinet_cannot_acknowledge_or_report_for_another_cabinet(clients: dict[str, Client]) -> None:
    """No client may publish an ack (closing a payment) or a retained offline on another
    cabinet's topics."""
    home_assistant, cab2 = clients["homeassistant"], clients["cab2"]
    home_assistant.subscribe("arcade/machine/+/ack")
    home_assistant.subscribe("arcade/machine/+/status")
    cab2.publish("arcade/machine/cab1/ack", '{"paymentId": "cs_forged"}')
    cab2.publish("arcade/machine/cab1/status", "offline", retain=True)
    # Its own topics work, and come after the forged ones (same client, QoS 1, in order).
    cab2.publish("arcade/machine/cab2/ack", '{"paymentId": "cs_real"}')
    cab2.publish("arcade/machine/cab2/status", "online", retain=True)
    received = home_assistant.topics_until("arcade/machine/cab2/status")
    assert received == ["arcade/machine/cab2/ack", "arcade/machine/cab2/status"]


def test_cabinet_receives_only_its_own_coin_pulses(clients: dict[str, Client]) -> None:
    cab2 = clients["cab2"]
    cab2.subscribe("arcade/machine/+/coinpulse")
    clients["homeassistant"].publish("arcade/machine/cab1/coinpulse", '{"credits": 1}')
    clients["homeassistant"].publish("arcade/machine/cab2/coinpulse", '{"credits": 2}')
    assert cab2.topics_until("arcade/machine/cab2/coinpulse") == ["arcade/machine/cab2/coinpulse"]


def test_cabinet_cannot_send_coin_pulses(clients: dict[str, Client]) -> None:
    cab1 = clients["cab1"]
    cab1.subscribe("arcade/machine/cab1/coinpulse")
    clients["cab2"].publish("arcade/machine/cab1/coinpulse", '{"credits": 99}')
    clients["cab1"].publish("arcade/machine/cab1/coinpulse", '{"credits": 98}')  # Not even its own.
    clients["homeassistant"].publish("arcade/machine/cab1/coinpulse", '{"credits": 1}')
    assert cab1.topics_until("arcade/machine/cab1/coinpulse") == ["arcade/machine/cab1/coinpulse"]
    assert cab1.received.empty()


@pytest.mark.parametrize(("user", "password"), [(None, None), ("cab1", "wrong"), ("nobody", "x")])
def test_anonymous_and_wrong_passwords_are_refused(
    broker: Mosquitto, user: str | None, password: str | None
) -> None:
    client = Client(broker.port, user, password)
    try:
        assert client.connect_result() != 0
    finally:
        client.stop()


def test_readme_shows_the_acl_that_is_tested() -> None:
    """The example in docs/mqtt-protocol.md is tools/dev/mosquitto.acl, word for word."""
    protocol = (REPO / "docs" / "mqtt-protocol.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```text\n(.*?)```", protocol, re.DOTALL)
    assert ACL_FILE.read_text(encoding="utf-8") in blocks


def test_user_added_while_running_can_log_in(broker: Mosquitto) -> None:
    broker.add_user("cab3", "cab3-secret")  # Returns once the broker lets it in.
    client = Client(broker.port, "cab3", "cab3-secret")
    try:
        assert client.connect_result() == 0
    finally:
        client.stop()


def test_cabinet_announces_only_itself(clients: dict[str, Client]) -> None:
    """A cabinet's retained announcement is offered as discovered; no other cabinet may forge it."""
    home_assistant, cab2 = clients["homeassistant"], clients["cab2"]
    home_assistant.subscribe("arcade/machine/+/info")
    cab2.publish("arcade/machine/cab1/info", '{"machineId": "cab1", "name": "Forged"}', retain=True)
    cab2.publish("arcade/machine/cab2/info", '{"machineId": "cab2", "name": "Real"}', retain=True)
    assert home_assistant.topics_until("arcade/machine/cab2/info") == ["arcade/machine/cab2/info"]

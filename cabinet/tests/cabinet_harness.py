"""The cabinet tests' harness: the agent as a real process, a paho client playing Home
Assistant, and small helpers. Imported by ``conftest.py`` and the tests (``cabinet/tests`` is
put on ``sys.path`` by ``conftest.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import Any
import uuid

from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion

CABINET_DIR = Path(__file__).resolve().parents[1]

MACHINE_ID = "cab-1"
PREFIX = "arcade/machine"
CRASH_EXIT = 137
# Runs once per credit: appends the time it ran, one line per coin.
COIN_SCRIPT = "import sys, time; open(sys.argv[1], 'a').write(repr(time.time()) + '\\n')"


def wait_until[T](check: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def pulse_json(credits: int, payment_id: str | None = None, machine_id: str = MACHINE_ID) -> str:
    message: dict[str, Any] = {
        "machineId": machine_id,
        "credits": credits,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if payment_id is not None:
        message["paymentId"] = payment_id
    return json.dumps(message)


@dataclass(frozen=True)
class Received:
    kind: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class HomeAssistant:
    """A paho client in Home Assistant's place: publishes pulses, records what the cabinet says.

    Persistent session (like a real subscriber that must not miss acks), so that messages
    published while it reconnects after a broker restart still reach it.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[Received] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self.client = Client(
            CallbackAPIVersion.VERSION2, client_id=f"ha-test-{uuid.uuid4().hex[:12]}", clean_session=False
        )
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the Home Assistant test client could not subscribe")

    def _on_connect(self, client: Client, *_: Any) -> None:
        client.subscribe(f"{PREFIX}/{MACHINE_ID}/#", qos=1)

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        kind = message.topic.rsplit("/", 1)[-1]
        with self._changed:
            self.messages.append(Received(kind, message.payload, bool(message.retain), time.time()))
            self._changed.notify_all()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def topic(self, kind: str, machine_id: str = MACHINE_ID) -> str:
        return f"{PREFIX}/{machine_id}/{kind}"

    def publish(self, kind: str, payload: str | bytes, retain: bool = False) -> None:
        info = self.client.publish(self.topic(kind), payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def pulse(self, credits: int, payment_id: str | None = None, machine_id: str = MACHINE_ID) -> None:
        self.publish("coinpulse", pulse_json(credits, payment_id, machine_id))

    def mark(self) -> int:
        with self._changed:
            return len(self.messages)

    def of(self, kind: str, since: int = 0) -> list[Received]:
        with self._changed:
            return [m for m in self.messages[since:] if m.kind == kind]

    def acks(self, since: int = 0) -> list[str]:
        return [m.json()["paymentId"] for m in self.of("ack", since)]

    def wait_for(self, check: Callable[[], Any], timeout: float = 10.0, what: str = "message") -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (result := check()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
                self._changed.wait(min(remaining, 0.1))
            return result

    def wait_status(self, status: str, since: int, timeout: float = 10.0) -> None:
        self.wait_for(
            lambda: any(m.payload.decode() == status for m in self.of("status", since)),
            timeout,
            f"status {status}",
        )

    def wait_ack(self, payment_id: str, since: int = 0, timeout: float = 10.0) -> None:
        self.wait_for(lambda: payment_id in self.acks(since), timeout, f"ack of {payment_id}")


def retained(port: int, topic: str, timeout: float = 2.0) -> bytes | None:
    """The retained message a new subscriber gets on ``topic``, or None."""
    got: list[MQTTMessage] = []
    arrived = threading.Event()

    def on_message(client: Client, userdata: Any, message: MQTTMessage) -> None:
        got.append(message)
        arrived.set()

    client = Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:12]}")
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        arrived.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0].payload if got and got[0].retain else None


def publish_once(port: int, topic: str, payload: str) -> None:
    """Publish at QoS 1 from a client of its own, and wait for the broker to take it."""
    client = Client(CallbackAPIVersion.VERSION2, client_id=f"publisher-{uuid.uuid4().hex[:12]}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


class Resender:
    """Re-sends every pulse not yet acknowledged, every ``interval`` s, as the integration does."""

    def __init__(self, ha: HomeAssistant, pulses: dict[str, int], interval: float = 0.5) -> None:
        self.ha = ha
        self.pulses = pulses
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resender")

    def unacked(self) -> list[str]:
        acked = set(self.ha.acks())
        return [p for p in self.pulses if p not in acked]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for payment_id in self.unacked():
                self.ha.client.publish(
                    self.ha.topic("coinpulse"), pulse_json(self.pulses[payment_id], payment_id), qos=1
                )

    def __enter__(self) -> Resender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Agent:
    """``python -m arcade_cabinet run`` as a real process, with its config, state and coin files."""

    def __init__(self, directory: Path, port: int, **settings: Any) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.config = directory / "cabinet.toml"
        self.state_file = directory / "state.json"
        self.coin_file = directory / "coins.txt"
        self.socket = directory / "c.sock"
        self.log = directory / "agent.log"
        self.process: subprocess.Popen[bytes] | None = None
        cabinet = {
            "machine_id": MACHINE_ID,
            "topic_prefix": PREFIX,
            "coin_command": [sys.executable, "-I", "-S", "-c", COIN_SCRIPT, str(self.coin_file)],
            "coin_gap_ms": 100,
            "state_file": str(self.state_file),
            "control_socket": str(self.socket),
            **settings,
        }
        lines = [f"{key} = {json.dumps(value)}" for key, value in cabinet.items()]
        lines += ["[mqtt]", 'host = "127.0.0.1"', f"port = {port}", "keepalive = 10"]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def env(self, crash_at: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARCADE_CABINET_")}
        env["PYTHONPATH"] = str(CABINET_DIR)
        if crash_at is not None:
            env["ARCADE_CABINET_CRASH_AT"] = crash_at
        return env

    def start(self, crash_at: str | None = None) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log.open("ab") as log:
            log.write(b"--- start\n")
            self.process = subprocess.Popen(
                [sys.executable, "-m", "arcade_cabinet", "run", "--config", str(self.config), "-v"],
                env=self.env(crash_at),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    def start_online(self, ha: HomeAssistant, crash_at: str | None = None) -> None:
        mark = ha.mark()
        self.start(crash_at)
        ha.wait_status("online", mark)

    def kill(self) -> None:
        """SIGKILL: as a power cut would, with no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(15)

    def wait_exit(self, timeout: float = 10.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "arcade_cabinet", *args, "--config", str(self.config)],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def state(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_bytes())
        except FileNotFoundError:
            return None
        return data

    def credits(self) -> int | None:
        state = self.state()
        return None if state is None else int(state["credits"])

    def coins(self) -> list[float]:
        try:
            return [float(line) for line in self.coin_file.read_text().split()]
        except FileNotFoundError:
            return []

    def wait_coins_done(self, timeout: float = 15.0) -> dict[str, Any]:
        return wait_until(
            lambda: (s := self.state()) is not None and s["pending_coins"] == 0 and s,
            timeout,
            "pending coins to be inserted",
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

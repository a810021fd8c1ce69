"""Fixtures of the tests against a real mosquitto: brokers, and Home Assistant's real MQTT client.

``fast_reconnect`` and ``configuration_yaml`` are for the modules that set up Home Assistant's
MQTT integration (``pytest.mark.usefixtures``): the others need neither.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
import os
from pathlib import Path

import pytest

from homeassistant.components.mqtt import client as mqtt_client_module
from homeassistant.core import HomeAssistant

from ..mosquitto import Mosquitto
from .real_mqtt import unload_all

RECONNECT_INTERVAL = 0.5  # Home Assistant waits 10 s between attempts; only that wait is shortened.


@pytest.fixture
def fast_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Home Assistant's MQTT client tries to reconnect every half second (not every 10 s)."""
    monkeypatch.setattr(mqtt_client_module, "RECONNECT_INTERVAL_SECONDS", RECONNECT_INTERVAL)


@pytest.fixture
def configuration_yaml(hass: HomeAssistant) -> None:
    """MQTT reads configuration.yaml (for YAML-configured entities); an empty one will do."""
    Path(hass.config.config_dir, "configuration.yaml").write_text("{}\n", encoding="utf-8")


@pytest.fixture
def brokers(tmp_path: Path) -> Generator[Callable[..., Mosquitto]]:
    """Start mosquitto processes; any still running at the end are killed."""
    started: list[Mosquitto] = []

    def start(persistence: bool = False) -> Mosquitto:
        workdir = tmp_path / f"mosquitto{len(started)}"
        workdir.mkdir()
        broker = Mosquitto(workdir, persistence=persistence)
        if persistence and os.geteuid() == 0 and "user root" not in broker.config.read_text(encoding="utf-8"):
            # Started as root, mosquitto drops to its own user, which cannot write in the test's
            # private directory: the broker would silently lose its sessions on a restart.
            with broker.config.open("a", encoding="utf-8") as config:
                config.write("user root\n")
        broker.start()
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.kill()


@pytest.fixture
async def real_mqtt(hass: HomeAssistant, brokers: Callable[..., Mosquitto]) -> AsyncGenerator[None]:
    """Unload Arcade Pay and MQTT (while the broker still runs) before Home Assistant stops."""
    yield
    await unload_all(hass)

"""examples/esphome/arcade-cabinet.yaml: a valid ESPHome configuration that speaks our protocol.

Validated with ESPHome's own ``esphome config``, from $ESPHOME or from .venv-esphome, which
scripts/setup-esphome creates (once: it does nothing when the venv matches
requirements_esphome.txt). ESPHome has a venv of its own because it pins its dependencies
exactly and they clash with Home Assistant's. ``esphome config`` needs no network: it downloads
no toolchain, which the tests check by pointing PlatformIO at a directory that must stay empty.
"""

from __future__ import annotations

from collections.abc import Mapping
import hashlib
import os
from pathlib import Path
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from custom_components.arcade_pay.core.announcement import TOPIC_INFO
from custom_components.arcade_pay.core.protocol import (
    DEFAULT_TOPIC_PREFIX,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    TOPIC_ACK,
    TOPIC_COIN_PULSE,
    TOPIC_GAME_OVER,
    TOPIC_STATE,
    TOPIC_STATUS,
    topic,
)

from .helpers import MACHINE_ID

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = REPO / "examples" / "esphome"
CONFIG_NAME = "arcade-cabinet.yaml"
SECRETS_EXAMPLE = EXAMPLE_DIR / "secrets.yaml.example"
SETUP_SCRIPT = REPO / "scripts" / "setup-esphome"
REQUIREMENTS = REPO / "requirements_esphome.txt"
VENV = REPO / ".venv-esphome"
STAMP = VENV / ".arcade-pay-esphome-requirements"
SETUP_TIMEOUT = 1800
CONFIG_TIMEOUT = 300


def _venv_is_current() -> bool:
    """Whether .venv-esphome was built from this requirements_esphome.txt (as the script checks)."""
    if not (VENV / "bin" / "esphome").is_file() or not STAMP.is_file():
        return False
    recorded = STAMP.read_text().split()
    return bool(recorded) and recorded[0] == hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def esphome() -> Path:
    """The esphome executable: $ESPHOME, or .venv-esphome's (set up here when missing or stale)."""
    if configured := os.environ.get("ESPHOME"):
        found = shutil.which(configured)
        if found is None:
            pytest.fail(f"ESPHOME={configured!r} is not an executable")
        return Path(found)
    if not _venv_is_current():
        result = subprocess.run(
            [str(SETUP_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=SETUP_TIMEOUT,
            check=False,
            cwd=REPO,
        )
        if result.returncode != 0:
            pytest.fail(
                "ESPHome is needed to validate examples/esphome/, and scripts/setup-esphome could not"
                f" install it (exit {result.returncode}). Run it by hand, or set ESPHOME to an esphome"
                f" executable.\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
    executable = VENV / "bin" / "esphome"
    if not executable.is_file():
        pytest.fail(
            f"scripts/setup-esphome ran but {executable} is missing; set ESPHOME to an esphome executable"
        )
    return executable


class _TaggedLoader(yaml.SafeLoader):
    """Reads ESPHome's output, whose ``!secret`` and ``!lambda`` values become plain strings."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    assert isinstance(node, yaml.ScalarNode)
    return f"!{suffix} {loader.construct_scalar(node)}"


_TaggedLoader.add_multi_constructor("!", _tagged)


def esphome_config(esphome: Path, workdir: Path, *options: str) -> tuple[str, dict[str, Any]]:
    """Run ``esphome [options] config`` on a copy of the example; return its output, as text and parsed."""
    shutil.copy(EXAMPLE_DIR / CONFIG_NAME, workdir / CONFIG_NAME)
    # The example's placeholders are valid values; a real cabinet's secrets.yaml is made the same way.
    shutil.copy(SECRETS_EXAMPLE, workdir / "secrets.yaml")
    env = {name: value for name, value in os.environ.items() if name not in {"PYTHONPATH", "PYTHONHOME"}}
    env |= {
        "PLATFORMIO_CORE_DIR": str(workdir / "platformio"),
        "ESPHOME_DATA_DIR": str(workdir / "esphome-data"),
    }
    result = subprocess.run(
        [str(esphome), *options, "config", CONFIG_NAME],
        capture_output=True,
        text=True,
        timeout=CONFIG_TIMEOUT,
        check=False,
        cwd=workdir,
        env=env,
    )
    assert result.returncode == 0, f"esphome config failed:\n{result.stdout}\n{result.stderr}"
    # Validation must not have fetched a toolchain or platform (it has to work offline).
    assert not (workdir / "platformio").exists()
    return result.stdout, yaml.load(result.stdout, Loader=_TaggedLoader)


def message(topic_: str, payload: str) -> dict[str, Any]:
    """A birth / will / shutdown message as the protocol wants it: QoS 1, retained."""
    return {"topic": topic_, "payload": payload, "qos": 1, "retain": True}


def automation_text(config: Any) -> str:
    """A part of the rendered configuration as lines of ``key: value`` and lambda code, to search in."""
    if isinstance(config, Mapping):
        return "\n".join(
            automation_text(value) if isinstance(value, Mapping | list) else f"{key}: {value}"
            for key, value in config.items()
        )
    if isinstance(config, list):
        return "\n".join(automation_text(item) for item in config)
    return str(config)


def test_config_is_valid_and_speaks_the_protocol(esphome: Path, tmp_path: Path) -> None:
    text, config = esphome_config(esphome, tmp_path)
    prefix, machine = DEFAULT_TOPIC_PREFIX, MACHINE_ID

    assert config["substitutions"] | {"broker": None} == {
        "machine_id": MACHINE_ID,
        "device_name": "arcade-cabinet-123",
        "friendly_name": "Arcade cabinet 123",
        "cabinet_name": "Arcade cabinet 123",
        "model": "ESPHome arcade cabinet",
        "topic_prefix": DEFAULT_TOPIC_PREFIX,
        "coin_pin": "GPIO26",
        "game_over_pin": "GPIO27",
        "pulse_ms": "100",
        "gap_ms": "150",
        "broker": None,
    }
    assert config["esp32"]["board"] == "esp32dev"

    mqtt = config["mqtt"]
    status = topic(prefix, machine, TOPIC_STATUS)
    assert status in text
    assert mqtt["birth_message"] == message(status, STATUS_ONLINE)
    assert mqtt["will_message"] == message(status, STATUS_OFFLINE)
    assert mqtt["shutdown_message"] == message(status, STATUS_OFFLINE)
    assert mqtt["discovery"] is False
    assert mqtt["broker"] == "!secret mqtt_broker"
    # The broker keeps QoS 1 pulses for a cabinet that is briefly away.
    assert mqtt["clean_session"] is False
    [coin_pulse] = mqtt["on_json_message"]
    assert coin_pulse["topic"] == topic(prefix, machine, TOPIC_COIN_PULSE)
    assert coin_pulse["qos"] == 1
    handler = automation_text(coin_pulse)
    assert f'"{MACHINE_ID}"' in handler  # checks machineId
    assert "paymentId" in handler
    assert topic(prefix, machine, TOPIC_ACK) in handler

    # Queued coins and the applied payments survive a reboot.
    globals_ = {item["id"]: item for item in config["globals"]}
    restored = ("pending_coins", "cabinet_credits", "game_playing", "recent_payments", "recent_payments_next")
    for name in restored:
        assert globals_[name]["restore_value"] is True, name

    scripts = {item["id"]: item for item in config["script"]}
    pulser = automation_text(scripts["coin_pulser"])
    assert "coin_output" in pulser
    assert "delay: 100ms" in pulser
    assert "delay: 150ms" in pulser
    state = automation_text(scripts["publish_state"])
    assert topic(prefix, machine, TOPIC_STATE) in state
    assert "retain: True" in state
    # The announcement (core/announcement.py), retained and sent on every connect.
    assert "id: publish_info" in automation_text(mqtt["on_connect"])
    info = automation_text(scripts["publish_info"])
    assert topic(prefix, machine, TOPIC_INFO) in info
    assert "retain: True" in info
    assert "qos: 1" in info
    for line in (
        f'root["machineId"] = "{MACHINE_ID}";',
        'root["name"] = "Arcade cabinet 123";',
        'root["model"] = "ESPHome arcade cabinet";',
        'root["swVersion"] = ESPHOME_VERSION;',
        'root["acknowledges"] = true;',
    ):
        assert line in info
    assert [item["id"] for item in config["output"]] == ["coin_output"]
    assert config["output"][0]["pin"]["number"] == 26

    [game_over] = config["binary_sensor"]
    assert game_over["pin"]["number"] == 27
    assert {"delayed_on": "50ms"} in game_over["filters"]
    on_press = automation_text(game_over["on_press"])
    assert topic(prefix, machine, TOPIC_GAME_OVER) in on_press
    assert 'root["status"] = "game_over"' in on_press
    assert "qos: 1" in on_press


def test_substitutions_make_another_cabinet(esphome: Path, tmp_path: Path) -> None:
    text, config = esphome_config(
        esphome,
        tmp_path,
        *("-s", "machine_id", "pinball-7"),
        *("-s", "device_name", "pinball-7"),
        *("-s", "topic_prefix", "arcade/test"),
        *("-s", "pulse_ms", "60"),
    )

    assert config["esphome"]["name"] == "pinball-7"
    assert config["mqtt"]["will_message"] == message("arcade/test/pinball-7/status", STATUS_OFFLINE)
    assert config["mqtt"]["on_json_message"][0]["topic"] == "arcade/test/pinball-7/coinpulse"
    assert "arcade/test/pinball-7/info" in text
    assert "delay: 60ms" in text
    assert MACHINE_ID not in text
    assert DEFAULT_TOPIC_PREFIX not in text


def test_secrets_example_has_every_secret_the_config_uses() -> None:
    used = set(re.findall(r"!secret\s+(\w+)", (EXAMPLE_DIR / CONFIG_NAME).read_text()))
    example = yaml.safe_load(SECRETS_EXAMPLE.read_text())

    assert used == set(example)
    assert {"wifi_ssid", "wifi_password", "mqtt_broker", "mqtt_username", "mqtt_password"} <= used

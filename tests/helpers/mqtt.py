"""Home Assistant's MQTT, as the tests see it: what was published, the connection, the cleanup."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import MagicMock

from homeassistant.core import HomeAssistant
from homeassistant.helpers.dispatcher import async_dispatcher_send


def published(mqtt_mock: MagicMock) -> list[tuple[str, str, int, bool]]:
    """Every (topic, payload, qos, retain) published through HA's MQTT integration so far."""
    return [tuple(c.args) for c in mqtt_mock.async_publish.call_args_list]


def pulses(mqtt_mock: MagicMock) -> list[dict[str, Any]]:
    """Every coin pulse published so far, decoded."""
    return [
        json.loads(payload) for topic, payload, _, _ in published(mqtt_mock) if topic.endswith("/coinpulse")
    ]


def set_connected(hass: HomeAssistant, connected: bool) -> None:
    """Home Assistant's MQTT client says it connected, or lost the broker."""
    async_dispatcher_send(hass, "mqtt_connection_state", connected)


async def clean_mqtt_client(hass: HomeAssistant) -> None:
    """Cancel the debounce and misc timers Home Assistant 2025.4's MQTT client leaves behind."""
    client = getattr(hass.data.get("mqtt"), "client", None)
    for debouncer in ("_subscribe_debouncer", "_unsubscribe_debouncer"):
        if (pending := getattr(client, debouncer, None)) is not None:
            await pending.async_cleanup()
    if (timer := getattr(client, "_misc_timer", None)) is not None:
        timer.cancel()
        client._misc_timer = None  # type: ignore[union-attr]

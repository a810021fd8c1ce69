"""Home Assistant with its real MQTT client on a real mosquitto, for the robustness tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import time

from aiohttp.test_utils import TestClient
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.components import mqtt
from homeassistant.components.mqtt.const import CONFIG_ENTRY_MINOR_VERSION, CONFIG_ENTRY_VERSION
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from custom_components.arcade_pay.const import DOMAIN

from ..helpers import clean_mqtt_client

DEADLINE = 30.0  # How long a wait may take by default, in real seconds.

type ClientFactory = Callable[..., Awaitable[TestClient]]


def mqtt_entry(port: int) -> MockConfigEntry:
    """Home Assistant's MQTT entry for the test broker, as its config flow makes it."""
    return MockConfigEntry(
        domain=mqtt.DOMAIN,
        title="127.0.0.1",
        data={"broker": "127.0.0.1", "port": port},
        version=CONFIG_ENTRY_VERSION,
        minor_version=CONFIG_ENTRY_MINOR_VERSION,
    )


async def wait_until(
    hass: HomeAssistant,
    condition: Callable[[], Awaitable[bool]],
    what: str,
    deadline: float = DEADLINE,
    describe: Callable[[], Awaitable[str]] | None = None,
) -> float:
    """Wait in real time until ``condition``; return the seconds taken.

    No async_fire_time_changed: it fires every loop timer, aiohttp's too. Real time lets
    backoffs, reconnects and the cabinet's thread run as they would.
    """
    start = time.monotonic()
    while True:
        # Not async_block_till_done: it would also wait for publishes whose PUBACK is lost with
        # the broker (Home Assistant gives up on those after 10 s).
        if await condition():
            print("WAITED", what, round(time.monotonic() - start, 2))
            return time.monotonic() - start
        if time.monotonic() - start > deadline:
            details = await describe() if describe is not None else ""
            pytest.fail(f"timed out after {deadline} s waiting for {what} {details}")
        await asyncio.sleep(0.1)


async def setup_mqtt(hass: HomeAssistant, port: int) -> MockConfigEntry:
    entry = mqtt_entry(port)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert await mqtt.async_wait_for_mqtt_client(hass)

    async def connected() -> bool:
        return mqtt.is_connected(hass)

    await wait_until(hass, connected, "Home Assistant's MQTT client to connect")
    return entry


async def setup_arcade_pay(
    hass: HomeAssistant, entry: MockConfigEntry, cabinet_online: bool = True
) -> MockConfigEntry:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    # The start-up reconciliation with Stripe, so that it cannot race the first payments.
    # (Not wait_background_tasks=True: that also waits out MQTT's 5 s birth message cooldown.)
    if reconciling := set(entry._background_tasks):
        await asyncio.wait(reconciling)
    assert entry.state is ConfigEntryState.LOADED
    if cabinet_online:
        # The cabinet's retained status arrives once Arcade Pay's subscriptions (acks too) are
        # on the broker; an ack sent earlier would be lost.
        async def online() -> bool:
            return cabinet_online_state(hass) == "on"

        await wait_until(hass, online, "the cabinet's retained status")

        # And every subscription sent: Home Assistant batches them (a cooldown of 0.1-0.5 s), so
        # under load the status's can go out before the acks'; a pulse published in between is
        # acknowledged to nobody (CI saw it once: the first payment never taught the acknowledging).
        async def all_subscribed() -> bool:
            return not hass.data["mqtt"].client._pending_subscriptions

        await wait_until(hass, all_subscribed, "Home Assistant to send every subscription")
    return entry


def cabinet_online_state(hass: HomeAssistant) -> str | None:
    """What the cabinet's "online" binary sensor shows."""
    state = hass.states.get("binary_sensor.pac_man_online")
    return None if state is None else state.state


async def mqtt_disconnected(hass: HomeAssistant) -> bool:
    return not mqtt.is_connected(hass)


async def unload_all(hass: HomeAssistant) -> None:
    """Unload Arcade Pay, then MQTT (the broker must be up), so that no timer outlives the test."""
    for domain in (DOMAIN, mqtt.DOMAIN):
        for entry in hass.config_entries.async_entries(domain):
            if entry.state is ConfigEntryState.LOADED:
                assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    await clean_mqtt_client(hass)

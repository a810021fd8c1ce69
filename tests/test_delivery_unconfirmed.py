"""A coin pulse the broker never confirmed: the courier tells it by how long Home Assistant waited.

Home Assistant's publish returns normally when no PUBACK came within its wait (TIMEOUT_ACK);
here a publish that takes that long stands for one the broker never confirmed. The real broker
(hung, then killed, then Home Assistant restarted) is in tests/robustness/test_faults.py.
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import MagicMock

from aiohttp.test_utils import TestClient
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from homeassistant.components.mqtt import client as mqtt_client
from homeassistant.core import HomeAssistant

from custom_components.arcade_pay import mqtt_client_watch
from custom_components.arcade_pay.core.ledger import PaymentState
from custom_components.arcade_pay.courier import PUBACK_WAIT_FALLBACK, puback_wait
from fake_stripe import FakeStripe

from .helpers import on_ledger_file, pay, payment_state, pulses, set_connected

PUBACK_WAIT = 0.05  # seconds: Home Assistant's wait, shortened


@pytest.fixture
def broker_silent_once(mqtt_mock: MagicMock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next publish returns only after Home Assistant's PUBACK wait; later ones at once."""
    monkeypatch.setattr(mqtt_client, "TIMEOUT_ACK", PUBACK_WAIT)
    silent = [True]

    async def publish(*args: Any, **kwargs: Any) -> None:
        if silent.pop() if silent else False:
            await asyncio.sleep(PUBACK_WAIT * 1.2)

    mqtt_mock.async_publish.side_effect = publish


async def unconfirmed(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    undelivered = await on_ledger_file(hass, entry, lambda ledger: ledger.undelivered())
    return [u.payment_id for u in undelivered if u.unconfirmed]


def pending_credits(hass: HomeAssistant) -> str:
    state = hass.states.get("sensor.pac_man_pending_credits")
    assert state is not None
    return state.state


@pytest.mark.usefixtures("broker_silent_once")
async def test_an_unconfirmed_pulse_stays_pending_until_a_later_one_is_confirmed(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
) -> None:
    first = await pay(client, fake_stripe, cabinet_link, quantity=2)
    assert await payment_state(hass, setup_entry, first) is PaymentState.PUBLISHED
    assert pending_credits(hass) == "2"  # Still owed, and kept across a restart.
    assert await unconfirmed(hass, setup_entry) == [first]

    second = await pay(client, fake_stripe, cabinet_link)  # Confirmed: the broker had the first.
    assert pending_credits(hass) == "0"
    assert await unconfirmed(hass, setup_entry) == []
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [first, second]


@pytest.mark.usefixtures("broker_silent_once")
async def test_an_entry_reload_does_not_send_again_what_the_mqtt_client_holds(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
) -> None:
    first = await pay(client, fake_stripe, cabinet_link, quantity=2)
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [first]  # A second copy would double it.
    assert pending_credits(hass) == "2"
    assert await unconfirmed(hass, setup_entry) == [first]


def test_puback_wait_is_home_assistants_or_ten_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    assert puback_wait() == mqtt_client.TIMEOUT_ACK
    monkeypatch.setattr(mqtt_client, "TIMEOUT_ACK", 3)
    assert puback_wait() == 3.0
    for nonsense in (0, -1, True, "10"):
        monkeypatch.setattr(mqtt_client, "TIMEOUT_ACK", nonsense)
        assert puback_wait() == PUBACK_WAIT_FALLBACK
    monkeypatch.delattr(mqtt_client, "TIMEOUT_ACK")  # A future Home Assistant may drop it.
    assert puback_wait() == PUBACK_WAIT_FALLBACK == 10.0


class NewMqttClient:
    """Home Assistant's MQTT client after the MQTT integration was reloaded (a new object)."""


@pytest.mark.usefixtures("broker_silent_once")
async def test_a_new_mqtt_client_gets_what_the_old_one_held(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await pay(client, fake_stripe, cabinet_link, quantity=2)
    replacement = NewMqttClient()
    monkeypatch.setattr(mqtt_client_watch, "mqtt_client", lambda hass: replacement)
    second = await pay(client, fake_stripe, cabinet_link)
    # Confirmed through the new client, which never had the first: that proves nothing about it.
    async_fire_time_changed(hass)  # The first is due again at once.
    await hass.async_block_till_done()
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [first, second, first]
    assert pending_credits(hass) == "0"
    assert await unconfirmed(hass, setup_entry) == []


@pytest.mark.usefixtures("broker_silent_once")
async def test_an_entry_reload_after_a_new_mqtt_client_sends_again(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await pay(client, fake_stripe, cabinet_link, quantity=2)
    await hass.config_entries.async_unload(setup_entry.entry_id)
    replacement = NewMqttClient()
    monkeypatch.setattr(mqtt_client_watch, "mqtt_client", lambda hass: replacement)
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [first, first]
    assert pending_credits(hass) == "0"
    assert await unconfirmed(hass, setup_entry) == []


@pytest.mark.usefixtures("broker_silent_once")
async def test_a_new_mqtt_client_connecting_gets_what_the_old_one_held(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await pay(client, fake_stripe, cabinet_link, quantity=2)
    set_connected(hass, False)
    replacement = NewMqttClient()
    monkeypatch.setattr(mqtt_client_watch, "mqtt_client", lambda hass: replacement)
    set_connected(hass, True)  # The MQTT integration reloaded: its new client connects.
    await hass.async_block_till_done()
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [first, first]
    assert pending_credits(hass) == "0"

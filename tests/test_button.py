"""The Insert credit button: one free credit, sent as a coin pulse like any other."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import MagicMock

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_send

from custom_components.arcade_pay.core.ledger import LedgerError, PaymentLedger
from fake_stripe import FakeStripe

from .helpers import MACHINE_ID, on_ledger_file, published
from .platform_snapshot import assert_on_cabinet_device

BUTTON = "button.pac_man_insert_credit"


@pytest.fixture
def platform() -> Platform:
    return Platform.BUTTON


async def press(hass: HomeAssistant) -> None:
    await hass.services.async_call("button", "press", {"entity_id": BUTTON}, blocking=True)


async def test_buttons(
    hass: HomeAssistant,
    platform_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    await snapshot_platform(hass, entity_registry, snapshot, platform_entry.entry_id)
    assert_on_cabinet_device(
        device_registry, entity_registry, platform_entry.entry_id, next(iter(platform_entry.subentries))
    )


async def test_insert_credit_button(
    hass: HomeAssistant, setup_entry: MockConfigEntry, mqtt_mock: MagicMock
) -> None:
    await press(hass)
    [(topic, payload, qos, retain)] = published(mqtt_mock)
    assert (topic, qos, retain) == (f"arcade/machine/{MACHINE_ID}/coinpulse", 1, False)
    message = json.loads(payload)
    assert message["credits"] == 1
    assert message["paymentId"].startswith("manual_")
    assert hass.states.get("sensor.pac_man_credits").state == "1"
    # Free credits are not revenue.
    assert hass.states.get("sensor.pac_man_revenue").state == "0.00"
    event = hass.states.get("event.pac_man_game")
    assert event.attributes["event_type"] == "credit_added"
    assert event.attributes["source"] == "manual"


async def test_ledger_error_in_insert_credit_button_is_translated(
    hass: HomeAssistant,
    platform_entry: MockConfigEntry,
    mqtt_mock: MagicMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """action-exceptions: a ledger failure is a translated HomeAssistantError, not a raw LedgerError."""

    def broken(*args: Any) -> None:
        raise LedgerError("disk I/O error")

    monkeypatch.setattr(PaymentLedger, "record", broken)
    with pytest.raises(HomeAssistantError) as err:
        await press(hass)
    assert err.value.translation_key == "ledger_failed"
    # A credit the ledger could not write is not sent.
    assert published(mqtt_mock) == []


async def test_insert_credit_is_unavailable_while_mqtt_is_down(
    hass: HomeAssistant, platform_entry: MockConfigEntry
) -> None:
    """entity-unavailable: the credit goes out over MQTT."""
    async_dispatcher_send(hass, "mqtt_connection_state", False)
    await hass.async_block_till_done()
    assert hass.states.get(BUTTON).state == STATE_UNAVAILABLE
    async_dispatcher_send(hass, "mqtt_connection_state", True)
    await hass.async_block_till_done()
    assert hass.states.get(BUTTON).state != STATE_UNAVAILABLE


async def test_insert_credit_on_a_cabinet_never_seen_is_recorded_once_and_raises_nothing(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The press succeeds: the credit waits in Pending credits, a warning in the log says why.

    Once the credit is recorded, an error (logged with a traceback) would invite a second press.
    """
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await press(hass)  # Raises nothing.
    await hass.async_block_till_done()
    owed = await on_ledger_file(hass, config_entry, lambda ledger: ledger.undelivered())
    assert [(u.machine_id, u.credits, u.source.value) for u in owed] == [(MACHINE_ID, 1, "manual")]
    assert [t for t, *_ in published(mqtt_mock) if t.endswith("/coinpulse")] == []
    assert hass.states.get("sensor.pac_man_pending_credits").state == "1"
    assert hass.states.get("sensor.pac_man_payments").state == "waiting"
    [warning] = [r for r in caplog.records if r.levelname == "WARNING" and "Pac-Man" in r.getMessage()]
    assert "Cabinet never reports on MQTT" in warning.getMessage()
    assert "credit(s)" not in warning.getMessage()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]

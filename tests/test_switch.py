"""The Accepting payments switch: whether a cabinet's payment link takes money."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_send

from custom_components.arcade_pay.core.ledger import LedgerError, PaymentLedger
from fake_stripe import FakeStripe

from .platform_snapshot import assert_on_cabinet_device

SWITCH = "switch.pac_man_accepting_payments"
PAYMENTS = "sensor.pac_man_payments"


@pytest.fixture
def platform() -> Platform:
    return Platform.SWITCH


async def test_switches(
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


async def test_turning_off_stops_the_link_taking_money_and_on_resumes(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    for service, state, active, payments in (
        ("turn_off", "off", False, "paused"),
        ("turn_on", "on", True, "accepting"),
    ):
        await hass.services.async_call("switch", service, {"entity_id": SWITCH}, blocking=True)
        assert hass.states.get(SWITCH).state == state, service
        assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is active, service
        # The Payments sensor says why the link takes no money.
        assert hass.states.get(PAYMENTS).state == payments, service


async def test_accepting_payments_is_primary(hass: HomeAssistant, platform_entry: MockConfigEntry) -> None:
    """What an operator watches is on the device page, not under diagnostics."""
    entry = er.async_get(hass).async_get(SWITCH)
    assert entry is not None
    assert entry.entity_category is None


async def test_ledger_error_in_switch_is_translated(
    hass: HomeAssistant,
    platform_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
) -> None:
    """action-exceptions: a ledger failure is a translated error, and nothing changes."""

    def broken(*args: Any) -> None:
        raise LedgerError("disk I/O error")

    monkeypatch.setattr(PaymentLedger, "set_cabinet_paused", broken)
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call("switch", "turn_off", {"entity_id": SWITCH}, blocking=True)
    assert err.value.translation_key == "ledger_failed"
    assert hass.states.get(SWITCH).state == "on"
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True


async def test_switch_stays_available_while_mqtt_is_down(
    hass: HomeAssistant, platform_entry: MockConfigEntry
) -> None:
    """entity-unavailable: the link is Stripe's business, so the switch still works without MQTT."""
    async_dispatcher_send(hass, "mqtt_connection_state", False)
    await hass.async_block_till_done()
    assert hass.states.get(SWITCH).state == "on"

"""Every entity of a cabinet: names, unique ids, device, states, QR code, button, restore."""

from __future__ import annotations

from http import HTTPStatus
import io
import json
from typing import Any
from unittest.mock import MagicMock

from PIL import Image
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, mock_restore_cache
import segno

from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr, entity_registry as er

from custom_components.arcade_pay.const import DOMAIN
from fake_stripe import ACCOUNT_ID

from .conftest import MACHINE_ID, published

ENTITIES = {
    "sensor.pac_man_credits": "credits",
    "sensor.pac_man_game_state": "game_state",
    "sensor.pac_man_revenue": "revenue",
    "sensor.pac_man_plays": "plays",
    "sensor.pac_man_last_payment": "last_payment",
    "sensor.pac_man_pending_credits": "pending_credits",
    "sensor.pac_man_price_per_credit": "price_per_credit",
    "sensor.pac_man_payments": "payments",
    "switch.pac_man_accepting_payments": "accepting_payments",
    "binary_sensor.pac_man_online": "online",
    "image.pac_man_payment_qr_code": "payment_qr_code",
    "button.pac_man_insert_credit": "insert_credit",
    "event.pac_man_game": "game",
}


async def test_entities_and_device(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    entity_registry = er.async_get(hass)
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{ACCOUNT_ID}_{MACHINE_ID}")})
    assert device is not None
    assert device.name == "Pac-Man"
    assert device.serial_number == MACHINE_ID
    subentry_id = next(iter(setup_entry.subentries))
    assert device.config_entries_subentries[setup_entry.entry_id] == {subentry_id}

    for entity_id, key in ENTITIES.items():
        entry = entity_registry.async_get(entity_id)
        assert entry is not None, entity_id
        assert entry.translation_key == key
        assert entry.unique_id == f"{ACCOUNT_ID}_{MACHINE_ID}_{key}"
        assert entry.device_id == device.id
        assert entry.config_subentry_id == subentry_id
        assert hass.states.get(entity_id) is not None
    assert len(er.async_entries_for_device(entity_registry, device.id)) == len(ENTITIES)

    assert hass.states.get("sensor.pac_man_game_state").attributes["options"] == ["attract", "playing"]
    revenue = hass.states.get("sensor.pac_man_revenue")
    assert revenue.attributes["device_class"] == "monetary"
    assert revenue.attributes["state_class"] == "total"
    assert hass.states.get("sensor.pac_man_plays").attributes["state_class"] == "total_increasing"
    assert hass.states.get("sensor.pac_man_last_payment").state == "unknown"
    assert hass.states.get("binary_sensor.pac_man_online").attributes["device_class"] == "connectivity"
    assert hass.states.get("event.pac_man_game").attributes["event_types"] == ["game_over", "credit_added"]


async def test_qr_code_encodes_payment_link(
    hass: HomeAssistant, hass_client: Any, setup_entry: MockConfigEntry, cabinet_link: dict[str, Any]
) -> None:
    state = hass.states.get("image.pac_man_payment_qr_code")
    assert state.attributes["url"] == cabinet_link["url"]
    client = await hass_client()
    resp = await client.get("/api/image_proxy/image.pac_man_payment_qr_code")
    assert resp.status == HTTPStatus.OK
    assert resp.content_type == "image/png"
    png = await resp.read()
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    # Scale 10 with a 4-module quiet zone: big enough to scan from a cabinet's screen.
    assert image.width == image.height >= 10 * (21 + 8)
    # Same bytes as segno makes for this URL: it really is the link.
    expected = io.BytesIO()
    segno.make(cabinet_link["url"], error="m", micro=False).save(expected, kind="png", scale=10, border=4)
    assert png == expected.getvalue()


async def test_insert_credit_button(
    hass: HomeAssistant, setup_entry: MockConfigEntry, mqtt_mock: MagicMock
) -> None:
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.pac_man_insert_credit"}, blocking=True
    )
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


@pytest.mark.parametrize(
    ("restored", "expected"),
    [
        (
            {"credits": "4", "plays": "17", "game_state": "playing"},
            {"credits": "4", "plays": "17", "game_state": "playing"},
        ),
        (
            {"credits": "unavailable", "plays": "unknown", "game_state": "bogus"},
            {"credits": "0", "plays": "0", "game_state": "attract"},
        ),
    ],
)
async def test_state_is_restored_after_restart(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: Any,
    config_entry: MockConfigEntry,
    restored: dict[str, str],
    expected: dict[str, str],
) -> None:
    mock_restore_cache(hass, [State(f"sensor.pac_man_{key}", value) for key, value in restored.items()])
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert {key: hass.states.get(f"sensor.pac_man_{key}").state for key in expected} == expected

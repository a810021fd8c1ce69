"""Free credits and the ledger export are for administrators only."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import Unauthorized

from custom_components.arcade_pay.const import DOMAIN

from .helpers import cabinet_device_id, published

PENDING = "sensor.pac_man_pending_credits"


def admin_actions(hass: HomeAssistant, entry: MockConfigEntry) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("add_credit", {"device_id": cabinet_device_id(hass), "credits": 100}),
        ("export_ledger", {"config_entry_id": entry.entry_id}),
    ]


def exports(hass: HomeAssistant) -> list[Path]:
    folder = Path(hass.config.path(DOMAIN, "exports"))
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("action", ["add_credit", "export_ledger"])
async def test_read_only_user_cannot_call_admin_actions(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    mqtt_mock: MagicMock,
    hass_read_only_user: MockUser,
    action: str,
) -> None:
    """A read-only user gets neither free credits nor the audit trail."""
    data = dict(admin_actions(hass, setup_entry))[action]
    with pytest.raises(Unauthorized) as err:
        await hass.services.async_call(
            DOMAIN,
            action,
            data,
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
            return_response=True,
        )
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "admin_required"
    assert published(mqtt_mock) == []
    assert hass.states.get(PENDING).state == "0"
    assert exports(hass) == []


async def test_non_admin_user_cannot_call_admin_actions_over_the_websocket(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    mqtt_mock: MagicMock,
    hass_ws_client: WebSocketGenerator,
    hass_read_only_access_token: str,
) -> None:
    """The frontend shows the translated reason."""
    client = await hass_ws_client(hass, hass_read_only_access_token)
    for index, (action, data) in enumerate(admin_actions(hass, setup_entry), start=1):
        await client.send_json_auto_id(
            {"type": "call_service", "domain": DOMAIN, "service": action, "service_data": data}
        )
        answer = await client.receive_json()
        assert not answer["success"], action
        assert answer["error"]["translation_key"] == "admin_required"
        assert answer["error"]["translation_domain"] == DOMAIN
        assert "administrator" in answer["error"]["message"], index
    assert published(mqtt_mock) == []
    assert exports(hass) == []


async def test_admin_user_and_automations_can_call_admin_actions(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    mqtt_mock: MagicMock,
    hass_admin_user: MockUser,
) -> None:
    """Administrators, and automations (no user), can."""
    for context in (Context(user_id=hass_admin_user.id), Context()):
        for action, data in admin_actions(hass, setup_entry):
            await hass.services.async_call(DOMAIN, action, data, blocking=True, context=context)
    assert len([p for t, p, *_ in published(mqtt_mock) if t.endswith("/coinpulse")]) == 2
    assert len(exports(hass)) >= 1


async def test_unknown_user_is_refused(
    hass: HomeAssistant, setup_entry: MockConfigEntry, mqtt_mock: MagicMock
) -> None:
    """A user id Home Assistant does not know (deleted since the call was made) is no administrator."""
    action, data = admin_actions(hass, setup_entry)[0]
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN, action, data, blocking=True, context=Context(user_id="no-such-user")
        )
    assert published(mqtt_mock) == []

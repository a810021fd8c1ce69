"""The add_credit and create_payment_link actions."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import MagicMock

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
import voluptuous as vol

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from custom_components.arcade_pay.const import DOMAIN, EVENT_CREDIT_ADDED
from fake_stripe import FakeStripe

from .helpers import MACHINE_ID, cabinet_device_id, on_ledger_file, published


async def test_add_credit(hass: HomeAssistant, setup_entry: MockConfigEntry, mqtt_mock: MagicMock) -> None:
    events = async_capture_events(hass, EVENT_CREDIT_ADDED)
    device_id = cabinet_device_id(hass)
    response = await hass.services.async_call(
        DOMAIN, "add_credit", {"device_id": device_id, "credits": 5}, blocking=True, return_response=True
    )
    [(topic, payload, qos, _)] = published(mqtt_mock)
    message = json.loads(payload)
    assert (topic, qos) == (f"arcade/machine/{MACHINE_ID}/coinpulse", 1)
    assert message["credits"] == 5
    assert response == {"payment_id": message["paymentId"], "sent": True, "waits_for_cabinet": False}
    assert events[0].data == {
        "machine_id": MACHINE_ID,
        "device_id": device_id,
        "credits": 5,
        "payment_id": message["paymentId"],
        "source": "manual",
    }


async def test_add_credit_refuses_what_is_not_a_number(
    hass: HomeAssistant, setup_entry: MockConfigEntry, mqtt_mock: MagicMock
) -> None:
    with pytest.raises(vol.Invalid):
        await hass.services.async_call(
            DOMAIN, "add_credit", {"device_id": cabinet_device_id(hass), "credits": "lots"}, blocking=True
        )
    assert published(mqtt_mock) == []


@pytest.mark.parametrize("credits", [0, 101, -1])
async def test_add_credit_out_of_range_is_a_translated_error(
    hass: HomeAssistant, setup_entry: MockConfigEntry, mqtt_mock: MagicMock, credits: int
) -> None:
    """Out of range is our translated error, not Home Assistant's raw "value must be at least 1 …"."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "add_credit", {"device_id": cabinet_device_id(hass), "credits": credits}, blocking=True
        )
    assert err.value.translation_key == "credits_out_of_range"
    assert err.value.translation_placeholders == {"credits": str(credits), "min": "1", "max": "100"}
    assert published(mqtt_mock) == []
    owed = await on_ledger_file(hass, setup_entry, lambda ledger: ledger.undelivered())
    assert owed == []


async def test_add_credit_unknown_device(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "add_credit", {"device_id": "nope", "credits": 1}, blocking=True
        )
    assert err.value.translation_key == "unknown_cabinet"


async def test_add_credit_unloaded_entry(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    device_id = cabinet_device_id(hass)
    await hass.config_entries.async_unload(setup_entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "add_credit", {"device_id": device_id, "credits": 1}, blocking=True
        )
    assert err.value.translation_key == "entry_not_loaded"


async def test_add_credit_mqtt_failure(
    hass: HomeAssistant, setup_entry: MockConfigEntry, mqtt_mock: MagicMock
) -> None:
    """Recorded but not taken by MQTT: the call succeeds and says so; the credits follow later."""
    mqtt_mock.async_publish.side_effect = HomeAssistantError("disconnected")
    response = await hass.services.async_call(
        DOMAIN,
        "add_credit",
        {"device_id": cabinet_device_id(hass), "credits": 1},
        blocking=True,
        return_response=True,
    )
    assert (response["sent"], response["waits_for_cabinet"]) == (False, False)
    assert hass.states.get("sensor.pac_man_credits").state == "0"
    assert hass.states.get("sensor.pac_man_pending_credits").state == "1"


async def test_create_payment_link(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    fake_stripe.payment_links[cabinet_link["id"]]["active"] = False
    response = await hass.services.async_call(
        DOMAIN,
        "create_payment_link",
        {"device_id": cabinet_device_id(hass)},
        blocking=True,
        return_response=True,
    )
    # Nothing stops this cabinet taking payments: the link deactivated in Stripe is put back.
    assert response == {
        "url": cabinet_link["url"],
        "payment_link_id": cabinet_link["id"],
        "accepting_payments": True,
        "payments": "accepting",
    }
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True


async def test_create_payment_link_stripe_failure(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    fake_stripe.fail_next = 10
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            "create_payment_link",
            {"device_id": cabinet_device_id(hass)},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "stripe_failed"


async def test_create_payment_link_rejected_key_starts_reauth(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    # As if the key was revoked in Stripe's dashboard: Stripe answers 401 (and reauth starts).
    fake_stripe.fail_next, fake_stripe.fail_status = 1, 401
    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            DOMAIN,
            "create_payment_link",
            {"device_id": cabinet_device_id(hass)},
            blocking=True,
            return_response=True,
        )
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]


async def test_add_credit_for_a_cabinet_never_seen_succeeds_and_says_it_waits(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe, config_entry: Any
) -> None:
    """Recorded, then an error: a script that retried handed the credits out twice."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    response = await hass.services.async_call(
        DOMAIN,
        "add_credit",
        {"device_id": cabinet_device_id(hass), "credits": 2},
        blocking=True,
        return_response=True,
    )
    owed = await on_ledger_file(hass, config_entry, lambda ledger: ledger.undelivered())
    assert [(u.payment_id, u.credits) for u in owed] == [(response["payment_id"], 2)]
    assert response["waits_for_cabinet"] is True
    assert published(mqtt_mock) == []
    assert hass.states.get("sensor.pac_man_pending_credits").state == "2"

"""One place keeps the switch, the ledger and Stripe in agreement."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir

from custom_components.arcade_pay.const import CONF_NEVER_REPORTS, DOMAIN
from fake_stripe import ACCOUNT_ID, FakeStripe

from .helpers import MACHINE_ID, PREFIX, WEBHOOK_ID, advance, managed_link, pulses, remember_seen

SWITCH = "switch.pac_man_accepting_payments"
PAYMENTS = "sensor.pac_man_payments"
PENDING = "sensor.pac_man_pending_credits"
URL = f"/api/webhook/{WEBHOOK_ID}"


def device_id(hass: HomeAssistant) -> str:
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{ACCOUNT_ID}_{MACHINE_ID}")})
    assert device is not None
    return device.id


async def get_link(hass: HomeAssistant) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "create_payment_link", {"device_id": device_id(hass)}, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


# --- the switch, the offline rule and the action agree -------------------------------


async def test_get_payment_link_never_overrides_a_pause(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    """The action never re-activates a paused link while the switch stays off."""
    await hass.services.async_call("switch", "turn_off", {"entity_id": SWITCH}, blocking=True)
    response = await get_link(hass)
    assert response["url"] == cabinet_link["url"]
    assert response["accepting_payments"] is False
    assert response["payments"] == "paused"
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert hass.states.get(SWITCH).state == "off"
    assert hass.states.get(PAYMENTS).state == "paused"

    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (await get_link(hass))["accepting_payments"] is False
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert hass.states.get(SWITCH).state == "off"


async def test_get_payment_link_never_overrides_the_offline_rule(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """A cabinet offline too long keeps its link off, whoever asks for the link."""
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await advance(hass, freezer, 121)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    response = await get_link(hass)
    assert (response["accepting_payments"], response["payments"]) == (False, "offline")
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False


async def test_offline_rule_survives_a_restart(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """After a restart the switch shows the offline rule's link off, and the cabinet coming back
    turns the link on again."""
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await advance(hass, freezer, 121)
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(SWITCH).state == "off"
    assert hass.states.get(PAYMENTS).state == "offline"

    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    assert hass.states.get(SWITCH).state == "on"
    assert hass.states.get(PAYMENTS).state == "accepting"


async def test_link_deactivated_in_the_dashboard_is_put_back_by_the_action(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    """With no reason to be off, the action makes the link take money and says so."""
    fake_stripe.payment_links[cabinet_link["id"]]["active"] = False
    response = await get_link(hass)
    assert (response["accepting_payments"], response["payments"]) == (True, "accepting")
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True


# --- a cabinet never seen takes no payments ------------------------------------------


async def test_cabinet_never_seen_takes_no_payments_until_its_first_message(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    cabinet_link: dict[str, Any],
) -> None:
    """A new cabinet without an agent takes no money that would be published to nobody."""
    await setup(hass, config_entry)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert hass.states.get(SWITCH).state == "off"
    assert hass.states.get(PAYMENTS).state == "waiting"

    # A player who opened the checkout just before still pays: the credits wait, counted.
    client = await hass_client_no_auth()
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=3)
    assert (await client.post(URL, data=delivery.body, headers=delivery.headers)).status == 200
    await hass.async_block_till_done()
    assert pulses(mqtt_mock) == []
    assert hass.states.get(PENDING).state == "3"

    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert [p["credits"] for p in pulses(mqtt_mock)] == [3]
    assert hass.states.get(PENDING).state == "0"
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    assert hass.states.get(PAYMENTS).state == "accepting"

    # Remembered in the ledger: a restart does not make it wait again.
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(PAYMENTS).state == "accepting"
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True


async def test_any_message_on_its_topics_is_a_sign_of_life(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    cabinet_link: dict[str, Any],
) -> None:
    """State, ack and game over count as well as status."""
    await setup(hass, config_entry)
    async_fire_mqtt_message(
        hass, f"{PREFIX}/gameover", json.dumps({"machineId": MACHINE_ID, "status": "game_over"})
    )
    await hass.async_block_till_done()
    assert hass.states.get(PAYMENTS).state == "accepting"
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True


async def test_never_reports_cabinet_takes_payments_without_a_sign_of_life(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    cabinet_link: dict[str, Any],
) -> None:
    """The owner vouches for a cabinet that never reports (the earlier system's)."""
    subentry = next(iter(config_entry.subentries.values()))
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_subentry(
        config_entry, subentry, data=dict(subentry.data) | {CONF_NEVER_REPORTS: True}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(PAYMENTS).state == "accepting"
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    await hass.services.async_call(
        DOMAIN, "add_credit", {"device_id": device_id(hass), "credits": 2}, blocking=True
    )
    assert [p["credits"] for p in pulses(mqtt_mock)] == [2]


# --- removing the entry stops every link --------------------------------------------


async def test_removing_the_entry_deactivates_every_link(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    """After removal nobody would credit a payment: no link takes money any more."""
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    await hass.config_entries.async_remove(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert not [i for i in ir.async_get(hass).issues.values() if i.domain == DOMAIN]


async def test_link_that_cannot_be_deactivated_on_removal_is_a_repair(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    caplog: Any,
) -> None:
    """An unreachable link is named in a repair and in the log, to deactivate by hand."""
    remember_seen(hass, config_entry)
    await setup(hass, config_entry)
    other = managed_link(fake_stripe, "galaga")
    fake_stripe.fail_next = 100
    await hass.config_entries.async_remove(config_entry.entry_id)
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"links_left_active_{config_entry.entry_id}")
    assert issue is not None
    link_id = next(iter(config_entry.subentries.values())).data["payment_link_id"]
    assert issue.translation_placeholders["links"] == link_id
    assert link_id in caplog.text
    assert other["id"] not in caplog.text


# --- free credits and settings of a cabinet never seen; a paused cabinet's new link ---------


async def test_free_credit_for_a_cabinet_never_seen_says_it_waits(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
) -> None:
    """Insert credit on a cabinet never seen is no MQTT failure: it is recorded and waits.

    It is no error (an error invited a second gift): the response says it waits.
    """
    await setup(hass, config_entry)
    response = await hass.services.async_call(
        DOMAIN,
        "add_credit",
        {"device_id": device_id(hass), "credits": 2},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["waits_for_cabinet"] is True
    assert pulses(mqtt_mock) == []
    assert hass.states.get(PENDING).state == "2"


async def test_ticking_never_reports_turns_the_link_on(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    cabinet_link: dict[str, Any],
) -> None:
    """The cabinet's setting (saved by its reconfigure form) turns the waiting link on."""
    await setup(hass, config_entry)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    subentry = next(iter(config_entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        config_entry, subentry, data=dict(subentry.data) | {CONF_NEVER_REPORTS: True}
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    assert hass.states.get(SWITCH).state == "on"
    assert hass.states.get(PAYMENTS).state == "accepting"


async def test_price_change_of_a_paused_cabinet_keeps_it_paused(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    """A price change replaces the link; the new one must not take money while paused."""
    await hass.services.async_call("switch", "turn_off", {"entity_id": SWITCH}, blocking=True)
    new_link = managed_link(fake_stripe, MACHINE_ID, 300)  # what the reconfigure form creates
    subentry = next(iter(setup_entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        setup_entry,
        subentry,
        data=dict(subentry.data)
        | {"payment_link_id": new_link["id"], "payment_link_url": new_link["url"], "unit_amount": 300},
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fake_stripe.payment_links[new_link["id"]]["active"] is False
    assert hass.states.get(SWITCH).state == "off"
    assert hass.states.get(PAYMENTS).state == "paused"

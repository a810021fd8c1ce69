"""Cabinets added and deleted while the entry runs (cabinet_roster.py): no reload, nothing lost."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest.mock import MagicMock

from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.const import EVENT_STATE_CHANGED, STATE_ON
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, issue_registry as ir

from custom_components.arcade_pay.const import DOMAIN
from custom_components.arcade_pay.core.ledger import PaymentState
from custom_components.arcade_pay.core.stripe_gateway import StripeGateway
from fake_stripe import FakeStripe

from .helpers import MACHINE_ID, WEBHOOK_ID, cabinet_subentry, managed_link, payment_state, published

URL = f"/api/webhook/{WEBHOOK_ID}"
GALAGA = "galaga-2"


def coin_pulses(mqtt_mock: MagicMock) -> list[tuple[str, int]]:
    """(machine id, credits) of every coin pulse published so far."""
    return [
        (topic.split("/")[2], json.loads(payload)["credits"])
        for topic, payload, *_ in published(mqtt_mock)
        if topic.endswith("/coinpulse")
    ]


def logbook_of(hass: HomeAssistant, name: str) -> list[str]:
    """Every change of a ``name`` entity from one state to another, as the logbook records them."""
    changes: list[str] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        old, new = event.data["old_state"], event.data["new_state"]
        if event.data["entity_id"].split(".")[1].startswith(name) and old and new and old.state != new.state:
            changes.append(f"{event.data['entity_id']}: {old.state} -> {new.state}")

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    return changes


async def add_cabinet(
    hass: HomeAssistant, entry: MockConfigEntry, link: dict[str, Any], machine_id: str, title: str = "Galaga"
) -> str:
    """Add a cabinet as the cabinet form does; return its subentry id."""
    template = cabinet_subentry(link, machine_id, title)
    subentry = ConfigSubentry(
        data=template["data"], subentry_type=template["subentry_type"], title=title, unique_id=machine_id
    )
    hass.config_entries.async_add_subentry(entry, subentry)
    await hass.async_block_till_done(wait_background_tasks=True)
    return subentry.subentry_id


async def pay(
    hass_client: ClientSessionGenerator, fake_stripe: FakeStripe, link_id: str, quantity: int
) -> str:
    """A player pays on a link; return the checkout session's id."""
    client = await hass_client()
    delivery = fake_stripe.complete_checkout(link_id, quantity=quantity)
    response = await client.post(URL, data=delivery.body, headers=delivery.headers)
    assert response.status == 200, await response.text()
    await client.app["hass"].async_block_till_done()
    return str(delivery.event["data"]["object"]["id"])


async def test_deleting_a_cabinet_leaves_the_others_logbook_alone(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    galaga = await add_cabinet(hass, setup_entry, managed_link(fake_stripe, GALAGA), GALAGA)
    assert hass.states.get("sensor.galaga_credits") is not None
    changes = logbook_of(hass, "pac_man")

    assert hass.config_entries.async_remove_subentry(setup_entry, galaga)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert hass.states.get("sensor.galaga_credits") is None
    remaining = er.async_entries_for_config_entry(er.async_get(hass), setup_entry.entry_id)
    assert remaining
    assert all(entity.entity_id.split(".")[1].startswith("pac_man") for entity in remaining)
    assert changes == []
    assert setup_entry.state is ConfigEntryState.LOADED


async def test_cabinet_added_while_running_hears_what_it_said_before_and_is_paid(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    mqtt_mock: MagicMock,
) -> None:
    """Its retained status came while nobody had it: added, it is online, takes money, gets credits."""
    async_fire_mqtt_message(hass, f"arcade/machine/{GALAGA}/status", "online", retain=True)
    await hass.async_block_till_done()
    link = managed_link(fake_stripe, GALAGA)

    await add_cabinet(hass, setup_entry, link, GALAGA)

    assert hass.states.get("binary_sensor.galaga_online").state == STATE_ON
    assert hass.states.get("sensor.galaga_payments").state == "accepting"
    assert fake_stripe.payment_links[link["id"]]["active"] is True
    await pay(hass_client_no_auth, fake_stripe, link["id"], 2)
    assert coin_pulses(mqtt_mock) == [(GALAGA, 2)]
    assert hass.states.get("sensor.galaga_pending_credits").state == "0"


async def test_cabinet_added_without_a_sign_of_life_takes_no_money(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    """Nothing heard from it: its link is switched off until it speaks (as at a start)."""
    link = managed_link(fake_stripe, GALAGA)

    await add_cabinet(hass, setup_entry, link, GALAGA)

    assert hass.states.get("sensor.galaga_payments").state == "waiting"
    assert fake_stripe.payment_links[link["id"]]["active"] is False
    async_fire_mqtt_message(hass, f"arcade/machine/{GALAGA}/status", "online")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fake_stripe.payment_links[link["id"]]["active"] is True


async def test_deleted_cabinet_gets_nothing_more_and_its_credits_wait_for_it_to_come_back(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
) -> None:
    """Paid while offline, then deleted: no pulse to it; added again, it gets those credits once."""
    async_fire_mqtt_message(hass, f"arcade/machine/{MACHINE_ID}/status", "offline")
    await hass.async_block_till_done()
    paid = await pay(hass_client_no_auth, fake_stripe, cabinet_link["id"], 3)
    assert coin_pulses(mqtt_mock) == []

    assert hass.config_entries.async_remove_subentry(setup_entry, next(iter(setup_entry.subentries)))
    await hass.async_block_till_done(wait_background_tasks=True)
    async_fire_mqtt_message(hass, f"arcade/machine/{MACHINE_ID}/status", "online")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert coin_pulses(mqtt_mock) == []
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert await payment_state(hass, setup_entry, paid) is PaymentState.PENDING

    # The owner adds it again (a new link): what the ledger owes it goes out, once.
    await add_cabinet(hass, setup_entry, managed_link(fake_stripe, MACHINE_ID), MACHINE_ID, "Pac-Man")
    assert coin_pulses(mqtt_mock) == [(MACHINE_ID, 3)]
    assert setup_entry.state is ConfigEntryState.LOADED


async def test_link_turned_on_while_its_cabinet_is_deleted_ends_up_off(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, monkeypatch: Any
) -> None:
    """A first sign of life turns the link on; the cabinet is deleted while Stripe is being told.

    Whichever call Stripe gets last, a deleted cabinet's link takes no money.
    """
    link = managed_link(fake_stripe, GALAGA)
    galaga = await add_cabinet(hass, setup_entry, link, GALAGA)
    assert fake_stripe.payment_links[link["id"]]["active"] is False
    release, on_its_way, retired = asyncio.Event(), asyncio.Event(), asyncio.Event()
    set_link_active = StripeGateway.set_link_active

    async def slow_to_turn_on(gateway: StripeGateway, link_id: str, active: bool) -> None:
        if active:
            on_its_way.set()
            await release.wait()
        await set_link_active(gateway, link_id, active)
        if not active:
            retired.set()

    monkeypatch.setattr(StripeGateway, "set_link_active", slow_to_turn_on)
    async_fire_mqtt_message(hass, f"arcade/machine/{GALAGA}/status", "online")
    await asyncio.wait_for(on_its_way.wait(), 5)

    assert hass.config_entries.async_remove_subentry(setup_entry, galaga)
    await asyncio.wait_for(retired.wait(), 5)  # The deletion retired the link first.
    retired.clear()
    release.set()
    await hass.async_block_till_done(wait_background_tasks=True)

    assert fake_stripe.payment_links[link["id"]]["active"] is False


async def test_payment_made_before_its_cabinet_was_added_stays_uncredited_and_its_repair_names_it(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    mqtt_mock: MagicMock,
) -> None:
    """Paid on an old link of a machine nobody had: no credit now either, and the repair says whose."""
    older = fake_stripe.add_older_link(GALAGA, 150)
    paid = await pay(hass_client_no_auth, fake_stripe, older["id"], 1)
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, f"unknown_cabinet_{GALAGA}") is not None

    await add_cabinet(hass, setup_entry, managed_link(fake_stripe, GALAGA), GALAGA)

    assert issues.async_get_issue(DOMAIN, f"unknown_cabinet_{GALAGA}") is None
    issue = issues.async_get_issue(DOMAIN, f"not_credited_{paid}")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["cabinet"] == "Galaga"
    assert coin_pulses(mqtt_mock) == []


async def test_cabinet_deleted_while_the_start_up_sync_waits_on_stripe(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    monkeypatch: Any,
    caplog: Any,
) -> None:
    """The start asks Stripe about each cabinet's link; one is deleted meanwhile: the sync goes on."""
    link = managed_link(fake_stripe, GALAGA)
    config_entry.add_to_hass(hass)
    template = cabinet_subentry(link, GALAGA, "Galaga")
    galaga = ConfigSubentry(
        data=template["data"], subentry_type=template["subentry_type"], title="Galaga", unique_id=GALAGA
    )
    hass.config_entries.async_add_subentry(config_entry, galaga)
    release, waiting = asyncio.Event(), asyncio.Event()
    payment_link = StripeGateway.payment_link

    async def slow_answer(gateway: StripeGateway, link_id: str) -> Any:
        waiting.set()
        await release.wait()
        return await payment_link(gateway, link_id)

    monkeypatch.setattr(StripeGateway, "payment_link", slow_answer)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await asyncio.wait_for(waiting.wait(), 5)

    assert hass.config_entries.async_remove_subentry(config_entry, galaga.subentry_id)
    await hass.async_block_till_done()
    release.set()
    await hass.async_block_till_done(wait_background_tasks=True)

    assert "changed size during iteration" not in caplog.text
    assert fake_stripe.payment_links[link["id"]]["active"] is False
    assert config_entry.state is ConfigEntryState.LOADED


async def test_two_cabinets_added_at_once_are_each_run_once(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    mqtt_mock: MagicMock,
    caplog: Any,
) -> None:
    """Two discovered cabinets confirmed in the same moment: two update listeners, interleaved."""
    links = {machine_id: managed_link(fake_stripe, machine_id) for machine_id in (GALAGA, "tetris-3")}
    for machine_id, link in links.items():
        template = cabinet_subentry(link, machine_id, machine_id.title())
        hass.config_entries.async_add_subentry(
            setup_entry,
            ConfigSubentry(
                data=template["data"],
                subentry_type=template["subentry_type"],
                title=machine_id.title(),
                unique_id=machine_id,
            ),
        )
    await hass.async_block_till_done(wait_background_tasks=True)

    assert "already exists" not in caplog.text
    assert hass.states.get("sensor.galaga_2_credits") is not None
    assert hass.states.get("sensor.tetris_3_credits") is not None
    for machine_id, link in links.items():
        async_fire_mqtt_message(hass, f"arcade/machine/{machine_id}/status", "online")
        await hass.async_block_till_done(wait_background_tasks=True)
        await pay(hass_client_no_auth, fake_stripe, link["id"], 1)
    assert sorted(coin_pulses(mqtt_mock)) == [(GALAGA, 1), ("tetris-3", 1)]

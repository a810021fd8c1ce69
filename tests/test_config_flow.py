"""Config flow, options flow and cabinet subentry flows, with every error path."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import CONF_API_KEY, CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir

from custom_components.arcade_pay.const import (
    CONF_CREDITS_PER_GAME,
    CONF_CURRENCY,
    CONF_MACHINE_ID,
    CONF_MANAGED_LINK,
    CONF_MAX_QUANTITY,
    CONF_NEVER_REPORTS,
    CONF_PAYMENT_LINK_ID,
    CONF_PAYMENT_LINK_URL,
    CONF_PRICE,
    CONF_TOPIC_PREFIX,
    CONF_UNIT_AMOUNT,
    DOMAIN,
    SUBENTRY_CABINET,
)
from custom_components.arcade_pay.core.stripe_gateway import StripeGateway, StripeGatewayError
from fake_stripe import REJECTED_KEY, FakeStripe

from .helpers import MACHINE_ID, NEW_CABINET, start_cabinet_flow, start_reconfigure

SECRET = "whsec_test_secret"
NEVER = {CONF_NEVER_REPORTS: False}


async def start_user_flow(hass: HomeAssistant) -> dict[str, Any]:
    return await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})


async def test_options_flow(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    assert result["step_id"] == "init"
    assert result["description_placeholders"]["webhook_url"].endswith("/api/webhook/arcade_pay_test_webhook")
    others = {"offline_minutes": 5, "refund_undelivered": False, "refund_minutes": 30}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TOPIC_PREFIX: "arcade/#", CONF_CREDITS_PER_GAME: 2} | others
    )
    assert result["errors"] == {CONF_TOPIC_PREFIX: "invalid_topic_prefix"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_TOPIC_PREFIX: "venue", CONF_CREDITS_PER_GAME: 2}
        | others
        | {"refund_undelivered": True, "refund_minutes": 0},
    )
    assert result["errors"] == {"refund_minutes": "refund_too_soon"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TOPIC_PREFIX: " venue/cabinets/ ", CONF_CREDITS_PER_GAME: 2.0} | others
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert setup_entry.options == {CONF_TOPIC_PREFIX: "venue/cabinets", CONF_CREDITS_PER_GAME: 2} | others
    # The reload picked the new prefix up: the cabinet is heard on it, and only on it.
    async_fire_mqtt_message(
        hass, "venue/cabinets/arcadeCabinet-123/state", '{"credits": 3, "state": "playing"}'
    )
    async_fire_mqtt_message(
        hass, "arcade/machine/arcadeCabinet-123/state", '{"credits": 5, "state": "playing"}'
    )
    await hass.async_block_till_done()
    assert hass.states.get("sensor.pac_man_credits").state == "3"


# --- cabinets -------------------------------------------------------------------------


async def test_add_cabinet_creates_stripe_link(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_CABINET)
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = next(s for s in setup_entry.subentries.values() if s.unique_id == "galaga-2")
    assert subentry.title == "Galaga"
    link = fake_stripe.payment_links[subentry.data[CONF_PAYMENT_LINK_ID]]
    assert link["metadata"] == {"machine_id": "galaga-2"}
    assert subentry.data[CONF_PAYMENT_LINK_URL] == link["url"]
    [item] = fake_stripe.link_items[link["id"]]
    assert item["price"]["unit_amount"] == 150
    assert item["price"]["currency"] == "usd"
    assert item["adjustable_quantity"] == {"enabled": True, "minimum": 1, "maximum": 5}
    assert subentry.data[CONF_UNIT_AMOUNT] == 150
    assert subentry.data[CONF_MANAGED_LINK] is True
    # The reload made it a device with entities.
    assert hass.states.get("sensor.galaga_credits") is not None


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({CONF_MACHINE_ID: "bad/id"}, {CONF_MACHINE_ID: "invalid_machine_id"}),
        ({CONF_MACHINE_ID: MACHINE_ID}, {CONF_MACHINE_ID: "machine_id_taken"}),
        ({CONF_PRICE: "1.555"}, {CONF_PRICE: "invalid_price"}),
        ({CONF_PRICE: "1,500"}, {CONF_PRICE: "invalid_price"}),
        ({CONF_PRICE: "0"}, {CONF_PRICE: "invalid_price"}),
        ({CONF_CURRENCY: "euro"}, {CONF_CURRENCY: "invalid_currency"}),
        ({CONF_CURRENCY: "xyz"}, {CONF_CURRENCY: "invalid_currency"}),
        ({CONF_NAME: "   "}, {CONF_NAME: "name_required"}),
        ({CONF_MAX_QUANTITY: 0}, {CONF_MAX_QUANTITY: "max_quantity_range"}),
        ({CONF_MAX_QUANTITY: 100}, {CONF_MAX_QUANTITY: "max_quantity_range"}),
        ({CONF_MAX_QUANTITY: 2.5}, {CONF_MAX_QUANTITY: "max_quantity_range"}),
    ],
)
async def test_add_cabinet_errors(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    changes: dict[str, Any],
    errors: dict[str, str],
) -> None:
    links_before = len(fake_stripe.payment_links)
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_CABINET | changes)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert len(fake_stripe.payment_links) == links_before


async def test_add_cabinet_stripe_down(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    fake_stripe.fail_next, fake_stripe.fail_status = 10, 500
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_CABINET)
    assert result["errors"] == {"base": "stripe_error"}


async def test_adopt_existing_link_of_the_earlier_system(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    old = fake_stripe.add_older_link("donkeyKong", 100, "gbp")
    result = await start_cabinet_flow(hass, setup_entry, "existing_link")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_MACHINE_ID: "donkeyKong", CONF_NAME: "Donkey Kong", CONF_PAYMENT_LINK_ID: "plink_missing"}
        | NEVER,
    )
    assert result["errors"] == {CONF_PAYMENT_LINK_ID: "payment_link_not_found"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_MACHINE_ID: "donkeyKong", CONF_NAME: "Donkey Kong", CONF_PAYMENT_LINK_ID: old["id"]} | NEVER,
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = next(s for s in setup_entry.subentries.values() if s.unique_id == "donkeyKong")
    assert subentry.data[CONF_MANAGED_LINK] is False
    assert subentry.data[CONF_CURRENCY] == "gbp"
    assert subentry.data[CONF_UNIT_AMOUNT] == 100


async def test_adopt_existing_link_errors(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_cabinet_flow(hass, setup_entry, "existing_link")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_MACHINE_ID: "x y", CONF_NAME: "X", CONF_PAYMENT_LINK_ID: "plink_1"} | NEVER
    )
    assert result["errors"] == {CONF_MACHINE_ID: "invalid_machine_id"}
    fake_stripe.fail_next = 0
    setup_entry_data = dict(setup_entry.data)
    hass.config_entries.async_update_entry(setup_entry, data=setup_entry_data | {CONF_API_KEY: REJECTED_KEY})
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_MACHINE_ID: "xy", CONF_NAME: "X", CONF_PAYMENT_LINK_ID: "plink_1"} | NEVER
    )
    assert result["errors"] == {"base": "invalid_auth"}


async def test_reconfigure_name_and_quantity_keeps_link(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    result = await start_reconfigure(hass, setup_entry)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_NAME: "Ms. Pac-Man", CONF_PRICE: "2.00", CONF_MAX_QUANTITY: 20, "acknowledges": True} | NEVER,
    )
    await hass.async_block_till_done()
    assert result["reason"] == "reconfigure_successful"
    assert result["description_placeholders"] | {"payment_link": ""} == {
        "name": "Ms. Pac-Man",
        "price": "2.00",
        "currency": "USD",
        "max_quantity": "20",
        "payment_link": "",
    }
    subentry = next(iter(setup_entry.subentries.values()))
    assert subentry.title == "Ms. Pac-Man"
    assert subentry.data[CONF_PAYMENT_LINK_ID] == cabinet_link["id"]
    assert subentry.data[CONF_MAX_QUANTITY] == 20
    assert fake_stripe.link_items[cabinet_link["id"]][0]["adjustable_quantity"]["maximum"] == 20
    assert fake_stripe.products[cabinet_link["product_id"]]["name"] == "Ms. Pac-Man"
    assert subentry.data["acknowledges"] is True


async def test_reconfigure_price_makes_new_link_and_retires_old(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    result = await start_reconfigure(hass, setup_entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_NAME: "Pac-Man", CONF_PRICE: "2,50", CONF_MAX_QUANTITY: 10, "acknowledges": False} | NEVER,
    )
    await hass.async_block_till_done()
    # The result says the QR code changed (the text: "print the new QR code; the old one no longer
    # takes payments"), and a repair reminds the operator until they confirm it.
    assert result["reason"] == "reconfigure_new_qr_code"
    assert result["description_placeholders"]["price"] == "2.50"
    subentry = next(iter(setup_entry.subentries.values()))
    issue_id = f"new_qr_code_{subentry.subentry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders == {"cabinet": "Pac-Man"}
    assert subentry.data[CONF_PAYMENT_LINK_ID] != cabinet_link["id"]
    assert subentry.data[CONF_UNIT_AMOUNT] == 250
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert fake_stripe.payment_links[subentry.data[CONF_PAYMENT_LINK_ID]]["active"] is True


async def test_price_change_that_cannot_retire_the_old_link_changes_nothing(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    """Stripe refuses to deactivate the old link: the new one must not stay behind taking money.

    The form shows the error and the cabinet keeps its link; the link made for the new price is
    deactivated again, so no second QR code for the same cabinet takes payments.
    """
    real = StripeGateway.set_link_active

    async def refuse_old(gateway: StripeGateway, link_id: str, active: bool) -> None:
        if link_id == cabinet_link["id"]:
            raise StripeGatewayError("Simulated failure")
        await real(gateway, link_id, active)

    before = set(fake_stripe.payment_links)
    result = await start_reconfigure(hass, setup_entry)
    with patch.object(StripeGateway, "set_link_active", refuse_old):
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            {CONF_NAME: "Pac-Man", CONF_PRICE: "2,50", CONF_MAX_QUANTITY: 10, "acknowledges": False} | NEVER,
        )
    assert result["errors"] == {"base": "stripe_error"}
    subentry = next(iter(setup_entry.subentries.values()))
    assert subentry.data[CONF_PAYMENT_LINK_ID] == cabinet_link["id"]
    (made,) = set(fake_stripe.payment_links) - before
    assert fake_stripe.payment_links[made]["active"] is False
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True


async def test_reconfigure_errors(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_reconfigure(hass, setup_entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_NAME: "Pac-Man", CONF_PRICE: "2.555", CONF_MAX_QUANTITY: 10, "acknowledges": False} | NEVER,
    )
    assert result["errors"] == {CONF_PRICE: "invalid_price"}
    fake_stripe.fail_next = 10
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_NAME: "Pac-Man", CONF_PRICE: "3", CONF_MAX_QUANTITY: 10, "acknowledges": False} | NEVER,
    )
    assert result["errors"] == {"base": "stripe_error"}


async def test_reconfigure_adopted_link_only_renames(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    old = fake_stripe.add_older_link("frogger", 100)
    result = await start_cabinet_flow(hass, setup_entry, "existing_link")
    await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_MACHINE_ID: "frogger", CONF_NAME: "Frogger", CONF_PAYMENT_LINK_ID: old["id"]} | NEVER,
    )
    await hass.async_block_till_done()
    subentry_id = next(s.subentry_id for s in setup_entry.subentries.values() if s.unique_id == "frogger")
    result = await hass.config_entries.subentries.async_init(
        (setup_entry.entry_id, SUBENTRY_CABINET),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    assert set(result["data_schema"].schema) == {CONF_NAME, "acknowledges", CONF_NEVER_REPORTS}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "Frogger DX", "acknowledges": False, CONF_NEVER_REPORTS: True}
    )
    assert result["reason"] == "reconfigure_successful_adopted"
    assert result["description_placeholders"] == {"name": "Frogger DX"}
    assert setup_entry.subentries[subentry_id].data[CONF_NEVER_REPORTS] is True
    assert setup_entry.subentries[subentry_id].title == "Frogger DX"

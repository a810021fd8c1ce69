"""What a cabinet's scans sell, set in its forms: QR target, packs, happy hour packs, promotion codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.arcade_pay.const import (
    CONF_ALLOW_PROMOTION_CODES,
    CONF_CURRENCY,
    CONF_HAPPY_HOUR_PACKS,
    CONF_MACHINE_ID,
    CONF_MAX_QUANTITY,
    CONF_NEVER_REPORTS,
    CONF_PACKS,
    CONF_PAYMENT_LINK_ID,
    CONF_PRICE,
    CONF_QR_TARGET,
    CONF_SCAN_TOKEN,
    DOMAIN,
    SUBENTRY_CABINET,
)
from fake_stripe import FakeStripe

from .helpers import MACHINE_ID

GALAGA = {
    CONF_MACHINE_ID: "galaga-2",
    CONF_NAME: "Galaga",
    CONF_PRICE: "2.00",
    CONF_CURRENCY: "USD",
    CONF_MAX_QUANTITY: 10,
    CONF_NEVER_REPORTS: False,
}


async def new_cabinet_form(hass: HomeAssistant, entry: MockConfigEntry, step: str = "new_link") -> Any:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CABINET), context={"source": SOURCE_USER}
    )
    return await hass.config_entries.subentries.async_configure(result["flow_id"], {"next_step_id": step})


def cabinet(entry: MockConfigEntry, machine_id: str) -> Any:
    return next((s for s in entry.subentries.values() if s.unique_id == machine_id), None)


def shown(result: Any) -> dict[str, Any]:
    return {key: key.description["suggested_value"] for key in result["data_schema"].schema}


async def test_a_new_cabinets_qr_code_points_to_home_assistant(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    form = await new_cabinet_form(hass, setup_entry)
    defaults = {
        key: key.default()
        for key in form["data_schema"].schema
        if key in (CONF_QR_TARGET, CONF_ALLOW_PROMOTION_CODES)
    }
    assert defaults == {CONF_QR_TARGET: "home_assistant", CONF_ALLOW_PROMOTION_CODES: False}
    result = await hass.config_entries.subentries.async_configure(form["flow_id"], GALAGA)
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    data = cabinet(setup_entry, "galaga-2").data
    assert (data[CONF_QR_TARGET], data[CONF_PACKS], data[CONF_HAPPY_HOUR_PACKS]) == ("home_assistant", [], [])
    assert data[CONF_ALLOW_PROMOTION_CODES] is False
    assert len(data[CONF_SCAN_TOKEN]) >= 16
    # Added without a reload, with the entities that set what its scans sell, at the form's price.
    assert hass.states.get("number.galaga_price_per_credit").state == "2.0"
    assert hass.states.get("select.galaga_packs").state == "none"
    assert hass.states.get("number.pac_man_price_per_credit") is None  # Pac-Man is on its link


async def test_packs_and_promotion_codes_are_stored_in_minor_units(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    form = await new_cabinet_form(hass, setup_entry)
    settings = {
        CONF_PACKS: "10=15, 3=5.00",
        CONF_HAPPY_HOUR_PACKS: " 3=3,50 ",
        CONF_ALLOW_PROMOTION_CODES: True,
        CONF_QR_TARGET: "payment_link",
    }
    await hass.config_entries.subentries.async_configure(form["flow_id"], GALAGA | settings)
    await hass.async_block_till_done()

    data = cabinet(setup_entry, "galaga-2").data
    assert data[CONF_PACKS] == [[3, 500], [10, 1500]]
    assert data[CONF_HAPPY_HOUR_PACKS] == [[3, 350]]
    assert (data[CONF_ALLOW_PROMOTION_CODES], data[CONF_QR_TARGET]) == (True, "payment_link")
    assert hass.states.get("number.galaga_price_per_credit") is None  # its price is its link's


@pytest.mark.parametrize(
    ("field", "typed", "error", "pack"),
    [
        (CONF_PACKS, "3=2.50, ten=7", "invalid_pack", "ten=7"),
        (CONF_PACKS, "3=2.555", "pack_price", "3=2.555"),
        (CONF_HAPPY_HOUR_PACKS, "1=1.00", "pack_credits", "1=1.00"),
        (CONF_HAPPY_HOUR_PACKS, "3=2, 4=2", "pack_twice", "4=2"),
        (CONF_PACKS, "3=1000000", "pack_price_too_high", "3=1000000"),
    ],
)
async def test_packs_that_cannot_be_sold_create_nothing(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    field: str,
    typed: str,
    error: str,
    pack: str,
) -> None:
    links = set(fake_stripe.payment_links)
    form = await new_cabinet_form(hass, setup_entry)
    result = await hass.config_entries.subentries.async_configure(form["flow_id"], GALAGA | {field: typed})
    assert result["errors"] == {field: error}
    assert result["description_placeholders"]["pack"] == pack
    assert set(fake_stripe.payment_links) == links  # no link made in Stripe
    assert cabinet(setup_entry, "galaga-2") is None


async def test_a_price_above_what_stripe_takes(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    links = set(fake_stripe.payment_links)
    form = await new_cabinet_form(hass, setup_entry)
    result = await hass.config_entries.subentries.async_configure(
        form["flow_id"], GALAGA | {CONF_PRICE: "1000000"}
    )
    assert result["errors"] == {CONF_PRICE: "price_too_high"}
    assert result["description_placeholders"]["max_price"] == "999999.99"
    assert set(fake_stripe.payment_links) == links


async def reconfigure_form(hass: HomeAssistant, entry: MockConfigEntry, machine_id: str = MACHINE_ID) -> Any:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CABINET),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": cabinet(entry, machine_id).subentry_id},
    )


async def test_reconfigure_changes_what_scans_sell_and_keeps_the_scan_token(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    token = cabinet(setup_entry, MACHINE_ID).data[CONF_SCAN_TOKEN]
    form = await reconfigure_form(hass, setup_entry)
    assert shown(form) | {CONF_NAME: ""} == {
        CONF_NAME: "",
        CONF_PRICE: "2.00",
        CONF_MAX_QUANTITY: 10,
        CONF_QR_TARGET: "payment_link",  # migrated: its printed code is its link
        CONF_PACKS: "",
        CONF_HAPPY_HOUR_PACKS: "",
        CONF_ALLOW_PROMOTION_CODES: False,
        "acknowledges": False,
        CONF_NEVER_REPORTS: False,
    }
    assert CONF_SCAN_TOKEN not in shown(form)  # never shown
    changes = {CONF_QR_TARGET: "home_assistant", CONF_PACKS: "3=5", CONF_ALLOW_PROMOTION_CODES: True}
    result = await hass.config_entries.subentries.async_configure(form["flow_id"], shown(form) | changes)
    await hass.async_block_till_done()

    assert result["reason"] == "reconfigure_successful"
    data = cabinet(setup_entry, MACHINE_ID).data
    assert (data[CONF_QR_TARGET], data[CONF_PACKS], data[CONF_ALLOW_PROMOTION_CODES]) == (
        "home_assistant",
        [[3, 500]],
        True,
    )
    assert data[CONF_SCAN_TOKEN] == token
    assert data[CONF_PAYMENT_LINK_ID] == cabinet_link["id"]  # the link stays, as the fallback code
    assert hass.states.get("number.pac_man_price_per_credit").state == "2.0"  # after the reload
    again = await reconfigure_form(hass, setup_entry)
    assert shown(again)[CONF_PACKS] == "3=5.00"


async def test_reconfigure_with_a_bad_pack_changes_nothing(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    before = dict(cabinet(setup_entry, MACHINE_ID).data)
    form = await reconfigure_form(hass, setup_entry)
    changes = {CONF_NAME: "Ms. Pac-Man", CONF_PRICE: "3.00", CONF_HAPPY_HOUR_PACKS: "3"}
    result = await hass.config_entries.subentries.async_configure(form["flow_id"], shown(form) | changes)
    assert result["errors"] == {CONF_HAPPY_HOUR_PACKS: "invalid_pack"}
    assert dict(cabinet(setup_entry, MACHINE_ID).data) == before
    assert cabinet(setup_entry, MACHINE_ID).title == "Pac-Man"
    assert list(fake_stripe.payment_links) == [cabinet_link["id"]]  # no new link for the new price


async def test_an_adopted_link_keeps_its_qr_code_on_the_link(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    old = fake_stripe.add_older_link("frogger", 100)
    form = await new_cabinet_form(hass, setup_entry, "existing_link")
    await hass.config_entries.subentries.async_configure(
        form["flow_id"],
        {
            CONF_MACHINE_ID: "frogger",
            CONF_NAME: "Frogger",
            CONF_PAYMENT_LINK_ID: old["id"],
            CONF_NEVER_REPORTS: False,
        },
    )
    await hass.async_block_till_done()
    data = cabinet(setup_entry, "frogger").data
    assert (data[CONF_QR_TARGET], data[CONF_PACKS]) == ("payment_link", [])
    assert len(data[CONF_SCAN_TOKEN]) >= 16


async def test_a_discovered_cabinet_is_added_as_a_new_one(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    async_fire_mqtt_message(
        hass,
        "arcade/machine/galaga-2/info",
        json.dumps({"machineId": "galaga-2", "name": "Galaga"}),
        retain=True,
    )
    await hass.async_block_till_done()
    [flow] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_CURRENCY: "USD", CONF_PRICE: "1.50", CONF_MAX_QUANTITY: 10}
    )
    await hass.async_block_till_done()
    data = cabinet(setup_entry, "galaga-2").data
    assert (data[CONF_QR_TARGET], data[CONF_PACKS], data[CONF_ALLOW_PROMOTION_CODES]) == (
        "home_assistant",
        [],
        False,
    )
    assert len(data[CONF_SCAN_TOKEN]) >= 16
    assert hass.states.get("number.galaga_price_per_credit").state == "1.5"

"""The cabinet forms catch typos, refuse links that belong elsewhere, and say what happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.components.repairs.issue_handler import async_process_repairs_platforms
from homeassistant.config_entries import SOURCE_RECONFIGURE
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.setup import async_setup_component

from custom_components.arcade_pay.const import (
    CONF_CURRENCY,
    CONF_MACHINE_ID,
    CONF_MAX_QUANTITY,
    CONF_NEVER_REPORTS,
    CONF_PAYMENT_LINK_ID,
    CONF_PRICE,
    CONF_UNIT_AMOUNT,
    DOMAIN,
    SUBENTRY_CABINET,
)
from custom_components.arcade_pay.core.stripe_gateway import PaymentLink
from fake_stripe import FakeStripe

from .helpers import MACHINE_ID, NEW_CABINET, start_cabinet_flow, start_reconfigure

EN = Path(__file__).parents[1] / "custom_components" / "arcade_pay" / "translations" / "en.json"


def cabinet_text(*path: str, placeholders: dict[str, str]) -> str:
    """The English text of the cabinet flow at ``path``, as the frontend fills it in."""
    node: Any = json.loads(EN.read_text(encoding="utf-8"))["config_subentries"]["cabinet"]
    for part in path:
        node = node[part]
    return str(node).format(**placeholders)


def suggested(result: Any, field: str) -> Any:
    return next(key for key in result["data_schema"].schema if key == field).description["suggested_value"]


def subentry_of(entry: MockConfigEntry, machine_id: str) -> Any:
    return next(s for s in entry.subentries.values() if s.unique_id == machine_id)


async def test_price_with_comma_is_the_decimal_separator_and_result_says_it(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    # The price field shows the currency and starts empty (no made-up 0.01).
    price = next(key for key in result["data_schema"].schema if key == CONF_PRICE)
    assert price.default is vol_undefined()
    assert "suggested_value" not in (price.description or {})
    assert result["data_schema"].schema[price].config["suffix"] == "USD"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], NEW_CABINET | {CONF_PRICE: "1,50", CONF_MAX_QUANTITY: 10}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert subentry_of(setup_entry, "galaga-2").data[CONF_UNIT_AMOUNT] == 150
    # "Galaga: 1.50 USD per credit, up to 10 credits per payment."
    assert result["description"] == "new_link"
    assert result["description_placeholders"] | {"payment_link": ""} == {
        "name": "Galaga",
        "price": "1.50",
        "currency": "USD",
        "max_quantity": "10",
        "payment_link": "",
    }


def vol_undefined() -> Any:
    import voluptuous as vol  # noqa: PLC0415 - only this helper needs it

    return vol.UNDEFINED


async def test_one_credit_per_payment_reads_naturally(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], NEW_CABINET | {CONF_MAX_QUANTITY: 1}
    )
    assert result["description"] == "new_link_one"


async def test_changing_the_currency_asks_to_check_the_price(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], NEW_CABINET | {CONF_CURRENCY: " jpy ", CONF_PRICE: "1.50"}
    )
    assert result["errors"] == {CONF_PRICE: "price_currency_changed"}
    assert result["description_placeholders"]["currency"] == "JPY"
    assert result["data_schema"].schema[CONF_PRICE].config["suffix"] == "JPY"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], NEW_CABINET | {CONF_CURRENCY: "JPY", CONF_PRICE: "1.50"}
    )
    assert result["errors"] == {CONF_PRICE: "invalid_price"}
    assert result["description_placeholders"]["example"] == "100"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], NEW_CABINET | {CONF_CURRENCY: "JPY", CONF_PRICE: "200"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["description_placeholders"]["price"] == "200"
    link = fake_stripe.link_items[subentry_of(setup_entry, "galaga-2").data[CONF_PAYMENT_LINK_ID]][0]
    assert (link["price"]["unit_amount"], link["price"]["currency"]) == (200, "jpy")


async def test_typed_text_is_stripped(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], NEW_CABINET | {CONF_MACHINE_ID: " galaga-2\n", CONF_NAME: "  Galaga "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert subentry_of(setup_entry, "galaga-2").title == "Galaga"


@pytest.mark.parametrize("never_reports", [True, False])
async def test_never_reports_is_stored(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, never_reports: bool
) -> None:
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    await hass.config_entries.subentries.async_configure(
        result["flow_id"], NEW_CABINET | {CONF_NEVER_REPORTS: never_reports}
    )
    earlier = fake_stripe.add_older_link("legacy-1", 100)
    result = await start_cabinet_flow(hass, setup_entry, "existing_link")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_MACHINE_ID: "legacy-1",
            CONF_NAME: "Legacy",
            CONF_PAYMENT_LINK_ID: f" {earlier['id']} ",
            CONF_NEVER_REPORTS: never_reports,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["description"] == "existing_link"
    assert result["description_placeholders"]["price"] == "1.00"
    await hass.async_block_till_done()
    for machine_id in ("galaga-2", "legacy-1"):
        assert subentry_of(setup_entry, machine_id).data[CONF_NEVER_REPORTS] is never_reports

    result = await start_reconfigure(hass, setup_entry)
    assert CONF_NEVER_REPORTS in result["data_schema"].schema
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Pac-Man",
            CONF_PRICE: "2.00",
            CONF_MAX_QUANTITY: 10,
            "acknowledges": False,
            CONF_NEVER_REPORTS: not never_reports,
        },
    )
    assert result["reason"] == "reconfigure_successful"
    assert subentry_of(setup_entry, MACHINE_ID).data[CONF_NEVER_REPORTS] is (not never_reports)


async def test_existing_link_of_another_cabinet_is_refused(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    """Pac-Man's link adopted as "legacy-1" would send Pac-Man's money to legacy-1: refused."""
    result = await start_cabinet_flow(hass, setup_entry, "existing_link")
    legacy = {CONF_MACHINE_ID: "legacy-1", CONF_NAME: "Legacy", CONF_NEVER_REPORTS: False}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], legacy | {CONF_PAYMENT_LINK_ID: cabinet_link["id"]}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PAYMENT_LINK_ID: "payment_link_taken"}
    assert result["description_placeholders"]["owner"] == "Pac-Man"

    # A link Stripe says is for another machine (even one not set up here) is refused too.
    other = fake_stripe.add_older_link("donkeyKong", 100)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], legacy | {CONF_PAYMENT_LINK_ID: other["id"]}
    )
    assert result["errors"] == {CONF_PAYMENT_LINK_ID: "payment_link_other_machine"}
    assert result["description_placeholders"]["link_machine_id"] == "donkeyKong"
    assert {s.unique_id for s in setup_entry.subentries.values()} == {MACHINE_ID}

    # A link without machine_id metadata is matched by its id alone, and accepted.
    bare = fake_stripe.add_older_link("unused", 100)
    fake_stripe.payment_links[bare["id"]]["metadata"] = {}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], legacy | {CONF_PAYMENT_LINK_ID: bare["id"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_reconfigure_refuses_blank_name_and_bad_limit(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_reconfigure(hass, setup_entry)
    # Yen or dollars: the price is shown with the currency's own decimals.
    assert result["data_schema"].schema[CONF_PRICE].config["suffix"] == "USD"
    base = {CONF_PRICE: "2.00", "acknowledges": False, CONF_NEVER_REPORTS: False}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], base | {CONF_NAME: " ", CONF_MAX_QUANTITY: 10}
    )
    assert result["errors"] == {CONF_NAME: "name_required"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], base | {CONF_NAME: "Pac-Man", CONF_MAX_QUANTITY: 0}
    )
    assert result["errors"] == {CONF_MAX_QUANTITY: "max_quantity_range"}


async def test_reconfigure_shows_yen_without_decimals(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], NEW_CABINET | {CONF_CURRENCY: "JPY"}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], NEW_CABINET | {CONF_CURRENCY: "JPY", CONF_PRICE: "500"}
    )
    await hass.async_block_till_done()
    result = await hass.config_entries.subentries.async_init(
        (setup_entry.entry_id, SUBENTRY_CABINET),
        context={
            "source": SOURCE_RECONFIGURE,
            "subentry_id": subentry_of(setup_entry, "galaga-2").subentry_id,
        },
    )
    price = next(key for key in result["data_schema"].schema if key == CONF_PRICE)
    assert price.description["suggested_value"] == "500"


async def test_new_qr_code_repair_clears_when_confirmed(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_reconfigure(hass, setup_entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Pac-Man",
            CONF_PRICE: "3",
            CONF_MAX_QUANTITY: 1,
            "acknowledges": False,
            CONF_NEVER_REPORTS: False,
        },
    )
    assert result["reason"] == "reconfigure_new_qr_code_one"
    issue_id = f"new_qr_code_{subentry_of(setup_entry, MACHINE_ID).subentry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    assert await async_setup_component(hass, "repairs", {})
    await async_process_repairs_platforms(hass)
    manager = repairs_flow_manager(hass)
    assert manager is not None
    flow = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"] == {"cabinet": "Pac-Man"}
    flow = await manager.async_configure(flow["flow_id"], {})
    assert flow["type"] is FlowResultType.CREATE_ENTRY
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"credits_per_game": 101}, {"credits_per_game": "credits_per_game_range"}),
        ({"offline_minutes": -1}, {"offline_minutes": "offline_minutes_range"}),
        ({"refund_minutes": 1441}, {"refund_minutes": "refund_minutes_range"}),
        ({"credits_per_game": 1.5}, {"credits_per_game": "credits_per_game_range"}),
    ],
)
async def test_options_range_errors_are_translated(
    hass: HomeAssistant, setup_entry: MockConfigEntry, changes: dict[str, Any], errors: dict[str, str]
) -> None:
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    valid = {
        "topic_prefix": "arcade/machine",
        "credits_per_game": 1,
        "offline_minutes": 2,
        "refund_undelivered": False,
        "refund_minutes": 30,
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], valid | changes)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors


async def test_link_selling_several_prices_is_adopted_in_the_account_currency(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    several = PaymentLink("plink_several", "https://buy.example/x", True, None, None, None, None, None)
    result = await start_cabinet_flow(hass, setup_entry, "existing_link")
    with patch(
        "custom_components.arcade_pay.core.stripe_gateway.StripeGateway.payment_link", return_value=several
    ):
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            {
                CONF_MACHINE_ID: "multi",
                CONF_NAME: "Multi",
                CONF_PAYMENT_LINK_ID: "plink_several",
                CONF_NEVER_REPORTS: False,
            },
        )
    assert result["description"] == "existing_link_no_price"
    assert result["description_placeholders"]["payment_link"] == "plink_several"
    assert subentry_of(setup_entry, "multi").data[CONF_CURRENCY] == "usd"


async def test_reconfigure_shows_the_stored_acknowledges_setting(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    subentry = subentry_of(setup_entry, MACHINE_ID)
    hass.config_entries.async_update_subentry(
        setup_entry, subentry, data=dict(subentry.data) | {"acknowledges": True}
    )
    await hass.async_block_till_done()
    result = await start_reconfigure(hass, setup_entry)
    suggested = {key: key.description["suggested_value"] for key in result["data_schema"].schema}
    assert suggested["acknowledges"] is True
    assert suggested[CONF_NEVER_REPORTS] is False


async def test_reconfigure_while_the_entry_is_not_loaded(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    await hass.config_entries.async_unload(setup_entry.entry_id)
    result = await start_reconfigure(hass, setup_entry)
    suggested = {key: key.description["suggested_value"] for key in result["data_schema"].schema}
    assert suggested["acknowledges"] is False


async def test_webhook_path_when_home_assistant_has_no_url(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    with patch("homeassistant.components.webhook.async_generate_url", side_effect=NoURLAvailableError):
        result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    assert result["description_placeholders"]["webhook_url"] == "/api/webhook/arcade_pay_test_webhook"


async def test_new_qr_code_repair_goes_with_its_cabinet(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    result = await start_reconfigure(hass, setup_entry)
    await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_NAME: "Pac-Man", CONF_PRICE: "3", CONF_MAX_QUANTITY: 10, "acknowledges": False}
        | {CONF_NEVER_REPORTS: False},
    )
    await hass.async_block_till_done()
    subentry_id = subentry_of(setup_entry, MACHINE_ID).subentry_id
    issue_id = f"new_qr_code_{subentry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    assert hass.config_entries.async_remove_subentry(setup_entry, subentry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_price_help_and_currency_fit_the_currency(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    """For JPY the help speaks of no decimals (not "A point or a comma separates the decimals, for
    example 100"), and the currency typed as "jpy" comes back in upper case after the price check."""
    help_path = ("step", "new_link", "data_description", "price")
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    dollars = cabinet_text(*help_path, placeholders=result["description_placeholders"])
    assert "1.50 or 1,50" in dollars
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], NEW_CABINET | {CONF_CURRENCY: " jpy ", CONF_PRICE: "1.50"}
    )
    assert result["errors"] == {CONF_PRICE: "price_currency_changed"}
    assert suggested(result, CONF_CURRENCY) == "JPY"
    yen = cabinet_text(*help_path, placeholders=result["description_placeholders"])
    assert "for example 100." in yen
    assert "decimal" not in yen
    assert "comma" not in yen
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], NEW_CABINET | {CONF_CURRENCY: "jpy", CONF_PRICE: "1.50"}
    )
    assert result["errors"] == {CONF_PRICE: "invalid_price"}
    assert suggested(result, CONF_CURRENCY) == "JPY"
    error = cabinet_text("error", "invalid_price", placeholders=result["description_placeholders"])
    assert "decimal" not in error
    assert "comma" not in error


async def test_cabinet_reconfigure_is_titled_with_the_cabinets_name(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """Titled with the name the operator gave ("Change the cabinet Pac-Man"), not the machine ID."""
    result = await start_reconfigure(hass, setup_entry)
    placeholders = result["description_placeholders"]
    assert (
        cabinet_text("step", "reconfigure", "title", placeholders=placeholders)
        == "Change the cabinet Pac-Man"
    )
    assert MACHINE_ID in cabinet_text("step", "reconfigure", "description", placeholders=placeholders)

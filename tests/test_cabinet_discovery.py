"""Cabinets that announce themselves are offered as discovered, and join an account on confirmation."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any
from unittest.mock import MagicMock

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from homeassistant.config_entries import SOURCE_IGNORE, SOURCE_MQTT, ConfigSubentry
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, UnknownFlow
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
from homeassistant.util import dt as dt_util

from custom_components.arcade_pay.const import (
    CONF_CURRENCY,
    CONF_DEFAULT_CURRENCY,
    CONF_MAX_QUANTITY,
    CONF_NEVER_REPORTS,
    CONF_PAYMENT_LINK_ID,
    CONF_PRICE,
    CONF_TOPIC_PREFIX,
    CONF_UNIT_AMOUNT,
    DOMAIN,
)
from custom_components.arcade_pay.core.protocol import (
    DEFAULT_TOPIC_PREFIX,
    TOPIC_INFO,
    TOPIC_STATUS,
    subscription,
)
from custom_components.arcade_pay.core.stripe_gateway import PaymentLink, StripeGateway
from fake_stripe import ACCOUNT_ID, FakeStripe

from .helpers import API_KEY, MACHINE_ID

NEW_ID = "galaga-2"
PRICE = {CONF_CURRENCY: "USD", CONF_PRICE: "1.50", CONF_MAX_QUANTITY: 10}
MANIFEST = Path(__file__).parents[1] / "custom_components" / "arcade_pay" / "manifest.json"


def announcement(machine_id: str = NEW_ID, name: str = "Galaga", **more: Any) -> str:
    return json.dumps({"machineId": machine_id, "name": name, "model": "Upright", "swVersion": "1.0"} | more)


def info(payload: str, machine_id: str = NEW_ID, prefix: str = DEFAULT_TOPIC_PREFIX) -> MqttServiceInfo:
    return message(f"{prefix}/{machine_id}/{TOPIC_INFO}", payload, subscription(prefix, TOPIC_INFO))


def status(machine_id: str = NEW_ID, prefix: str = DEFAULT_TOPIC_PREFIX) -> MqttServiceInfo:
    return message(f"{prefix}/{machine_id}/{TOPIC_STATUS}", "online", subscription(prefix, TOPIC_STATUS))


def message(topic: str, payload: str, subscribed: str) -> MqttServiceInfo:
    return MqttServiceInfo(
        topic=topic,
        payload=payload,
        qos=0,
        retain=True,
        subscribed_topic=subscribed,
        timestamp=dt_util.utcnow(),
    )


async def discover(hass: HomeAssistant, discovery_info: MqttServiceInfo) -> Any:
    return await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery_info
    )


def offered(hass: HomeAssistant) -> list[Any]:
    return list(hass.config_entries.flow.async_progress_by_handler(DOMAIN))


def cabinet_subentry(entry: MockConfigEntry, machine_id: str = NEW_ID) -> Any:
    return next((s for s in entry.subentries.values() if s.unique_id == machine_id), None)


def other_account(prefix: str = DEFAULT_TOPIC_PREFIX) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="Second Arcade",
        unique_id="acct_second",
        data={CONF_API_KEY: API_KEY, CONF_DEFAULT_CURRENCY: "eur"},
        options={CONF_TOPIC_PREFIX: prefix},
    )


def test_the_manifest_asks_mqtt_for_the_default_prefixs_announcements_only() -> None:
    """Statuses are the accounts' own to watch (docs/architecture.md: Discovered cabinets)."""
    topics = json.loads(MANIFEST.read_text(encoding="utf-8"))["mqtt"]
    assert topics == [subscription(DEFAULT_TOPIC_PREFIX, TOPIC_INFO)]


async def test_an_announced_cabinet_is_offered_and_confirmed_with_a_price(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    # The cabinet's retained announcement reaches the entry's subscription (and MQTT discovery's).
    async_fire_mqtt_message(hass, f"{DEFAULT_TOPIC_PREFIX}/{NEW_ID}/info", announcement(), retain=True)
    await hass.async_block_till_done()
    [flow] = offered(hass)
    assert flow["step_id"] == "discovery_confirm"
    assert flow["context"]["title_placeholders"] == {"name": "Galaga"}
    assert flow["context"]["unique_id"] == f"cabinet:{DEFAULT_TOPIC_PREFIX}/{NEW_ID}"

    result = await hass.config_entries.flow.async_configure(flow["flow_id"])
    # Only price, currency and limit: name and machine ID come from the announcement.
    assert set(result["data_schema"].schema) == {CONF_CURRENCY, CONF_PRICE, CONF_MAX_QUANTITY}
    assert result["description_placeholders"]["machine_id"] == NEW_ID
    assert result["description_placeholders"]["currency"] == "USD"

    result = await hass.config_entries.flow.async_configure(flow["flow_id"], PRICE)
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cabinet_added"
    # The reloaded entry subscribes again; the broker hands it the retained announcement.
    async_fire_mqtt_message(hass, f"{DEFAULT_TOPIC_PREFIX}/{NEW_ID}/info", announcement(), retain=True)
    await hass.async_block_till_done()
    assert result["description_placeholders"] | {"payment_link": ""} == {
        "name": "Galaga",
        "account": "Fake Arcade",
        "price": "1.50",
        "currency": "USD",
        "max_quantity": "10",
        "payment_link": "",
    }
    subentry = cabinet_subentry(setup_entry)
    assert subentry.title == "Galaga"
    assert (subentry.data[CONF_UNIT_AMOUNT], subentry.data[CONF_NEVER_REPORTS]) == (150, False)
    # The payment link was made in Stripe exactly as for a cabinet added by hand.
    link = fake_stripe.payment_links[subentry.data[CONF_PAYMENT_LINK_ID]]
    assert link["metadata"]["machine_id"] == NEW_ID
    assert fake_stripe.link_items[link["id"]][0]["price"]["unit_amount"] == 150
    # The entry reloaded with the new cabinet: its device shows what it announced.
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{ACCOUNT_ID}_{NEW_ID}")})
    assert device is not None
    assert (device.name, device.model, device.sw_version) == ("Galaga", "Upright", "1.0")
    assert offered(hass) == []
    # Seen again (a reconnect), it is no longer offered.
    assert (await discover(hass, info(announcement())))["reason"] == "already_configured"


async def test_a_bad_price_is_a_translated_form_error_and_creates_nothing(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    links_before = set(fake_stripe.payment_links)
    result = await discover(hass, info(announcement()))
    result = await hass.config_entries.flow.async_configure(result["flow_id"], PRICE | {CONF_PRICE: "abc"})
    assert result["errors"] == {CONF_PRICE: "invalid_price"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], PRICE | {CONF_CURRENCY: "JPY"})
    assert result["errors"] == {CONF_PRICE: "price_currency_changed"}
    assert result["data_schema"].schema[CONF_PRICE].config["suffix"] == "JPY"
    assert set(fake_stripe.payment_links) == links_before
    assert cabinet_subentry(setup_entry) is None


async def test_an_ignored_cabinet_is_not_offered_again(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    result = await discover(hass, info(announcement()))
    assert result["step_id"] == "discovery_confirm"
    flow = offered(hass)[0]
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_IGNORE},
        data={"unique_id": flow["context"]["unique_id"], "title": "Arcade cabinet Galaga"},
    )
    await hass.async_block_till_done()
    assert offered(hass) == []
    assert (await discover(hass, info(announcement())))["reason"] == "already_configured"
    assert (await discover(hass, status()))["reason"] == "already_configured"
    # The ignored cabinet is no Stripe account: cabinets are still offered and added.
    result = await discover(hass, info(announcement("pinball-7", "Pinball"), "pinball-7"))
    assert result["step_id"] == "discovery_confirm"


async def test_a_cabinet_seen_only_by_its_status_is_not_said_to_have_announced_itself(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    """The form must not say it "announced itself … under the name it gave itself": it gave none."""
    result = await discover(hass, status())
    assert result["step_id"] == "discovery_confirm_status"
    strings = json.loads((MANIFEST.parent / "strings.json").read_text(encoding="utf-8"))
    description = strings["config"]["step"][result["step_id"]]["description"]
    assert "announced" not in description
    assert "name it gave" not in description
    assert set(result["data_schema"].schema) == {CONF_CURRENCY, CONF_PRICE, CONF_MAX_QUANTITY}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], PRICE)
    await hass.async_block_till_done()
    assert result["reason"] == "cabinet_added"
    assert cabinet_subentry(setup_entry).title == NEW_ID  # Named after its machine ID.


async def test_a_cabinet_is_offered_once(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    assert (await discover(hass, status()))["step_id"] == "discovery_confirm_status"
    assert offered(hass)[0]["context"]["title_placeholders"] == {"name": NEW_ID}  # A status has no name.
    assert (await discover(hass, status()))["reason"] == "already_in_progress"
    # Its announcement replaces the offer made from its status: it has the cabinet's name.
    assert (await discover(hass, info(announcement())))["step_id"] == "discovery_confirm"
    [flow] = offered(hass)
    assert flow["context"]["title_placeholders"] == {"name": "Galaga"}
    assert (await discover(hass, info(announcement())))["reason"] == "already_in_progress"
    assert (await discover(hass, status()))["reason"] == "already_in_progress"
    assert len(offered(hass)) == 1


async def test_a_cabinet_of_an_account_is_not_offered(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    assert (await discover(hass, info(announcement(MACHINE_ID), MACHINE_ID)))[
        "reason"
    ] == "already_configured"
    assert (await discover(hass, status(MACHINE_ID)))["reason"] == "already_configured"
    assert offered(hass) == []


async def test_a_cabinet_added_by_hand_meanwhile_is_not_added_twice(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    flow_id = (await discover(hass, info(announcement())))["flow_id"]
    hand = await hass.config_entries.subentries.async_init(
        (setup_entry.entry_id, "cabinet"), context={"source": "user"}
    )
    hand = await hass.config_entries.subentries.async_configure(hand["flow_id"], {"next_step_id": "new_link"})
    hand = await hass.config_entries.subentries.async_configure(
        hand["flow_id"], {"machine_id": NEW_ID, "name": "By hand", "never_reports": False} | PRICE
    )
    assert hand["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # No longer offered under Discovered; a window that still shows the offer adds nothing.
    assert offered(hass) == []
    links_before = set(fake_stripe.payment_links)
    with pytest.raises(UnknownFlow):
        await hass.config_entries.flow.async_configure(flow_id, PRICE)
    assert set(fake_stripe.payment_links) == links_before
    assert cabinet_subentry(setup_entry).title == "By hand"


async def test_without_a_stripe_account_the_cabinet_says_to_add_one_first(
    hass: HomeAssistant, mqtt_mock: MagicMock
) -> None:
    result = await discover(hass, info(announcement()))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_account"


async def test_a_cabinet_on_topics_no_account_uses_is_not_offered(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    other_account(prefix="venue/a").add_to_hass(hass)
    result = await discover(hass, info(announcement()))
    assert (result["reason"], result["description_placeholders"]["prefix"]) == (
        "no_account_on_prefix",
        DEFAULT_TOPIC_PREFIX,
    )


async def test_with_two_accounts_the_user_picks_one(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    second = other_account()
    second.add_to_hass(hass)
    result = await discover(hass, info(announcement()))
    account = next(key for key in result["data_schema"].schema if key == "account")
    options = result["data_schema"].schema[account].config["options"]
    assert {(o["value"], o["label"]) for o in options} == {
        (setup_entry.entry_id, "Fake Arcade"),
        (second.entry_id, "Second Arcade"),
    }
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], PRICE | {"account": second.entry_id}
    )
    await hass.async_block_till_done()
    assert (result["reason"], result["description_placeholders"]["account"]) == (
        "cabinet_added",
        "Second Arcade",
    )
    assert cabinet_subentry(second) is not None
    assert cabinet_subentry(setup_entry) is None


async def test_an_entry_offers_cabinets_on_its_own_prefix(
    hass: HomeAssistant, mqtt_mock: MagicMock, config_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(config_entry, options={CONF_TOPIC_PREFIX: "venue/a"})
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, f"venue/a/{NEW_ID}/info", announcement(), retain=True)
    async_fire_mqtt_message(hass, "venue/a/old-1/status", "online", retain=True)  # An older cabinet.
    async_fire_mqtt_message(hass, "venue/a/junk/info", "not json", retain=True)
    await hass.async_block_till_done()
    flows = {flow["context"]["unique_id"]: flow for flow in offered(hass)}
    assert set(flows) == {f"cabinet:venue/a/{NEW_ID}", "cabinet:venue/a/old-1"}
    assert flows[f"cabinet:venue/a/{NEW_ID}"]["context"]["title_placeholders"] == {"name": "Galaga"}
    result = await hass.config_entries.flow.async_configure(flows["cabinet:venue/a/old-1"]["flow_id"], PRICE)
    await hass.async_block_till_done()
    assert result["reason"] == "cabinet_added"
    assert cabinet_subentry(config_entry, "old-1").title == "old-1"


async def test_what_is_no_cabinet_is_not_offered(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    for discovery_info in (
        info(announcement("someone-else")),  # Another cabinet's machineId on this topic.
        info("not json"),
        info(""),
        info(announcement("-dash"), "-dash"),  # Not a machine ID a cabinet may be given.
        message(
            f"{DEFAULT_TOPIC_PREFIX}/{NEW_ID}/status", "maybe", subscription(DEFAULT_TOPIC_PREFIX, "status")
        ),
        message(f"{DEFAULT_TOPIC_PREFIX}/{NEW_ID}/state", "{}", subscription(DEFAULT_TOPIC_PREFIX, "state")),
    ):
        result = await discover(hass, discovery_info)
        assert result["reason"] == "not_a_cabinet", discovery_info
    assert offered(hass) == []


async def test_a_link_made_while_the_cabinet_was_added_elsewhere_takes_no_money(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flow_id = (await discover(hass, info(announcement())))["flow_id"]
    create = StripeGateway.create_cabinet_link

    async def added_meanwhile(self: StripeGateway, *args: Any, **kwargs: Any) -> PaymentLink:
        link = await create(self, *args, **kwargs)
        by_hand = dict(cabinet_subentry(setup_entry, MACHINE_ID).data) | {"machine_id": NEW_ID}
        # While Stripe answered, the same cabinet was added by hand (another browser window).
        hass.config_entries.async_add_subentry(
            setup_entry,
            ConfigSubentry(
                data=MappingProxyType(by_hand),
                subentry_type="cabinet",
                title="By hand",
                unique_id=NEW_ID,
            ),
        )
        return link

    monkeypatch.setattr(StripeGateway, "create_cabinet_link", added_meanwhile)
    links_before = set(fake_stripe.payment_links)
    result = await hass.config_entries.flow.async_configure(flow_id, PRICE)
    await hass.async_block_till_done()
    assert result["reason"] == "cabinet_already_added"
    [new_link] = set(fake_stripe.payment_links) - links_before
    assert fake_stripe.payment_links[new_link]["active"] is False
    assert cabinet_subentry(setup_entry).title == "By hand"

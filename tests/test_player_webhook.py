"""The cabinet's stable QR code: a scan opens a checkout at the price of now, the player sees the credits.

Observed as a player's phone sees it (HTTP answers of the public webhook, the fake Stripe's
checkout) and as the owner does (coin pulses, states, the ledger's export).
"""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.arcade_pay.const import (
    CONF_MAX_QUANTITY,
    CONF_NEVER_REPORTS,
    CONF_PRICE,
    CONF_QR_TARGET,
)
from fake_stripe import Delivery, FakeStripe

from .helpers import (
    MACHINE_ID,
    UNIT_AMOUNT,
    WEBHOOK_ID,
    managed_link,
    pulses,
    reconcile,
    stable_qr_entry,
    stable_qr_subentry,
    start_reconfigure,
)

TOKEN = f"scan-{MACHINE_ID}"
PLAYER = "/api/webhook/player_webhook_test"
SCAN = f"{PLAYER}?c={TOKEN}"
SWITCH = "switch.pac_man_accepting_payments"
PRICE = "number.pac_man_price_per_credit"
PACKS = "select.pac_man_packs"
QR_CODE = "image.pac_man_payment_qr_code"


@pytest.fixture
def config_entry(
    config_entry: MockConfigEntry, cabinet_link: dict[str, Any], fake_stripe: FakeStripe
) -> MockConfigEntry:
    """Pac-Man's QR code is Home Assistant's: packs 3 for 5.00 and 10 for 15.00, codes allowed.

    Frogger's is still its payment link: its token (``scan-frogger``) is published nowhere.
    """
    frogger = stable_qr_subentry(managed_link(fake_stripe, "frogger"), "frogger", "Frogger")
    frogger["data"] = {**frogger["data"], CONF_QR_TARGET: "payment_link"}
    return stable_qr_entry(config_entry, stable_qr_subentry(cabinet_link), frogger)


async def scan(client: TestClient, **headers: str) -> str:
    """Scan the code; return the session id the player is sent to."""
    resp = await client.get(SCAN, allow_redirects=False, headers=headers)
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert location in await resp.text()  # The page redirects by itself too (Cloud relays drop Location).
    return location.rsplit("/", 1)[1]


async def deliver(client: TestClient, delivery: Delivery) -> str:
    resp = await client.post(f"/api/webhook/{WEBHOOK_ID}", data=delivery.body, headers=delivery.headers)
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["outcome"])


async def status(client: TestClient, session_id: str, language: str = "en") -> dict[str, Any]:
    resp = await client.get(
        PLAYER, params={"c": TOKEN, "s": session_id, "format": "json"}, headers={"Accept-Language": language}
    )
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


def credits_sent(mqtt_mock: MagicMock) -> list[int]:
    return [pulse["credits"] for pulse in pulses(mqtt_mock)]


async def test_a_scan_opens_a_checkout_for_this_cabinet_at_the_price_of_now(
    client: TestClient, fake_stripe: FakeStripe
) -> None:
    session_id = await scan(client)
    session = fake_stripe.sessions[session_id]
    assert session["metadata"] == {"machine_id": MACHINE_ID, "arcade_pay_offer": f"1x{UNIT_AMOUNT}"}
    assert session["client_reference_id"] == f"arcade_pay-{MACHINE_ID}"
    assert session["allow_promotion_codes"] is True
    assert 1850 <= session["expires_at"] - session["created"] <= 1870  # Stripe's shortest, and a minute.
    success = urlsplit(session["success_url"])
    assert parse_qs(success.query) == {"c": [TOKEN], "s": ["{CHECKOUT_SESSION_ID}"]}
    (line,) = fake_stripe.session_items[session_id]
    assert (line["price"]["unit_amount"], line["adjustable_quantity"]["maximum"]) == (UNIT_AMOUNT, 10)


async def test_paying_lands_on_a_page_that_shows_the_credits_delivered(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock
) -> None:
    session_id = await scan(client)
    assert (await status(client, session_id))["state"] == "unpaid"
    delivery = fake_stripe.pay_session(session_id, [3])
    assert await deliver(client, delivery) == "credited"
    await hass.async_block_till_done()
    assert credits_sent(mqtt_mock) == [3]
    shown = await status(client, session_id)
    assert shown == {"state": "delivered", "message": "3 credits on Pac-Man. Press start!", "final": True}
    german = await status(client, session_id, "de-DE,de;q=0.9")
    assert german["message"] == "3 Credits auf Pac-Man. Drück Start!"
    page = await client.get(PLAYER, params={"c": TOKEN, "s": session_id})
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "3 credits on Pac-Man" in await page.text()


async def test_the_player_coming_back_before_the_webhook_is_credited_once(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock
) -> None:
    session_id = await scan(client)
    delivery = fake_stripe.pay_session(session_id, [2])  # Stripe's webhook is late.
    assert (await status(client, session_id))["state"] in ("waiting", "delivered")
    await hass.async_block_till_done()
    assert credits_sent(mqtt_mock) == [2]
    assert await deliver(client, delivery) == "duplicate"
    await hass.async_block_till_done()
    assert credits_sent(mqtt_mock) == [2]


async def test_a_price_changed_between_scan_and_payment_gives_what_the_checkout_said(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock
) -> None:
    before = await scan(client)
    await hass.services.async_call("number", "set_value", {"entity_id": PRICE, "value": 0.5}, blocking=True)
    after = await scan(client)
    assert fake_stripe.session_items[after][0]["price"]["unit_amount"] == 50
    assert await deliver(client, fake_stripe.pay_session(before, [2])) == "credited"
    await hass.async_block_till_done()
    assert credits_sent(mqtt_mock) == [2]  # 2 x 2.00 paid is 2 credits, not 8 at today's 0.50.
    assert fake_stripe.sessions[before]["amount_total"] == 2 * UNIT_AMOUNT


async def test_a_pack_is_credited_from_the_session_and_a_code_lowers_only_the_price(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock
) -> None:
    await hass.services.async_call(
        "select", "select_option", {"entity_id": PACKS, "option": "packs"}, blocking=True
    )
    session_id = await scan(client)
    assert [i["price"]["unit_amount"] for i in fake_stripe.session_items[session_id]] == [
        UNIT_AMOUNT,
        500,
        1500,
    ]
    fake_stripe.add_promotion_code("HALF", percent_off=50)
    assert await deliver(client, fake_stripe.pay_session(session_id, [0, 1, 0], "HALF")) == "credited"
    await hass.async_block_till_done()
    assert credits_sent(mqtt_mock) == [3]
    revenue = hass.states.get("sensor.pac_man_revenue")
    assert revenue is not None
    assert revenue.state == "2.50"


async def test_a_cabinet_that_stops_taking_money_says_so_and_closes_its_open_checkout(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe
) -> None:
    session_id = await scan(client)
    await hass.services.async_call("switch", "turn_off", {"entity_id": SWITCH}, blocking=True)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fake_stripe.sessions[session_id]["status"] == "expired"
    sessions = set(fake_stripe.sessions)
    resp = await client.get(SCAN, allow_redirects=False)
    assert resp.status == 503
    assert "Pac-Man is not taking payments right now" in await resp.text()
    assert set(fake_stripe.sessions) == sessions
    assert (await status(client, session_id))["state"] == "expired"


async def test_too_many_scans_from_one_phone_open_no_more_checkouts(
    client: TestClient, fake_stripe: FakeStripe
) -> None:
    for _ in range(4):
        await scan(client)
    resp = await client.get(SCAN, allow_redirects=False)
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0
    assert len(fake_stripe.sessions) == 4


@pytest.mark.parametrize(
    "query",
    [
        {"c": "no-such-token"},
        {"c": "bad token!"},
        {"c": TOKEN, "s": "cs_test_unknown"},
        {"c": TOKEN, "s": "x"},
    ],
)
async def test_what_is_not_ours_is_not_found_and_opens_nothing(
    client: TestClient, fake_stripe: FakeStripe, query: dict[str, str]
) -> None:
    resp = await client.get(PLAYER, params=query, allow_redirects=False)
    assert resp.status == 404
    assert fake_stripe.sessions == {}


async def test_a_head_request_or_a_cancel_opens_nothing(client: TestClient, fake_stripe: FakeStripe) -> None:
    assert (await client.head(SCAN, allow_redirects=False)).status == 200
    cancelled = await client.get(PLAYER, params={"c": TOKEN, "cancelled": "1"})
    assert "Nothing was charged" in await cancelled.text()
    assert fake_stripe.sessions == {}


async def test_a_deleted_cabinet_s_code_says_it_is_gone(
    hass: HomeAssistant, client: TestClient, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    session_id = await scan(client)
    (subentry_id,) = (i for i, sub in setup_entry.subentries.items() if sub.data["machine_id"] == MACHINE_ID)
    assert hass.config_entries.async_remove_subentry(setup_entry, subentry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    resp = await client.get(SCAN, allow_redirects=False)
    assert resp.status == 410
    assert "removed" in await resp.text()
    assert fake_stripe.sessions[session_id]["status"] == "expired"


async def test_the_qr_code_holds_the_stable_url_through_a_price_change(
    hass: HomeAssistant, client: TestClient
) -> None:
    state = hass.states.get(QR_CODE)
    assert state is not None
    url = state.attributes["url"]
    assert url.endswith(SCAN)
    await hass.services.async_call("number", "set_value", {"entity_id": PRICE, "value": 3}, blocking=True)
    state = hass.states.get(QR_CODE)
    assert state is not None
    assert state.attributes["url"] == url
    assert state.attributes["price_per_credit"] == "3.00 USD"


async def test_reconciliation_credits_a_scanned_checkout_whose_webhook_never_came(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    mqtt_mock: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    session_id = await scan(client)
    unpaid = await scan(client)
    fake_stripe.pay_session(session_id, [4])  # The webhook is lost; nobody opens the page.
    await reconcile(hass, freezer)
    assert credits_sent(mqtt_mock) == [4]
    assert fake_stripe.sessions[unpaid]["status"] == "expired"  # An hour later: Stripe's 30 minutes are over.
    assert (await status(client, unpaid))["state"] == "expired"
    late = fake_stripe.event_delivery("checkout.session.completed", fake_stripe.sessions[session_id])
    assert await deliver(client, late) == "duplicate"
    await reconcile(hass, freezer)
    await hass.async_block_till_done()
    assert credits_sent(mqtt_mock) == [4]


async def test_stripe_out_of_reach_at_a_scan_is_a_page_to_try_again(
    client: TestClient, fake_stripe: FakeStripe
) -> None:
    fake_stripe.fail_next, fake_stripe.fail_status = 3, 503
    resp = await client.get(SCAN, allow_redirects=False)
    assert resp.status == 503
    assert "not available right now" in await resp.text()
    assert fake_stripe.sessions == {}


async def test_a_scan_while_arcade_pay_is_not_running_takes_no_money(
    hass: HomeAssistant, client: TestClient, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    resp = await client.get(SCAN, allow_redirects=False)
    assert resp.status == 503
    assert "not available right now" in await resp.text()
    assert fake_stripe.sessions == {}
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert (await client.get(SCAN, allow_redirects=False)).status == 303


async def test_a_new_price_in_the_form_keeps_the_printed_code_and_raises_no_reprint_repair(
    hass: HomeAssistant, client: TestClient, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    state = hass.states.get(QR_CODE)
    assert state is not None
    url = state.attributes["url"]
    result = await start_reconfigure(hass, setup_entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Pac-Man",
            CONF_PRICE: "3",
            CONF_MAX_QUANTITY: 10,
            "acknowledges": False,
            CONF_NEVER_REPORTS: False,
        },
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert result["reason"] == "reconfigure_same_qr_code"
    assert not [i for i in ir.async_get(hass).issues.values() if i.issue_id.startswith("new_qr_code_")]
    state = hass.states.get(QR_CODE)
    assert state is not None
    assert state.attributes["url"] == url
    session_id = await scan(client)
    assert fake_stripe.session_items[session_id][0]["price"]["unit_amount"] == 300

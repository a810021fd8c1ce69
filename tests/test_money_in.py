"""Payments in, through the webhook and reconciliation: early refunds and disputes, partial
refunds, uncreditable payments, reconciliation that never skips a session."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from unittest.mock import MagicMock

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.arcade_pay.const import (
    CONF_PAYMENT_LINK_ID,
    CONF_PAYMENT_LINK_URL,
    CONF_PRICE_ID,
    CONF_UNIT_AMOUNT,
    DOMAIN,
)
from custom_components.arcade_pay.core.ledger import PaymentLedger, PaymentState
from fake_stripe import Delivery, FakeStripe

from .helpers import (
    MACHINE_ID,
    PREFIX,
    WEBHOOK_ID,
    failing_ledger,
    managed_link,
    patch_ledger,
    payment_record,
    published,
    reconcile,
    settle,
)

URL = f"/api/webhook/{WEBHOOK_ID}"


async def post(client: TestClient, delivery: Delivery) -> str:
    resp = await client.post(URL, data=delivery.body, headers=delivery.headers)
    assert resp.status == 200, await resp.text()
    await settle(client)
    return str((await resp.json())["outcome"])


def session_of(delivery: Delivery) -> str:
    return str(delivery.event["data"]["object"]["id"])


def pulses(mqtt_mock: MagicMock) -> list[tuple[str, int]]:
    return [
        (message["paymentId"], message["credits"])
        for topic, payload, *_ in published(mqtt_mock)
        if topic.endswith("/coinpulse")
        for message in [json.loads(payload)]
    ]


def state(hass: HomeAssistant, key: str) -> str:
    return hass.states.get(f"sensor.pac_man_{key}").state


async def cabinet_status(hass: HomeAssistant, status: str) -> None:
    async_fire_mqtt_message(hass, f"{PREFIX}/status", status)
    await hass.async_block_till_done()


# --- partial refunds of undelivered credits ------------------------------------------------------------


async def test_partial_refund_of_undelivered_credits_sends_those_still_paid_for(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
) -> None:
    await cabinet_status(hass, "offline")
    paid = fake_stripe.complete_checkout(cabinet_link["id"], quantity=3)  # 3 credits, 2.00 each
    assert await post(client, paid) == "credited"
    assert await post(client, fake_stripe.refund_event(session_of(paid), amount_refunded=100)) == "recorded"
    assert (state(hass, "revenue"), state(hass, "pending_credits")) == ("5.00", "2")
    await cabinet_status(hass, "online")
    assert pulses(mqtt_mock) == [(session_of(paid), 2)]


async def test_dispute_then_refund_takes_the_money_out_of_revenue_once(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    paid = fake_stripe.complete_checkout(cabinet_link["id"], quantity=3)
    assert await post(client, paid) == "credited"
    assert await post(client, fake_stripe.dispute_event(session_of(paid))) == "recorded"
    assert await post(client, fake_stripe.refund_event(session_of(paid))) == "recorded"
    assert state(hass, "revenue") == "0.00"


# --- refunds and disputes that arrive before their payment --------------------------------------------


async def test_refund_before_its_payment_is_applied_when_the_payment_arrives(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
) -> None:
    """The refund's event came first; the checkout event's delivery failed and Stripe retries it."""
    paid = fake_stripe.complete_checkout(cabinet_link["id"], quantity=3)
    assert await post(client, fake_stripe.refund_event(session_of(paid))) == "awaiting_payment"
    assert await post(client, paid) == "recorded"
    assert pulses(mqtt_mock) == []
    assert (state(hass, "revenue"), state(hass, "pending_credits")) == ("0.00", "0")
    assert await post(client, paid) == "duplicate"


async def test_partial_refund_before_its_payment_sends_the_credits_still_paid_for(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
) -> None:
    paid = fake_stripe.complete_checkout(cabinet_link["id"], quantity=3)
    assert await post(client, fake_stripe.refund_event(session_of(paid), amount_refunded=200)) == (
        "awaiting_payment"
    )
    assert await post(client, paid) == "credited"
    assert pulses(mqtt_mock) == [(session_of(paid), 2)]
    assert state(hass, "revenue") == "4.00"


async def test_dispute_before_its_payment_withholds_the_credits_and_raises_its_repair(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
) -> None:
    paid = fake_stripe.complete_checkout(cabinet_link["id"], quantity=2)
    dispute = fake_stripe.dispute_event(session_of(paid))
    dispute_id = dispute.event["data"]["object"]["id"]
    assert await post(client, dispute) == "awaiting_payment"
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"dispute_{dispute_id}") is None  # Whose is it?
    assert await post(client, paid) == "recorded"
    assert pulses(mqtt_mock) == []
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"dispute_{dispute_id}")
    assert issue is not None
    assert issue.translation_placeholders["session"] == session_of(paid)
    assert issue.translation_placeholders["cabinet"] == "Pac-Man"


async def test_reconciliation_applies_a_refund_that_came_before_the_payment(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    paid = fake_stripe.complete_checkout(cabinet_link["id"], quantity=3)  # its event never arrives
    assert await post(client, fake_stripe.refund_event(session_of(paid))) == "awaiting_payment"
    await reconcile(hass, freezer)
    assert pulses(mqtt_mock) == []
    assert state(hass, "revenue") == "0.00"


async def test_reconciliation_asks_stripe_for_refunds_before_crediting(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Neither the checkout's nor the refund's event ever arrived (wrong secret for days)."""
    refunded = session_of(fake_stripe.complete_checkout(cabinet_link["id"], quantity=3))
    fake_stripe.refund_session(refunded)
    partly = session_of(fake_stripe.complete_checkout(cabinet_link["id"], quantity=3))
    fake_stripe.refund_session(partly, 200)
    kept = session_of(fake_stripe.complete_checkout(cabinet_link["id"], quantity=1))
    await reconcile(hass, freezer)
    assert sorted(pulses(mqtt_mock)) == sorted([(partly, 2), (kept, 1)])
    assert (await payment_record(hass, setup_entry, refunded)).state is PaymentState.REFUNDED
    assert state(hass, "revenue") == "6.00"  # 0 + 4.00 + 2.00


# --- payments that cannot be credited ------------------------------------------------------------------


async def forget_issues_and_restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """What Home Assistant's restart does: repairs that are not persistent are gone, then setup runs."""
    registry = ir.async_get(hass)
    for domain, issue_id in list(registry.issues):
        if domain == DOMAIN:
            registry.async_delete(domain, issue_id)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()


async def test_payment_in_another_currency_is_recorded_and_its_repair_survives_a_restart(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    setup_entry: MockConfigEntry,
) -> None:
    session = fake_stripe.complete_checkout(cabinet_link["id"]).event["data"]["object"] | {"currency": "eur"}
    assert await post(client, fake_stripe.event_delivery("checkout.session.completed", session)) == (
        "not_creditable"
    )
    record = await payment_record(hass, setup_entry, session["id"])
    assert (record.state, record.machine_id, record.credits, record.amount, record.currency) == (
        PaymentState.UNCREDITABLE,
        MACHINE_ID,
        0,
        200,
        "eur",
    )
    assert state(hass, "revenue") == "0.00"

    await forget_issues_and_restart(hass, setup_entry)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"not_credited_{session['id']}")
    assert issue is not None
    assert issue.translation_placeholders == {
        "session": session["id"],
        "cabinet": "Pac-Man",
        "reason": "paid in EUR, priced in USD",
    }

    # Refunding it settles it: the repair goes.
    assert await post(client, fake_stripe.refund_event(session["id"])) == "recorded"
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"not_credited_{session['id']}") is None
    assert (await payment_record(hass, setup_entry, session["id"])).state is PaymentState.REFUNDED


async def test_payment_for_an_unknown_cabinet_is_recorded_and_its_repair_survives_a_restart(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    setup_entry: MockConfigEntry,
) -> None:
    link = fake_stripe.add_older_link("ghost", 100)
    paid = fake_stripe.complete_checkout(link["id"])
    assert await post(client, paid) == "unknown_cabinet"
    record = await payment_record(hass, setup_entry, session_of(paid))
    assert (record.state, record.machine_id, record.payment_link) == (
        PaymentState.UNCREDITABLE,
        "ghost",
        link["id"],
    )

    await forget_issues_and_restart(hass, setup_entry)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "unknown_cabinet_ghost")
    assert issue is not None
    assert issue.translation_placeholders == {
        "session": session_of(paid),
        "machine_id": "ghost",
        "payment_link": link["id"],
    }
    response = await hass.services.async_call(
        DOMAIN,
        "export_ledger",
        {"config_entry_id": setup_entry.entry_id},
        blocking=True,
        return_response=True,
    )
    assert response["rows"] == 1


# --- reconciliation never skips a session that may still be paid ---------------------------------------


async def test_reconciliation_credits_a_checkout_paid_after_a_newer_one(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A checkout page opened first is paid after a newer session; no webhook arrives."""
    now = int(time.time())
    slow = session_of(
        fake_stripe.complete_checkout(
            cabinet_link["id"], 2, status="open", payment_status="unpaid", created=now
        )
    )
    quick = session_of(fake_stripe.complete_checkout(cabinet_link["id"], 1, created=now + 600))
    await reconcile(hass, freezer)
    assert pulses(mqtt_mock) == [(quick, 1)]
    fake_stripe.pay_later(slow)
    await reconcile(hass, freezer)
    assert pulses(mqtt_mock) == [(quick, 1), (slow, 2)]
    await reconcile(hass, freezer)
    assert pulses(mqtt_mock) == [(quick, 1), (slow, 2)]


async def test_reconciliation_credits_a_delayed_payment_once_it_is_paid(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A bank debit: the session is complete but unpaid; it is paid two days later."""
    now = int(time.time())
    debit = session_of(
        fake_stripe.complete_checkout(cabinet_link["id"], 3, payment_status="unpaid", created=now)
    )
    card = session_of(fake_stripe.complete_checkout(cabinet_link["id"], 1, created=now + 5))
    await reconcile(hass, freezer)
    assert pulses(mqtt_mock) == [(card, 1)]
    fake_stripe.pay_later(debit)
    await reconcile(hass, freezer)
    assert pulses(mqtt_mock) == [(card, 1), (debit, 3)]


async def test_reconciliation_covers_a_link_retired_by_a_price_change(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A player opened the old QR code's checkout before the price changed, and paid after."""
    old_page = session_of(
        fake_stripe.complete_checkout(cabinet_link["id"], 2, status="open", payment_status="unpaid")
    )
    new_link = managed_link(fake_stripe, MACHINE_ID, 300)
    subentry = next(iter(setup_entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        setup_entry,
        subentry,
        data=dict(subentry.data)
        | {
            CONF_PAYMENT_LINK_ID: new_link["id"],
            CONF_PAYMENT_LINK_URL: new_link["url"],
            CONF_PRICE_ID: new_link["price_id"],
            CONF_UNIT_AMOUNT: 300,
        },
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    fake_stripe.pay_later(old_page)  # its event never arrives
    before = len(pulses(mqtt_mock))
    await reconcile(hass, freezer)
    assert pulses(mqtt_mock)[before:] == [(old_page, 2)]


async def test_reconciliation_that_cannot_use_the_ledger_says_so_and_stops(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A background job: a ledger error is logged (the next run tries again), never left unretrieved."""
    calls = failing_ledger(monkeypatch, "links_to_reconcile", "ledger is closed")
    await reconcile(hass, freezer)
    assert calls
    assert "Could not reconcile payments with Stripe now: ledger is closed" in caplog.text
    assert "never retrieved" not in caplog.text


async def test_reconciliation_skips_what_it_cannot_read(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    freezer: FrozenDateTimeFactory,
) -> None:
    mangled = session_of(fake_stripe.complete_checkout(cabinet_link["id"], 1))
    del fake_stripe.sessions[mangled]["amount_total"]
    no_intent = session_of(fake_stripe.complete_checkout(cabinet_link["id"], 2))
    fake_stripe.sessions[no_intent]["payment_intent"] = None  # nothing to ask refunds about
    await reconcile(hass, freezer)
    assert pulses(mqtt_mock) == [(no_intent, 2)]
    assert f"Skipping a session Stripe listed for {MACHINE_ID}" in caplog.text


async def test_dispute_of_an_uncreditable_payment_that_came_first_raises_its_repair(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    session = fake_stripe.complete_checkout(cabinet_link["id"]).event["data"]["object"] | {"currency": "eur"}
    fake_stripe.sessions[session["id"]] = session
    dispute = fake_stripe.dispute_event(session["id"])
    assert await post(client, dispute) == "awaiting_payment"
    assert await post(client, fake_stripe.event_delivery("checkout.session.completed", session)) == (
        "not_creditable"
    )
    registry = ir.async_get(hass)
    assert registry.async_get_issue(DOMAIN, f"dispute_{dispute.event['data']['object']['id']}") is not None
    assert registry.async_get_issue(DOMAIN, f"not_credited_{session['id']}") is None  # settled: disputed


async def test_repairs_at_start_up_survive_a_ledger_that_cannot_be_read(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failing_ledger(monkeypatch, "uncreditable", "disk I/O error")
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert setup_entry.state is ConfigEntryState.LOADED
    assert "Could not read the payments that were not credited: disk I/O error" in caplog.text


# --- a duplicate that sees the record first -------------------------------------------------------------


async def test_duplicate_that_sees_the_record_first_leaves_the_first_delivery_credited(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Group commit lets Stripe's retry see the record before the first delivery is told it
    recorded it: the retry sends the pulse, and the first delivery still answers "credited"
    (not "recorded", which means a refund or dispute left nothing to send). Found by the fuzz test."""
    await cabinet_status(hass, "online")
    record = PaymentLedger.record
    first_recorded = threading.Event()

    def record_then_stall(ledger: PaymentLedger, payment: Any) -> bool:
        new = record(ledger, payment)
        if new and not first_recorded.is_set():
            first_recorded.set()
            time.sleep(0.5)  # the retry reads the record, tracks and sends it meanwhile
        return bool(new)

    patch_ledger(monkeypatch, "record", record_then_stall)
    paid = fake_stripe.complete_checkout(cabinet_link["id"], quantity=2)

    async def deliver() -> str:
        resp = await client.post(URL, data=paid.body, headers=paid.headers)
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["outcome"])

    first = hass.async_create_task(deliver())
    await hass.async_add_executor_job(first_recorded.wait, 5)
    retry = await deliver()
    assert (await first, retry) == ("credited", "duplicate")
    await settle(client)
    assert pulses(mqtt_mock) == [(session_of(paid), 2)]

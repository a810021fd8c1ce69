"""An automatic refund that Home Assistant (or Stripe's answer) loses half-way (core/undelivered_refunds.py).

The ledger marks the payment before the refund goes to Stripe; a marked payment is never sent,
and each run settles it from what Stripe says, with the same idempotency key. Refunding first
would let a death in between leave the payment pending, for the next start to deliver (the
cabinet would get the credits and the player the money), and a refund whose answer was lost
would put the credits back into delivery, refunded or not. A "restart" here is a reload of the
entry: a new one on the same ledger file and the same (fake) Stripe.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from homeassistant.core import HomeAssistant

from custom_components.arcade_pay.core.ledger import LedgerError, PaymentLedger, PaymentState
from custom_components.arcade_pay.core.stripe_gateway import StripeConnectionError, StripeGateway
from custom_components.arcade_pay.core.undelivered_refunds import refund_key
from fake_stripe import FakeStripe, sign

from .helpers import (
    PREFIX,
    WEBHOOK_ID,
    failing_ledger,
    housekeeping,
    payment_record,
    post_delivery,
    pulses,
    refund_undelivered_of_an_offline_cabinet,
    settle,
)


async def overdue_payment(
    hass: HomeAssistant, client: TestClient, fake: FakeStripe, link: dict[str, Any], entry: MockConfigEntry
) -> tuple[str, Any]:
    """A paid session of 2 credits for a cabinet that is offline, refund-undelivered on (5 minutes);
    return its id and its webhook delivery (Stripe may send it again)."""
    await refund_undelivered_of_an_offline_cabinet(hass, entry)
    delivery = fake.complete_checkout(link["id"], quantity=2)
    return await post_delivery(client, delivery), delivery


def dies_after_the_refund(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first write of a refund into the ledger never happens: Home Assistant died right before it."""
    real = PaymentLedger.record_refund
    died: list[str] = []

    def record_refund(ledger: PaymentLedger, *args: Any) -> Any:
        if not died:
            died.append(args[0])
            raise LedgerError("Home Assistant died here")
        return real(ledger, *args)

    monkeypatch.setattr(PaymentLedger, "record_refund", record_refund)
    return died


async def restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def cabinet_comes_back(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    await housekeeping(hass, freezer, 30)


async def assert_refunded_once(
    hass: HomeAssistant, entry: MockConfigEntry, fake: FakeStripe, session: str, mqtt_mock: MagicMock
) -> None:
    assert pulses(mqtt_mock) == []  # The cabinet never got the refunded credits.
    record = await payment_record(hass, entry, session)
    assert (record.state, record.refunded_amount, record.withheld_credits) == (PaymentState.REFUNDED, 400, 2)
    assert not record.being_refunded
    assert [r["amount"] for r in fake.refunds] == [400]  # One refund in Stripe.
    assert hass.states.get("sensor.pac_man_revenue").state == "0.00"
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"


async def test_a_crash_between_the_refund_and_its_record_neither_delivers_nor_refunds_again(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session, _ = await overdue_payment(hass, client, fake_stripe, cabinet_link, setup_entry)
    died = dies_after_the_refund(monkeypatch)
    await housekeeping(hass, freezer, 6 * 60)
    assert died  # Refunded in Stripe, not in the ledger.
    assert len(fake_stripe.refunds) == 1
    record = await payment_record(hass, setup_entry, session)
    assert (record.state, record.being_refunded) == (PaymentState.PENDING, True)

    await restart(hass, setup_entry)  # The start-up settles it from what Stripe says.
    await cabinet_comes_back(hass, freezer)
    # The start-up delivers none of the 2 credits, and the ledger says refunded.
    await assert_refunded_once(hass, setup_entry, fake_stripe, session, mqtt_mock)
    assert fake_stripe.api_requests("POST", "/v1/refunds") == ["/v1/refunds"]  # Asked, not refunded again.


async def test_a_refund_whose_answer_was_lost_is_settled_by_the_next_run(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session, _ = await overdue_payment(hass, client, fake_stripe, cabinet_link, setup_entry)
    real_refund = StripeGateway.refund
    keys: list[str] = []

    async def answer_lost(gateway: StripeGateway, payment_intent: str, key: str) -> None:
        keys.append(key)
        await real_refund(gateway, payment_intent, key)
        raise StripeConnectionError("Stripe's answer timed out")

    monkeypatch.setattr(StripeGateway, "refund", answer_lost)
    await housekeeping(hass, freezer, 6 * 60)
    assert keys == [refund_key(session)] == [f"arcade_pay_refund_{session}"]
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"  # Not on their way.
    # Before the next run: the cabinet is back, and gets nothing (not the credits, at once).
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert pulses(mqtt_mock) == []
    await housekeeping(hass, freezer, 30)
    await assert_refunded_once(hass, setup_entry, fake_stripe, session, mqtt_mock)
    assert keys == [refund_key(session)]  # Stripe said it was refunded: not asked again.


async def test_while_stripe_cannot_say_the_payment_waits_and_is_never_sent(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stripe is down at the restart, the owner turned automatic refunds off meanwhile, and Stripe
    delivers the payment's webhook again: the half-done refund is still finished, never delivered."""
    session, delivery = await overdue_payment(hass, client, fake_stripe, cabinet_link, setup_entry)
    dies_after_the_refund(monkeypatch)
    await housekeeping(hass, freezer, 6 * 60)
    real = StripeGateway.refunded_amount, StripeGateway.refund

    async def unreachable(*args: Any) -> Any:
        raise StripeConnectionError("Stripe cannot be reached")

    monkeypatch.setattr(StripeGateway, "refunded_amount", unreachable)
    monkeypatch.setattr(StripeGateway, "refund", unreachable)
    hass.config_entries.async_update_entry(  # Saved options reload the entry: the restart.
        setup_entry, options=setup_entry.options | {"refund_undelivered": False}
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    await cabinet_comes_back(hass, freezer)
    again = delivery.headers | {"Stripe-Signature": sign(delivery.body, fake_stripe.webhook_secret)}
    resp = await client.post(f"/api/webhook/{WEBHOOK_ID}", data=delivery.body, headers=again)
    assert resp.status == 200, await resp.text()
    await settle(client)
    await housekeeping(hass, freezer, 30)
    assert pulses(mqtt_mock) == []
    record = await payment_record(hass, setup_entry, session)
    assert (record.state, record.being_refunded) == (PaymentState.PENDING, True)

    monkeypatch.setattr(StripeGateway, "refunded_amount", real[0])  # Stripe answers again.
    monkeypatch.setattr(StripeGateway, "refund", real[1])
    await housekeeping(hass, freezer, 30)
    await assert_refunded_once(hass, setup_entry, fake_stripe, session, mqtt_mock)


async def test_a_refund_stripe_refuses_for_good_leaves_the_ledger_true(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The owner refunded the payment in Stripe's dashboard, and its event was lost: Stripe refuses
    another refund, and the ledger records the one there is."""
    session, _ = await overdue_payment(hass, client, fake_stripe, cabinet_link, setup_entry)
    fake_stripe.refund_session(session)  # Its charge.refunded event never reaches Home Assistant.
    await housekeeping(hass, freezer, 6 * 60)
    assert "Could not refund undelivered payment" in caplog.text
    await cabinet_comes_back(hass, freezer)
    # The credits stay out of delivery: the cabinet gets none, and the ledger never says "published".
    await assert_refunded_once(hass, setup_entry, fake_stripe, session, mqtt_mock)


async def test_a_ledger_that_cannot_list_unfinished_refunds_is_asked_again(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing_ledger(monkeypatch, "refunds_started", "database is locked")
    await housekeeping(hass, freezer, 30)
    assert "Could not look for unfinished refunds now: database is locked" in caplog.text

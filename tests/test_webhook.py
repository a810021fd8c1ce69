"""The Stripe webhook: verified deliveries credit exactly once, everything else nothing."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any
from unittest.mock import MagicMock

from aiohttp.test_utils import TestClient
from multidict import CIMultiDict
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from homeassistant.components.webhook import async_handle_webhook
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util

from custom_components.arcade_pay.const import EVENT_CREDIT_ADDED
from custom_components.arcade_pay.core.ledger import (
    LedgerError,
    Payment,
    PaymentLedger,
    PaymentSource,
    PaymentState,
)
from fake_stripe import Delivery, FakeStripe, sign

from .helpers import (
    MACHINE_ID,
    WEBHOOK_ID,
    cabinet_device_id,
    failing_ledger,
    on_ledger_file,
    patch_ledger,
    payment_state,
    published,
    pulses,
    record_then_wait,
    settle,
    wait_for,
)

URL = f"/api/webhook/{WEBHOOK_ID}"
COIN_PULSE_TOPIC = f"arcade/machine/{MACHINE_ID}/coinpulse"


async def post(client: TestClient, delivery: Delivery) -> tuple[int, dict[str, Any]]:
    resp = await client.post(URL, data=delivery.body, headers=delivery.headers)
    await settle(client)
    return resp.status, await resp.json()


async def test_paid_checkout_publishes_the_earlier_systems_coin_pulse(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
) -> None:
    events = async_capture_events(hass, EVENT_CREDIT_ADDED)
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=3)
    session_id = delivery.event["data"]["object"]["id"]

    status, body = await post(client, delivery)

    assert (status, body) == (200, {"received": True, "outcome": "credited"})
    [(topic, payload, qos, retain)] = published(mqtt_mock)
    assert (topic, qos, retain) == (COIN_PULSE_TOPIC, 1, False)
    message = json.loads(payload)
    assert list(message) == ["machineId", "credits", "timestamp", "paymentId"]
    assert message["machineId"] == MACHINE_ID
    assert message["credits"] == 3
    assert message["paymentId"] == session_id
    assert message["timestamp"].endswith("Z")
    assert len(message["timestamp"]) == len("2024-07-01T12:00:00Z")
    # Computed from the event: no Stripe API call on the payment path for our own links.
    assert fake_stripe.api_requests("GET", "/v1/checkout/sessions/") == []
    assert len(events) == 1
    assert events[0].data == {
        "machine_id": MACHINE_ID,
        "device_id": cabinet_device_id(hass),
        "credits": 3,
        "payment_id": session_id,
        "source": "stripe",
    }
    assert hass.states.get("sensor.pac_man_credits").state == "3"
    assert hass.states.get("sensor.pac_man_game_state").state == "playing"
    assert hass.states.get("sensor.pac_man_revenue").state == "6.00"
    assert hass.states.get("sensor.pac_man_revenue").attributes["unit_of_measurement"] == "USD"
    state = await payment_state(hass, setup_entry, session_id)
    assert state is PaymentState.PUBLISHED


async def test_async_payment_succeeded_credits(
    client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any], mqtt_mock: MagicMock
) -> None:
    delivery = fake_stripe.complete_checkout(
        cabinet_link["id"], quantity=2, event_type="checkout.session.async_payment_succeeded"
    )
    assert (await post(client, delivery))[0] == 200
    assert [p["credits"] for p in pulses(mqtt_mock)] == [2]


async def test_retried_and_replayed_deliveries_credit_once(
    client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any], mqtt_mock: MagicMock
) -> None:
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=1)
    session = delivery.event["data"]["object"]
    # Stripe retries the same event; and the same session arrives in a second event type.
    second_event = fake_stripe.event_delivery("checkout.session.async_payment_succeeded", session)

    results = [await post(client, d) for d in (delivery, delivery, second_event, delivery)]

    assert [r[0] for r in results] == [200, 200, 200, 200]
    assert [r[1]["outcome"] for r in results] == ["credited", "duplicate", "duplicate", "duplicate"]
    assert len(pulses(mqtt_mock)) == 1


async def test_dedupe_survives_restart(
    hass: HomeAssistant,
    hass_client_no_auth: Any,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
) -> None:
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=1)
    client = await hass_client_no_auth()
    assert (await post(client, delivery))[1]["outcome"] == "credited"

    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()

    assert (await post(client, delivery))[1]["outcome"] == "duplicate"
    assert len(pulses(mqtt_mock)) == 1
    # Revenue comes back from the ledger after the reload.
    assert hass.states.get("sensor.pac_man_revenue").state == "2.00"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"Stripe-Signature": ""}, "missing"),
        ({"Stripe-Signature": "garbage"}, "signature"),
        ({"Stripe-Signature": "t=notanumber,v1=abc"}, "signature"),
        ({"Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"}, "signature"),
    ],
)
async def test_bad_signatures_are_rejected_with_400(
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    headers: dict[str, str],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    delivery = fake_stripe.complete_checkout(cabinet_link["id"])
    resp = await client.post(URL, data=delivery.body, headers=headers)
    assert resp.status == 400
    assert reason in (await resp.json())["error"]
    assert pulses(mqtt_mock) == []
    assert fake_stripe.webhook_secret not in caplog.text


async def test_signature_with_another_secret_is_rejected(
    client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any], mqtt_mock: MagicMock
) -> None:
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], secret="whsec_someone_else")
    assert (await post(client, delivery))[0] == 400
    assert pulses(mqtt_mock) == []


async def test_stale_timestamp_is_rejected(
    client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any], mqtt_mock: MagicMock
) -> None:
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], timestamp=int(time.time()) - 301)
    status, body = await post(client, delivery)
    assert status == 400
    assert "tolerance" in body["error"].lower()
    assert pulses(mqtt_mock) == []


async def test_tampered_body_is_rejected(
    client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any], mqtt_mock: MagicMock
) -> None:
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=1)
    tampered = delivery.body.replace('"amount_subtotal": 200', '"amount_subtotal": 2000')
    assert tampered != delivery.body
    resp = await client.post(URL, data=tampered, headers=delivery.headers)
    assert resp.status == 400
    assert pulses(mqtt_mock) == []


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe not utf-8",
        b"not json",
        b"[1, 2, 3]",
        b'{"id": "evt_1"}',
        json.dumps(
            {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {"id": "cs_1"}}}
        ).encode(),
    ],
)
async def test_malformed_bodies_with_valid_signature_are_rejected(
    client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock, body: bytes
) -> None:
    header = sign(body.decode("utf-8", "replace"), fake_stripe.webhook_secret)
    resp = await client.post(URL, data=body, headers={"Stripe-Signature": header})
    assert resp.status == 400
    assert pulses(mqtt_mock) == []


async def test_oversized_body_is_413(
    client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock
) -> None:
    body = "x" * (64 * 1024 + 1)
    resp = await client.post(
        URL, data=body, headers={"Stripe-Signature": sign(body, fake_stripe.webhook_secret)}
    )
    assert resp.status == 413
    assert pulses(mqtt_mock) == []


@pytest.mark.parametrize(
    ("payment_status", "event_type"),
    [
        ("unpaid", "checkout.session.completed"),
        ("no_payment_required", "checkout.session.completed"),
        ("unpaid", "checkout.session.async_payment_failed"),
    ],
)
async def test_unpaid_sessions_answer_200_without_credit(
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    payment_status: str,
    event_type: str,
) -> None:
    delivery = fake_stripe.complete_checkout(
        cabinet_link["id"], payment_status=payment_status, event_type=event_type
    )
    assert await post(client, delivery) == (200, {"received": True, "outcome": "ignored"})
    assert pulses(mqtt_mock) == []


async def test_other_event_types_answer_200(
    client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock
) -> None:
    delivery = fake_stripe.event_delivery("customer.created", {"id": "cus_1", "object": "customer"})
    assert await post(client, delivery) == (200, {"received": True, "outcome": "ignored"})
    assert pulses(mqtt_mock) == []


async def test_unknown_cabinet_answers_200_without_credit(
    client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock, caplog: pytest.LogCaptureFixture
) -> None:
    link = fake_stripe.add_older_link("someOtherCabinet", 100)
    status, body = await post(client, fake_stripe.complete_checkout(link["id"]))
    assert (status, body["outcome"]) == (200, "unknown_cabinet")
    assert pulses(mqtt_mock) == []
    assert "unknown cabinet" in caplog.text


async def test_currency_mismatch_does_not_credit(
    client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any], mqtt_mock: MagicMock
) -> None:
    delivery = fake_stripe.complete_checkout(cabinet_link["id"])
    session = delivery.event["data"]["object"] | {"currency": "eur"}
    status, body = await post(client, fake_stripe.event_delivery("checkout.session.completed", session))
    assert (status, body["outcome"]) == (200, "not_creditable")
    assert pulses(mqtt_mock) == []


async def test_link_made_elsewhere_is_matched_by_metadata_and_priced_once(
    client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock
) -> None:
    """An older link that is not the cabinet's: matched by metadata, quantity from Stripe, then cached."""
    other = fake_stripe.add_older_link(MACHINE_ID, 150)
    for quantity in (2, 4):
        assert (await post(client, fake_stripe.complete_checkout(other["id"], quantity=quantity)))[0] == 200
    assert [p["credits"] for p in pulses(mqtt_mock)] == [2, 4]
    # Line items were fetched for the first payment only; the second used the learned price.
    assert len(fake_stripe.api_requests("GET", "/v1/checkout/sessions/")) == 1


async def test_subtotal_that_does_not_fit_the_price_asks_stripe(
    client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any], mqtt_mock: MagicMock
) -> None:
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=2)
    session = delivery.event["data"]["object"] | {"amount_subtotal": 333}
    assert (await post(client, fake_stripe.event_delivery("checkout.session.completed", session)))[0] == 200
    assert [p["credits"] for p in pulses(mqtt_mock)] == [2]
    assert len(fake_stripe.api_requests("GET", "/v1/checkout/sessions/")) == 1


async def test_stripe_unreachable_answers_500_so_stripe_retries(
    client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock
) -> None:
    other = fake_stripe.add_older_link(MACHINE_ID, 150)
    delivery = fake_stripe.complete_checkout(other["id"], quantity=2)
    fake_stripe.fail_next, fake_stripe.fail_status = 10, 503
    assert (await post(client, delivery))[0] == 500
    assert pulses(mqtt_mock) == []
    fake_stripe.fail_next = 0
    assert await post(client, delivery) == (200, {"received": True, "outcome": "credited"})
    assert [p["credits"] for p in pulses(mqtt_mock)] == [2]


async def test_key_refused_while_pricing_a_payment_asks_for_a_new_key_and_stripe_retries(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock
) -> None:
    """reauthentication-flow: the line-item lookup of a webhook, too (not only the action)."""
    other = fake_stripe.add_older_link(MACHINE_ID, 150)
    delivery = fake_stripe.complete_checkout(other["id"], quantity=2)
    fake_stripe.fail_next, fake_stripe.fail_status = 10, 401
    assert (await post(client, delivery))[0] == 500
    await hass.async_block_till_done()
    assert pulses(mqtt_mock) == []
    flows = hass.config_entries.flow.async_progress_by_handler("arcade_pay")
    assert [f["context"]["source"] for f in flows] == ["reauth"]


async def test_zero_quantity_from_stripe_does_not_credit(
    client: TestClient, fake_stripe: FakeStripe, mqtt_mock: MagicMock
) -> None:
    other = fake_stripe.add_older_link(MACHINE_ID, 150)
    delivery = fake_stripe.complete_checkout(other["id"], quantity=1)
    fake_stripe.session_items[delivery.event["data"]["object"]["id"]][0]["quantity"] = 0
    assert (await post(client, delivery))[1]["outcome"] == "not_creditable"
    assert pulses(mqtt_mock) == []


async def test_ledger_failure_answers_500_and_credits_nothing(
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    hass: HomeAssistant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failing_ledger(monkeypatch, "record", "ledger is closed")
    delivery = fake_stripe.complete_checkout(cabinet_link["id"])
    status, _ = await post(client, delivery)
    assert status == 500
    assert pulses(mqtt_mock) == []
    monkeypatch.undo()
    assert await payment_state(hass, setup_entry, delivery.event["data"]["object"]["id"]) is None


async def test_unexpected_error_is_a_500_not_a_200(
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    patch_ledger(monkeypatch, "record", broken)
    assert (await post(client, fake_stripe.complete_checkout(cabinet_link["id"])))[0] == 500


async def test_publish_failure_keeps_payment_pending(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
) -> None:
    mqtt_mock.async_publish.side_effect = HomeAssistantError("not connected")
    delivery = fake_stripe.complete_checkout(cabinet_link["id"])
    # Recorded durably, so Stripe must not retry: 200. The credit waits in the ledger.
    assert (await post(client, delivery))[0] == 200
    session_id = delivery.event["data"]["object"]["id"]
    state = await payment_state(hass, setup_entry, session_id)
    assert state is PaymentState.PENDING
    assert hass.states.get("sensor.pac_man_credits").state == "0"


async def test_unloaded_entry_credits_nothing(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
) -> None:
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    assert setup_entry.state is ConfigEntryState.NOT_LOADED
    await client.post(URL, data="{}", headers={"Stripe-Signature": "t=1,v1=00"})
    delivery = fake_stripe.complete_checkout(cabinet_link["id"])
    await client.post(URL, data=delivery.body, headers=delivery.headers)
    assert pulses(mqtt_mock) == []


# --- a client that goes away mid-request --------------------------------------------------------


class DisconnectingRequest:
    """What the handler reads of a request, for calling it the way Home Assistant does."""

    method = "POST"

    def __init__(self, delivery: Delivery) -> None:
        self.headers = CIMultiDict(delivery.headers)
        self.remote = "127.0.0.1"
        self._body = delivery.body.encode() if isinstance(delivery.body, str) else delivery.body
        self.content = self

    async def read(self, size: int) -> bytes:
        body, self._body = self._body[:size], self._body[size:]
        return body


async def test_a_client_that_goes_away_mid_record_does_not_strand_the_payment(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Home Assistant cancels a handler whose client went away after the ledger record committed:
    the payment is tracked and sent all the same, and Stripe's retry reads "duplicate"."""
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=2)
    session_id = delivery.event["data"]["object"]["id"]
    recorded, release = record_then_wait(monkeypatch)
    handler = hass.async_create_task(async_handle_webhook(hass, WEBHOOK_ID, DisconnectingRequest(delivery)))
    await wait_for(recorded)
    handler.cancel()  # The client went away.
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await handler
    await hass.async_block_till_done()
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [session_id]  # Sent all the same.
    assert await payment_state(hass, setup_entry, session_id) is PaymentState.PUBLISHED
    # Stripe delivers it again (it had no answer): nothing more is sent.
    assert (await post(client, delivery))[1]["outcome"] == "duplicate"
    assert len(pulses(mqtt_mock)) == 1
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"


async def test_a_retried_delivery_of_a_pending_payment_nobody_tracks_delivers_it(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
) -> None:
    """Recorded but never tracked (a handler cut off half-way): Stripe's retry must not just
    answer "duplicate" and leave it to the next restart."""
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=2)
    session = delivery.event["data"]["object"]
    stranded = Payment(
        payment_id=session["id"],
        machine_id=MACHINE_ID,
        credits=2,
        amount=session["amount_total"],
        currency="usd",
        source=PaymentSource.STRIPE,
        received_at=dt_util.utcnow(),
        payment_intent=session["payment_intent"],
    )
    assert await on_ledger_file(hass, setup_entry, lambda ledger: ledger.record(stranded))
    assert (await post(client, delivery))[1]["outcome"] == "duplicate"
    assert [(p["paymentId"], p["credits"]) for p in pulses(mqtt_mock)] == [(session["id"], 2)]  # At once.
    assert await payment_state(hass, setup_entry, session["id"]) is PaymentState.PUBLISHED
    assert (await post(client, delivery))[1]["outcome"] == "duplicate"
    assert len(pulses(mqtt_mock)) == 1


async def test_a_delivery_reaching_an_unloading_entry_is_answered_503_and_records_nothing(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the webhook's unregistration, before the ledger closes: Stripe must deliver it again."""
    handler = hass.data["webhook"][WEBHOOK_ID]["handler"]  # As a request already routed holds it.
    closing, release = threading.Event(), threading.Event()
    real_close = PaymentLedger.close

    def slow_close(ledger: PaymentLedger) -> None:
        closing.set()
        release.wait(5)
        real_close(ledger)

    patch_ledger(monkeypatch, "close", slow_close)
    delivery = fake_stripe.complete_checkout(cabinet_link["id"])
    unload = hass.async_create_task(hass.config_entries.async_unload(setup_entry.entry_id))
    await wait_for(closing)
    response = await handler(hass, WEBHOOK_ID, DisconnectingRequest(delivery))
    release.set()
    assert await unload
    assert response.status == 503
    session_id = delivery.event["data"]["object"]["id"]
    assert await payment_state(hass, setup_entry, session_id) is None
    assert pulses(mqtt_mock) == []


async def test_work_of_a_request_whose_client_went_away_says_how_it_failed(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nobody is left to answer 500 to: the failure is logged, and Stripe delivers the event again."""
    started, release = threading.Event(), threading.Event()

    def slow_failure(ledger: PaymentLedger, payment: Any) -> bool:
        started.set()
        release.wait(5)
        raise LedgerError("disk I/O error")

    patch_ledger(monkeypatch, "record", slow_failure)
    delivery = fake_stripe.complete_checkout(cabinet_link["id"])
    handler = hass.async_create_task(async_handle_webhook(hass, WEBHOOK_ID, DisconnectingRequest(delivery)))
    await wait_for(started)
    handler.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handler
    release.set()
    await hass.async_block_till_done()
    assert "Work of a request whose client went away failed: disk I/O error" in caplog.text
    assert pulses(mqtt_mock) == []

"""Refunds, disputes, reconciliation with Stripe, repairs for what the owner must fix, export."""

from __future__ import annotations

import csv
import json
from pathlib import Path
import time
from typing import Any
from unittest.mock import MagicMock

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir

from custom_components.arcade_pay.const import DOMAIN
from custom_components.arcade_pay.core.ledger import PaymentState
from fake_stripe import Delivery, FakeStripe, sign

from .helpers import WEBHOOK_ID, payment_record, published, reconcile, settle

URL = f"/api/webhook/{WEBHOOK_ID}"


async def post(client: TestClient, delivery: Delivery) -> dict[str, Any]:
    resp = await client.post(URL, data=delivery.body, headers=delivery.headers)
    assert resp.status == 200, await resp.text()
    await settle(client)
    return dict(await resp.json())


async def paid_session(client: TestClient, fake: FakeStripe, link: dict[str, Any], quantity: int = 1) -> str:
    delivery = fake.complete_checkout(link["id"], quantity=quantity)
    assert (await post(client, delivery))["outcome"] == "credited"
    return str(delivery.event["data"]["object"]["id"])


def revenue(hass: HomeAssistant) -> str:
    return hass.states.get("sensor.pac_man_revenue").state


async def test_refund_reduces_revenue_once_and_keeps_credits(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    setup_entry: MockConfigEntry,
) -> None:
    session = await paid_session(client, fake_stripe, cabinet_link, quantity=3)
    assert revenue(hass) == "6.00"
    assert (await post(client, fake_stripe.refund_event(session, amount_refunded=200)))[
        "outcome"
    ] == "recorded"
    assert revenue(hass) == "4.00"
    record = await payment_record(hass, setup_entry, session)
    assert (record.state, record.refunded_amount) == (PaymentState.PUBLISHED, 200)
    # Stripe sends cumulative amounts; a retry of the same event changes nothing.
    refund_all = fake_stripe.refund_event(session)
    await post(client, refund_all)
    await post(client, refund_all)
    assert revenue(hass) == "0.00"
    record = await payment_record(hass, setup_entry, session)
    assert (record.state, record.refunded_amount) == (PaymentState.REFUNDED, 600)
    # Delivered credits are never taken back.
    assert hass.states.get("sensor.pac_man_credits").state == "3"
    # And after a restart the revenue still reflects the refund.
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert revenue(hass) == "0.00"


async def test_refund_of_unknown_payment_is_kept_for_when_it_arrives(
    client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    """Not ours, or not arrived yet: nothing tells which (test_money_in.py)."""
    other = fake_stripe.add_older_link("notOurs", 100)
    delivery = fake_stripe.complete_checkout(other["id"])
    refund = fake_stripe.refund_event(delivery.event["data"]["object"]["id"])
    assert (await post(client, refund))["outcome"] == "awaiting_payment"


async def test_dispute_is_recorded_and_raises_a_repair(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    setup_entry: MockConfigEntry,
) -> None:
    session = await paid_session(client, fake_stripe, cabinet_link, quantity=2)
    dispute = fake_stripe.dispute_event(session)
    assert (await post(client, dispute))["outcome"] == "recorded"
    await post(client, dispute)
    assert revenue(hass) == "0.00"
    assert (await payment_record(hass, setup_entry, session)).state is PaymentState.DISPUTED
    dispute_id = dispute.event["data"]["object"]["id"]
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"dispute_{dispute_id}")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {
        "cabinet": "Pac-Man",
        "amount": "4.00 USD",
        "session": session,
        "reason": "fraudulent",
        "url": f"https://dashboard.stripe.com/disputes/{dispute_id}",
    }


async def test_reconciliation_credits_what_the_webhook_missed_once(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    delivered = await paid_session(client, fake_stripe, cabinet_link, quantity=1)
    # Paid while Home Assistant could not hear about it (webhook never delivered).
    missed = fake_stripe.complete_checkout(cabinet_link["id"], quantity=4).event["data"]["object"]["id"]
    unpaid = fake_stripe.complete_checkout(cabinet_link["id"], payment_status="unpaid")
    assert unpaid  # listed by Stripe as complete but not paid: never credited

    for _ in range(2):  # Credited by the first run only.
        await reconcile(hass, freezer)
        pulses = [json.loads(p) for t, p, _, _ in published(mqtt_mock) if t.endswith("coinpulse")]
        assert [(p["paymentId"], p["credits"]) for p in pulses] == [(delivered, 1), (missed, 4)]
    # A late webhook for the reconciled session is a duplicate.
    late = fake_stripe.event_delivery("checkout.session.completed", fake_stripe.sessions[missed])
    assert (await post(client, late))["outcome"] == "duplicate"


async def test_reconciliation_ignores_payments_from_before_the_cabinet_was_known(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    cabinet_link: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    old = fake_stripe.complete_checkout(cabinet_link["id"]).event["data"]["object"]
    old["created"] = int(time.time()) - 86400
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()  # the start-up reconciliation ran
    assert [t for t, *_ in published(mqtt_mock) if t.endswith("coinpulse")] == []
    await reconcile(hass, freezer)  # and the hourly one
    assert [t for t, *_ in published(mqtt_mock) if t.endswith("coinpulse")] == []


async def test_reconciliation_survives_stripe_being_down(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
) -> None:
    """Through the start-up reconciliation: with the clock frozen, the SDK's retries would never end."""
    missed = fake_stripe.complete_checkout(cabinet_link["id"]).event["data"]["object"]["id"]
    fake_stripe.fail_next = 10
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [p for t, p, _, _ in published(mqtt_mock) if t.endswith("coinpulse")] == []
    fake_stripe.fail_next = 0
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    pulses = [json.loads(p) for t, p, _, _ in published(mqtt_mock) if t.endswith("coinpulse")]
    assert [p["paymentId"] for p in pulses] == [missed]


async def test_wrong_webhook_secret_raises_a_repair(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    issue_id = f"webhook_signature_{next(iter(hass.config_entries.async_entries(DOMAIN))).entry_id}"
    for _ in range(3):
        wrong = fake_stripe.complete_checkout(cabinet_link["id"], secret="whsec_wrong")
        resp = await client.post(URL, data=wrong.body, headers=wrong.headers)
        assert resp.status == 400
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    await paid_session(client, fake_stripe, cabinet_link)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_signature_repair_clears_on_first_verified_delivery_after_a_reload(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    """Reconfigure (which reloads the entry), then one verified delivery clears it."""
    entry = next(iter(hass.config_entries.async_entries(DOMAIN)))
    issue_id = f"webhook_signature_{entry.entry_id}"
    for _ in range(3):
        wrong = fake_stripe.complete_checkout(cabinet_link["id"], secret="whsec_wrong")
        assert (await client.post(URL, data=wrong.body, headers=wrong.headers)).status == 400
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)  # start-up reconciliation too
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None  # nothing verified yet
    await paid_session(client, fake_stripe, cabinet_link)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_missing_signatures_do_not_count_as_a_wrong_secret(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe
) -> None:
    for _ in range(5):
        assert (await client.post(URL, data="{}")).status == 400
    assert not [i for i in ir.async_get(hass).issues.values() if i.domain == DOMAIN]


async def test_unknown_cabinet_and_uncreditable_payments_raise_repairs(
    hass: HomeAssistant, client: TestClient, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    link = fake_stripe.add_older_link("ghost", 100)
    delivery = fake_stripe.complete_checkout(link["id"])
    await post(client, delivery)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "unknown_cabinet_ghost")
    assert issue is not None
    assert issue.translation_placeholders["session"] == delivery.event["data"]["object"]["id"]

    wrong_currency = fake_stripe.complete_checkout(cabinet_link["id"]).event["data"]["object"] | {
        "currency": "eur"
    }
    await post(client, fake_stripe.event_delivery("checkout.session.completed", wrong_currency))
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"not_credited_{wrong_currency['id']}")
    assert issue is not None
    assert issue.translation_placeholders["reason"] == "paid in EUR, priced in USD"


async def test_export_ledger(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    setup_entry: MockConfigEntry,
) -> None:
    session = await paid_session(client, fake_stripe, cabinet_link, quantity=2)
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.pac_man_insert_credit"}, blocking=True
    )
    response = await hass.services.async_call(
        DOMAIN,
        "export_ledger",
        {"config_entry_id": setup_entry.entry_id},
        blocking=True,
        return_response=True,
    )
    assert response["rows"] == 2
    path = Path(response["path"])
    assert path.parent == Path(hass.config.path(DOMAIN, "exports"))
    rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    assert (rows[0]["payment_id"], rows[0]["credits"], rows[0]["amount"], rows[0]["source"]) == (
        session,
        "2",
        "4.00",
        "stripe",
    )
    assert rows[0]["currency"] == "usd"
    assert rows[1]["source"] == "manual"
    assert rows[1]["amount"] == "0.00"


async def test_export_ledger_of_unknown_entry(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "export_ledger", {"config_entry_id": "nope"}, blocking=True, return_response=True
        )


async def test_malformed_refund_event_is_rejected(client: TestClient, fake_stripe: FakeStripe) -> None:
    body = json.dumps(
        {"id": "evt_1", "type": "charge.refunded", "data": {"object": {"id": "ch_1", "object": "charge"}}}
    )
    resp = await client.post(
        URL, data=body, headers={"Stripe-Signature": sign(body, fake_stripe.webhook_secret)}
    )
    assert resp.status == 400

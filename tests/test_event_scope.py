"""Events of another mode or account credit nothing; foreign metadata stays out of logs."""

from __future__ import annotations

import json
import logging
from typing import Any
from unittest.mock import MagicMock

from aiohttp.test_utils import TestClient
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.arcade_pay.const import DOMAIN
from custom_components.arcade_pay.core.ledger import PaymentLedger
from custom_components.arcade_pay.core.payments import paid_session
from custom_components.arcade_pay.core.stripe_scope import key_livemode, metadata_machine_id, refusal
from fake_stripe import Delivery, FakeStripe, sign

from .helpers import WEBHOOK_ID, on_ledger_file, published, remember_seen, settle

URL = f"/api/webhook/{WEBHOOK_ID}"


def resigned(fake: FakeStripe, delivery: Delivery, **changes: Any) -> Delivery:
    """The same event with ``changes`` at its top level (None deletes), signed again."""
    event = dict(delivery.event) | changes
    event = {key: value for key, value in event.items() if value is not None}
    body = json.dumps(event)
    headers = {"Stripe-Signature": sign(body, fake.webhook_secret), "Content-Type": "application/json"}
    return Delivery(event, body, headers)


async def post(client: TestClient, delivery: Delivery) -> int:
    resp = await client.post(URL, data=delivery.body, headers=delivery.headers)
    await settle(client)
    return resp.status


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.getMessage().startswith("Refused Stripe event")
    ]


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"livemode": True}, "live mode"),
        ({"livemode": None}, "no livemode"),
        ({"livemode": "false"}, "no livemode"),
        ({"account": "acct_1Connected"}, "connected account acct_1Connected"),
    ],
)
async def test_event_of_another_mode_or_account_is_refused_and_logged_once(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    changes: dict[str, Any],
    why: str,
) -> None:
    """A live event for a test-mode entry (or a Connect account's) is refused, and logged once."""
    for _ in range(3):
        delivery = resigned(fake_stripe, fake_stripe.complete_checkout(cabinet_link["id"], 2), **changes)
        assert await post(client, delivery) == 400
    assert [p for t, p, *_ in published(mqtt_mock) if t.endswith("/coinpulse")] == []
    assert await on_ledger_file(hass, setup_entry, PaymentLedger.count_by_state) == {}
    [message] = refusals(caplog)
    assert why in message


async def test_live_key_refuses_test_events(
    hass: HomeAssistant,
    hass_client_no_auth: Any,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    config_entry: MockConfigEntry,
) -> None:
    """The other way round, and a live event for a live key is credited."""
    remember_seen(hass, config_entry)
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, data=dict(config_entry.data) | {CONF_API_KEY: "rk_live_arcadepay_1234567890"}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    client = await hass_client_no_auth()
    assert await post(client, fake_stripe.complete_checkout(cabinet_link["id"], 2)) == 400
    live = resigned(fake_stripe, fake_stripe.complete_checkout(cabinet_link["id"], 3), livemode=True)
    assert await post(client, live) == 200
    pulses = [json.loads(p) for t, p, *_ in published(mqtt_mock) if t.endswith("/coinpulse")]
    assert [p["credits"] for p in pulses] == [3]


@pytest.mark.parametrize(
    ("key", "livemode"),
    [
        ("sk_test_abc", False),
        ("rk_test_abc", False),
        ("sk_live_abc", True),
        ("rk_live_abc", True),
        ("sk_abc", None),
        ("sk_livestock_abc", None),
    ],
)
def test_key_livemode(key: str, livemode: bool | None) -> None:
    assert key_livemode(key) is livemode


JUNK_MACHINE_IDS = ["x" * 65, "a/b", "a\nWARNING forged line", "", "../../etc", "café", "a+b", 7, None]


@pytest.mark.parametrize("junk", JUNK_MACHINE_IDS)
def test_metadata_machine_id_must_be_a_machine_id(junk: Any) -> None:
    assert metadata_machine_id(junk) is None


def test_metadata_machine_id_keeps_a_good_one() -> None:
    assert metadata_machine_id("arcadeCabinet-123") == "arcadeCabinet-123"
    session = {
        "id": "cs_1",
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 200,
        "currency": "usd",
        "metadata": {"machine_id": "x" * 300},
    }
    result = paid_session(session, "evt_1", "checkout.session.completed")
    assert result.machine_id is None  # type: ignore[union-attr]


async def test_foreign_links_machine_id_stays_out_of_logs_and_repair_ids(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    mqtt_mock: MagicMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A link made elsewhere never puts its metadata, unchecked, into the log or a repair id."""
    junk = "evil\n" + "x" * 400
    link = fake_stripe.add_older_link("made-elsewhere", 100)
    link["metadata"] = {"machine_id": junk}
    assert await post(client, fake_stripe.complete_checkout(link["id"], 1)) == 200
    issue_ids = [i for (d, i) in ir.async_get(hass).issues if d == DOMAIN]
    assert issue_ids == [f"unknown_cabinet_{link['id']}"]
    assert "xxxxxxxxxx" not in caplog.text
    assert "evil" not in caplog.text


@pytest.mark.parametrize(
    ("event", "livemode", "expected"),
    [
        ([], False, None),  # Not an event: the parser says so, not this check.
        ({"livemode": False}, None, None),  # A key that names no mode: not checked.
        ({"livemode": True}, None, None),
        ({"livemode": False, "account": None}, False, None),
        ({"livemode": False, "account": {"id": "acct_1"}}, False, "connected account (unreadable)"),
        ({"livemode": False, "account": "acct 1\nforged"}, False, "connected account (unreadable)"),
        ({"livemode": False}, True, "a test mode event, and this entry's API key is a live mode key"),
    ],
)
def test_refusal(event: Any, livemode: bool | None, expected: str | None) -> None:
    reason = refusal(event, livemode)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason

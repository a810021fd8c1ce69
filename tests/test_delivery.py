"""Exactly-once delivery in Home Assistant: acknowledgements, retries, restarts, outages."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import json
import logging
from typing import Any
from unittest.mock import MagicMock

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir

from custom_components.arcade_pay.const import DOMAIN
from custom_components.arcade_pay.core.delivery_planner import STATUS_GRACE
from custom_components.arcade_pay.core.ledger import PaymentState
from custom_components.arcade_pay.core.resend import MAX_SENDS_WITHOUT_ACK
from custom_components.arcade_pay.core.stripe_gateway import StripeGateway, StripeGatewayError
from fake_stripe import FakeStripe

from .helpers import (
    MACHINE_ID,
    PREFIX,
    WEBHOOK_ID,
    advance,
    failing_ledger,
    housekeeping,
    pay,
    payment_record,
    payment_state,
    pulses,
    refund_undelivered_of_an_offline_cabinet,
    remembers_acknowledging,
    set_connected,
)


async def ack(hass: HomeAssistant, payment_id: str, machine_id: str = MACHINE_ID) -> None:
    async_fire_mqtt_message(hass, f"arcade/machine/{machine_id}/ack", json.dumps({"paymentId": payment_id}))
    await hass.async_block_till_done()


async def test_cabinet_that_acknowledges_gets_retries_until_it_does(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    first = await pay(client, fake_stripe, cabinet_link)
    # An older cabinet until it acknowledges: one pulse, delivered once published.
    assert await payment_state(hass, setup_entry, first) is PaymentState.PUBLISHED
    await ack(hass, first)
    assert await payment_state(hass, setup_entry, first) is PaymentState.ACKNOWLEDGED

    second = await pay(client, fake_stripe, cabinet_link, quantity=2)
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [first, second]
    await advance(hass, freezer, 2.5)
    await advance(hass, freezer, 4.5)
    # Re-sent with the same paymentId (2 s, then 4 s backoff), credits counted once in HA.
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [first, second, second, second]
    assert {p["credits"] for p in pulses(mqtt_mock)[1:]} == {2}
    assert hass.states.get("sensor.pac_man_credits").state == "3"
    assert hass.states.get("sensor.pac_man_pending_credits").state == "2"
    await ack(hass, second)
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"
    await advance(hass, freezer, 120)
    assert len(pulses(mqtt_mock)) == 4
    assert await payment_state(hass, setup_entry, second) is PaymentState.ACKNOWLEDGED

    # The learned behaviour survives a restart.
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert await remembers_acknowledging(hass, setup_entry, MACHINE_ID)


async def test_pending_pulses_are_sent_after_restart(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
) -> None:
    mqtt_mock.async_publish.side_effect = HomeAssistantError("not connected")
    session = await pay(client, fake_stripe, cabinet_link, quantity=3)
    assert await payment_state(hass, setup_entry, session) is PaymentState.PENDING
    assert hass.states.get("sensor.pac_man_pending_credits").state == "3"
    assert hass.states.get("sensor.pac_man_revenue").state == "6.00"  # money is counted when taken

    mqtt_mock.async_publish.side_effect = None
    mqtt_mock.async_publish.reset_mock()
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()

    assert [(p["paymentId"], p["credits"]) for p in pulses(mqtt_mock)] == [(session, 3)]
    assert await payment_state(hass, setup_entry, session) is PaymentState.PUBLISHED
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"


async def test_mqtt_outage_holds_pulses_until_reconnect(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    set_connected(hass, False)
    await hass.async_block_till_done()
    session = await pay(client, fake_stripe, cabinet_link)
    assert pulses(mqtt_mock) == []
    set_connected(hass, False)  # a repeated report logs nothing new
    set_connected(hass, True)
    await hass.async_block_till_done()
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [session]
    assert caplog.text.count("MQTT is disconnected") == 1
    assert caplog.text.count("MQTT is back") == 1


async def test_offline_cabinet_gets_credits_when_back(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await hass.async_block_till_done()
    session = await pay(client, fake_stripe, cabinet_link, quantity=2)
    assert pulses(mqtt_mock) == []
    assert hass.states.get("sensor.pac_man_pending_credits").state == "2"
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [session]
    assert caplog.text.count("went offline") == 1
    assert caplog.text.count("is back online") == 1


@pytest.mark.parametrize("status_after_reload", ["offline", "online", None])
async def test_credits_held_for_an_offline_cabinet_stay_held_across_a_reload(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    status_after_reload: str | None,
) -> None:
    """Reloaded (options saved, say) before its retained status comes back: not sent to nobody.

    An older cabinet applies what it gets and never acks: a pulse published while it is offline,
    counted as delivered, may never reach it.
    """
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await hass.async_block_till_done()
    session = await pay(client, fake_stripe, cabinet_link, quantity=2)

    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert pulses(mqtt_mock) == []
    if status_after_reload is not None:  # The broker hands the retained status to the new subscription.
        async_fire_mqtt_message(hass, f"{PREFIX}/status", status_after_reload, retain=True)
        await hass.async_block_till_done()
    await advance(hass, freezer, STATUS_GRACE + 1)

    # Offline: held until it is back. Online, or no retained status at all: sent (once).
    expected = [] if status_after_reload == "offline" else [session]
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == expected
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [session]
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"


async def test_offline_cabinet_stops_taking_payments(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    switch = "switch.pac_man_accepting_payments"
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await hass.async_block_till_done()
    await advance(hass, freezer, 60)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    await advance(hass, freezer, 61)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert hass.states.get(switch).state == "off"
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    assert hass.states.get(switch).state == "on"


async def test_a_reload_does_not_restart_the_offline_rules_wait(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Offline 90 s of the 120 s grace, then the options are saved: the link stops 30 s later, not 120."""
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await hass.async_block_till_done()
    await advance(hass, freezer, 90)

    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline", retain=True)
    await hass.async_block_till_done()
    await advance(hass, freezer, 20)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    await advance(hass, freezer, 15)

    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False


async def test_short_outage_keeps_taking_payments(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await advance(hass, freezer, 30)
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await advance(hass, freezer, 200)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    assert fake_stripe.api_requests("POST", "/v1/payment_links/") == []


async def test_operator_pause_sticks(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
) -> None:
    switch = "switch.pac_man_accepting_payments"
    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    # Coming back online does not undo the operator's choice, nor does a restart.
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(switch).state == "off"
    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    assert hass.states.get(switch).state == "on"


async def test_switch_reports_stripe_failure(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    fake_stripe.fail_next = 10
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": "switch.pac_man_accepting_payments"}, blocking=True
        )
    assert err.value.translation_key == "stripe_failed"
    assert hass.states.get("switch.pac_man_accepting_payments").state == "on"


@pytest.mark.parametrize(
    "payload",
    [b"junk", b"{}", json.dumps({"paymentId": 5}).encode(), json.dumps({"paymentId": "cs_unknown"}).encode()],
)
async def test_bad_acknowledgements_are_ignored(
    hass: HomeAssistant, setup_entry: MockConfigEntry, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async_fire_mqtt_message(hass, f"{PREFIX}/ack", payload)
    await hass.async_block_till_done()
    assert not await remembers_acknowledging(hass, setup_entry, MACHINE_ID)
    assert caplog.text.count("Ignoring malformed message") == 1


async def test_ack_for_another_cabinets_payment_is_ignored(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    setup_entry: MockConfigEntry,
) -> None:
    session = await pay(client, fake_stripe, cabinet_link)
    await ack(hass, session, machine_id="someOtherCabinet")
    assert await payment_state(hass, setup_entry, session) is PaymentState.PUBLISHED


async def test_manual_credit_while_mqtt_down_follows_later(
    hass: HomeAssistant, setup_entry: MockConfigEntry, mqtt_mock: MagicMock
) -> None:
    """Recorded, the press succeeds (an error would invite a second press: a second gift)."""
    mqtt_mock.async_publish.side_effect = HomeAssistantError("not connected")
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.pac_man_insert_credit"}, blocking=True
    )
    assert hass.states.get("sensor.pac_man_pending_credits").state == "1"
    mqtt_mock.async_publish.side_effect = None
    mqtt_mock.async_publish.reset_mock()
    set_connected(hass, False)
    set_connected(hass, True)
    await hass.async_block_till_done()
    assert [p["credits"] for p in pulses(mqtt_mock)] == [1]


async def test_undelivered_credits_raise_a_repair_and_clear_it(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    issue_id = f"credits_undelivered_{MACHINE_ID}"
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await pay(client, fake_stripe, cabinet_link, quantity=2)
    await housekeeping(hass, freezer, 300)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await housekeeping(hass, freezer, 330)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {"cabinet": "Pac-Man", "credits": "2"}
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    await housekeeping(hass, freezer, 30)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_automatic_refund_of_undeliverable_credits(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    hass.config_entries.async_update_entry(
        setup_entry,
        options=setup_entry.options | {"refund_undelivered": True, "refund_minutes": 5, "offline_minutes": 0},
    )
    # The reload's start-up reconciliation too, or it races the webhook for the payment.
    await hass.async_block_till_done(wait_background_tasks=True)
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await hass.async_block_till_done()
    session = await pay(client, fake_stripe, cabinet_link, quantity=2)
    await housekeeping(hass, freezer, 240)
    assert fake_stripe.refunds == []
    await housekeeping(hass, freezer, 90)
    assert [r["payment_intent"] for r in fake_stripe.refunds] == [
        fake_stripe.sessions[session]["payment_intent"]
    ]
    assert await payment_state(hass, setup_entry, session) is PaymentState.REFUNDED
    assert hass.states.get("sensor.pac_man_revenue").state == "0.00"
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"
    # Refunded credits are never sent, even when the cabinet comes back.
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    await housekeeping(hass, freezer, 120)
    assert pulses(mqtt_mock) == []
    # Stripe's own charge.refunded event for that refund changes nothing more.
    refunded = fake_stripe.refund_event(session)
    resp = await client.post(f"/api/webhook/{WEBHOOK_ID}", data=refunded.body, headers=refunded.headers)
    assert resp.status == 200
    assert hass.states.get("sensor.pac_man_revenue").state == "0.00"
    assert await payment_state(hass, setup_entry, session) is PaymentState.REFUNDED


async def test_overlapping_housekeeping_runs_refund_a_payment_once(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run slower than the 30-second interval (Stripe taking its time) overlaps the next one."""
    hass.config_entries.async_update_entry(
        setup_entry,
        options=setup_entry.options | {"refund_undelivered": True, "refund_minutes": 5, "offline_minutes": 0},
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await hass.async_block_till_done()
    session = await pay(client, fake_stripe, cabinet_link, quantity=2)
    real_refund = StripeGateway.refund
    refunding, answer = asyncio.Event(), asyncio.Event()

    async def slow_refund(gateway: StripeGateway, payment_intent: str, key: str) -> None:
        refunding.set()
        await answer.wait()
        await real_refund(gateway, payment_intent, key)

    monkeypatch.setattr(StripeGateway, "refund", slow_refund)
    freezer.tick(timedelta(minutes=6))
    async_fire_time_changed(hass)
    async with asyncio.timeout(5):
        await refunding.wait()
    freezer.tick(timedelta(seconds=30))
    async_fire_time_changed(hass)  # The next run starts while the first waits for Stripe.
    for _ in range(20):  # and gets as far as it can (block_till_done would wait for the first)
        await asyncio.sleep(0)
    answer.set()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fake_stripe.api_requests("POST", "/v1/refunds") == ["/v1/refunds"]
    assert "Could not refund" not in caplog.text
    assert await payment_state(hass, setup_entry, session) is PaymentState.REFUNDED
    assert hass.states.get("sensor.pac_man_revenue").state == "0.00"


async def test_refund_refused_by_stripe_is_tried_again_by_the_next_run(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Offline rule off: its Stripe call would take the one refused request.
    hass.config_entries.async_update_entry(
        setup_entry,
        options=setup_entry.options | {"refund_undelivered": True, "refund_minutes": 5, "offline_minutes": 0},
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await hass.async_block_till_done()
    session = await pay(client, fake_stripe, cabinet_link)
    fake_stripe.fail_next, fake_stripe.fail_status = 1, 400
    await housekeeping(hass, freezer, 6 * 60)
    assert "Could not refund undelivered payment" in caplog.text
    assert fake_stripe.refunds == []
    assert await payment_state(hass, setup_entry, session) is PaymentState.PENDING
    await housekeeping(hass, freezer, 30)
    assert [r["payment_intent"] for r in fake_stripe.refunds] == [
        fake_stripe.sessions[session]["payment_intent"]
    ]
    assert await payment_state(hass, setup_entry, session) is PaymentState.REFUNDED


async def test_a_claim_to_acknowledge_is_not_proof(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """One retained state claiming acknowledgements, on an older cabinet's topic (it applies every
    pulse and never acknowledges): one payment of 2 credits stays one pulse (not 9 in 4 minutes)."""
    async_fire_mqtt_message(
        hass,
        f"{PREFIX}/state",
        json.dumps({"credits": 0, "state": "attract", "acknowledges": True}),
        retain=True,
    )
    await hass.async_block_till_done()
    session = await pay(client, fake_stripe, cabinet_link, quantity=2)
    for _ in range(8):
        await advance(hass, freezer, 30)
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [session]  # Not re-sent.
    assert await payment_state(hass, setup_entry, session) is PaymentState.PUBLISHED
    # One pulse, no re-sends: not believed; and nothing learned survives a restart either.
    assert not await remembers_acknowledging(hass, setup_entry, MACHINE_ID)


async def test_an_ack_of_a_pulse_never_sent_proves_nothing(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
) -> None:
    """Learned only from an ack of a pulse that was sent; one that is still held stays owed."""
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await hass.async_block_till_done()
    session = await pay(client, fake_stripe, cabinet_link, quantity=2)
    assert pulses(mqtt_mock) == []
    await ack(hass, session)
    assert not await remembers_acknowledging(hass, setup_entry, MACHINE_ID)
    assert await payment_state(hass, setup_entry, session) is PaymentState.PENDING  # An ack is no proof.
    assert hass.states.get("sensor.pac_man_pending_credits").state == "2"
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [session]
    await ack(hass, session)  # An ack of the pulse it got: now it is known to acknowledge.
    assert await payment_state(hass, setup_entry, session) is PaymentState.ACKNOWLEDGED
    assert await remembers_acknowledging(hass, setup_entry, MACHINE_ID)


async def test_resends_stop_after_the_bound_and_raise_a_repair(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The owner says the cabinet acknowledges; it never does. After MAX_SENDS_WITHOUT_ACK sends
    the pulse stays pending, not sent again (nor after a restart), and a repair says what to do."""
    issue_id = f"credits_unacknowledged_{MACHINE_ID}"
    await explicit_acknowledges(hass, setup_entry, True)
    session = await pay(client, fake_stripe, cabinet_link, quantity=2)
    for _ in range(20):
        await advance(hass, freezer, 61)
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [session] * MAX_SENDS_WITHOUT_ACK  # Then given up.
    assert hass.states.get("sensor.pac_man_pending_credits").state == "2"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "credits_unacknowledged"
    assert issue.translation_placeholders == {
        "cabinet": "Pac-Man",
        "credits": "2",
        "sends": str(MAX_SENDS_WITHOUT_ACK),
    }
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await advance(hass, freezer, 61)
    assert len(pulses(mqtt_mock)) == MAX_SENDS_WITHOUT_ACK
    assert hass.states.get("sensor.pac_man_pending_credits").state == "2"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    # The cabinet comes back (its agent was fixed): the credits get one more round, and its ack
    # closes them and the repair.
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert len(pulses(mqtt_mock)) == MAX_SENDS_WITHOUT_ACK + 1
    await ack(hass, session)
    assert await payment_state(hass, setup_entry, session) is PaymentState.ACKNOWLEDGED
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_turning_acknowledges_off_closes_credits_already_sent(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The repair's advice for an older cabinet: it got the pulse, so no further one is sent."""
    await explicit_acknowledges(hass, setup_entry, True)
    session = await pay(client, fake_stripe, cabinet_link, quantity=2)
    for _ in range(20):
        await advance(hass, freezer, 61)
    await explicit_acknowledges(hass, setup_entry, False)
    await advance(hass, freezer, 61)
    assert len(pulses(mqtt_mock)) == MAX_SENDS_WITHOUT_ACK  # Not one more.
    assert await payment_state(hass, setup_entry, session) is PaymentState.PUBLISHED
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"credits_unacknowledged_{MACHINE_ID}") is None


async def test_an_ack_of_another_credit_resumes_credits_given_up_on(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Its acks could not reach Home Assistant (broker ACL) and now can: Insert credit proves it."""
    await explicit_acknowledges(hass, setup_entry, True)
    session = await pay(client, fake_stripe, cabinet_link, quantity=2)
    for _ in range(20):
        await advance(hass, freezer, 61)
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.pac_man_insert_credit"}, blocking=True
    )
    manual = pulses(mqtt_mock)[-1]["paymentId"]
    await ack(hass, manual)
    assert [p["paymentId"] for p in pulses(mqtt_mock)][-1] == session
    await ack(hass, session)
    assert await payment_state(hass, setup_entry, session) is PaymentState.ACKNOWLEDGED
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"


async def test_owner_setting_wins_over_what_the_cabinet_says(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    subentry = next(iter(setup_entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        setup_entry, subentry, data=subentry.data | {"acknowledges": False}
    )
    await hass.async_block_till_done()
    async_fire_mqtt_message(
        hass, f"{PREFIX}/state", json.dumps({"credits": 0, "state": "attract", "acknowledges": True})
    )
    async_fire_mqtt_message(hass, f"{PREFIX}/ack", json.dumps({"paymentId": "cs_whatever"}))
    await hass.async_block_till_done()
    assert not await remembers_acknowledging(hass, setup_entry, MACHINE_ID)


async def test_unload_waits_for_a_pulse_in_flight(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
) -> None:
    """A reload while the broker has not yet acknowledged a pulse must not lose the ledger write."""
    release = asyncio.Event()

    async def slow_publish(*args: Any, **kwargs: Any) -> None:
        await release.wait()

    mqtt_mock.async_publish.side_effect = slow_publish
    delivery = fake_stripe.complete_checkout(cabinet_link["id"])
    resp = await client.post(f"/api/webhook/{WEBHOOK_ID}", data=delivery.body, headers=delivery.headers)
    assert resp.status == 200
    unload = hass.async_create_task(hass.config_entries.async_unload(setup_entry.entry_id))
    await asyncio.sleep(0)
    assert not unload.done()
    release.set()
    assert await unload
    session = delivery.event["data"]["object"]["id"]
    assert await payment_state(hass, setup_entry, session) is PaymentState.PUBLISHED


async def test_credits_of_a_cabinet_that_reports_its_state_are_never_counted_twice(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
) -> None:
    """The cabinet's own count can arrive before the broker confirmed the pulse to us.

    Adding the pulse to a count that already holds it would show 4 credits after a payment of 2.
    A cabinet that reports its state is believed alone; the estimate is only for cabinets that
    never say.
    """
    # The cabinet applied the pulse and said so before Home Assistant saw the broker's PUBACK.
    async_fire_mqtt_message(hass, f"{PREFIX}/state", json.dumps({"credits": 2, "state": "playing"}))
    await hass.async_block_till_done()
    await pay(client, fake_stripe, cabinet_link, quantity=2)
    assert [p["credits"] for p in pulses(mqtt_mock)] == [2]
    assert hass.states.get("sensor.pac_man_credits").state == "2"
    # The credit_added event still fires: the pulse did go out.
    assert hass.states.get("event.pac_man_game").attributes["event_type"] == "credit_added"


async def explicit_acknowledges(hass: HomeAssistant, entry: MockConfigEntry, acknowledges: bool) -> None:
    """The owner sets the cabinet's "acknowledges credits" in its Reconfigure (which reloads)."""
    subentry = next(iter(entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        entry, subentry, data=subentry.data | {"acknowledges": acknowledges}
    )
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.mark.parametrize("acknowledges", [False, True], ids=["older", "acknowledging"])
async def test_a_failed_ledger_write_after_a_publish_never_republishes(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    acknowledges: bool,
) -> None:
    """Once the broker took a pulse it is delivered (or one more attempt) whatever the write did."""
    await explicit_acknowledges(hass, setup_entry, acknowledges)
    writes = failing_ledger(monkeypatch, "mark_published", "database is locked")
    session = await pay(client, fake_stripe, cabinet_link, quantity=2)
    for seconds in (2.5, 4.5, 8.5):
        await advance(hass, freezer, seconds)
    sent = [p["paymentId"] for p in pulses(mqtt_mock)]
    # An older cabinet: once (not again at every wake-up). One that acknowledges: on its backoff
    # (a LedgerError of a wake-up escapes nowhere, and the next wake-up comes).
    assert sent == ([session] * 4 if acknowledges else [session])
    assert len(writes) >= len(sent)  # The write is what is retried.
    assert "Error doing job" not in caplog.text
    monkeypatch.undo()  # The lock is released: the retried write lands, nothing more is sent.
    await advance(hass, freezer, 60)
    state = await payment_state(hass, setup_entry, session)
    assert state is PaymentState.PUBLISHED
    record = await payment_record(hass, setup_entry, session)
    assert record.awaiting_ack is acknowledges
    if not acknowledges:
        assert [p["paymentId"] for p in pulses(mqtt_mock)] == [session]
        assert hass.states.get("sensor.pac_man_pending_credits").state == "0"


async def overdue_payment(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    link: dict[str, Any],
    entry: MockConfigEntry,
) -> str:
    """A payment for a cabinet that is offline, with refund-undelivered on."""
    await refund_undelivered_of_an_offline_cabinet(hass, entry)
    return await pay(client, fake_stripe, link, quantity=2)


def cabinet_back_during_refund(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, fail: bool = False
) -> list[str]:
    """Stripe takes its time to refund; meanwhile the cabinet comes back online."""
    real_refund = StripeGateway.refund
    refunds: list[str] = []

    async def refund(gateway: StripeGateway, payment_intent: str, key: str) -> None:
        async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
        for _ in range(20):  # Whatever the cabinet's return sets off runs now.
            await asyncio.sleep(0)
        if fail:
            raise StripeGatewayError("Stripe refused the refund")
        refunds.append(payment_intent)
        await real_refund(gateway, payment_intent, key)

    monkeypatch.setattr(StripeGateway, "refund", refund)
    return refunds


async def test_a_cabinet_back_during_the_refund_call_does_not_get_the_refunded_credits(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = await overdue_payment(hass, client, fake_stripe, cabinet_link, setup_entry)
    refunds = cabinet_back_during_refund(hass, monkeypatch)
    await housekeeping(hass, freezer, 6 * 60)
    assert refunds == [fake_stripe.sessions[session]["payment_intent"]]
    assert pulses(mqtt_mock) == []  # None went out during the refund call.
    assert await payment_state(hass, setup_entry, session) is PaymentState.REFUNDED
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"


async def test_a_refund_that_fails_puts_the_credits_back_into_delivery(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = await overdue_payment(hass, client, fake_stripe, cabinet_link, setup_entry)
    cabinet_back_during_refund(hass, monkeypatch, fail=True)
    await housekeeping(hass, freezer, 6 * 60)
    await advance(hass, freezer, 1)  # The delivery's next wake-up.
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [session]
    assert await payment_state(hass, setup_entry, session) is PaymentState.PUBLISHED
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"


async def test_a_cabinet_that_says_online_again_gets_another_round(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Every connect publishes "online", also when Home Assistant never saw it go offline."""
    await explicit_acknowledges(hass, setup_entry, True)
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    session = await pay(client, fake_stripe, cabinet_link)
    for _ in range(10):
        await advance(hass, freezer, 61)
    assert len(pulses(mqtt_mock)) == MAX_SENDS_WITHOUT_ACK
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert [p["paymentId"] for p in pulses(mqtt_mock)] == [session] * (MAX_SENDS_WITHOUT_ACK + 1)
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")  # Nothing given up on: nothing more.
    await hass.async_block_till_done()
    assert len(pulses(mqtt_mock)) == MAX_SENDS_WITHOUT_ACK + 1


async def test_an_ack_the_ledger_cannot_note_is_noted_from_the_next_one(
    hass: HomeAssistant,
    client: TestClient,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await explicit_acknowledges(hass, setup_entry, True)
    session = await pay(client, fake_stripe, cabinet_link)
    failing_ledger(monkeypatch, "mark_acknowledged", "database is locked")
    await ack(hass, session)
    assert "Could not note the acknowledgement" in caplog.text
    assert hass.states.get("sensor.pac_man_pending_credits").state == "1"
    monkeypatch.undo()
    await ack(hass, session)  # The cabinet acknowledges the next re-send again.
    assert await payment_state(hass, setup_entry, session) is PaymentState.ACKNOWLEDGED
    assert hass.states.get("sensor.pac_man_pending_credits").state == "0"

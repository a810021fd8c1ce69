"""A publish the broker never confirmed (no PUBACK in time): owed, not published again, not lost.

The planner and the dispatcher on a real ledger, by example; the state machine in
test_delivery_properties.py generates such publishes among every other fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from contextlib import closing
from pathlib import Path
import sqlite3

import pytest

from custom_components.arcade_pay.core.delivery import CreditDispatcher, PublishResult, Pulse
from custom_components.arcade_pay.core.delivery_planner import DeliveryPlanner
from custom_components.arcade_pay.core.ledger import SCHEMA_VERSION, PaymentLedger, PaymentState

from .helpers import ACK_CAB, CABINETS, OLDER_CAB, START, payment, pulse, undo_migration_6


class Broker:
    """What the publish function answers, in turn; it records what it was asked to publish."""

    def __init__(self) -> None:
        self.answers: list[PublishResult] = []
        self.sent: list[str] = []

    async def publish(self, pulse: Pulse) -> PublishResult:
        self.sent.append(pulse.payment_id)
        return self.answers.pop(0) if self.answers else PublishResult.CONFIRMED


@pytest.fixture
def ledger(tmp_path: Path) -> Generator[PaymentLedger]:
    ledger = PaymentLedger(tmp_path / "ledger.db")
    ledger.open()
    yield ledger
    ledger.close()


def dispatcher_on(ledger: PaymentLedger, broker: Broker, held: tuple[str, ...] = ()) -> CreditDispatcher:
    """A dispatcher as a (re)started process has it: ``ack-cab`` acknowledges, the ledger is loaded."""
    dispatcher = CreditDispatcher(ledger, broker.publish, lambda: START)
    dispatcher.planner.set_acknowledges(ACK_CAB, True)
    asyncio.run(dispatcher.load(set(CABINETS), held))
    return dispatcher


def unconfirmed_in_ledger(ledger: PaymentLedger) -> list[str]:
    return [u.payment_id for u in ledger.undelivered() if u.unconfirmed]


# --- the planner --------------------------------------------------------------------------


def test_an_unconfirmed_pulse_to_an_older_cabinet_stays_owed_and_is_not_due_again() -> None:
    planner = DeliveryPlanner()
    planner.add(pulse("cs_1", OLDER_CAB, credits=3))
    (due,) = planner.take_due(0.0)
    planner.publish_starting()
    assert planner.published(due.payment_id, 0.0, confirmed=False) is False  # Not delivered yet.
    assert "cs_1" in planner
    assert planner.awaiting_broker(due)
    planner.hurry()  # MQTT reconnects: the MQTT client sends it, not the planner.
    assert planner.take_due(10_000.0) == []
    assert planner.next_wakeup() is None


def test_a_later_confirmed_publish_proves_an_unconfirmed_one() -> None:
    planner = DeliveryPlanner()
    planner.add(pulse("cs_1", OLDER_CAB))
    planner.add(pulse("cs_2", OLDER_CAB))
    planner.add(pulse("cs_3", OLDER_CAB))
    planner.take_due(0.0)
    # cs_1 and cs_2 start together; cs_1 goes unconfirmed while cs_2 is still on its way.
    planner.publish_starting()
    overlapping = planner.publish_starting()
    planner.published("cs_1", 0.0, confirmed=False)
    planner.published("cs_2", 0.0)
    # cs_2 was handed to MQTT before cs_1 returned: its PUBACK proves nothing about cs_1.
    assert planner.confirmed_by(overlapping) == []
    later = planner.publish_starting()  # Started after cs_1 returned: the client sent cs_1 first.
    planner.published("cs_3", 0.0)
    assert [o.payment_id for o in planner.confirmed_by(later)] == ["cs_1"]
    assert len(planner) == 0


def test_an_unconfirmed_pulse_to_a_cabinet_that_acknowledges_is_resent_as_before() -> None:
    planner = DeliveryPlanner()
    planner.set_acknowledges(ACK_CAB, True)
    planner.add(pulse("cs_0", ACK_CAB))
    planner.take_due(0.0)
    planner.publish_starting()
    planner.published("cs_0", 0.0, confirmed=False)
    assert [o.payment_id for o in planner.take_due(2.0)] == ["cs_0"]  # Its backoff, then again.


# --- the dispatcher and the ledger ----------------------------------------------------------


def test_an_unconfirmed_pulse_is_sent_once_more_after_a_restart(ledger: PaymentLedger) -> None:
    broker = Broker()
    broker.answers = [PublishResult.UNCONFIRMED]
    dispatcher = dispatcher_on(ledger, broker)
    asyncio.run(dispatcher.accept(payment(1)))  # cs_1 is for the older cabinet, 2 credits.
    assert dispatcher.outstanding_credits(OLDER_CAB) == 2  # Pending until confirmed.
    assert ledger.state_of("cs_1") is PaymentState.PUBLISHED
    assert unconfirmed_in_ledger(ledger) == ["cs_1"]  # Kept across a restart.
    asyncio.run(dispatcher.flush())
    assert broker.sent == ["cs_1"]  # Not published again by this process.
    assert dispatcher.withdraw("cs_1") is None  # Not refundable as undelivered: it may arrive.

    restarted = dispatcher_on(ledger, broker)  # The MQTT client's copy ended with the process.
    asyncio.run(restarted.flush())
    assert broker.sent == ["cs_1", "cs_1"]
    assert ledger.undelivered() == []
    assert ledger.state_of("cs_1") is PaymentState.PUBLISHED
    asyncio.run(dispatcher_on(ledger, broker).flush())
    assert broker.sent == ["cs_1", "cs_1"]  # Confirmed: never again.


def test_a_later_confirmed_publish_settles_an_unconfirmed_one_in_the_ledger(ledger: PaymentLedger) -> None:
    broker = Broker()
    broker.answers = [PublishResult.UNCONFIRMED]
    dispatcher = dispatcher_on(ledger, broker)
    asyncio.run(dispatcher.accept(payment(1)))
    asyncio.run(dispatcher.accept(payment(2)))  # To the cabinet that acknowledges: confirmed.
    assert dispatcher.outstanding_credits(OLDER_CAB) == 0
    assert dispatcher.awaiting_broker() == []
    assert unconfirmed_in_ledger(ledger) == []
    asyncio.run(dispatcher_on(ledger, broker).flush())
    assert broker.sent == ["cs_1", "cs_2", "cs_2"]  # cs_2 awaits its ack; cs_1 is not sent again.


def test_an_entry_reload_does_not_send_what_the_mqtt_client_still_holds(ledger: PaymentLedger) -> None:
    broker = Broker()
    broker.answers = [PublishResult.UNCONFIRMED]
    dispatcher = dispatcher_on(ledger, broker)
    asyncio.run(dispatcher.accept(payment(1)))
    held = tuple(p.payment_id for p in dispatcher.awaiting_broker())
    assert held == ("cs_1",)

    reloaded = dispatcher_on(ledger, broker, held)
    asyncio.run(reloaded.flush())
    assert broker.sent == ["cs_1"]
    assert reloaded.outstanding_credits(OLDER_CAB) == 2
    asyncio.run(reloaded.accept(payment(3)))  # Confirmed, after the reload: proves cs_1.
    assert unconfirmed_in_ledger(ledger) == []
    assert reloaded.outstanding_credits(OLDER_CAB) == 0


def test_a_publish_answering_true_or_false_means_confirmed_or_refused() -> None:
    assert PublishResult.of(True) is PublishResult.CONFIRMED
    assert PublishResult.of(False) is PublishResult.REFUSED
    assert PublishResult.of(PublishResult.UNCONFIRMED) is PublishResult.UNCONFIRMED


# --- the ledger ----------------------------------------------------------------------------------


def test_unconfirmed_is_cleared_by_a_confirmed_note_or_an_ack(ledger: PaymentLedger) -> None:
    ledger.record(payment(1))
    ledger.record(payment(2))
    ledger.mark_published("cs_1", payment(1).received_at, False, 1, unconfirmed=True)
    ledger.mark_published("cs_2", payment(2).received_at, True, 1, unconfirmed=True)
    assert unconfirmed_in_ledger(ledger) == ["cs_1", "cs_2"]
    ledger.mark_published("cs_1", payment(1).received_at, False, 1)
    assert ledger.mark_acknowledged("cs_2", ACK_CAB, payment(2).received_at)
    assert ledger.undelivered() == []


def test_an_unconfirmed_pulse_refunded_since_is_not_sent_again(ledger: PaymentLedger) -> None:
    record = payment(1)
    ledger.record(record)
    ledger.mark_published("cs_1", record.received_at, False, 1, unconfirmed=True)
    assert record.payment_intent is not None
    assert ledger.record_refund(record.payment_intent, record.amount, "evt_refund") is not None
    assert ledger.state_of("cs_1") is PaymentState.REFUNDED
    assert ledger.undelivered() == []  # Money rules count its credits delivered.


def test_migration_6_keeps_every_payment_and_adds_unconfirmed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = PaymentLedger(path)
    ledger.open()
    ledger.record(payment(1))
    ledger.mark_published("cs_1", payment(1).received_at)
    ledger.record(payment(3))
    ledger.close()
    undo_migration_6(path)

    ledger = PaymentLedger(path)
    ledger.open()
    try:
        assert ledger.state_of("cs_1") is PaymentState.PUBLISHED
        assert [(u.payment_id, u.unconfirmed) for u in ledger.undelivered()] == [("cs_3", False)]
        ledger.mark_published("cs_3", payment(3).received_at, False, 1, unconfirmed=True)
        assert unconfirmed_in_ledger(ledger) == ["cs_3"]
    finally:
        ledger.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        (index,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'payments_undelivered'").fetchone()
    assert "unconfirmed = 1" in index


def test_a_replaced_mqtt_client_makes_its_unconfirmed_pulses_due_again() -> None:
    planner = DeliveryPlanner()
    planner.add(pulse("cs_1", OLDER_CAB))
    planner.take_due(0.0)
    planner.publish_starting()
    planner.published("cs_1", 0.0, confirmed=False)
    assert planner.mqtt_client_replaced()
    assert [o.payment_id for o in planner.take_due(0.0)] == ["cs_1"]
    later = planner.publish_starting()
    planner.published("cs_1", 0.0)
    assert planner.confirmed_by(later) == []
    assert len(planner) == 0
    assert not planner.mqtt_client_replaced()  # Nothing was held.

"""Automatic refunds under way in the ledger: schema 6, the mark, and what it keeps from delivery."""

from contextlib import closing
from datetime import timedelta
from pathlib import Path
import sqlite3

from custom_components.arcade_pay.core.ledger import SCHEMA_VERSION, PaymentLedger, PaymentState
from custom_components.arcade_pay.core.ledger_schema import MIGRATIONS

from .helpers import MACHINE_ID, NOON, SCHEMA_V1, make_payment, query

# A payment still owed, and one sent to a cabinet that has not acknowledged it, as release 5 held them.
V5_DATA = """
INSERT INTO payments (payment_id, machine_id, credits, amount, currency, payment_intent, source, state,
    received_at, published_at, awaiting_ack, attempts)
    VALUES ('cs_owed', 'arcadeCabinet-123', 2, 400, 'usd', 'pi_owed', 'stripe', 'pending',
            '2024-07-01T12:05:00+00:00', NULL, 0, 0),
           ('cs_sent', 'arcadeCabinet-123', 1, 200, 'usd', 'pi_sent', 'stripe', 'published',
            '2024-07-01T12:06:00+00:00', '2024-07-01T12:06:01+00:00', 1, 3);
"""


def test_schema_5_is_migrated_to_the_current_one_with_its_data(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA_V1)
        for version in (2, 3, 4, 5):
            db.executescript(MIGRATIONS[version] + f"; PRAGMA user_version = {version};")
        db.executescript(V5_DATA)
    ledger = PaymentLedger(path)
    ledger.open()
    try:
        assert [u.payment_id for u in ledger.undelivered()] == ["cs_owed", "cs_sent"]  # cs_old: delivered
        assert ledger.refunds_started() == []
        owed = ledger.payment("cs_owed")
        assert owed is not None
        assert (owed.state, owed.refund_started_at, owed.being_refunded) == (
            PaymentState.PENDING,
            None,
            False,
        )
        marked = ledger.start_refund("cs_sent", NOON)
        assert marked is not None
        assert marked.refund_started_at == NOON
        assert [u.payment_id for u in ledger.undelivered()] == ["cs_owed"]
    finally:
        ledger.close()
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert SCHEMA_VERSION == 7  # 6: unconfirmed publishes; 7: refunds under way
    indexes = {name for (name,) in query(path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"payments_undelivered", "payments_refunding"} <= indexes
    plan = query(
        path, "EXPLAIN QUERY PLAN SELECT payment_id FROM payments WHERE refund_started_at IS NOT NULL"
    )
    assert "payments_refunding" in " ".join(str(row[3]) for row in plan)


def test_a_marked_payment_stays_pending_but_is_not_delivered(ledger: PaymentLedger, path: Path) -> None:
    ledger.record(make_payment())
    ledger.record(
        make_payment(payment_id="cs_2", payment_intent="pi_2", received_at=NOON + timedelta(minutes=1))
    )
    marked = ledger.start_refund("cs_test_1", NOON + timedelta(minutes=30))
    assert marked is not None
    assert marked.being_refunded
    assert marked.undelivered  # Not known delivered, money not known back: still pending.
    assert ledger.state_of("cs_test_1") is PaymentState.PENDING
    assert [u.payment_id for u in ledger.undelivered()] == ["cs_2"]  # Never loaded into delivery.
    assert [r.payment_id for r in ledger.refunds_started()] == ["cs_test_1"]
    # Marked again (a run that finishes it): the first mark stands.
    again = ledger.start_refund("cs_test_1", NOON + timedelta(hours=2))
    assert again is not None
    assert again.refund_started_at == NOON + timedelta(minutes=30)
    # Another process (a restart) reads the mark from the file.
    assert query(path, "SELECT refund_started_at FROM payments WHERE payment_id = 'cs_test_1'") == [
        ("2024-07-01T12:30:00+00:00",)
    ]


def test_a_settled_payment_is_not_marked(ledger: PaymentLedger) -> None:
    ledger.record(make_payment())
    ledger.mark_published("cs_test_1", NOON, awaiting_ack=True)
    assert ledger.mark_acknowledged("cs_test_1", MACHINE_ID, NOON)
    assert ledger.start_refund("cs_test_1", NOON) is None
    assert ledger.start_refund("cs_unknown", NOON) is None
    assert ledger.refunds_started() == []


def test_the_refund_recorded_for_the_mark_ends_it_in_one_transaction(ledger: PaymentLedger) -> None:
    ledger.record(make_payment())
    ledger.start_refund("cs_test_1", NOON)
    # A refund event from Stripe (the owner's partial refund, say) leaves the mark to the refund.
    partial = ledger.record_refund("pi_1", 200, "evt_partial")
    assert partial is not None
    assert partial.credits_left == 2
    assert [r.payment_id for r in ledger.refunds_started()] == ["cs_test_1"]
    adjustment = ledger.record_refund("pi_1", 600, "auto_refund:cs_test_1", True)
    assert adjustment is not None
    assert (adjustment.revenue_delta, adjustment.credits_left) == (400, 0)
    record = ledger.payment("cs_test_1")
    assert record is not None
    assert (record.state, record.withheld_credits, record.being_refunded) == (PaymentState.REFUNDED, 3, False)
    assert ledger.refunds_started() == []
    assert ledger.undelivered() == []


def test_a_refused_refund_ends_the_mark_and_the_credits_are_owed_again(ledger: PaymentLedger) -> None:
    ledger.record(make_payment())
    ledger.start_refund("cs_test_1", NOON)
    ledger.end_refund("cs_test_1")
    assert ledger.refunds_started() == []
    assert [u.payment_id for u in ledger.undelivered()] == ["cs_test_1"]

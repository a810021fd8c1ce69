"""Helpers the core's tests share: payments and ledger files of one test cabinet, and the world of
the delivery tests (two cabinets, Checkout sessions that are always the same for one index)."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
import sqlite3

from custom_components.arcade_pay.core.delivery import Pulse
from custom_components.arcade_pay.core.ledger import Adjustment, Payment, PaymentSource

NOON = datetime(2024, 7, 1, 12, 0, 0, tzinfo=UTC)

# --- the ledger's tests: one cabinet, its file read as another process would ----------------------

MACHINE_ID = "arcadeCabinet-123"


def make_payment(**overrides: object) -> Payment:
    payment = Payment(
        payment_id="cs_test_1",
        machine_id=MACHINE_ID,
        credits=3,
        amount=600,
        currency="usd",
        source=PaymentSource.STRIPE,
        received_at=NOON,
        payment_intent="pi_1",
        event_id="evt_1",
        event_type="checkout.session.completed",
    )
    return replace(payment, **overrides)  # type: ignore[arg-type]


def query(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Read the file with a connection of our own, as another process would."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql, args).fetchall()


def events_of(path: Path, payment_id: str) -> list[tuple[object, ...]]:
    return query(
        path,
        "SELECT event_id, event_type FROM payment_events WHERE payment_id = ? ORDER BY event_id",
        payment_id,
    )


# The schema as the first release wrote it, with one payment in it.
SCHEMA_V1 = """
CREATE TABLE payments (
    payment_id TEXT PRIMARY KEY, machine_id TEXT NOT NULL, credits INTEGER NOT NULL CHECK (credits > 0),
    amount INTEGER NOT NULL CHECK (amount >= 0), currency TEXT NOT NULL, payment_intent TEXT,
    source TEXT NOT NULL, state TEXT NOT NULL, received_at TEXT NOT NULL, published_at TEXT
) WITHOUT ROWID;
CREATE TABLE payment_events (
    event_id TEXT PRIMARY KEY, payment_id TEXT NOT NULL REFERENCES payments (payment_id),
    event_type TEXT NOT NULL, received_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX payments_pending ON payments (machine_id, received_at) WHERE state = 'pending';
CREATE TABLE cabinet_totals (
    machine_id TEXT NOT NULL, currency TEXT NOT NULL, revenue INTEGER NOT NULL, payments INTEGER NOT NULL,
    credits INTEGER NOT NULL, last_payment_at TEXT, PRIMARY KEY (machine_id, currency)
) WITHOUT ROWID;
INSERT INTO payments VALUES ('cs_old', 'arcadeCabinet-123', 3, 600, 'usd', 'pi_old', 'stripe', 'published',
    '2024-07-01T12:00:00+00:00', '2024-07-01T12:00:01+00:00');
INSERT INTO payment_events VALUES ('evt_old', 'cs_old', 'checkout.session.completed',
    '2024-07-01T12:00:00+00:00');
INSERT INTO cabinet_totals VALUES ('arcadeCabinet-123', 'usd', 600, 1, 3, '2024-07-01T12:00:00+00:00');
PRAGMA user_version = 1;
"""


def undo_migration_6(path: Path) -> None:
    """Bring a closed ledger file back to schema 5: no refunds under way (7), no ``unconfirmed``
    column and the old index (6)."""
    with closing(sqlite3.connect(path)) as db:
        db.executescript(
            "DROP INDEX payments_refunding;"
            " ALTER TABLE payments DROP COLUMN refund_started_at;"
            " DROP INDEX payments_undelivered;"
            " ALTER TABLE payments DROP COLUMN unconfirmed;"
            " CREATE INDEX payments_undelivered ON payments (received_at)"
            " WHERE state = 'pending' OR awaiting_ack = 1;"
            " PRAGMA user_version = 5;"
        )


def delta(adjustment: Adjustment | None) -> int:
    assert adjustment is not None
    return adjustment.revenue_delta


# --- the delivery tests: a cabinet that acknowledges, an older one that never does ----------------

ACK_CAB = "ack-cab"
OLDER_CAB = "older-cab"
CABINETS = (ACK_CAB, OLDER_CAB)
START = NOON.timestamp()


def session(index: int) -> tuple[str, str, int]:
    """payment id, cabinet and credits of a Checkout session: always the same for one index."""
    return f"cs_{index}", (ACK_CAB if index % 2 == 0 else OLDER_CAB), 1 + index % 3


def payment(index: int) -> Payment:
    payment_id, machine_id, credits = session(index)
    return Payment(
        payment_id=payment_id,
        machine_id=machine_id,
        credits=credits,
        amount=100 * credits,
        currency="usd",
        source=PaymentSource.STRIPE,
        received_at=NOON + timedelta(seconds=index),
        payment_intent=f"pi_{index}",
        event_id=f"evt_{index}",
        event_type="checkout.session.completed",
    )


def pulse(payment_id: str, machine_id: str, credits: int = 1) -> Pulse:
    """A pulse for the planner alone (no ledger behind it)."""
    return Pulse(payment_id, machine_id, credits, NOON, PaymentSource.STRIPE)

"""The ledger's SQLite schema, and the migrations from every earlier version to this one.

Standard library ``sqlite3``. Each migration runs in its own transaction and sets
``user_version``; a ledger newer than this code is refused rather than misread. The
statements are history: they say what each version was, so they keep their literal states
(DDL takes no parameters).
"""

from __future__ import annotations

import sqlite3
from typing import Final

from . import ledger_money

SCHEMA_VERSION: Final = 7

MIGRATIONS: Final[dict[int, str]] = {
    1: """
    CREATE TABLE payments (
        payment_id TEXT PRIMARY KEY,
        machine_id TEXT NOT NULL,
        credits INTEGER NOT NULL CHECK (credits > 0),
        amount INTEGER NOT NULL CHECK (amount >= 0),
        currency TEXT NOT NULL,
        payment_intent TEXT,
        source TEXT NOT NULL,
        state TEXT NOT NULL,
        received_at TEXT NOT NULL,
        published_at TEXT
    ) WITHOUT ROWID;
    CREATE TABLE payment_events (
        event_id TEXT PRIMARY KEY,
        payment_id TEXT NOT NULL REFERENCES payments (payment_id),
        event_type TEXT NOT NULL,
        received_at TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX payments_pending ON payments (machine_id, received_at) WHERE state = 'pending';
    CREATE TABLE cabinet_totals (
        machine_id TEXT NOT NULL,
        currency TEXT NOT NULL,
        revenue INTEGER NOT NULL,
        payments INTEGER NOT NULL,
        credits INTEGER NOT NULL,
        last_payment_at TEXT,
        PRIMARY KEY (machine_id, currency)
    ) WITHOUT ROWID;
    """,
    # Acknowledged delivery, refunds and disputes, per-cabinet memory.
    2: """
    ALTER TABLE payments ADD COLUMN awaiting_ack INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE payments ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE payments ADD COLUMN acknowledged_at TEXT;
    ALTER TABLE payments ADD COLUMN refunded_amount INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE payments ADD COLUMN disputed_amount INTEGER NOT NULL DEFAULT 0;
    DROP INDEX payments_pending;
    CREATE INDEX payments_undelivered ON payments (received_at) WHERE state = 'pending' OR awaiting_ack = 1;
    CREATE INDEX payments_intent ON payments (payment_intent) WHERE payment_intent IS NOT NULL;
    CREATE TABLE cabinets (
        machine_id TEXT PRIMARY KEY,
        acknowledges INTEGER,
        reconciled_until INTEGER,
        paused INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    """,
    # Why a link is off, and what Stripe was last told: a restart must not forget either.
    3: """
    ALTER TABLE cabinets ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE cabinets ADD COLUMN offline_stopped INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE cabinets ADD COLUMN link_id TEXT;
    ALTER TABLE cabinets ADD COLUMN link_active INTEGER;
    """,
    # Money after a payment: ledger_money.py says what and why.
    4: ledger_money.SCHEMA_4,
    # Up to schema 4 a cabinet counted as acknowledging once its state message claimed it; only
    # an acknowledged payment proves it. Credits still awaiting its ack then count as delivered.
    5: """
    UPDATE cabinets SET acknowledges = 0 WHERE acknowledges = 1 AND machine_id NOT IN
        (SELECT DISTINCT machine_id FROM payments WHERE acknowledged_at IS NOT NULL);
    """,
    # A publish the broker never confirmed (no PUBACK) stays undelivered: sent again after a restart.
    6: """
    ALTER TABLE payments ADD COLUMN unconfirmed INTEGER NOT NULL DEFAULT 0;
    DROP INDEX payments_undelivered;
    CREATE INDEX payments_undelivered ON payments (received_at)
        WHERE state = 'pending' OR awaiting_ack = 1 OR unconfirmed = 1;
    """,
    # Automatic refunds under way (ledger_refunds.py): a crash mid-refund must neither deliver
    # their credits nor forget them. The partial index finds those a crash left.
    7: """
    ALTER TABLE payments ADD COLUMN refund_started_at TEXT;
    CREATE INDEX payments_refunding ON payments (refund_started_at) WHERE refund_started_at IS NOT NULL
    """,
}


def migrate(db: sqlite3.Connection) -> None:
    """Bring a ledger file to SCHEMA_VERSION (foreign keys must be off: migration 4 rebuilds a table)."""
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"ledger schema {version} is newer than this version of Arcade Pay ({SCHEMA_VERSION})"
        )
    for target in sorted(v for v in MIGRATIONS if version < v <= SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[target].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {target}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

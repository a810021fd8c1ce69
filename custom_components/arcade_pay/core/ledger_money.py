"""The ledger's part for money after a payment: refunds, disputes, payments that credit nothing.

Plain Python, standard library ``sqlite3``; PaymentLedger (ledger.py) calls these inside its
transactions. The rules themselves are in money_rules.py, refunds and disputes that come before
their payment in early_money.py, reconciliation cursors in reconciliation.py.

Schema 4 (migrated from 3 by ledger_schema.py):

* ``payments`` is rebuilt, since its CHECK allowed no payment with 0 credits: an
  ``uncreditable`` payment (another currency, an unknown cabinet) is kept with none, with a
  ``note`` saying why and the ``payment_link`` that was paid; ``withheld_credits`` are
  credits a refund or dispute stopped before they were sent (money_rules.py). Foreign keys are
  off while migrating (payment_events refers to the rebuilt table).
* ``early_adjustments``: refunds and disputes of payments not recorded yet (early_money.py).
* ``reconcile_links``: a reconciliation cursor per payment link, so that links retired by a
  price change are reconciled too (reconciliation.py); each cabinet's cursor moves to the link
  Stripe was last told about.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Final

from .early_money import storable
from .ledger_records import PaymentSource, PaymentState
from .money_rules import credits_to_withhold, money_out

if TYPE_CHECKING:
    from .ledger_records import Payment, PaymentRecord

SCHEMA_4: Final = """
    CREATE TABLE payments_v4 (
        payment_id TEXT PRIMARY KEY,
        machine_id TEXT NOT NULL,
        credits INTEGER NOT NULL CHECK (credits >= 0),
        amount INTEGER NOT NULL CHECK (amount >= 0),
        currency TEXT NOT NULL,
        payment_intent TEXT,
        source TEXT NOT NULL,
        state TEXT NOT NULL,
        received_at TEXT NOT NULL,
        published_at TEXT,
        awaiting_ack INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        acknowledged_at TEXT,
        refunded_amount INTEGER NOT NULL DEFAULT 0,
        disputed_amount INTEGER NOT NULL DEFAULT 0,
        withheld_credits INTEGER NOT NULL DEFAULT 0 CHECK (withheld_credits BETWEEN 0 AND credits),
        payment_link TEXT,
        note TEXT
    ) WITHOUT ROWID;
    INSERT INTO payments_v4 (payment_id, machine_id, credits, amount, currency, payment_intent, source,
        state, received_at, published_at, awaiting_ack, attempts, acknowledged_at, refunded_amount,
        disputed_amount, withheld_credits)
    SELECT payment_id, machine_id, credits, amount, currency, payment_intent, source, state, received_at,
        published_at, awaiting_ack, attempts, acknowledged_at, refunded_amount, disputed_amount,
        CASE WHEN state IN ('refunded', 'disputed') AND published_at IS NULL THEN credits ELSE 0 END
    FROM payments;
    DROP TABLE payments;
    ALTER TABLE payments_v4 RENAME TO payments;
    CREATE INDEX payments_undelivered ON payments (received_at) WHERE state = 'pending' OR awaiting_ack = 1;
    CREATE INDEX payments_intent ON payments (payment_intent) WHERE payment_intent IS NOT NULL;
    CREATE INDEX payments_uncreditable ON payments (received_at) WHERE state = 'uncreditable';
    CREATE TABLE early_adjustments (
        payment_intent TEXT PRIMARY KEY,
        refunded_total INTEGER NOT NULL DEFAULT 0,
        refund_event TEXT,
        dispute_id TEXT,
        disputed_amount INTEGER NOT NULL DEFAULT 0,
        dispute_reason TEXT,
        dispute_event TEXT,
        received_at TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE reconcile_links (
        link_id TEXT PRIMARY KEY,
        machine_id TEXT NOT NULL,
        since INTEGER NOT NULL,
        retired_at INTEGER
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO reconcile_links (link_id, machine_id, since)
    SELECT link_id, machine_id, reconciled_until FROM cabinets
    WHERE link_id IS NOT NULL AND reconciled_until IS NOT NULL
    """

_REFUNDED: Final = PaymentState.REFUNDED.value
_DISPUTED: Final = PaymentState.DISPUTED.value
_UNCREDITABLE: Final = PaymentState.UNCREDITABLE.value


def settle(
    db: sqlite3.Connection, record: PaymentRecord, refunded_total: int, disputed: int, dispute: bool
) -> tuple[int, int]:
    """Apply a payment's refund total and dispute; return (revenue taken off, credits left to send)."""
    refunded = max(record.refunded_amount, min(refunded_total, record.amount))
    if refunded == record.refunded_amount and not dispute:
        return 0, record.credits - record.withheld_credits if record.undelivered else 0
    disputed_now = dispute or record.state == _DISPUTED
    out = money_out(record.amount, refunded, disputed)
    withheld = record.withheld_credits
    if record.undelivered:
        withheld = max(withheld, credits_to_withhold(record.credits, record.amount, out, disputed_now))
    kept = record.credits - withheld if record.undelivered else 0
    state: str = record.state
    if dispute:
        state = _DISPUTED
    elif state != _DISPUTED and (refunded >= record.amount or (record.undelivered and kept == 0)):
        state = _REFUNDED
    db.execute(
        "UPDATE payments SET refunded_amount = ?, disputed_amount = ?, withheld_credits = ?, state = ?,"
        " awaiting_ack = CASE WHEN ? THEN 0 ELSE awaiting_ack END WHERE payment_id = ?",
        (refunded, disputed, withheld, state, kept == 0, record.payment_id),
    )
    if record.state == _UNCREDITABLE:  # Never counted in revenue.
        return 0, 0
    delta = out - money_out(record.amount, record.refunded_amount, record.disputed_amount)
    if delta and record.source is PaymentSource.STRIPE:  # Free credits are not takings.
        db.execute(
            "UPDATE cabinet_totals SET revenue = revenue - ? WHERE machine_id = ? AND currency = ?",
            (delta, record.machine_id, record.currency),
        )
    return delta, kept


def insert_uncreditable(db: sqlite3.Connection, payment: Payment, reason: str, received: str) -> bool:
    """Insert a payment that credits nothing; return False if its payment id was recorded before."""
    inserted: bool = (
        db.execute(
            "INSERT INTO payments (payment_id, machine_id, credits, amount, currency, payment_intent,"
            " source, state, received_at, payment_link, note, unit_amount, offer, discount)"
            " VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO NOTHING",
            (
                payment.payment_id,
                storable(payment.machine_id),  # from the session's metadata: any text
                payment.amount,
                storable(payment.currency),
                payment.payment_intent,
                payment.source.value,
                _UNCREDITABLE,
                received,
                payment.payment_link,
                storable(reason),
                payment.unit_amount,
                None if payment.offer is None else storable(payment.offer),
                payment.discount,
            ),
        ).rowcount
        == 1
    )
    return inserted

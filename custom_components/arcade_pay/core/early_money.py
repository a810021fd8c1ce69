"""Refunds and disputes that arrive before their payment, kept until it does.

Plain Python, standard library ``sqlite3``; the ledger calls these inside its transactions.
Stripe does not promise any order between events: ``charge.refunded`` can be delivered while
the ``checkout.session.completed`` of the same payment still waits for a retry (Stripe retries
for up to 3 days), and reconciliation may find the payment only later. So a refund or dispute
for a payment intent the ledger does not know is kept here, by payment intent, and applied in
the same transaction that records the payment: a refunded payment is never delivered, not even
after a crash in between.

Nothing tells a refund of an Arcade Pay payment from one of another app on the same Stripe
account before the payment arrives, so what is never claimed is forgotten after
``KEEP_FOR`` (longer than Stripe retries and than reconciliation's windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
import sqlite3
from typing import Final

KEEP_FOR: Final = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Dispute:
    """What a dispute's repair says about it."""

    dispute_id: str
    amount: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class EarlyMoney:
    """Refund total and dispute known for a payment intent before its payment."""

    refunded_total: int
    refund_event: str | None
    dispute: Dispute | None
    dispute_event: str | None


def hold_refund(
    db: sqlite3.Connection, payment_intent: str, total: int, event_id: str, now: datetime
) -> None:
    """Keep a refund total (cumulative, so the largest one seen stands)."""
    _forget_old(db, now)
    db.execute(
        "INSERT INTO early_adjustments (payment_intent, refunded_total, refund_event, received_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (payment_intent) DO UPDATE SET"
        " refund_event = CASE WHEN excluded.refunded_total > refunded_total"
        "  THEN excluded.refund_event ELSE refund_event END,"
        " refunded_total = max(refunded_total, excluded.refunded_total), received_at = excluded.received_at",
        (payment_intent, total, event_id, now.isoformat()),
    )


def hold_dispute(
    db: sqlite3.Connection, payment_intent: str, dispute: Dispute, event_id: str, now: datetime
) -> None:
    """Keep the first dispute of a payment intent (a payment is disputed once)."""
    _forget_old(db, now)
    db.execute(
        "INSERT INTO early_adjustments (payment_intent, dispute_id, disputed_amount, dispute_reason,"
        " dispute_event, received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (payment_intent) DO UPDATE SET"
        # The first dispute stands: SET reads the row as it was, so dispute_id is still the old one.
        " disputed_amount = CASE WHEN dispute_id IS NULL"
        "  THEN excluded.disputed_amount ELSE disputed_amount END,"
        " dispute_reason = CASE WHEN dispute_id IS NULL THEN excluded.dispute_reason ELSE dispute_reason END,"
        " dispute_event = coalesce(dispute_event, excluded.dispute_event),"
        " dispute_id = coalesce(dispute_id, excluded.dispute_id), received_at = excluded.received_at",
        (
            payment_intent,
            dispute.dispute_id,
            dispute.amount,
            None if dispute.reason is None else storable(dispute.reason),
            event_id,
            now.isoformat(),
        ),
    )


def take(db: sqlite3.Connection, payment_intent: str) -> EarlyMoney | None:
    """Remove and return what was kept for a payment intent, if anything."""
    row = db.execute(
        "SELECT refunded_total, refund_event, dispute_id, disputed_amount, dispute_reason, dispute_event"
        " FROM early_adjustments WHERE payment_intent = ?",
        (payment_intent,),
    ).fetchone()
    if row is None:
        return None
    db.execute("DELETE FROM early_adjustments WHERE payment_intent = ?", (payment_intent,))
    refunded, refund_event, dispute_id, disputed, reason, dispute_event = row
    dispute = None if dispute_id is None else Dispute(dispute_id, disputed, reason)
    return EarlyMoney(refunded, refund_event, dispute, dispute_event)


def storable(text: str) -> str:
    """Free text from an event as SQLite can store it (a lone surrogate, legal in JSON, becomes "?")."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _forget_old(db: sqlite3.Connection, now: datetime) -> None:
    db.execute("DELETE FROM early_adjustments WHERE received_at < ?", ((now - KEEP_FOR).isoformat(),))

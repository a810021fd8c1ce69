"""The payment ledger: one durable record per credited payment.

Plain Python (no Home Assistant import), standard library ``sqlite3``; PaymentLedger is the one
class callers use. Why SQLite and not Home Assistant's ``Store``: ``Store`` rewrites its whole
JSON file on every save, so the cost of recording a payment would grow with history. Here a
commit costs the same with 100 000 past payments as with none: the payment id is the primary
key, and per-cabinet totals are kept up to date in their own small table instead of being
summed from the history at start-up.

The ledger is built of parts, each a module of its own:

* ledger_records.py: what goes in and comes out (Payment, PaymentRecord, PaymentState, errors);
* ledger_schema.py: the tables and their migrations;
* ledger_store.py: the connection, group commit, durability;
* ledger_cabinets.py: what is remembered of each cabinet, reconciliation cursors;
* ledger_queries.py: reads, totals, the CSV export;
* ledger_money.py, early_money.py: refunds and disputes;
* ledger_refunds.py: automatic refunds under way (a crash mid-refund);
* ledger_checkout.py: the checkout sessions made for scans, scan tokens, the player's page;
* this module: recording payments and their way to the cabinet.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
import sqlite3
from typing import Any

from . import early_money, ledger_money
from .clock import Clock, moment, system_clock
from .early_money import Dispute, storable
from .ledger_cabinets import CabinetLedger
from .ledger_checkout import CheckoutLedger, offer_paid
from .ledger_queries import LedgerQueries
from .ledger_records import (
    SELECT_RECORD,
    Adjustment,
    CabinetMemory,
    CabinetTotals,
    LedgerError,
    LedgerFileReplaced,
    Payment,
    PaymentRecord,
    PaymentSource,
    PaymentState,
    Undelivered,
    iso,
    record_of_row,
)
from .ledger_refunds import RefundingLedger
from .ledger_schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "Adjustment",
    "CabinetMemory",
    "CabinetTotals",
    "LedgerError",
    "LedgerFileReplaced",
    "Payment",
    "PaymentLedger",
    "PaymentRecord",
    "PaymentSource",
    "PaymentState",
    "Undelivered",
]

# A payment's pulse may still be (re)published, and acknowledged, in these states.
_ON_ITS_WAY = (PaymentState.PENDING.value, PaymentState.PUBLISHED.value)


class PaymentLedger(CabinetLedger, LedgerQueries, RefundingLedger, CheckoutLedger):
    """A SQLite file of payments; safe to call from any one thread at a time."""

    def __init__(self, path: str | Path, clock: Clock = system_clock) -> None:
        """Remember where the ledger lives; ``open`` does the I/O; ``clock`` dates refunds and disputes."""
        super().__init__(path)
        self._clock = clock
        # Early refunds and disputes applied by ``record``, for its caller (take_applied_on_record).
        self._applied_on_record: dict[str, Adjustment] = {}

    def record(self, payment: Payment) -> bool:
        """Record a payment durably; return False if its payment id was already recorded.

        The event id is remembered either way, so that the audit trail shows retries.
        """
        if payment.credits < 1:  # Credits 0 is only for payments that credit nothing (uncreditable).
            raise LedgerError(f"payment {payment.payment_id} carries no credits")
        received = iso(payment.received_at)
        with self._transaction() as db:
            inserted = (
                db.execute(
                    "INSERT INTO payments (payment_id, machine_id, credits, amount, currency, payment_intent,"
                    " source, state, received_at, payment_link, unit_amount, offer, discount)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO NOTHING",
                    (
                        payment.payment_id,
                        payment.machine_id,
                        payment.credits,
                        payment.amount,
                        payment.currency,
                        payment.payment_intent,
                        payment.source.value,
                        PaymentState.PENDING.value,
                        received,
                        payment.payment_link,
                        payment.unit_amount,
                        None if payment.offer is None else storable(payment.offer),  # metadata: any text
                        payment.discount,
                    ),
                ).rowcount
                == 1
            )
            if payment.event_id is not None:
                _remember_event(db, payment.event_id, payment.payment_id, payment.event_type, received)
            if inserted and payment.source is PaymentSource.STRIPE:
                # Free credits are on the audit trail but are not takings.
                db.execute(
                    "INSERT INTO cabinet_totals VALUES (?, ?, ?, 1, ?, ?)"
                    " ON CONFLICT (machine_id, currency) DO UPDATE SET"
                    " revenue = revenue + excluded.revenue, payments = payments + 1,"
                    " credits = credits + excluded.credits,"
                    " last_payment_at = max(coalesce(last_payment_at, ''), excluded.last_payment_at)",
                    (payment.machine_id, payment.currency, payment.amount, payment.credits, received),
                )
            if inserted:
                offer_paid(db, payment.payment_id)
                self._apply_early(db, payment.payment_id, payment.payment_intent, received)
        return inserted

    def _apply_early(self, db: sqlite3.Connection, payment_id: str, intent: str | None, at: str) -> None:
        """Apply refunds and disputes that came before the payment (early_money.py)."""
        early = None if intent is None else early_money.take(db, intent)
        if early is None:
            return
        for event_id, event_type in (
            (early.refund_event, "charge.refunded"),
            (early.dispute_event, "charge.dispute.created"),
        ):
            if event_id is not None:
                _remember_event(db, event_id, payment_id, event_type, at)
        record = _read_record(db, payment_id)
        dispute = early.dispute
        disputed = 0 if dispute is None else dispute.amount
        delta, left = ledger_money.settle(db, record, early.refunded_total, disputed, dispute is not None)
        self._applied_on_record[payment_id] = Adjustment(record, delta, left, dispute)

    def record_uncreditable(self, payment: Payment, reason: str) -> PaymentRecord:
        """Record a paid session nobody can be credited for (another currency, an unknown cabinet).

        State ``uncreditable``, no credits, not in any cabinet's revenue: the owner refunds it or
        gives the credits by hand. Recorded once (the first reason stands); its payment id is
        never credited afterwards. Return the payment as recorded.
        """
        received = iso(payment.received_at)
        with self._transaction() as db:
            inserted = ledger_money.insert_uncreditable(db, payment, reason, received)
            if payment.event_id is not None:
                _remember_event(db, payment.event_id, payment.payment_id, payment.event_type, received)
            if inserted:
                offer_paid(db, payment.payment_id)
                self._apply_early(db, payment.payment_id, payment.payment_intent, received)
            return _read_record(db, payment.payment_id)

    def take_applied_on_record(self, payment_id: str) -> Adjustment | None:
        """Hand over (once) what ``record`` applied to a new payment from early refunds and disputes.

        In memory, no I/O: ``record`` returned True only after it was committed with the payment.
        """
        return self._applied_on_record.pop(payment_id, None)

    def mark_published(
        self,
        payment_id: str,
        at: datetime,
        awaiting_ack: bool = False,
        attempts: int | None = None,
        unconfirmed: bool = False,
    ) -> None:
        """Note that a coin pulse for a payment went out (again).

        ``awaiting_ack`` keeps it on the undelivered list until the cabinet acknowledges.
        ``attempts`` (publishes so far) makes the note idempotent, so that a write retried after
        a failure counts nothing twice; without it, one more publish is counted. ``unconfirmed``:
        the broker never confirmed it, so it stays on the undelivered list (sent again after a
        restart, delivery.py) until a note without it.
        """
        with self._transaction() as db:
            db.execute(
                "UPDATE payments SET state = ?, published_at = coalesce(published_at, ?),"
                " attempts = CASE WHEN ? IS NULL THEN attempts + 1 ELSE max(attempts, ?) END,"
                " awaiting_ack = ?, unconfirmed = ? WHERE payment_id = ? AND state IN (?, ?)",
                (
                    PaymentState.PUBLISHED.value,
                    iso(at),
                    attempts,
                    attempts,
                    int(awaiting_ack),
                    int(unconfirmed),
                    payment_id,
                    *_ON_ITS_WAY,
                ),
            )

    def mark_acknowledged(self, payment_id: str, machine_id: str, at: datetime) -> bool:
        """The cabinet confirmed it applied the credits.

        Return False for ids that are unknown, of another cabinet, or already final.
        """
        with self._transaction() as db:
            return (
                db.execute(
                    "UPDATE payments SET state = ?, awaiting_ack = 0, unconfirmed = 0, acknowledged_at = ?"
                    " WHERE payment_id = ? AND machine_id = ? AND state IN (?, ?)",
                    (PaymentState.ACKNOWLEDGED.value, iso(at), payment_id, machine_id, *_ON_ITS_WAY),
                ).rowcount
                == 1
            )

    def record_refund(
        self, payment_intent: str, refunded_total: int, event_id: str, ends_refund: bool = False
    ) -> Adjustment | None:
        """Stripe refunded (part of) a payment; ``refunded_total`` is the charge's cumulative refund.

        Revenue and undelivered credits follow money_rules.py. Return None for payments we do
        not know (yet: kept for when they arrive, early_money.py). ``ends_refund``: this is the
        automatic refund the payment is marked for (ledger_refunds.py); the mark goes with it.
        """
        with self._transaction() as db:
            row = _by_intent(db, payment_intent)
            if row is None:
                early_money.hold_refund(db, payment_intent, refunded_total, event_id, moment(self._clock))
                return None
            record = record_of_row(row)
            _remember_event(db, event_id, record.payment_id, "charge.refunded", iso(moment(self._clock)))
            settled = ledger_money.settle(db, record, refunded_total, record.disputed_amount, False)
            if ends_refund:
                db.execute(
                    "UPDATE payments SET refund_started_at = NULL WHERE payment_id = ?", (record.payment_id,)
                )
            return Adjustment(record, *settled)

    def record_dispute(
        self,
        payment_intent: str,
        amount: int,
        event_id: str,
        dispute_id: str | None = None,
        reason: str | None = None,
    ) -> Adjustment | None:
        """A player disputed a payment: record it once; revenue and credits follow money_rules.py.

        Return None for payments we do not know (yet: kept for when they arrive, early_money.py).
        """
        with self._transaction() as db:
            row = _by_intent(db, payment_intent)
            if row is None:
                dispute = Dispute(dispute_id or event_id, amount, reason)
                early_money.hold_dispute(db, payment_intent, dispute, event_id, moment(self._clock))
                return None
            record = record_of_row(row)
            _remember_event(
                db, event_id, record.payment_id, "charge.dispute.created", iso(moment(self._clock))
            )
            if record.state is PaymentState.DISPUTED:
                return Adjustment(record, 0)
            return Adjustment(record, *ledger_money.settle(db, record, record.refunded_amount, amount, True))


def _remember_event(
    db: sqlite3.Connection, event_id: str, payment_id: str, event_type: str | None, at: str
) -> None:
    db.execute(
        "INSERT INTO payment_events (event_id, payment_id, event_type, received_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
        (event_id, payment_id, event_type or "", at),
    )


def _read_record(db: sqlite3.Connection, payment_id: str) -> PaymentRecord:
    return record_of_row(db.execute(f"{SELECT_RECORD} WHERE payment_id = ?", (payment_id,)).fetchone())


def _by_intent(db: sqlite3.Connection, payment_intent: str) -> Any:
    return db.execute(f"{SELECT_RECORD} WHERE payment_intent = ?", (payment_intent,)).fetchone()

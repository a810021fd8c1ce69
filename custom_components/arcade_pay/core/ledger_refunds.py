"""The ledger's part for automatic refunds under way: what a crash mid-refund must not forget.

Standard library ``sqlite3``, on the ledger's connection (ledger_store.py). Before Arcade Pay asks
Stripe to refund a payment whose credits did not reach their cabinet (undelivered_refunds.py),
the payment is marked here (``refund_started_at``), durably. A marked payment keeps its state
(``pending``, or ``published`` awaiting the cabinet's ack: its credits are not known to be
delivered, its money not known to be back) but is never delivered: ``undelivered`` leaves it out,
so it is not loaded into delivery at start-up, and a webhook delivered again does not send it. The
mark goes when the refund is recorded (``record_refund(..., ends_refund=True)``), or when Stripe
refuses it for good (``end_refund``: the credits are owed again).

Schema 6 (ledger_schema.py) added the column and a partial index, so that the payments a crash
left marked are found at a cost that follows their number.
"""

from __future__ import annotations

from datetime import datetime

from .ledger_records import SELECT_RECORD, PaymentRecord, PaymentState, iso, record_of_row
from .ledger_store import LedgerStore


class RefundingLedger(LedgerStore):
    """Marks on payments whose automatic refund is under way."""

    def start_refund(self, payment_id: str, at: datetime) -> PaymentRecord | None:
        """Mark an undelivered payment as being refunded, durably; return it as marked.

        None when it is not (any more) undelivered, or unknown: an ack, a refund or a dispute
        settled it, and there is nothing to refund for credits that did not arrive. Marking a
        payment marked already keeps its first mark.
        """
        with self._transaction() as db:
            db.execute(
                "UPDATE payments SET refund_started_at = coalesce(refund_started_at, ?)"
                " WHERE payment_id = ? AND (state = ? OR awaiting_ack = 1)",
                (iso(at), payment_id, PaymentState.PENDING.value),
            )
            row = db.execute(
                f"{SELECT_RECORD} WHERE payment_id = ? AND refund_started_at IS NOT NULL", (payment_id,)
            ).fetchone()
        return None if row is None else record_of_row(row)

    def end_refund(self, payment_id: str) -> None:
        """Remove the mark of a refund Stripe refused: the payment is delivered again."""
        with self._transaction() as db:
            db.execute("UPDATE payments SET refund_started_at = NULL WHERE payment_id = ?", (payment_id,))

    def refunds_started(self) -> list[PaymentRecord]:
        """Payments marked as being refunded, oldest mark first (indexed)."""
        rows = self._query(
            f"{SELECT_RECORD} WHERE refund_started_at IS NOT NULL ORDER BY refund_started_at, payment_id"
        )
        return [record_of_row(row) for row in rows]

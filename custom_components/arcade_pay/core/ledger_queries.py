"""What the ledger answers without changing anything: payments, totals, the CSV export.

Standard library ``sqlite3``, on the ledger's connection (ledger_store.py). Each read costs what
its answer holds, not what the history holds: ``payments`` is keyed by payment id, undelivered
and uncreditable payments have partial indexes, per-cabinet totals are their own table.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from .currencies import format_amount
from .ledger_records import (
    RECORD_COLUMNS,
    SELECT_RECORD,
    CabinetTotals,
    PaymentRecord,
    PaymentSource,
    PaymentState,
    Undelivered,
    record_of_row,
)
from .ledger_store import LedgerStore

_COLUMN_NAMES: Final = RECORD_COLUMNS.split(", ")
_CURRENCY: Final = _COLUMN_NAMES.index("currency")
_AMOUNTS: Final = tuple(
    _COLUMN_NAMES.index(name)
    for name in ("amount", "refunded_amount", "disputed_amount", "unit_amount", "discount")
)


class LedgerQueries(LedgerStore):
    """Reads of the ``payments`` and ``cabinet_totals`` tables."""

    def payment(self, payment_id: str) -> PaymentRecord | None:
        """Return one payment as recorded, or None."""
        rows = self._query(f"{SELECT_RECORD} WHERE payment_id = ?", (payment_id,))
        return record_of_row(rows[0]) if rows else None

    def state_of(self, payment_id: str) -> PaymentState | None:
        """Return a payment's state, or None if it was never recorded."""
        record = self.payment(payment_id)
        return None if record is None else record.state

    def known_payments(self, payment_ids: list[str]) -> set[str]:
        """Return which of these payment ids are recorded (reconciliation skips them)."""
        known: set[str] = set()
        for start in range(0, len(payment_ids), 500):  # SQLite limits the number of parameters.
            chunk = payment_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT payment_id FROM payments WHERE payment_id IN ({marks})"  # noqa: S608 - only ?s
            known.update(pid for (pid,) in self._query(query, tuple(chunk)))
        return known

    def undelivered(self) -> list[Undelivered]:
        """Pulses not yet known to be delivered, oldest first (indexed: cost follows their number).

        An unconfirmed publish (delivery.py) counts while its payment is ``published``: refunded or
        disputed since, money rules count its credits delivered (money_rules.py); not sent again.
        Not those being refunded (ledger_refunds.py): they are finished, never delivered.
        """
        rows = self._query(
            "SELECT payment_id, machine_id, credits - withheld_credits, source, received_at, attempts,"
            " unconfirmed, state = ? OR awaiting_ack = 1 OR (unconfirmed = 1 AND state = ?)"
            " FROM payments WHERE (state = ? OR awaiting_ack = 1 OR unconfirmed = 1)"
            " AND refund_started_at IS NULL ORDER BY received_at",
            (PaymentState.PENDING.value, PaymentState.PUBLISHED.value, PaymentState.PENDING.value),
        )
        return [
            Undelivered(pid, machine, credits, PaymentSource(source), _moment(at), tries, bool(unconfirmed))
            for pid, machine, credits, source, at, tries, unconfirmed, owed in rows
            if owed
        ]

    def uncreditable(self) -> list[PaymentRecord]:
        """Payments still waiting for the owner to refund them or credit them by hand (indexed)."""
        rows = self._query(
            f"{SELECT_RECORD} WHERE state = ? ORDER BY received_at", (PaymentState.UNCREDITABLE.value,)
        )
        return [record_of_row(row) for row in rows]

    def totals(self) -> list[CabinetTotals]:
        """Return what every cabinet has taken, per currency (cost independent of history)."""
        rows = self._query(
            "SELECT machine_id, currency, revenue, payments, credits, last_payment_at"
            " FROM cabinet_totals ORDER BY machine_id, currency"
        )
        return [
            CabinetTotals(
                machine,
                currency,
                revenue,
                payments,
                credits,
                datetime.fromisoformat(last) if last else None,
            )
            for machine, currency, revenue, payments, credits, last in rows
        ]

    def count_by_state(self) -> dict[str, int]:
        """Return how many payments are in each state (for diagnostics)."""
        return dict(self._query("SELECT state, count(*) FROM payments GROUP BY state"))

    def export_csv(self, path: str | Path) -> int:
        """Write every payment to a CSV file (the operator's audit trail); return the row count."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            cursor = self._connection().execute(f"{SELECT_RECORD} ORDER BY received_at, payment_id")
            count = 0
            with target.open("w", newline="", encoding="utf-8") as file:
                writer = csv.writer(file)
                writer.writerow(_COLUMN_NAMES)
                while rows := cursor.fetchmany(1000):
                    writer.writerows(_in_currency_units(row) for row in rows)
                    count += len(rows)
        return count


def _moment(stored: str) -> datetime:
    return datetime.fromisoformat(stored)


def _in_currency_units(row: Any) -> list[Any]:
    """A payments row for people: amounts in the currency's units (4.00, not 400), as Stripe's dashboard.

    The offer stays as the checkout's metadata wrote it (credits x minor units); a unit price not
    recorded (payments from before it was) stays empty.
    """
    values = list(row)
    currency = values[_CURRENCY]
    for index in _AMOUNTS:
        if values[index] is not None:
            values[index] = format_amount(values[index], currency)
    return values

"""The payment ledger: one durable record per credited payment.

Plain Python (no Home Assistant import), standard library ``sqlite3``. Every method
blocks on disk I/O; callers in an event loop run them in an executor. One connection,
one writer, guarded by a lock: SQLite serialises writers anyway, and the lock keeps
``INSERT … ON CONFLICT`` plus the totals update one atomic step.

Why SQLite and not Home Assistant's ``Store``: ``Store`` rewrites its whole JSON file
on every save, so the cost of recording a payment would grow with history. Here a
commit costs the same with 100 000 past payments as with none: the payment id is the
primary key, and per-cabinet totals are kept up to date in their own small table
instead of being summed from the history at start-up.

``synchronous=FULL`` with the WAL journal: a payment committed before the webhook
answers 2xx survives a power cut, which is the promise made to Stripe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
import sqlite3
import threading
from typing import Final

SCHEMA_VERSION: Final = 1

_MIGRATIONS: Final[dict[int, str]] = {
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
}


class PaymentState(StrEnum):
    """Where a payment's credits are on their way to the cabinet."""

    PENDING = "pending"
    PUBLISHED = "published"


class PaymentSource(StrEnum):
    """Who paid for the credits."""

    STRIPE = "stripe"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Payment:
    """Credits owed to a cabinet, and what was paid for them."""

    payment_id: str
    machine_id: str
    credits: int
    amount: int
    currency: str
    source: PaymentSource
    received_at: datetime
    payment_intent: str | None = None
    event_id: str | None = None
    event_type: str | None = None


@dataclass(frozen=True, slots=True)
class CabinetTotals:
    """What a cabinet has taken in one currency."""

    machine_id: str
    currency: str
    revenue: int
    payments: int
    credits: int
    last_payment_at: datetime | None


class LedgerError(Exception):
    """The ledger could not be read or written."""


class PaymentLedger:
    """A SQLite file of payments; safe to call from any one thread at a time."""

    def __init__(self, path: str | Path) -> None:
        """Remember where the ledger lives; ``open`` does the I/O."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        """Open (creating or migrating) the database file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise LedgerError(f"cannot open ledger {self.path.name}: {err}") from err
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            self._migrate(db)
        except sqlite3.Error as err:
            db.close()
            raise LedgerError(f"cannot open ledger {self.path.name}: {err}") from err
        self._db = db

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"ledger schema {version} is newer than this version of Arcade Pay ({SCHEMA_VERSION})"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the database; later calls raise LedgerError."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise LedgerError("ledger is closed")
        return self._db

    def record(self, payment: Payment) -> bool:
        """Record a payment durably; return False if its payment id was already recorded.

        The event id is remembered either way, so that the audit trail shows retries.
        """
        received = payment.received_at.astimezone(UTC).isoformat()
        with self._lock:
            db = self._connection()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    inserted = (
                        db.execute(
                            "INSERT INTO payments (payment_id, machine_id, credits, amount, currency,"
                            " payment_intent, source, state, received_at)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO NOTHING",
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
                            ),
                        ).rowcount
                        == 1
                    )
                    if payment.event_id is not None:
                        db.execute(
                            "INSERT INTO payment_events (event_id, payment_id, event_type, received_at)"
                            " VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                            (payment.event_id, payment.payment_id, payment.event_type or "", received),
                        )
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
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise LedgerError(f"cannot record payment: {err}") from err
        return inserted

    def mark_published(self, payment_id: str, at: datetime) -> None:
        """Note that the coin pulse for a payment went out."""
        with self._lock:
            try:
                self._connection().execute(
                    "UPDATE payments SET state = ?, published_at = ? WHERE payment_id = ? AND state = ?",
                    (
                        PaymentState.PUBLISHED.value,
                        at.astimezone(UTC).isoformat(),
                        payment_id,
                        PaymentState.PENDING.value,
                    ),
                )
            except sqlite3.Error as err:
                raise LedgerError(f"cannot update payment: {err}") from err

    def state_of(self, payment_id: str) -> PaymentState | None:
        """Return a payment's state, or None if it was never recorded."""
        with self._lock:
            row = (
                self._connection()
                .execute("SELECT state FROM payments WHERE payment_id = ?", (payment_id,))
                .fetchone()
            )
        return None if row is None else PaymentState(row[0])

    def totals(self) -> list[CabinetTotals]:
        """Return what every cabinet has taken, per currency (cost independent of history)."""
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT machine_id, currency, revenue, payments, credits, last_payment_at"
                    " FROM cabinet_totals ORDER BY machine_id, currency"
                )
                .fetchall()
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
        with self._lock:
            rows = (
                self._connection().execute("SELECT state, count(*) FROM payments GROUP BY state").fetchall()
            )
        return dict(rows)

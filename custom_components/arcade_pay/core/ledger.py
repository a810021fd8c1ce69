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

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
import sqlite3
import threading
from typing import TYPE_CHECKING, Any, Final

from . import early_money, ledger_money, reconciliation
from .currencies import format_amount
from .early_money import Dispute
from .ledger_file import LedgerFile
from .reconciliation import LinkCursor

if TYPE_CHECKING:
    from .payments import PaidSession

SCHEMA_VERSION: Final = 5

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
    # A cabinet counted as acknowledging after claiming it in its state message (issue 8): only
    # an acknowledged payment proves it. Credits still awaiting its ack then count as delivered.
    5: """
    UPDATE cabinets SET acknowledges = 0 WHERE acknowledges = 1 AND machine_id NOT IN
        (SELECT DISTINCT machine_id FROM payments WHERE acknowledged_at IS NOT NULL);
    """,
}


class PaymentState(StrEnum):
    """Where a payment's credits are on their way to the cabinet."""

    PENDING = "pending"
    PUBLISHED = "published"
    ACKNOWLEDGED = "acknowledged"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    # Paid, but nobody can be credited (another currency, an unknown cabinet): the owner decides.
    UNCREDITABLE = "uncreditable"


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
    payment_link: str | None = None

    @classmethod
    def of_session(
        cls, session: PaidSession, machine_id: str, credits: int, received_at: datetime
    ) -> Payment:
        """The record of a paid checkout session (``credits`` 0: one that credits nobody)."""
        return cls(
            payment_id=session.session_id,
            machine_id=machine_id,
            credits=credits,
            amount=session.amount_total,
            currency=session.currency,
            source=PaymentSource.STRIPE,
            received_at=received_at,
            payment_intent=session.payment_intent,
            event_id=session.event_id,
            event_type=session.event_type,
            payment_link=session.payment_link_id,
        )


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


class LedgerFileReplaced(LedgerError):
    """The file at the ledger's path is not the one it opened (ledger_file.py)."""


class PaymentLedger:
    """A SQLite file of payments; safe to call from any one thread at a time."""

    def __init__(self, path: str | Path) -> None:
        """Remember where the ledger lives; ``open`` does the I/O."""
        self.path = Path(path)
        # Guards the connection: one thread at a time runs statements on it.
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.file = LedgerFile(self.path)
        # Group commit: writes share an open transaction until one of them commits it.
        self._in_transaction = False
        self._epoch = 0  # number of the open (or next) transaction
        self._failed: dict[int, str] = {}  # transactions whose COMMIT failed
        # Early refunds and disputes applied by ``record``, for its caller (take_applied_on_record).
        self._applied_on_record: dict[str, Adjustment] = {}

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
            # Off while migrating: migration 4 rebuilds the table payment_events refers to.
            self._migrate(db)
            db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as err:
            db.close()
            raise LedgerError(f"cannot open ledger {self.path.name}: {err}") from err
        self._db = db
        self.file.opened()

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"ledger schema {version} is newer than this version of Arcade Pay ({SCHEMA_VERSION})"
            )
        for target in sorted(v for v in _MIGRATIONS if version < v <= SCHEMA_VERSION):
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
        """Commit what is pending and close the database; later calls raise LedgerError."""
        with self._lock:
            if self._db is not None:
                if self._in_transaction:
                    self._commit(self._db)
                self._db.close()
                self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise LedgerError("ledger is closed")
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run one change durably, committed together with the changes of concurrent callers.

        Group commit: the change runs in a savepoint of the open transaction; then this thread
        commits, unless another thread's commit already covered it. Concurrent writers thus
        share one fsync instead of paying one each, and every caller still returns only once
        its change is on disk. A failing change rolls back to its savepoint, alone.
        """
        failure: BaseException | None = None
        with self._lock:
            db = self._connection()
            if (problem := self.file.problem()) is not None:
                raise LedgerFileReplaced(problem)
            try:
                if not self._in_transaction:
                    db.execute("BEGIN IMMEDIATE")
                    self._in_transaction = True
                db.execute("SAVEPOINT change")
                try:
                    yield db
                except BaseException as err:
                    db.execute("ROLLBACK TO change")
                    failure = err
                db.execute("RELEASE change")
            except sqlite3.Error as err:
                failure = LedgerError(f"ledger write failed: {err}")
            epoch = self._epoch
        # Commit even after a failed change: the transaction must not stay open (and locked).
        with self._lock:
            if self._epoch == epoch and self._db is not None and self._in_transaction:
                self._commit(self._db)
            commit_failure = self._failed.get(epoch)
        if failure is not None:
            if isinstance(failure, sqlite3.Error):
                raise LedgerError(f"ledger write failed: {failure}") from failure
            raise failure
        if commit_failure is not None:
            raise LedgerError(f"ledger commit failed: {commit_failure}")

    def _commit(self, db: sqlite3.Connection) -> None:
        """Commit the open transaction (the lock is held); remember a failure for its writers."""
        try:
            db.execute("COMMIT")
        except sqlite3.Error as err:
            self._failed[self._epoch] = str(err)
            self._failed.pop(self._epoch - 1000, None)  # Writers of old epochs have long returned.
            with suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        self._in_transaction = False
        self._epoch += 1

    def _query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._connection().execute(sql, parameters).fetchall()
            except sqlite3.Error as err:
                raise LedgerError(f"ledger read failed: {err}") from err

    def record(self, payment: Payment) -> bool:
        """Record a payment durably; return False if its payment id was already recorded.

        The event id is remembered either way, so that the audit trail shows retries.
        """
        if payment.credits < 1:  # Credits 0 is only for payments that credit nothing (uncreditable).
            raise LedgerError(f"payment {payment.payment_id} carries no credits")
        received = _iso(payment.received_at)
        with self._transaction() as db:
            inserted = (
                db.execute(
                    "INSERT INTO payments (payment_id, machine_id, credits, amount, currency,"
                    " payment_intent, source, state, received_at, payment_link)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO NOTHING",
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
                    ),
                ).rowcount
                == 1
            )
            if payment.event_id is not None:
                self._remember_event(db, payment.event_id, payment.payment_id, payment.event_type, received)
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
                self._remember_event(db, event_id, payment_id, event_type, at)
        query = f"SELECT {_RECORD_COLUMNS} FROM payments WHERE payment_id = ?"  # noqa: S608 - constant
        record = _record(db.execute(query, (payment_id,)).fetchone())
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
        received = _iso(payment.received_at)
        with self._transaction() as db:
            inserted = ledger_money.insert_uncreditable(db, payment, reason, received)
            if payment.event_id is not None:
                self._remember_event(db, payment.event_id, payment.payment_id, payment.event_type, received)
            if inserted:
                self._apply_early(db, payment.payment_id, payment.payment_intent, received)
            query = f"SELECT {_RECORD_COLUMNS} FROM payments WHERE payment_id = ?"  # noqa: S608 - constant
            return _record(db.execute(query, (payment.payment_id,)).fetchone())

    def uncreditable(self) -> list[PaymentRecord]:
        """Payments still waiting for the owner to refund them or credit them by hand (indexed)."""
        rows = self._query(
            f"SELECT {_RECORD_COLUMNS} FROM payments WHERE state = 'uncreditable' ORDER BY received_at"  # noqa: S608 - constant
        )
        return [_record(row) for row in rows]

    def take_applied_on_record(self, payment_id: str) -> Adjustment | None:
        """Hand over (once) what ``record`` applied to a new payment from early refunds and disputes.

        In memory, no I/O: ``record`` returned True only after it was committed with the payment.
        """
        return self._applied_on_record.pop(payment_id, None)

    @staticmethod
    def _remember_event(
        db: sqlite3.Connection, event_id: str, payment_id: str, event_type: str | None, at: str
    ) -> None:
        db.execute(
            "INSERT INTO payment_events (event_id, payment_id, event_type, received_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            (event_id, payment_id, event_type or "", at),
        )

    def mark_published(
        self, payment_id: str, at: datetime, awaiting_ack: bool = False, attempts: int | None = None
    ) -> None:
        """Note that a coin pulse for a payment went out (again).

        ``awaiting_ack`` keeps it on the undelivered list until the cabinet acknowledges.
        ``attempts`` (publishes so far) makes the note idempotent, so that a write retried after
        a failure counts nothing twice; without it, one more publish is counted.
        """
        with self._transaction() as db:
            db.execute(
                "UPDATE payments SET state = 'published', published_at = coalesce(published_at, ?),"
                " attempts = CASE WHEN ? IS NULL THEN attempts + 1 ELSE max(attempts, ?) END,"
                " awaiting_ack = ? WHERE payment_id = ? AND state IN ('pending', 'published')",
                (_iso(at), attempts, attempts, int(awaiting_ack), payment_id),
            )

    def mark_acknowledged(self, payment_id: str, machine_id: str, at: datetime) -> bool:
        """The cabinet confirmed it applied the credits.

        Return False for ids that are unknown, of another cabinet, or already final.
        """
        with self._transaction() as db:
            return (
                db.execute(
                    "UPDATE payments SET state = 'acknowledged', awaiting_ack = 0, acknowledged_at = ?"
                    " WHERE payment_id = ? AND machine_id = ? AND state IN ('pending', 'published')",
                    (_iso(at), payment_id, machine_id),
                ).rowcount
                == 1
            )

    def undelivered(self) -> list[Undelivered]:
        """Pulses not yet known to be delivered, oldest first (indexed: cost follows their number)."""
        rows = self._query(
            "SELECT payment_id, machine_id, credits - withheld_credits, source, received_at, attempts"
            " FROM payments WHERE state = 'pending' OR awaiting_ack = 1 ORDER BY received_at"
        )
        return [
            Undelivered(pid, machine, credits, PaymentSource(source), datetime.fromisoformat(at), attempts)
            for pid, machine, credits, source, at, attempts in rows
        ]

    def payment(self, payment_id: str) -> PaymentRecord | None:
        """Return one payment as recorded, or None."""
        rows = self._query(f"SELECT {_RECORD_COLUMNS} FROM payments WHERE payment_id = ?", (payment_id,))  # noqa: S608 - a constant column list
        return _record(rows[0]) if rows else None

    def known_payments(self, payment_ids: list[str]) -> set[str]:
        """Return which of these payment ids are recorded (reconciliation skips them)."""
        known: set[str] = set()
        for start in range(0, len(payment_ids), 500):  # SQLite limits the number of parameters.
            chunk = payment_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT payment_id FROM payments WHERE payment_id IN ({marks})"  # noqa: S608 - only ?s
            known.update(pid for (pid,) in self._query(query, tuple(chunk)))
        return known

    def state_of(self, payment_id: str) -> PaymentState | None:
        """Return a payment's state, or None if it was never recorded."""
        record = self.payment(payment_id)
        return None if record is None else record.state

    def record_refund(self, payment_intent: str, refunded_total: int, event_id: str) -> Adjustment | None:
        """Stripe refunded (part of) a payment; ``refunded_total`` is the charge's cumulative refund.

        Revenue and undelivered credits follow money_rules.py. Return None for payments we do
        not know (yet: kept for when they arrive, early_money.py).
        """
        with self._transaction() as db:
            row = self._by_intent(db, payment_intent)
            if row is None:
                early_money.hold_refund(db, payment_intent, refunded_total, event_id, _now())
                return None
            record = _record(row)
            self._remember_event(db, event_id, record.payment_id, "charge.refunded", _iso(_now()))
            return Adjustment(
                record, *ledger_money.settle(db, record, refunded_total, record.disputed_amount, False)
            )

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
            row = self._by_intent(db, payment_intent)
            if row is None:
                dispute = Dispute(dispute_id or event_id, amount, reason)
                early_money.hold_dispute(db, payment_intent, dispute, event_id, _now())
                return None
            record = _record(row)
            self._remember_event(db, event_id, record.payment_id, "charge.dispute.created", _iso(_now()))
            if record.state is PaymentState.DISPUTED:
                return Adjustment(record, 0)
            return Adjustment(record, *ledger_money.settle(db, record, record.refunded_amount, amount, True))

    @staticmethod
    def _by_intent(db: sqlite3.Connection, payment_intent: str) -> Any:
        query = f"SELECT {_RECORD_COLUMNS} FROM payments WHERE payment_intent = ?"  # noqa: S608 - constant
        return db.execute(query, (payment_intent,)).fetchone()

    def cabinet_memory(self, machine_ids: list[str], now: int) -> dict[str, CabinetMemory]:
        """Return what the ledger remembers of each cabinet, in one transaction.

        A cabinet seen for the first time starts reconciling from ``now``: sessions paid
        before Arcade Pay knew it are not ours to credit.
        """
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO cabinets (machine_id, reconciled_until) VALUES (?, ?)"
                " ON CONFLICT (machine_id) DO UPDATE SET"
                " reconciled_until = coalesce(reconciled_until, excluded.reconciled_until)",
                [(machine_id, now) for machine_id in machine_ids],
            )
            rows = db.execute(
                "SELECT machine_id, acknowledges, reconciled_until, paused, seen, offline_stopped,"
                " link_id, link_active FROM cabinets"
            ).fetchall()
        return {
            machine: CabinetMemory(
                bool(acks),
                until,
                bool(paused),
                bool(seen),
                bool(offline_stopped),
                link_id,
                None if link_active is None else bool(link_active),
            )
            for machine, acks, until, paused, seen, offline_stopped, link_id, link_active in rows
            if machine in set(machine_ids)
        }

    def _update_cabinet(self, machine_id: str, column: str, value: int | str | None) -> None:
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO cabinets (machine_id, {column}) VALUES (?, ?)"  # noqa: S608 - fixed columns
                f" ON CONFLICT (machine_id) DO UPDATE SET {column} = excluded.{column}",
                (machine_id, value),
            )

    def set_cabinet_acknowledges(self, machine_id: str) -> None:
        """Remember that the cabinet acknowledges pulses (it just did)."""
        self._update_cabinet(machine_id, "acknowledges", 1)

    def set_cabinet_paused(self, machine_id: str, paused: bool) -> None:
        """Remember that the operator switched the cabinet's payments off (or on again)."""
        self._update_cabinet(machine_id, "paused", int(paused))

    def set_cabinet_seen(self, machine_id: str) -> None:
        """Remember that the cabinet showed a sign of life (it is there, whatever happens next)."""
        self._update_cabinet(machine_id, "seen", 1)

    def set_cabinet_link(self, machine_id: str, link_id: str, active: bool, offline_stopped: bool) -> None:
        """Remember what Stripe was told about the cabinet's link, and whether the offline rule did it."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO cabinets (machine_id, link_id, link_active, offline_stopped) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (machine_id) DO UPDATE SET link_id = excluded.link_id,"
                " link_active = excluded.link_active, offline_stopped = excluded.offline_stopped",
                (machine_id, link_id, int(active), int(offline_stopped)),
            )

    def links_to_reconcile(self, current: Mapping[str, str], now: int) -> list[LinkCursor]:
        """The payment links to reconcile and their cursors; ``current``: each cabinet's link.

        A link new to reconciliation starts at the cabinet's ``reconciled_until`` (when Arcade Pay
        first knew it, cabinet_memory); links no cabinet uses any more are retired (reconciliation.py).
        """
        with self._transaction() as db:
            return reconciliation.links_to_reconcile(db, current, now)

    def move_reconcile_cursor(self, link_id: str, since: int, done: bool) -> None:
        """Move a link's reconciliation cursor forward (never back), or forget a retired link that is done."""
        with self._transaction() as db:
            reconciliation.move_cursor(db, link_id, since, done)

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
            cursor = self._connection().execute(
                f"SELECT {_RECORD_COLUMNS} FROM payments ORDER BY received_at, payment_id"  # noqa: S608 - a constant column list
            )
            count = 0
            with target.open("w", newline="", encoding="utf-8") as file:
                writer = csv.writer(file)
                writer.writerow(_RECORD_COLUMNS.split(", "))
                while rows := cursor.fetchmany(1000):
                    writer.writerows(_in_currency_units(row) for row in rows)
                    count += len(rows)
        return count


def _in_currency_units(row: Any) -> list[Any]:
    """A payments row for people: amounts in the currency's units (4.00, not 400), as Stripe's dashboard."""
    values = list(row)
    currency = values[_CURRENCY]
    for index in _AMOUNTS:
        values[index] = format_amount(values[index], currency)
    return values


_RECORD_COLUMNS: Final = (
    "payment_id, machine_id, credits, amount, currency, payment_intent, source, state, received_at,"
    " published_at, acknowledged_at, attempts, awaiting_ack, refunded_amount, disputed_amount,"
    " withheld_credits, payment_link, note"
)
_COLUMN_NAMES: Final = _RECORD_COLUMNS.split(", ")
_CURRENCY: Final = _COLUMN_NAMES.index("currency")
_AMOUNTS: Final = tuple(
    _COLUMN_NAMES.index(name) for name in ("amount", "refunded_amount", "disputed_amount")
)


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """A payment as the ledger holds it."""

    payment_id: str
    machine_id: str
    credits: int
    amount: int
    currency: str
    payment_intent: str | None
    source: PaymentSource
    state: PaymentState
    received_at: datetime
    published_at: datetime | None
    acknowledged_at: datetime | None
    attempts: int
    awaiting_ack: bool
    refunded_amount: int
    disputed_amount: int
    withheld_credits: int = 0  # not sent because of a refund or dispute (money_rules.py)
    payment_link: str | None = None
    note: str | None = None  # why an uncreditable payment credits nothing

    @property
    def undelivered(self) -> bool:
        """Whether its credits are not known to have reached the cabinet."""
        return self.state is PaymentState.PENDING or self.awaiting_ack


@dataclass(frozen=True, slots=True)
class CabinetMemory:
    """What the ledger remembers of a cabinet between restarts."""

    acknowledges: bool
    reconciled_until: int | None
    paused: bool
    seen: bool = False
    offline_stopped: bool = False
    link_id: str | None = None  # the link ``link_active`` is about
    link_active: bool | None = None  # what Stripe was last told; None: never told


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A pulse still on its way."""

    payment_id: str
    machine_id: str
    credits: int
    source: PaymentSource
    received_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A refund or dispute applied to a payment.

    The payment before it, the revenue taken off, and the credits still to deliver (0: nothing
    more to send, or it was delivered already).
    """

    payment: PaymentRecord
    revenue_delta: int
    credits_left: int = 0
    dispute: Dispute | None = None  # a dispute that came before the payment (its repair is due now)


def _record(row: Any) -> PaymentRecord:
    (
        pid,
        machine,
        credits,
        amount,
        currency,
        intent,
        source,
        state,
        received,
        published,
        acked,
        attempts,
        awaiting,
        refunded,
        disputed,
        withheld,
        link,
        note,
    ) = row
    return PaymentRecord(
        pid,
        machine,
        credits,
        amount,
        currency,
        intent,
        PaymentSource(source),
        PaymentState(state),
        datetime.fromisoformat(received),
        datetime.fromisoformat(published) if published else None,
        datetime.fromisoformat(acked) if acked else None,
        attempts,
        bool(awaiting),
        refunded,
        disputed,
        withheld,
        link,
        note,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _now() -> datetime:
    return datetime.now(UTC)

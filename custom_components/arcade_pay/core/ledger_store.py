"""The ledger's SQLite connection: opening, migrating, group commit, reads.

Standard library ``sqlite3``. Every method blocks on disk I/O; callers in an event loop run
them in an executor. One connection, one writer, guarded by a lock: SQLite serialises writers
anyway, and the lock keeps ``INSERT … ON CONFLICT`` plus the totals update one atomic step.
``synchronous=FULL`` with the WAL journal: a payment committed before the webhook answers 2xx
survives a power cut, which is the promise made to Stripe. The tables' statements live in the
parts built on this class (ledger.py, ledger_cabinets.py, ledger_queries.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
import sqlite3
import threading
from typing import Any

from .ledger_file import LedgerFile
from .ledger_records import LedgerError, LedgerFileReplaced
from .ledger_schema import migrate


class LedgerStore:
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
            migrate(db)
            db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as err:
            db.close()
            raise LedgerError(f"cannot open ledger {self.path.name}: {err}") from err
        self._db = db
        self.file.opened()

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

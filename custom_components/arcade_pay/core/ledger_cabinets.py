"""What the ledger remembers of each cabinet, and the reconciliation cursors of its links.

Standard library ``sqlite3``, on the ledger's connection (ledger_store.py): a restart must not
forget that a cabinet acknowledges, that its owner paused it, that it was ever seen, what
Stripe was last told about its link (the offline rule, payment_links.py), or the price a scan
sells at now.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import reconciliation
from .ledger_records import CabinetMemory
from .ledger_store import LedgerStore
from .reconciliation import LinkCursor


class CabinetLedger(LedgerStore):
    """The ``cabinets`` and ``reconcile_links`` tables."""

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
                " link_id, link_active, unit_amount_now, pack_set, price_basis FROM cabinets"
            ).fetchall()
        wanted = set(machine_ids)
        return {
            row[0]: CabinetMemory(
                bool(row[1]),
                row[2],
                bool(row[3]),
                bool(row[4]),
                bool(row[5]),
                row[6],
                None if row[7] is None else bool(row[7]),
                *row[8:],
            )
            for row in rows
            if row[0] in wanted
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

    def set_cabinet_price(
        self, machine_id: str, unit_amount_now: int, pack_set: str, price_basis: str
    ) -> None:
        """Remember the price a scan sells at now and the packs on sale, and what they were set under."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO cabinets (machine_id, unit_amount_now, pack_set, price_basis)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (machine_id) DO UPDATE SET"
                " unit_amount_now = excluded.unit_amount_now, pack_set = excluded.pack_set,"
                " price_basis = excluded.price_basis",
                (machine_id, unit_amount_now, pack_set, price_basis),
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

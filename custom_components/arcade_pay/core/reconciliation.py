"""Which checkout sessions reconciliation lists, and how far its cursor may move.

Plain Python, standard library ``sqlite3`` (the ledger runs the cursor statements inside its
transactions); the integration, outside core, does the listing and crediting.

Every hour and at start-up, reconciliation lists each payment link's checkout sessions created
at or after the link's cursor, credits the paid ones the ledger does not have (after asking
Stripe for their refunds) and moves the cursor. A session can be paid long after it was created:

* a checkout page stays open up to 24 hours (``OPEN_WINDOW``): the player pays whenever they
  finish, after newer sessions were paid;
* a delayed payment method (bank debits such as SEPA or ACH) completes the session ``unpaid``
  and pays it days later: up to 14 business days (``DELAYED_PAYMENT_WINDOW``: 21 days).

So the cursor never moves past a listed session that may still be paid: it stops at the oldest
session that is open, or complete, unpaid and younger than ``DELAYED_PAYMENT_WINDOW``. From
there everything is listed again next time, and sessions the ledger has are skipped (one
record per session id: never credited twice). Expired sessions, and delayed payments older than
the window, hold it no longer (the webhook's ``async_payment_succeeded`` still credits those).

Each payment link has its own cursor (table ``reconcile_links``): every cabinet's current link,
and links no cabinet uses any more (retired by a price change, or of a deleted cabinet), on which
a player who opened the checkout before can still pay. A retired link is reconciled until
``OPEN_WINDOW`` after it was retired and none of its sessions may still be paid, then forgotten.
A link new to reconciliation starts when Arcade Pay first knew its cabinet: sessions paid before
are not ours to credit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
import sqlite3
from typing import Any, Final

OPEN_WINDOW: Final = 24 * 3600
DELAYED_PAYMENT_WINDOW: Final = 21 * 24 * 3600


@dataclass(frozen=True, slots=True)
class LinkCursor:
    """A payment link to reconcile: sessions created before ``since`` are settled."""

    link_id: str
    machine_id: str
    since: int
    retired_at: int | None = None  # when no cabinet used it any more; None while one does


@dataclass(frozen=True, slots=True)
class CursorMove:
    """Where a link's cursor goes after a listing; ``done``: a retired link to forget."""

    since: int
    done: bool


def _created(session: Mapping[str, Any]) -> int | None:
    created = session.get("created")
    return created if isinstance(created, int) and not isinstance(created, bool) else None


def may_still_be_paid(session: Mapping[str, Any], now: int) -> bool:
    """Whether a listed session that is not paid (yet) may be paid later."""
    created = _created(session)
    if created is None:
        return False
    if session.get("status") == "open":
        return True  # until Stripe expires it (24 hours at most)
    return (
        session.get("status") == "complete"
        and session.get("payment_status") == "unpaid"
        and now - created < DELAYED_PAYMENT_WINDOW
    )


def move(cursor: LinkCursor, sessions: Iterable[Mapping[str, Any]], now: int) -> CursorMove:
    """Move a link's cursor after all of ``sessions`` (its listing) were handled; never back."""
    listed = list(sessions)
    waiting = [c for s in listed if (c := _created(s)) is not None and may_still_be_paid(s, now)]
    if waiting:
        since = min(waiting)
    else:
        since = max((c for s in listed if (c := _created(s)) is not None), default=cursor.since)
    done = cursor.retired_at is not None and not waiting and now >= cursor.retired_at + OPEN_WINDOW
    return CursorMove(max(cursor.since, since), done)


def links_to_reconcile(db: sqlite3.Connection, current: Mapping[str, str], now: int) -> list[LinkCursor]:
    """Note each cabinet's current link (by machine id) and retire the others; return them all."""
    for machine_id, link_id in current.items():
        db.execute(
            "INSERT INTO reconcile_links (link_id, machine_id, since) VALUES (?, ?,"
            " coalesce((SELECT reconciled_until FROM cabinets WHERE machine_id = ?), ?))"
            " ON CONFLICT (link_id) DO UPDATE SET machine_id = excluded.machine_id, retired_at = NULL",
            (link_id, machine_id, machine_id, now),
        )
    links = sorted(set(current.values()))
    db.execute(
        f"UPDATE reconcile_links SET retired_at = ? WHERE retired_at IS NULL"  # noqa: S608 - only ?s
        f" AND link_id NOT IN ({', '.join('?' * len(links))})",
        (now, *links),
    )
    rows = db.execute(
        "SELECT link_id, machine_id, since, retired_at FROM reconcile_links ORDER BY link_id"
    ).fetchall()
    return [LinkCursor(*row) for row in rows]


def move_cursor(db: sqlite3.Connection, link_id: str, since: int, done: bool) -> None:
    """Store a link's new cursor (never back), or forget a retired link that is done."""
    if done:
        db.execute("DELETE FROM reconcile_links WHERE link_id = ?", (link_id,))
    else:
        db.execute(
            "UPDATE reconcile_links SET since = max(since, ?) WHERE link_id = ?",
            (since, link_id),
        )

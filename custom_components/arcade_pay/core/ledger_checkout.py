"""The ledger's part for the stable QR code: checkout sessions, scan tokens, the player's page.

Standard library ``sqlite3``, on the ledger's connection (ledger_store.py); schema 9 (ledger_schema.py).

* ``checkout_offers``: one row per Checkout Session made for a scan, with the offer it sold
  (fixed when it was made: a later price change does not touch it) and its status. ``open``
  sessions of a cabinet that stops taking money are expired through Stripe; one becomes
  ``complete`` when its payment is recorded (ledger.py), and ``expired`` only while still open.
* ``scan_tokens``: every token a cabinet's QR code carried, so that a deleted cabinet's code
  answers "gone" (with the name it had) rather than "unknown".
* ``player_view``: the one session's cabinet, credits and state, derived from its payment as the
  delivery and refund rules see it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
import sqlite3
from typing import Any, Final, Literal

from .ledger_records import SELECT_RECORD, LedgerError, PaymentRecord, PaymentState, record_of_row
from .ledger_store import LedgerStore
from .money_rules import refund_due


class CheckoutStatus(StrEnum):
    """Where a Checkout Session made for a scan is (Stripe's ``status`` of a session)."""

    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"


class PlayerState(StrEnum):
    """What the player's page says about their session."""

    UNPAID = "unpaid"  # the checkout is open, nothing paid (yet)
    WAITING = "waiting"  # paid, the credits are on their way to the cabinet
    DELIVERED = "delivered"
    REFUNDING = "refunding"  # not delivered in time: the automatic refund is (or is about to be) made
    REFUNDED = "refunded"
    EXPIRED = "expired"  # the checkout expired unpaid
    NOT_CREDITED = "not_credited"  # paid, credits nobody (ledger_money.py): the owner refunds or credits


@dataclass(frozen=True, slots=True)
class CheckoutOffer:
    """A Checkout Session made for a scan, and what it sold; times in Unix seconds."""

    session_id: str
    machine_id: str
    created: int
    expires_at: int
    offer: str  # the session's metadata ``arcade_pay_offer`` (pricing.py), e.g. "1x200,3x500"
    unit_amount: int  # the price of one credit, in minor units
    currency: str
    promotion_codes: bool
    status: CheckoutStatus = CheckoutStatus.OPEN


@dataclass(frozen=True, slots=True)
class PlayerView:
    """All the player's page may reveal of a session: its cabinet, credits and state."""

    machine_id: str
    credits: int  # those on their way or delivered; those paid for when refunded; 0 unpaid
    state: PlayerState


# ("active", machine id) or ("retired", the name the cabinet had).
type ScanTokenState = tuple[Literal["active"], str] | tuple[Literal["retired"], str]

_OPEN: Final = CheckoutStatus.OPEN.value
_COMPLETE: Final = CheckoutStatus.COMPLETE.value
_OFFER_COLUMNS: Final = (
    "session_id, machine_id, created, expires_at, offer, unit_amount, currency, promotion_codes, status"
)


class CheckoutLedger(LedgerStore):
    """The ``checkout_offers`` and ``scan_tokens`` tables, and the player's view of a payment."""

    def record_checkout_offer(self, offer: CheckoutOffer) -> bool:
        """Remember a session made for a scan; return False if it was known (the first stands).

        A session whose payment is recorded already is remembered as complete.
        """
        with self._transaction() as db:
            return (
                db.execute(
                    f"INSERT INTO checkout_offers ({_OFFER_COLUMNS})"  # noqa: S608 - a constant column list
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN EXISTS"
                    " (SELECT 1 FROM payments WHERE payment_id = ?) THEN ? ELSE ? END)"
                    " ON CONFLICT (session_id) DO NOTHING",
                    (
                        offer.session_id,
                        offer.machine_id,
                        offer.created,
                        offer.expires_at,
                        offer.offer,
                        offer.unit_amount,
                        offer.currency,
                        int(offer.promotion_codes),
                        offer.session_id,
                        _COMPLETE,
                        offer.status.value,
                    ),
                ).rowcount
                == 1
            )

    def checkout_offer(self, session_id: str) -> CheckoutOffer | None:
        """Return a session made for a scan, or None."""
        if not _storable(session_id):
            return None
        rows = self._query(
            f"SELECT {_OFFER_COLUMNS} FROM checkout_offers WHERE session_id = ?",  # noqa: S608
            (session_id,),
        )
        return _offer_of_row(rows[0]) if rows else None

    def open_checkout_offers(self, machine_id: str, now: float) -> list[CheckoutOffer]:
        """A cabinet's sessions still open and not expired at ``now`` (Unix seconds), oldest first."""
        rows = self._query(
            f"SELECT {_OFFER_COLUMNS} FROM checkout_offers"  # noqa: S608 - a constant column list
            " WHERE machine_id = ? AND status = ? AND expires_at > ? ORDER BY created, session_id",
            (machine_id, _OPEN, now),
        )
        return [_offer_of_row(row) for row in rows]

    def unsettled_checkout_offers(self) -> list[CheckoutOffer]:
        """Every session still open as far as the ledger knows (reconciliation asks Stripe), oldest first."""
        rows = self._query(
            f"SELECT {_OFFER_COLUMNS} FROM checkout_offers"  # noqa: S608 - a constant column list
            " WHERE status = ? ORDER BY created, session_id",
            (_OPEN,),
        )
        return [_offer_of_row(row) for row in rows]

    def set_checkout_status(self, session_id: str, status: CheckoutStatus) -> bool:
        """Note a session's new status; return whether it changed.

        Complete wins over anything (a payment is what it is); expired applies only to an open
        session; nothing opens again.
        """
        with self._transaction() as db:
            return (
                db.execute(
                    "UPDATE checkout_offers SET status = ?"
                    " WHERE session_id = ? AND status != ? AND (status = ? OR ? = ?)",
                    (status.value, session_id, status.value, _OPEN, status.value, _COMPLETE),
                ).rowcount
                == 1
            )

    def player_view(
        self, session_id: str, now: float, refund_after: float | None = None
    ) -> PlayerView | None:
        """What the player's page shows of a session at ``now`` (Unix seconds); None if unknown.

        ``refund_after``: seconds after which undelivered credits are refunded (catch_up.py),
        None when the owner did not turn automatic refunds on.
        """
        if not _storable(session_id):
            return None
        with self._lock:
            try:
                db = self._connection()
                payment = db.execute(f"{SELECT_RECORD} WHERE payment_id = ?", (session_id,)).fetchone()
                offer = db.execute(
                    f"SELECT {_OFFER_COLUMNS} FROM checkout_offers WHERE session_id = ?",  # noqa: S608
                    (session_id,),
                ).fetchone()
            except sqlite3.Error as err:
                raise LedgerError(f"ledger read failed: {err}") from err
        checkout = None if offer is None else _offer_of_row(offer)
        if payment is not None:
            record = record_of_row(payment)
            state, credits = _paid_state(record, now, refund_after)
            return PlayerView(checkout.machine_id if checkout else record.machine_id, credits, state)
        if checkout is None:
            return None
        expired = checkout.status is CheckoutStatus.EXPIRED or (
            checkout.status is CheckoutStatus.OPEN and now >= checkout.expires_at
        )
        return PlayerView(checkout.machine_id, 0, PlayerState.EXPIRED if expired else PlayerState.UNPAID)

    # --- scan tokens ----------------------------------------------------------------------------

    def remember_scan_tokens(self, tokens: Iterable[tuple[str, str, str]]) -> None:
        """Remember (token, machine id, cabinet name) of cabinets that exist: a retired token lives again."""
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO scan_tokens (token, machine_id, name) VALUES (?, ?, ?)"
                " ON CONFLICT (token) DO UPDATE SET machine_id = excluded.machine_id,"
                " name = excluded.name, retired_at = NULL",
                list(tokens),
            )

    def retire_scan_token(self, token: str, at: int) -> bool:
        """Its cabinet was deleted at ``at`` (Unix seconds; the first retirement stands); False if unknown."""
        with self._transaction() as db:
            return (
                db.execute(
                    "UPDATE scan_tokens SET retired_at = coalesce(retired_at, ?) WHERE token = ?", (at, token)
                ).rowcount
                == 1
            )

    def scan_token_state(self, token: str) -> ScanTokenState | None:
        """("active", machine id), ("retired", name the cabinet had), or None for a token never served."""
        if not _storable(token):
            return None
        rows = self._query("SELECT machine_id, name, retired_at FROM scan_tokens WHERE token = ?", (token,))
        if not rows:
            return None
        machine_id, name, retired_at = rows[0]
        return ("active", machine_id) if retired_at is None else ("retired", name)


def _paid_state(record: PaymentRecord, now: float, refund_after: float | None) -> tuple[PlayerState, int]:
    """A recorded payment as the player sees it, and the credits to name."""
    if record.state is PaymentState.UNCREDITABLE:
        return PlayerState.NOT_CREDITED, 0
    if record.state is PaymentState.REFUNDED or (
        record.state is PaymentState.DISPUTED and record.published_at is None
    ):
        return PlayerState.REFUNDED, record.credits
    credits = record.credits_still_paid
    if record.being_refunded:
        return PlayerState.REFUNDING, credits
    if not record.owed:
        return PlayerState.DELIVERED, credits
    # What the refund of undelivered payments marks (undelivered_refunds.py, ledger_refunds.py):
    # refunded at the next housekeeping run.
    if (
        refund_after is not None
        and record.undelivered
        and record.payment_intent is not None
        and refund_due(record.source, record.received_at, now, refund_after)
    ):
        return PlayerState.REFUNDING, credits
    return PlayerState.WAITING, credits


def _offer_of_row(row: Any) -> CheckoutOffer:
    (session_id, machine_id, created, expires_at, offer, unit_amount, currency, promotion_codes, status) = row
    return CheckoutOffer(
        session_id,
        machine_id,
        created,
        expires_at,
        offer,
        unit_amount,
        currency,
        bool(promotion_codes),
        CheckoutStatus(status),
    )


def _storable(text: str) -> bool:
    """Whether text (from a URL) can be looked up: SQLite takes no lone surrogate."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def offer_paid(db: sqlite3.Connection, session_id: str) -> None:
    """A session's payment was recorded (in ``db``'s transaction): its checkout is complete."""
    db.execute("UPDATE checkout_offers SET status = ? WHERE session_id = ?", (_COMPLETE, session_id))

"""What the payment ledger (ledger.py) takes and gives back: payments, records, totals, errors.

Standard library only. A payment's ``state`` and ``source`` are the enums below wherever they
meet SQL: statements bind their values as parameters, never as literals (the migrations in
ledger_schema.py excepted: they are history, and DDL takes no parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from .early_money import Dispute

if TYPE_CHECKING:
    from .payments import PaidSession


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


class LedgerError(Exception):
    """The ledger could not be read or written."""


class LedgerFileReplaced(LedgerError):
    """The file at the ledger's path is not the one it opened (ledger_file.py)."""


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
    # What the player was charged: the price of one credit, the packs on sale (the session's
    # ``arcade_pay_offer``, pricing.py) and a promotion code's discount; ``amount`` is what was paid.
    unit_amount: int | None = None
    offer: str | None = None
    discount: int = 0

    @classmethod
    def of_session(
        cls,
        session: PaidSession,
        machine_id: str,
        credits: int,
        received_at: datetime,
        unit_amount: int | None = None,
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
            unit_amount=unit_amount,
            offer=session.offer,
            discount=session.amount_discount,
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
    refund_started_at: datetime | None = None  # an automatic refund is under way (ledger_refunds.py)
    unconfirmed: bool = False  # published, the broker never confirmed it (delivery.py)
    unit_amount: int | None = None  # what Payment says of these three
    offer: str | None = None
    discount: int = 0

    @property
    def undelivered(self) -> bool:
        """Whether its credits are not known to have reached the cabinet (for the money rules)."""
        return self.state is PaymentState.PENDING or self.awaiting_ack

    @property
    def owed(self) -> bool:
        """Whether its pulse is still to be delivered: undelivered, or published unconfirmed."""
        return self.undelivered or (self.unconfirmed and self.state is PaymentState.PUBLISHED)

    @property
    def being_refunded(self) -> bool:
        """Whether an automatic refund is under way: its credits must not be sent meanwhile."""
        return self.refund_started_at is not None

    @property
    def credits_still_paid(self) -> int:
        """Its credits less those a refund or dispute withheld (money_rules.py)."""
        return self.credits - self.withheld_credits


@dataclass(frozen=True, slots=True)
class CabinetTotals:
    """What a cabinet has taken in one currency."""

    machine_id: str
    currency: str
    revenue: int
    payments: int
    credits: int
    last_payment_at: datetime | None


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
    unit_amount_now: int | None = None  # the live price per credit; None: never set
    pack_set: str | None = None  # the packs on sale (pricing.PackSet)
    price_basis: str | None = None  # what both were set under (Cabinet.price_basis)


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A pulse still on its way."""

    payment_id: str
    machine_id: str
    credits: int
    source: PaymentSource
    received_at: datetime
    attempts: int
    unconfirmed: bool = False  # its last publish was not confirmed by the broker: sent again


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


# The columns of ``payments`` in PaymentRecord's order (and the CSV export's).
RECORD_COLUMNS: Final = (
    "payment_id, machine_id, credits, amount, currency, payment_intent, source, state, received_at,"
    " published_at, acknowledged_at, attempts, awaiting_ack, refunded_amount, disputed_amount,"
    " withheld_credits, payment_link, note, refund_started_at, unconfirmed, unit_amount, offer, discount"
)
SELECT_RECORD: Final = f"SELECT {RECORD_COLUMNS} FROM payments"  # noqa: S608 - a constant column list


def record_of_row(row: Any) -> PaymentRecord:
    """A ``SELECT {RECORD_COLUMNS}`` row as a PaymentRecord."""
    (pid, machine, credits, amount, currency, intent, source, state, received, published, acked) = row[:11]
    (attempts, awaiting, refunded, disputed, withheld, link, note, refund_started, unconfirmed) = row[11:20]
    (unit_amount, offer, discount) = row[20:]
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
        datetime.fromisoformat(refund_started) if refund_started else None,
        bool(unconfirmed),
        unit_amount,
        offer,
        discount,
    )


def iso(moment: datetime) -> str:
    """A moment as the ledger stores it: ISO 8601 in UTC."""
    return moment.astimezone(UTC).isoformat()

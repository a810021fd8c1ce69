"""What a refund or a dispute does to a payment: its revenue, and its credits not delivered yet.

Plain Python without I/O; the ledger applies these rules inside its transactions. docs/payments.md
("Refunds and disputes") says the same for owners.

* Revenue: the money out of a payment is ``min(amount, refunded + disputed)``. Stripe's refund
  total is cumulative and a dispute is recorded once, so whatever order the events come in
  (a dispute followed by a refund of the same money, a retried event, an older event late),
  each amount comes off revenue once and never more than was paid.
* Credits already delivered are never taken back: the player has them.
* Credits not delivered yet (waiting for MQTT or the cabinet, or sent to a cabinet that
  acknowledges and has not yet): a refund reduces them to what is still paid for, rounded down:
  ``credits × (amount − money out) ÷ amount``; the rest are withheld. A cabinet that got the
  first pulse keeps what it got: repeats carry the same payment id and it drops them. A refund
  of everything withholds them all (the payment is ``refunded``).
* A dispute withholds every credit not delivered yet: contested money buys nothing until the
  owner settles it in Stripe's dashboard.
* Credits a player paid for through Stripe that have not reached their cabinet ``refund_after``
  seconds after the payment are refunded, when the owner turned that on (undelivered_refunds.py).
  Free credits are never "refunded": nobody paid for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ledger_records import PaymentSource

if TYPE_CHECKING:
    from datetime import datetime


def money_out(amount: int, refunded: int, disputed: int) -> int:
    """The part of a payment that went back to the player, counted once."""
    return min(amount, refunded + disputed)


def credits_to_withhold(credits: int, amount: int, out: int, disputed: bool) -> int:
    """How many of a payment's undelivered credits must not be sent (see the module docstring)."""
    if disputed:
        return credits
    if amount <= 0:  # Nothing was paid (a 100 % coupon), so nothing was refunded either.
        return 0
    still_paid = credits * (amount - out) // amount
    return credits - still_paid


def refund_due(source: PaymentSource, paid_at: datetime, now: float, refund_after: float) -> bool:
    """Whether a payment's credits, still undelivered at ``now`` (Unix seconds), are refunded now."""
    return source is PaymentSource.STRIPE and now - paid_at.timestamp() >= refund_after

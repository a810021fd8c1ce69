"""What the player's page is told of a session: its cabinet, credits and state, from the ledger."""

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custom_components.arcade_pay.core.ledger import Payment, PaymentLedger, PaymentSource
from custom_components.arcade_pay.core.ledger_checkout import (
    CheckoutOffer,
    CheckoutStatus,
    PlayerState,
    PlayerView,
)
from custom_components.arcade_pay.core.payments import PaidSession, paid_session

MACHINE_ID = "arcadeCabinet-123"
SESSION = "cs_scan_1"
PAID_AT = datetime(2024, 7, 1, 12, 0, 0, tzinfo=UTC)
T0 = PAID_AT.timestamp()
REFUND_AFTER = 600.0  # seconds


def offer(**overrides: object) -> CheckoutOffer:
    values: dict[str, object] = {
        "session_id": SESSION,
        "machine_id": MACHINE_ID,
        "created": int(T0) - 60,
        "expires_at": int(T0) + 1740,
        "offer": "1x200",
        "unit_amount": 200,
        "currency": "usd",
        "promotion_codes": False,
    }
    return CheckoutOffer(**(values | overrides))  # type: ignore[arg-type]


def payment(**overrides: object) -> Payment:
    values: dict[str, object] = {
        "payment_id": SESSION,
        "machine_id": MACHINE_ID,
        "credits": 3,
        "amount": 600,
        "currency": "usd",
        "source": PaymentSource.STRIPE,
        "received_at": PAID_AT,
        "payment_intent": "pi_1",
    }
    return Payment(**(values | overrides))  # type: ignore[arg-type]


@pytest.fixture
def ledger(tmp_path: Path) -> Generator[PaymentLedger]:
    ledger = PaymentLedger(tmp_path / "ledger.db")
    ledger.open()
    yield ledger
    ledger.close()


def view(ledger: PaymentLedger, after: float = 1.0, refund_after: float | None = REFUND_AFTER) -> PlayerView:
    seen = ledger.player_view(SESSION, T0 + after, refund_after)
    assert seen is not None
    return seen


def test_an_unknown_session_has_no_view(ledger: PaymentLedger) -> None:
    ledger.record_checkout_offer(offer(session_id="cs_other"))
    assert ledger.player_view(SESSION, T0) is None
    assert ledger.player_view("cs_\udc00", T0) is None


def test_an_open_checkout_is_unpaid_until_it_expires(ledger: PaymentLedger) -> None:
    ledger.record_checkout_offer(offer())
    assert view(ledger) == PlayerView(MACHINE_ID, 0, PlayerState.UNPAID)
    assert view(ledger, after=1739).state is PlayerState.UNPAID
    assert view(ledger, after=1740).state is PlayerState.EXPIRED  # expires_at, not noted yet


def test_an_expired_checkout_is_expired(ledger: PaymentLedger) -> None:
    ledger.record_checkout_offer(offer())
    ledger.set_checkout_status(SESSION, CheckoutStatus.EXPIRED)
    assert view(ledger) == PlayerView(MACHINE_ID, 0, PlayerState.EXPIRED)


def test_a_complete_checkout_without_its_payment_is_not_paid_yet(ledger: PaymentLedger) -> None:
    """Stripe completes a checkout paid by bank debit before the money arrives."""
    ledger.record_checkout_offer(offer(status=CheckoutStatus.COMPLETE))
    assert view(ledger, after=7200) == PlayerView(MACHINE_ID, 0, PlayerState.UNPAID)


def test_paid_credits_wait_for_the_cabinet_then_are_delivered(ledger: PaymentLedger) -> None:
    ledger.record_checkout_offer(offer())
    ledger.record(payment())
    assert view(ledger) == PlayerView(MACHINE_ID, 3, PlayerState.WAITING)
    ledger.mark_published(SESSION, PAID_AT, awaiting_ack=True)  # a cabinet that acknowledges
    assert view(ledger) == PlayerView(MACHINE_ID, 3, PlayerState.WAITING)
    assert ledger.mark_acknowledged(SESSION, MACHINE_ID, PAID_AT)
    assert view(ledger) == PlayerView(MACHINE_ID, 3, PlayerState.DELIVERED)


def test_a_publish_the_broker_never_confirmed_is_still_waiting(ledger: PaymentLedger) -> None:
    ledger.record(payment())
    ledger.mark_published(SESSION, PAID_AT, unconfirmed=True)
    assert view(ledger).state is PlayerState.WAITING
    # Never refunded (the refund marks only pending or unacknowledged payments): sent again.
    assert view(ledger, after=REFUND_AFTER * 10).state is PlayerState.WAITING
    ledger.mark_published(SESSION, PAID_AT)  # confirmed, for a cabinet that does not acknowledge
    assert view(ledger, after=REFUND_AFTER * 10) == PlayerView(MACHINE_ID, 3, PlayerState.DELIVERED)


def test_a_payment_without_a_checkout_offer_is_shown_too(ledger: PaymentLedger) -> None:
    """Paid on the cabinet's payment link, or recorded before the offer was."""
    ledger.record(payment(machine_id="linkCab"))
    assert view(ledger) == PlayerView("linkCab", 3, PlayerState.WAITING)


@pytest.mark.parametrize("awaiting_ack", [False, True], ids=["pending", "unacknowledged"])
def test_credits_overdue_are_refunding_when_automatic_refunds_are_on(
    ledger: PaymentLedger, awaiting_ack: bool
) -> None:
    ledger.record(payment())
    if awaiting_ack:
        ledger.mark_published(SESSION, PAID_AT, awaiting_ack=True)
    assert view(ledger, after=REFUND_AFTER - 1).state is PlayerState.WAITING
    assert view(ledger, after=REFUND_AFTER) == PlayerView(MACHINE_ID, 3, PlayerState.REFUNDING)
    assert view(ledger, after=REFUND_AFTER * 10, refund_after=None).state is PlayerState.WAITING


def test_overdue_credits_nobody_can_refund_keep_waiting(ledger: PaymentLedger) -> None:
    ledger.record(payment(payment_id=SESSION, payment_intent=None))
    assert view(ledger, after=REFUND_AFTER * 10).state is PlayerState.WAITING
    ledger.record(payment(payment_id="manual_1", source=PaymentSource.MANUAL, amount=0, payment_intent=None))
    gift = ledger.player_view("manual_1", T0 + REFUND_AFTER * 10, REFUND_AFTER)
    assert gift == PlayerView(MACHINE_ID, 3, PlayerState.WAITING)


def test_a_refund_under_way_then_done(ledger: PaymentLedger) -> None:
    ledger.record_checkout_offer(offer())
    ledger.record(payment())
    assert ledger.start_refund(SESSION, PAID_AT + timedelta(minutes=10)) is not None
    # Under way, whatever the option says now.
    assert view(ledger, refund_after=None) == PlayerView(MACHINE_ID, 3, PlayerState.REFUNDING)
    ledger.record_refund("pi_1", 600, "auto_refund:cs_scan_1", ends_refund=True)
    assert view(ledger) == PlayerView(MACHINE_ID, 3, PlayerState.REFUNDED)


def test_a_partial_refund_names_the_credits_still_paid_for(ledger: PaymentLedger) -> None:
    ledger.record(payment())
    ledger.record_refund("pi_1", 200, "evt_r1")
    assert view(ledger) == PlayerView(MACHINE_ID, 2, PlayerState.WAITING)
    ledger.mark_published(SESSION, PAID_AT)
    assert view(ledger) == PlayerView(MACHINE_ID, 2, PlayerState.DELIVERED)


def test_delivered_then_refunded_by_the_owner_is_refunded(ledger: PaymentLedger) -> None:
    ledger.record(payment())
    ledger.mark_published(SESSION, PAID_AT)
    ledger.record_refund("pi_1", 600, "evt_r1")
    assert view(ledger) == PlayerView(MACHINE_ID, 3, PlayerState.REFUNDED)


@pytest.mark.parametrize(
    ("published", "state"), [(False, PlayerState.REFUNDED), (True, PlayerState.DELIVERED)]
)
def test_a_disputed_payment(ledger: PaymentLedger, published: bool, state: PlayerState) -> None:
    """Contested money buys nothing not yet sent; what was sent, the player has."""
    ledger.record(payment())
    if published:
        ledger.mark_published(SESSION, PAID_AT)
    ledger.record_dispute("pi_1", 600, "evt_d1")
    assert view(ledger) == PlayerView(MACHINE_ID, 3, state)


def test_a_payment_nobody_can_be_credited_for(ledger: PaymentLedger) -> None:
    ledger.record_checkout_offer(offer())
    ledger.record_uncreditable(payment(credits=0, machine_id="", currency="eur"), "paid in EUR")
    # The cabinet is the one the checkout was made for, not the uncreditable record's.
    assert view(ledger) == PlayerView(MACHINE_ID, 0, PlayerState.NOT_CREDITED)
    ledger.record_refund("pi_1", 600, "evt_r1")
    assert view(ledger) == PlayerView(MACHINE_ID, 0, PlayerState.REFUNDED)


def test_revenue_counts_what_was_paid_after_a_promotion_code(ledger: PaymentLedger) -> None:
    """Credits come from what was bought (the subtotal), revenue from what was paid (the total)."""
    session = {
        "id": SESSION,
        "object": "checkout.session",
        "payment_status": "paid",
        "metadata": {"machine_id": MACHINE_ID, "arcade_pay_offer": "1x200"},
        "amount_subtotal": 600,
        "amount_total": 450,
        "total_details": {"amount_discount": 150},
        "currency": "usd",
        "payment_intent": "pi_1",
    }
    paid = paid_session(session, "evt_1", "checkout.session.completed")
    assert isinstance(paid, PaidSession)
    recorded = Payment.of_session(paid, MACHINE_ID, 3, PAID_AT, unit_amount=200)
    assert ledger.record(recorded) is True
    record = ledger.payment(SESSION)
    assert record is not None
    assert (record.amount, record.credits, record.unit_amount, record.offer, record.discount) == (
        450,
        3,
        200,
        "1x200",
        150,
    )
    assert [(t.revenue, t.credits) for t in ledger.totals()] == [(450, 3)]
    assert view(ledger) == PlayerView(MACHINE_ID, 3, PlayerState.WAITING)

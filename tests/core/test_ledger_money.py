"""Money after a payment in the ledger: schema 4, early refunds and disputes, partial refunds,
uncreditable payments, reconciliation cursors."""

from contextlib import closing
from pathlib import Path
import sqlite3

import pytest

from custom_components.arcade_pay.core.early_money import Dispute
from custom_components.arcade_pay.core.ledger import (
    SCHEMA_VERSION,
    Adjustment,
    CabinetTotals,
    Payment,
    PaymentLedger,
    PaymentState,
)
from custom_components.arcade_pay.core.ledger_schema import MIGRATIONS
from custom_components.arcade_pay.core.money_rules import credits_to_withhold

from .helpers import MACHINE_ID, NOON, SCHEMA_V1, delta, events_of, make_payment, query

# --- schema 4 -------------------------------------------------------------------------------------------

# What release 3 holds: a delivered payment, a refunded one that never went out, cabinet memory.
V3_DATA = """
INSERT INTO payments (payment_id, machine_id, credits, amount, currency, payment_intent, source, state,
    received_at, published_at, refunded_amount)
    VALUES ('cs_refunded', 'arcadeCabinet-123', 2, 400, 'usd', 'pi_refunded', 'stripe', 'refunded',
    '2024-07-01T12:05:00+00:00', NULL, 400);
INSERT INTO payment_events VALUES ('evt_refunded', 'cs_refunded', 'charge.refunded',
    '2024-07-01T12:06:00+00:00');
UPDATE cabinet_totals SET revenue = 600, payments = 2, credits = 5;
INSERT INTO cabinets (machine_id, acknowledges, reconciled_until, paused, seen, link_id, link_active)
    VALUES ('arcadeCabinet-123', 1, 1720000000, 0, 1, 'plink_current', 1),
           ('never-told', 0, 1720000500, 0, 0, NULL, NULL);
"""


def write_v3(path: Path) -> None:
    """A ledger file exactly as release 3 left it: schema 1, then migrations 2 and 3, then data."""
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA_V1)
        for version in (2, 3):
            db.executescript(MIGRATIONS[version] + f"; PRAGMA user_version = {version};")
        db.executescript(V3_DATA)


def test_schema_3_is_migrated_to_4_with_its_data(path: Path) -> None:
    write_v3(path)
    ledger = PaymentLedger(path)
    ledger.open()
    try:
        old = ledger.payment("cs_old")
        refunded = ledger.payment("cs_refunded")
        assert old is not None
        assert refunded is not None
        assert (old.state, old.credits, old.withheld_credits) == (PaymentState.PUBLISHED, 3, 0)
        # Refunded before it was ever sent: its credits were withheld.
        assert (refunded.state, refunded.refunded_amount, refunded.withheld_credits) == (
            PaymentState.REFUNDED,
            400,
            2,
        )
        assert ledger.record(make_payment(payment_id="cs_old", event_id="evt_retry")) is False
        assert ledger.record(make_payment(payment_id="cs_new", payment_intent="pi_new")) is True
        assert [u.payment_id for u in ledger.undelivered()] == ["cs_new"]
    finally:
        ledger.close()
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]  # 4, then 5 on top
    assert query(path, "PRAGMA foreign_key_check") == []
    assert query(path, "SELECT event_id FROM payment_events WHERE payment_id = 'cs_old' ORDER BY 1") == [
        ("evt_old",),
        ("evt_retry",),
    ]
    indexes = {name for (name,) in query(path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"payments_undelivered", "payments_intent", "payments_uncreditable"} <= indexes
    # The cabinet's cursor now belongs to the link Stripe was last told about.
    assert query(path, "SELECT link_id, machine_id, since, retired_at FROM reconcile_links") == [
        ("plink_current", MACHINE_ID, 1720000000, None)
    ]
    # A payment that credits nothing can be recorded now (credits 0).
    with closing(sqlite3.connect(path)) as db:
        db.execute(
            "INSERT INTO payments (payment_id, machine_id, credits, amount, currency, source, state,"
            " received_at) VALUES ('cs_x', '', 0, 100, 'eur', 'stripe', 'uncreditable', '2024-07-02')"
        )
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO payments (payment_id, machine_id, credits, amount, currency, source, state,"
                " received_at) VALUES ('cs_y', '', -1, 100, 'eur', 'stripe', 'pending', '2024-07-02')"
            )


# --- partial refunds of undelivered credits; each amount out of revenue once --------------------------


def undelivered_credits(ledger: PaymentLedger) -> dict[str, int]:
    return {u.payment_id: u.credits for u in ledger.undelivered()}


@pytest.mark.parametrize("awaiting_ack", [None, True], ids=["pending", "awaiting-ack"])
def test_partial_refund_of_undelivered_credits_keeps_those_still_paid_for(
    ledger: PaymentLedger, awaiting_ack: bool | None
) -> None:
    """3 credits for 6.00: what is still paid buys whole credits, rounded down; the rest is withheld."""
    assert ledger.record(make_payment()) is True
    if awaiting_ack is not None:
        ledger.mark_published("cs_test_1", NOON, awaiting_ack=awaiting_ack)
    adjustment = ledger.record_refund("pi_1", 100, "evt_r1")  # 5.00 left: 2.5 credits, so 2
    assert adjustment is not None
    assert (adjustment.revenue_delta, adjustment.credits_left) == (100, 2)
    assert undelivered_credits(ledger) == {"cs_test_1": 2}
    record = ledger.payment("cs_test_1")
    assert record is not None
    assert (record.state, record.credits, record.withheld_credits) == (
        PaymentState.PENDING if awaiting_ack is None else PaymentState.PUBLISHED,
        3,
        1,
    )
    # Cumulative: 4.00 refunded leaves 2.00, one credit; a late, smaller event changes nothing.
    assert ledger.record_refund("pi_1", 400, "evt_r2") == Adjustment(record, 300, 1)
    assert ledger.record_refund("pi_1", 100, "evt_r1") is not None
    assert undelivered_credits(ledger) == {"cs_test_1": 1}
    # The rest: nothing left to send.
    last = ledger.record_refund("pi_1", 600, "evt_r3")
    assert last is not None
    assert (last.revenue_delta, last.credits_left) == (200, 0)
    assert ledger.state_of("cs_test_1") is PaymentState.REFUNDED
    assert undelivered_credits(ledger) == {}
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 0, 1, 3, NOON)]


def test_partial_refund_of_delivered_credits_takes_nothing_back(ledger: PaymentLedger) -> None:
    assert ledger.record(make_payment()) is True
    ledger.mark_published("cs_test_1", NOON)
    adjustment = ledger.record_refund("pi_1", 500, "evt_r1")
    assert adjustment is not None
    assert (adjustment.revenue_delta, adjustment.credits_left) == (500, 0)
    record = ledger.payment("cs_test_1")
    assert record is not None
    assert (record.state, record.withheld_credits) == (PaymentState.PUBLISHED, 0)


def test_dispute_then_refund_takes_the_money_out_of_revenue_once(ledger: PaymentLedger) -> None:
    """A 3.00 payment disputed, then refunded, takes 3.00 out of revenue, not 6.00."""
    assert ledger.record(make_payment(amount=300)) is True
    ledger.mark_published("cs_test_1", NOON)
    assert delta(ledger.record_dispute("pi_1", 300, "evt_d1")) == 300
    assert delta(ledger.record_refund("pi_1", 300, "evt_r1")) == 0
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 0, 1, 3, NOON)]
    record = ledger.payment("cs_test_1")
    assert record is not None
    assert (record.state, record.refunded_amount, record.disputed_amount) == (PaymentState.DISPUTED, 300, 300)


def test_refund_dispute_refund_never_takes_more_than_was_paid(ledger: PaymentLedger) -> None:
    assert ledger.record(make_payment()) is True
    ledger.mark_published("cs_test_1", NOON)
    assert delta(ledger.record_refund("pi_1", 200, "evt_r1")) == 200
    assert delta(ledger.record_dispute("pi_1", 400, "evt_d1")) == 400
    assert delta(ledger.record_refund("pi_1", 300, "evt_r2")) == 0
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 0, 1, 3, NOON)]


def test_dispute_withholds_every_undelivered_credit(ledger: PaymentLedger) -> None:
    assert ledger.record(make_payment()) is True
    adjustment = ledger.record_dispute("pi_1", 100, "evt_d1")
    assert adjustment is not None
    assert (adjustment.revenue_delta, adjustment.credits_left) == (100, 0)
    record = ledger.payment("cs_test_1")
    assert record is not None
    assert (record.state, record.withheld_credits) == (PaymentState.DISPUTED, 3)
    assert undelivered_credits(ledger) == {}


# --- refunds and disputes that arrive before their payment ------------------------------------------


def test_refund_before_its_payment_is_applied_when_the_payment_is_recorded(path: Path) -> None:
    ledger = PaymentLedger(path)
    ledger.open()
    assert ledger.record_refund("pi_1", 600, "evt_r1") is None
    ledger.close()  # Kept durably: the payment may come after a restart (Stripe retries for days).
    ledger = PaymentLedger(path)
    ledger.open()
    try:
        assert ledger.record(make_payment()) is True
        record = ledger.payment("cs_test_1")
        assert record is not None
        assert (record.state, record.refunded_amount, record.withheld_credits) == (
            PaymentState.REFUNDED,
            600,
            3,
        )
        assert ledger.undelivered() == []
        assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 0, 1, 3, NOON)]
        applied = ledger.take_applied_on_record("cs_test_1")
        assert applied is not None
        assert (applied.revenue_delta, applied.credits_left, applied.dispute) == (600, 0, None)
        assert ledger.take_applied_on_record("cs_test_1") is None  # Handed over once.
        assert ("evt_r1", "charge.refunded") in events_of(path, "cs_test_1")
        # Applied once: a retry of the payment or of the refund changes nothing.
        assert ledger.record(make_payment(event_id="evt_2")) is False
        assert delta(ledger.record_refund("pi_1", 600, "evt_r1")) == 0
        assert query(path, "SELECT count(*) FROM early_adjustments") == [(0,)]
    finally:
        ledger.close()


def test_partial_refund_before_its_payment_leaves_the_credits_still_paid_for(ledger: PaymentLedger) -> None:
    assert ledger.record_refund("pi_1", 100, "evt_r1") is None
    assert ledger.record_refund("pi_1", 50, "evt_r0") is None  # Older, late: the larger total stands.
    assert ledger.record(make_payment()) is True
    applied = ledger.take_applied_on_record("cs_test_1")
    assert applied is not None
    assert (applied.revenue_delta, applied.credits_left) == (100, 2)
    assert undelivered_credits(ledger) == {"cs_test_1": 2}
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 500, 1, 3, NOON)]


def test_dispute_before_its_payment_is_applied_with_what_its_repair_needs(ledger: PaymentLedger) -> None:
    assert ledger.record_dispute("pi_1", 600, "evt_d1", "dp_1", "fraudulent") is None
    assert ledger.record(make_payment()) is True
    assert ledger.state_of("cs_test_1") is PaymentState.DISPUTED
    assert undelivered_credits(ledger) == {}
    applied = ledger.take_applied_on_record("cs_test_1")
    assert applied is not None
    assert (applied.revenue_delta, applied.credits_left) == (600, 0)
    assert applied.dispute == Dispute("dp_1", 600, "fraudulent")


def test_a_payment_without_early_money_hands_nothing_over(ledger: PaymentLedger) -> None:
    assert ledger.record_refund("pi_other", 600, "evt_r1") is None
    assert ledger.record(make_payment()) is True
    assert ledger.take_applied_on_record("cs_test_1") is None
    assert ledger.state_of("cs_test_1") is PaymentState.PENDING


def test_early_money_is_forgotten_after_a_month(ledger: PaymentLedger, path: Path) -> None:
    """Refunds of payments that are not Arcade Pay's (another app on the account) do not pile up."""
    assert ledger.record_refund("pi_old", 100, "evt_r0") is None
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE early_adjustments SET received_at = '2000-01-01T00:00:00+00:00'")
    assert ledger.record_refund("pi_1", 100, "evt_r1") is None
    assert query(path, "SELECT payment_intent FROM early_adjustments") == [("pi_1",)]


def test_a_second_early_dispute_does_not_replace_the_first(ledger: PaymentLedger) -> None:
    assert ledger.record_dispute("pi_1", 600, "evt_d1", "dp_1", "fraudulent") is None
    assert ledger.record_dispute("pi_1", 100, "evt_d2", "dp_2", "duplicate") is None
    assert ledger.record_refund("pi_1", 100, "evt_r1") is None
    assert ledger.record(make_payment()) is True
    applied = ledger.take_applied_on_record("cs_test_1")
    assert applied is not None
    assert applied.dispute == Dispute("dp_1", 600, "fraudulent")
    assert applied.revenue_delta == 600  # refund and dispute together, once
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 0, 1, 3, NOON)]


# --- payments that cannot be credited ------------------------------------------------------------------


def uncreditable_payment(**overrides: object) -> Payment:
    defaults: dict[str, object] = {
        "payment_id": "cs_eur",
        "credits": 0,
        "currency": "eur",
        "payment_intent": "pi_eur",
        "event_id": "evt_eur",
        "payment_link": "plink_a",
    }
    return make_payment(**(defaults | overrides))


def test_uncreditable_payment_is_recorded_once_and_is_not_revenue(
    ledger: PaymentLedger, tmp_path: Path
) -> None:
    record = ledger.record_uncreditable(uncreditable_payment(), "paid in EUR, priced in USD")
    assert (record.state, record.credits, record.note, record.payment_link) == (
        PaymentState.UNCREDITABLE,
        0,
        "paid in EUR, priced in USD",
        "plink_a",
    )
    again = ledger.record_uncreditable(uncreditable_payment(event_id="evt_retry"), "another reason")
    assert again == record  # the first record stands
    assert ledger.totals() == []
    assert ledger.undelivered() == []
    assert ledger.count_by_state() == {"uncreditable": 1}
    assert ledger.uncreditable() == [record]
    assert ledger.export_csv(tmp_path / "export.csv") == 1
    # A payment id that is uncreditable is never credited afterwards.
    assert ledger.record(make_payment(payment_id="cs_eur")) is False


def test_refund_of_an_uncreditable_payment_settles_it(ledger: PaymentLedger) -> None:
    ledger.record_uncreditable(uncreditable_payment(), "paid in EUR, priced in USD")
    partly = ledger.record_refund("pi_eur", 100, "evt_r1")
    assert partly is not None
    assert (partly.revenue_delta, partly.credits_left) == (0, 0)
    assert ledger.state_of("cs_eur") is PaymentState.UNCREDITABLE  # still partly paid
    ledger.record_refund("pi_eur", 600, "evt_r2")
    assert ledger.state_of("cs_eur") is PaymentState.REFUNDED
    assert ledger.uncreditable() == []
    assert ledger.totals() == []


def test_uncreditable_payment_refunded_before_it_came(ledger: PaymentLedger) -> None:
    assert ledger.record_refund("pi_eur", 600, "evt_r1") is None
    record = ledger.record_uncreditable(uncreditable_payment(), "paid in EUR, priced in USD")
    assert record.state is PaymentState.REFUNDED
    assert ledger.uncreditable() == []


@pytest.mark.parametrize(
    ("credits", "amount", "out", "disputed", "withheld"),
    [
        (3, 600, 0, False, 0),
        (3, 600, 1, False, 1),  # any refund of a credit's worth of money: rounded down
        (3, 600, 200, False, 1),
        (3, 600, 201, False, 2),
        (3, 600, 600, False, 3),
        (3, 600, 0, True, 3),  # a dispute withholds everything undelivered
        (3, 0, 0, False, 0),  # nothing was paid (a 100 % coupon): nothing can be refunded
    ],
)
def test_credits_to_withhold(credits: int, amount: int, out: int, disputed: bool, withheld: int) -> None:
    assert credits_to_withhold(credits, amount, out, disputed) == withheld


def test_uncreditable_payment_without_an_event(ledger: PaymentLedger, path: Path) -> None:
    ledger.record_uncreditable(uncreditable_payment(event_id=None), "why")
    assert query(path, "SELECT count(*) FROM payment_events") == [(0,)]

"""The ledger's checkout sessions and scan tokens: schema 9, what each method keeps and answers."""

from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
import sqlite3

from hypothesis import given, strategies as st
import pytest

from custom_components.arcade_pay.core.ledger import (
    SCHEMA_VERSION,
    LedgerError,
    Payment,
    PaymentLedger,
    PaymentSource,
    PaymentState,
)
from custom_components.arcade_pay.core.ledger_checkout import CheckoutOffer, CheckoutStatus
from custom_components.arcade_pay.core.ledger_schema import MIGRATIONS

MACHINE_ID = "arcadeCabinet-123"
NOON = datetime(2024, 7, 1, 12, 0, 0, tzinfo=UTC)
T0 = int(NOON.timestamp())


def offer(session_id: str = "cs_scan_1", **overrides: object) -> CheckoutOffer:
    values: dict[str, object] = {
        "session_id": session_id,
        "machine_id": MACHINE_ID,
        "created": T0,
        "expires_at": T0 + 1800,
        "offer": "1x200,3x500",
        "unit_amount": 200,
        "currency": "usd",
        "promotion_codes": True,
    }
    return CheckoutOffer(**(values | overrides))  # type: ignore[arg-type]


def payment(payment_id: str = "cs_scan_1", **overrides: object) -> Payment:
    values: dict[str, object] = {
        "payment_id": payment_id,
        "machine_id": MACHINE_ID,
        "credits": 3,
        "amount": 500,
        "currency": "usd",
        "source": PaymentSource.STRIPE,
        "received_at": NOON,
        "payment_intent": f"pi_{payment_id}",
    }
    return Payment(**(values | overrides))  # type: ignore[arg-type]


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def columns(path: Path, table: str) -> list[str]:
    return [str(row[1]) for row in query(path, f"PRAGMA table_info({table})")]


# --- schema 9 ---------------------------------------------------------------------------------------


def test_a_new_ledger_is_at_schema_9(ledger: PaymentLedger, path: Path) -> None:
    assert SCHEMA_VERSION == 9
    assert query(path, "PRAGMA user_version") == [(9,)]
    assert {"checkout_offers", "scan_tokens"} <= {
        str(name) for (name,) in query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    assert columns(path, "payments")[-3:] == ["unit_amount", "offer", "discount"]
    assert columns(path, "cabinets")[-3:] == ["unit_amount_now", "pack_set", "price_basis"]


# What release 7 holds: a delivered payment, one still owed, a cabinet's memory.
V7_DATA = """
INSERT INTO payments (payment_id, machine_id, credits, amount, currency, payment_intent, source, state,
    received_at, published_at, acknowledged_at)
    VALUES ('cs_done', 'arcadeCabinet-123', 3, 600, 'usd', 'pi_done', 'stripe', 'acknowledged',
            '2024-07-01T12:00:00+00:00', '2024-07-01T12:00:01+00:00', '2024-07-01T12:00:02+00:00'),
           ('cs_owed', 'arcadeCabinet-123', 1, 200, 'usd', 'pi_owed', 'stripe', 'pending',
            '2024-07-01T12:05:00+00:00', NULL, NULL);
INSERT INTO cabinet_totals VALUES ('arcadeCabinet-123', 'usd', 800, 2, 4, '2024-07-01T12:05:00+00:00');
INSERT INTO cabinets (machine_id, acknowledges, reconciled_until, paused, seen, link_id, link_active)
    VALUES ('arcadeCabinet-123', 1, 1719835200, 1, 1, 'plink_1', 0);
"""


def test_a_schema_7_file_is_migrated_with_its_data(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as db:
        for version in range(1, 8):
            db.executescript(MIGRATIONS[version] + f"; PRAGMA user_version = {version};")
        db.executescript(V7_DATA)
    ledger = PaymentLedger(path)
    ledger.open()
    try:
        done, owed = ledger.payment("cs_done"), ledger.payment("cs_owed")
        assert done is not None
        assert owed is not None
        assert (done.state, done.amount, done.credits) == (PaymentState.ACKNOWLEDGED, 600, 3)
        # Not known for payments from before: no unit price, no offer, nothing off.
        assert (done.unit_amount, done.offer, done.discount) == (None, None, 0)
        assert [u.payment_id for u in ledger.undelivered()] == ["cs_owed"]
        assert [(t.revenue, t.payments, t.credits) for t in ledger.totals()] == [(800, 2, 4)]
        memory = ledger.cabinet_memory([MACHINE_ID], 0)[MACHINE_ID]
        assert (memory.acknowledges, memory.paused, memory.link_id, memory.link_active) == (
            True,
            True,
            "plink_1",
            False,
        )
        assert ledger.record_checkout_offer(offer()) is True
        assert ledger.record(payment(discount=100, offer="1x200,3x500", unit_amount=200)) is True
        assert ledger.checkout_offer("cs_scan_1") == offer(status=CheckoutStatus.COMPLETE)
    finally:
        ledger.close()
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert query(path, "SELECT unit_amount_now, pack_set FROM cabinets") == [(None, None)]
    assert query(path, "PRAGMA foreign_key_check") == []


# --- checkout offers --------------------------------------------------------------------------------


def test_an_offer_is_recorded_once_and_read_back(ledger: PaymentLedger) -> None:
    assert ledger.checkout_offer("cs_scan_1") is None
    assert ledger.record_checkout_offer(offer()) is True
    assert ledger.record_checkout_offer(offer(unit_amount=100, offer="1x100")) is False  # the first stands
    assert ledger.checkout_offer("cs_scan_1") == offer()
    assert ledger.checkout_offer("cs_unknown") is None
    assert ledger.checkout_offer("cs_\udc00") is None  # from a URL: no text SQLite cannot hold


def test_recording_its_payment_completes_an_offer(ledger: PaymentLedger) -> None:
    ledger.record_checkout_offer(offer("cs_paid"))
    ledger.record_checkout_offer(offer("cs_foreign"))
    ledger.record_checkout_offer(offer("cs_other"))
    ledger.record(payment("cs_paid"))
    ledger.record_uncreditable(payment("cs_foreign", credits=0, currency="eur"), "paid in EUR")
    assert ledger.checkout_offer("cs_paid") == offer("cs_paid", status=CheckoutStatus.COMPLETE)
    assert ledger.checkout_offer("cs_foreign") == offer("cs_foreign", status=CheckoutStatus.COMPLETE)
    assert ledger.checkout_offer("cs_other") == offer("cs_other")


def test_an_offer_recorded_after_its_payment_is_complete(ledger: PaymentLedger) -> None:
    ledger.record(payment("cs_fast"))
    assert ledger.record_checkout_offer(offer("cs_fast")) is True
    assert ledger.checkout_offer("cs_fast") == offer("cs_fast", status=CheckoutStatus.COMPLETE)
    assert ledger.open_checkout_offers(MACHINE_ID, T0) == []


def test_open_offers_are_those_of_the_cabinet_still_open_and_unexpired(ledger: PaymentLedger) -> None:
    ledger.record_checkout_offer(offer("cs_late", created=T0 + 60, expires_at=T0 + 1860))
    ledger.record_checkout_offer(offer("cs_early", expires_at=T0 + 600))
    ledger.record_checkout_offer(offer("cs_expired"))
    ledger.record_checkout_offer(offer("cs_paid"))
    ledger.record_checkout_offer(offer("cs_elsewhere", machine_id="otherCab"))
    ledger.set_checkout_status("cs_expired", CheckoutStatus.EXPIRED)
    ledger.record(payment("cs_paid"))
    assert [o.session_id for o in ledger.open_checkout_offers(MACHINE_ID, T0)] == ["cs_early", "cs_late"]
    assert [o.session_id for o in ledger.open_checkout_offers(MACHINE_ID, T0 + 600)] == ["cs_late"]
    assert ledger.open_checkout_offers(MACHINE_ID, T0 + 1860) == []
    assert [o.session_id for o in ledger.open_checkout_offers("otherCab", T0)] == ["cs_elsewhere"]


@pytest.mark.parametrize(
    ("before", "to", "changed"),
    [
        (CheckoutStatus.OPEN, CheckoutStatus.EXPIRED, True),
        (CheckoutStatus.OPEN, CheckoutStatus.COMPLETE, True),
        (CheckoutStatus.OPEN, CheckoutStatus.OPEN, False),
        (CheckoutStatus.EXPIRED, CheckoutStatus.COMPLETE, True),  # paid just before it expired
        (CheckoutStatus.EXPIRED, CheckoutStatus.OPEN, False),
        (CheckoutStatus.COMPLETE, CheckoutStatus.EXPIRED, False),
        (CheckoutStatus.COMPLETE, CheckoutStatus.OPEN, False),
    ],
)
def test_status_changes(
    ledger: PaymentLedger, before: CheckoutStatus, to: CheckoutStatus, changed: bool
) -> None:
    ledger.record_checkout_offer(offer(status=before))
    assert ledger.set_checkout_status("cs_scan_1", to) is changed
    assert ledger.checkout_offer("cs_scan_1") == offer(status=to if changed else before)


def test_status_of_an_unknown_session_changes_nothing(ledger: PaymentLedger) -> None:
    assert ledger.set_checkout_status("cs_unknown", CheckoutStatus.EXPIRED) is False
    assert ledger.checkout_offer("cs_unknown") is None


@given(steps=st.lists(st.sampled_from(list(CheckoutStatus)), max_size=8))
def test_complete_is_final_and_nothing_opens_again(
    tmp_path_factory: pytest.TempPathFactory, steps: list[CheckoutStatus]
) -> None:
    ledger = PaymentLedger(tmp_path_factory.mktemp("ledger") / "ledger.db")
    ledger.open()
    try:
        ledger.record_checkout_offer(offer())
        expected = CheckoutStatus.OPEN
        for status in steps:
            allowed = status is CheckoutStatus.COMPLETE or expected is CheckoutStatus.OPEN
            changed = allowed and status is not expected
            assert ledger.set_checkout_status("cs_scan_1", status) is changed
            expected = status if changed else expected
            assert ledger.checkout_offer("cs_scan_1") == offer(status=expected)
    finally:
        ledger.close()


# --- scan tokens ------------------------------------------------------------------------------------


def test_scan_tokens_live_retire_and_live_again(ledger: PaymentLedger, path: Path) -> None:
    assert ledger.scan_token_state("tok_a") is None
    ledger.remember_scan_tokens([("tok_a", MACHINE_ID, "Galaga"), ("tok_b", "otherCab", "Pac-Man")])
    assert ledger.scan_token_state("tok_a") == ("active", MACHINE_ID)
    assert ledger.retire_scan_token("tok_a", T0) is True
    assert ledger.retire_scan_token("tok_a", T0 + 60) is True  # retired already: the first time stands
    assert query(path, "SELECT retired_at FROM scan_tokens WHERE token = 'tok_a'") == [(T0,)]
    assert ledger.scan_token_state("tok_a") == ("retired", "Galaga")
    assert ledger.scan_token_state("tok_b") == ("active", "otherCab")
    # Remembered again (the cabinet is back, renamed): active, and its name follows.
    ledger.remember_scan_tokens([("tok_a", MACHINE_ID, "Galaga II")])
    assert ledger.scan_token_state("tok_a") == ("active", MACHINE_ID)
    ledger.retire_scan_token("tok_a", T0 + 120)
    assert ledger.scan_token_state("tok_a") == ("retired", "Galaga II")


def test_unknown_scan_tokens(ledger: PaymentLedger) -> None:
    assert ledger.retire_scan_token("tok_never", T0) is False
    assert ledger.scan_token_state("tok_never") is None
    assert ledger.scan_token_state("tok_\ud800") is None
    ledger.remember_scan_tokens([])
    assert ledger.scan_token_state("") is None


def test_new_methods_after_close_raise(ledger: PaymentLedger) -> None:
    ledger.close()
    calls = [
        lambda: ledger.record_checkout_offer(offer()),
        lambda: ledger.checkout_offer("cs_scan_1"),
        lambda: ledger.open_checkout_offers(MACHINE_ID, T0),
        lambda: ledger.set_checkout_status("cs_scan_1", CheckoutStatus.EXPIRED),
        lambda: ledger.player_view("cs_scan_1", T0),
        lambda: ledger.remember_scan_tokens([("tok_a", MACHINE_ID, "Galaga")]),
        lambda: ledger.retire_scan_token("tok_a", T0),
        lambda: ledger.scan_token_state("tok_a"),
    ]
    for call in calls:
        with pytest.raises(LedgerError):
            call()

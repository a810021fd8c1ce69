"""The payment ledger: one durable record per payment, totals, crash safety, threads."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
import csv
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
import gc
from pathlib import Path
import sqlite3
import tempfile
import threading
import warnings

from hypothesis import given, settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)
import pytest

from custom_components.arcade_pay.core.ledger import (
    SCHEMA_VERSION,
    Adjustment,
    CabinetMemory,
    CabinetTotals,
    LedgerError,
    Payment,
    PaymentLedger,
    PaymentRecord,
    PaymentSource,
    PaymentState,
    Undelivered,
)

from .helpers import MACHINE_ID, NOON, SCHEMA_V1, delta, events_of, make_payment, query, undo_migration_6

# --- recording -----------------------------------------------------------------------------


def test_first_record_is_new_and_pending(ledger: PaymentLedger) -> None:
    assert ledger.state_of("cs_test_1") is None
    assert ledger.count_by_state() == {}
    assert ledger.record(make_payment()) is True
    assert ledger.state_of("cs_test_1") is PaymentState.PENDING
    assert ledger.count_by_state() == {"pending": 1}


def test_same_payment_id_is_recorded_once(ledger: PaymentLedger, path: Path) -> None:
    assert ledger.record(make_payment()) is True
    assert ledger.record(make_payment()) is False
    # A retry of the same payment through another event (e.g. async_payment_succeeded).
    retry = make_payment(event_id="evt_2", event_type="checkout.session.async_payment_succeeded", amount=999)
    assert ledger.record(retry) is False
    assert ledger.count_by_state() == {"pending": 1}
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 600, 1, 3, NOON)]
    # The audit trail keeps every event that announced the payment, once each.
    assert events_of(path, "cs_test_1") == [
        ("evt_1", "checkout.session.completed"),
        ("evt_2", "checkout.session.async_payment_succeeded"),
    ]
    assert query(path, "SELECT amount, credits FROM payments") == [(600, 3)]


def test_event_id_is_optional(ledger: PaymentLedger, path: Path) -> None:
    assert ledger.record(make_payment(event_id=None, event_type=None)) is True
    assert query(path, "SELECT count(*) FROM payment_events") == [(0,)]


def test_event_without_type_is_kept_with_empty_type(ledger: PaymentLedger, path: Path) -> None:
    assert ledger.record(make_payment(event_type=None)) is True
    assert events_of(path, "cs_test_1") == [("evt_1", "")]


def test_stored_row(ledger: PaymentLedger, path: Path) -> None:
    received = datetime(2024, 7, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    ledger.record(make_payment(received_at=received))
    assert query(
        path,
        "SELECT payment_id, machine_id, credits, amount, currency, payment_intent, source, state,"
        " received_at, published_at FROM payments",
    ) == [
        (
            "cs_test_1",
            MACHINE_ID,
            3,
            600,
            "usd",
            "pi_1",
            "stripe",
            "pending",
            "2024-07-01T12:00:00+00:00",
            None,
        )
    ]


# --- totals ---------------------------------------------------------------------------------


def test_totals_accumulate_per_machine_and_currency(ledger: PaymentLedger) -> None:
    later = NOON + timedelta(minutes=5)
    ledger.record(make_payment())
    ledger.record(make_payment(payment_id="cs_test_2", amount=400, credits=2, received_at=later))
    ledger.record(make_payment(payment_id="cs_test_3", amount=500, credits=1, currency="eur"))
    ledger.record(make_payment(payment_id="cs_test_4", machine_id="galaga", amount=200, credits=1))
    assert ledger.totals() == [
        CabinetTotals(MACHINE_ID, "eur", 500, 1, 1, NOON),
        CabinetTotals(MACHINE_ID, "usd", 1000, 2, 5, later),
        CabinetTotals("galaga", "usd", 200, 1, 1, NOON),
    ]


def test_last_payment_at_is_the_latest_not_the_last_recorded(ledger: PaymentLedger) -> None:
    later = NOON + timedelta(hours=1, microseconds=500_000)
    ledger.record(make_payment(payment_id="cs_late", received_at=later))
    ledger.record(make_payment(payment_id="cs_early", received_at=NOON))
    [totals] = ledger.totals()
    assert totals.last_payment_at == later
    assert totals.payments == 2


def test_last_payment_at_is_utc(ledger: PaymentLedger) -> None:
    ledger.record(
        make_payment(received_at=datetime(2024, 7, 1, 7, 0, 0, tzinfo=timezone(timedelta(hours=-5))))
    )
    [totals] = ledger.totals()
    assert totals.last_payment_at == NOON
    assert totals.last_payment_at is not None
    assert totals.last_payment_at.utcoffset() == timedelta(0)


def test_manual_credits_are_recorded_but_are_not_revenue(ledger: PaymentLedger) -> None:
    manual = make_payment(
        payment_id="manual_1",
        source=PaymentSource.MANUAL,
        amount=0,
        credits=5,
        event_id=None,
        event_type=None,
    )
    assert ledger.record(manual) is True
    assert ledger.state_of("manual_1") is PaymentState.PENDING
    assert ledger.totals() == []
    ledger.record(make_payment())
    ledger.record(replace(manual, payment_id="manual_2", amount=100))
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 600, 1, 3, NOON)]
    assert ledger.count_by_state() == {"pending": 3}


def test_duplicate_does_not_count_in_totals_even_with_another_source(ledger: PaymentLedger) -> None:
    ledger.record(make_payment(source=PaymentSource.MANUAL))
    assert ledger.record(make_payment(source=PaymentSource.STRIPE, event_id="evt_2")) is False
    assert ledger.totals() == []


# --- publishing -----------------------------------------------------------------------------------


def test_mark_published(ledger: PaymentLedger, path: Path) -> None:
    ledger.record(make_payment())
    ledger.record(make_payment(payment_id="cs_test_2"))
    ledger.mark_published("cs_test_1", NOON + timedelta(seconds=5))
    assert ledger.state_of("cs_test_1") is PaymentState.PUBLISHED
    assert ledger.state_of("cs_test_2") is PaymentState.PENDING
    assert ledger.count_by_state() == {"pending": 1, "published": 1}
    assert query(path, "SELECT published_at FROM payments WHERE payment_id = 'cs_test_1'") == [
        ("2024-07-01T12:00:05+00:00",)
    ]


def test_mark_published_twice_keeps_the_first_time(ledger: PaymentLedger, path: Path) -> None:
    ledger.record(make_payment())
    ledger.mark_published("cs_test_1", datetime(2024, 7, 1, 14, 0, 5, tzinfo=timezone(timedelta(hours=2))))
    ledger.mark_published("cs_test_1", NOON + timedelta(hours=3))
    assert ledger.state_of("cs_test_1") is PaymentState.PUBLISHED
    assert query(path, "SELECT published_at FROM payments") == [("2024-07-01T12:00:05+00:00",)]


def test_mark_published_of_an_unknown_payment_does_nothing(ledger: PaymentLedger) -> None:
    ledger.record(make_payment())
    ledger.mark_published("cs_unknown", NOON)
    assert ledger.state_of("cs_unknown") is None
    assert ledger.count_by_state() == {"pending": 1}


def test_recording_again_after_publishing_does_not_reset_the_state(ledger: PaymentLedger) -> None:
    ledger.record(make_payment())
    ledger.mark_published("cs_test_1", NOON)
    assert ledger.record(make_payment(event_id="evt_retry")) is False
    assert ledger.state_of("cs_test_1") is PaymentState.PUBLISHED


# --- durability and the file ---------------------------------------------------------------------


def test_data_survives_reopening(path: Path) -> None:
    first = PaymentLedger(path)
    first.open()
    first.record(make_payment())
    first.record(make_payment(payment_id="cs_test_2", amount=400, credits=2))
    first.record(make_payment(payment_id="manual_1", source=PaymentSource.MANUAL, amount=0))
    first.mark_published("cs_test_1", NOON)
    first.close()

    second = PaymentLedger(path)
    second.open()
    try:
        assert second.state_of("cs_test_1") is PaymentState.PUBLISHED
        assert second.state_of("cs_test_2") is PaymentState.PENDING
        assert second.state_of("manual_1") is PaymentState.PENDING
        assert second.count_by_state() == {"pending": 2, "published": 1}
        assert second.totals() == [CabinetTotals(MACHINE_ID, "usd", 1000, 2, 5, NOON)]
        assert second.record(make_payment(event_id="evt_again")) is False
        assert second.record(make_payment(payment_id="cs_test_3", amount=100, credits=1)) is True
        assert second.totals() == [CabinetTotals(MACHINE_ID, "usd", 1100, 3, 6, NOON)]
    finally:
        second.close()


def test_committed_record_is_visible_to_another_connection_at_once(ledger: PaymentLedger, path: Path) -> None:
    ledger.record(make_payment())
    assert query(path, "SELECT payment_id, state FROM payments") == [("cs_test_1", "pending")]


def test_file_uses_wal_and_records_the_schema_version(ledger: PaymentLedger, path: Path) -> None:
    assert path.is_file()
    assert query(path, "PRAGMA journal_mode") == [("wal",)]
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert SCHEMA_VERSION >= 1


def test_open_creates_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "ledger.db"
    ledger = PaymentLedger(str(path))
    ledger.open()
    try:
        assert ledger.path == path
        assert ledger.record(make_payment()) is True
    finally:
        ledger.close()
    assert path.is_file()


def test_reopening_a_current_file_does_not_migrate_again(path: Path) -> None:
    for _ in range(3):
        ledger = PaymentLedger(path)
        ledger.open()
        ledger.close()
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert query(path, "SELECT count(*) FROM payments") == [(0,)]


def test_file_of_the_first_schema_is_migrated_with_its_data(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA_V1)
    ledger = PaymentLedger(path)
    ledger.open()
    try:
        assert ledger.state_of("cs_old") is PaymentState.PUBLISHED
        assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 600, 1, 3, NOON)]
        assert ledger.record(make_payment(payment_id="cs_old", event_id="evt_retry")) is False
        assert ledger.record(make_payment()) is True
        assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 1200, 2, 6, NOON)]
    finally:
        ledger.close()
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert events_of(path, "cs_old") == [
        ("evt_old", "checkout.session.completed"),
        ("evt_retry", "checkout.session.completed"),
    ]


def test_failed_migration_is_rolled_back(path: Path) -> None:
    """A migration is all or nothing: a file it cannot upgrade is left at its old version."""
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA_V1)
        # Something in the way of migration 2, which creates this table.
        db.execute("CREATE TABLE cabinets (x)")
        db.commit()
    with pytest.raises(LedgerError):
        PaymentLedger(path).open()
    assert query(path, "PRAGMA user_version") == [(1,)]
    columns = [row[1] for row in query(path, "PRAGMA table_info(payments)")]
    assert "awaiting_ack" not in columns
    assert query(path, "SELECT payment_id, state FROM payments") == [("cs_old", "published")]


def test_acknowledging_learned_from_a_claim_is_forgotten_by_migration_5(path: Path) -> None:
    """Up to schema 4, one state message saying ``"acknowledges": true`` made a cabinet count as
    acknowledging, for good. Migration 5 forgets it for cabinets that never acknowledged a payment."""
    ledger = PaymentLedger(path)
    ledger.open()
    try:
        ledger.record(make_payment())
        ledger.mark_published("cs_test_1", NOON, awaiting_ack=True)
        ledger.record(make_payment(payment_id="cs_test_2", payment_intent="pi_2", machine_id="agentCab"))
        ledger.mark_published("cs_test_2", NOON, awaiting_ack=True)
        assert ledger.mark_acknowledged("cs_test_2", "agentCab", NOON)
        for machine_id in (MACHINE_ID, "agentCab"):
            ledger.set_cabinet_acknowledges(machine_id)
    finally:
        ledger.close()
    undo_migration_6(path)
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA user_version = 4")  # As schema 4 left it (without what 6 and 7 added).
        db.commit()
    ledger = PaymentLedger(path)
    ledger.open()
    try:
        memory = ledger.cabinet_memory([MACHINE_ID, "agentCab"], 0)
        assert memory[MACHINE_ID].acknowledges is False  # The claim alone is not believed.
        assert memory["agentCab"].acknowledges is True
    finally:
        ledger.close()
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_damaged_ledger_raises_ledger_error_on_read(ledger: PaymentLedger, path: Path) -> None:
    ledger.record(make_payment())
    with closing(sqlite3.connect(path)) as db:
        db.execute("DROP TABLE cabinet_totals")
        db.commit()
    with pytest.raises(LedgerError):
        ledger.totals()
    with pytest.raises(LedgerError):
        ledger.record(make_payment(payment_id="cs_test_2"))
    assert ledger.state_of("cs_test_2") is None


def test_newer_schema_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.execute("CREATE TABLE future (x)")
        db.commit()
    ledger = PaymentLedger(path)
    with pytest.raises(LedgerError):
        ledger.open()
    with pytest.raises(LedgerError):
        ledger.record(make_payment())
    # The newer file is left as it was.
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]
    assert query(path, "SELECT name FROM sqlite_master WHERE type = 'table'") == [("future",)]


def test_file_that_is_not_a_database_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not an SQLite file, it is a shopping list\n" * 100)
    with pytest.raises(LedgerError):
        PaymentLedger(path).open()


def test_path_that_is_a_directory_is_refused(path: Path) -> None:
    path.mkdir(parents=True)
    with pytest.raises(LedgerError):
        PaymentLedger(path).open()


def _write_newer_schema(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")


def _write_garbage(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an SQLite file\n" * 100)


@pytest.mark.parametrize(
    "prepare", [_write_newer_schema, _write_garbage], ids=["newer-schema", "not-a-database"]
)
def test_failed_open_closes_its_connection(path: Path, prepare: Callable[[Path], None]) -> None:
    """An unusable file must not leak its connection."""
    prepare(path)
    ledger = PaymentLedger(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ledger.open()
        except LedgerError:
            pass
        else:
            pytest.fail("open() accepted an unusable file")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_calls_after_close_raise(ledger: PaymentLedger) -> None:
    ledger.record(make_payment())
    ledger.close()
    ledger.close()  # Closing twice is harmless.
    with pytest.raises(LedgerError):
        ledger.record(make_payment(payment_id="cs_test_2"))
    with pytest.raises(LedgerError):
        ledger.mark_published("cs_test_1", NOON)
    with pytest.raises(LedgerError):
        ledger.state_of("cs_test_1")
    with pytest.raises(LedgerError):
        ledger.totals()
    with pytest.raises(LedgerError):
        ledger.count_by_state()


def test_calls_before_open_raise(path: Path) -> None:
    ledger = PaymentLedger(path)
    with pytest.raises(LedgerError):
        ledger.record(make_payment())
    with pytest.raises(LedgerError):
        ledger.state_of("cs_test_1")
    assert not path.exists()


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"credits": 0}, id="zero-credits"),
        pytest.param({"credits": -1}, id="negative-credits"),
        pytest.param({"amount": -1}, id="negative-amount"),
    ],
)
def test_impossible_payment_is_refused_and_leaves_nothing_behind(
    ledger: PaymentLedger, path: Path, overrides: dict[str, object]
) -> None:
    with pytest.raises(LedgerError):
        ledger.record(make_payment(event_id="evt_bad", **overrides))
    assert ledger.state_of("cs_test_1") is None
    assert query(path, "SELECT count(*) FROM payment_events") == [(0,)]
    assert ledger.totals() == []
    # The ledger is still usable: no transaction was left open.
    assert ledger.record(make_payment()) is True
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 600, 1, 3, NOON)]


def test_failure_in_the_last_step_rolls_back_the_whole_record(ledger: PaymentLedger, path: Path) -> None:
    """A record is one transaction: if updating the totals fails, the payment is not kept either."""
    with closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TRIGGER fail_totals BEFORE INSERT ON cabinet_totals"
            " BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"
        )
        db.commit()
    with pytest.raises(LedgerError):
        ledger.record(make_payment())
    assert ledger.state_of("cs_test_1") is None
    assert query(path, "SELECT count(*) FROM payment_events") == [(0,)]
    assert ledger.count_by_state() == {}

    with closing(sqlite3.connect(path)) as db:
        db.execute("DROP TRIGGER fail_totals")
        db.commit()
    # Stripe retries the delivery: it is new, since the failed attempt left nothing behind.
    assert ledger.record(make_payment()) is True
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 600, 1, 3, NOON)]


# --- delivery: attempts, acknowledgements, the undelivered list ----------------------------------


def test_payment_record(ledger: PaymentLedger) -> None:
    assert ledger.payment("cs_test_1") is None
    ledger.record(make_payment(received_at=datetime(2024, 7, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))))
    assert ledger.payment("cs_test_1") == PaymentRecord(
        payment_id="cs_test_1",
        machine_id=MACHINE_ID,
        credits=3,
        amount=600,
        currency="usd",
        payment_intent="pi_1",
        source=PaymentSource.STRIPE,
        state=PaymentState.PENDING,
        received_at=NOON,
        published_at=None,
        acknowledged_at=None,
        attempts=0,
        awaiting_ack=False,
        refunded_amount=0,
        disputed_amount=0,
    )


def test_undelivered_lists_pending_payments_oldest_first(ledger: PaymentLedger) -> None:
    assert ledger.undelivered() == []
    ledger.record(make_payment(payment_id="cs_late", received_at=NOON + timedelta(minutes=1)))
    ledger.record(
        make_payment(
            payment_id="manual_1", source=PaymentSource.MANUAL, credits=2, received_at=NOON, event_id=None
        )
    )
    assert ledger.undelivered() == [
        Undelivered("manual_1", MACHINE_ID, 2, PaymentSource.MANUAL, NOON, 0),
        Undelivered("cs_late", MACHINE_ID, 3, PaymentSource.STRIPE, NOON + timedelta(minutes=1), 0),
    ]


def test_published_without_ack_is_delivered(ledger: PaymentLedger) -> None:
    ledger.record(make_payment())
    ledger.mark_published("cs_test_1", NOON)
    assert ledger.undelivered() == []
    record = ledger.payment("cs_test_1")
    assert record is not None
    assert (record.state, record.attempts, record.awaiting_ack, record.published_at) == (
        PaymentState.PUBLISHED,
        1,
        False,
        NOON,
    )


def test_published_awaiting_ack_stays_undelivered_and_counts_attempts(ledger: PaymentLedger) -> None:
    ledger.record(make_payment())
    ledger.mark_published("cs_test_1", NOON, awaiting_ack=True)
    ledger.mark_published("cs_test_1", NOON + timedelta(seconds=30), awaiting_ack=True)
    assert ledger.undelivered() == [Undelivered("cs_test_1", MACHINE_ID, 3, PaymentSource.STRIPE, NOON, 2)]
    record = ledger.payment("cs_test_1")
    assert record is not None
    assert (record.state, record.attempts, record.awaiting_ack, record.published_at) == (
        PaymentState.PUBLISHED,
        2,
        True,
        NOON,  # The first time it went out.
    )


def test_acknowledgement(ledger: PaymentLedger) -> None:
    ledger.record(make_payment())
    ledger.mark_published("cs_test_1", NOON, awaiting_ack=True)
    assert ledger.mark_acknowledged("cs_test_1", "galaga", NOON) is False  # Another cabinet's ack.
    assert ledger.mark_acknowledged("cs_unknown", MACHINE_ID, NOON) is False
    assert ledger.state_of("cs_test_1") is PaymentState.PUBLISHED

    acked_at = datetime(2024, 7, 1, 14, 0, 2, tzinfo=timezone(timedelta(hours=2)))
    assert ledger.mark_acknowledged("cs_test_1", MACHINE_ID, acked_at) is True
    assert ledger.mark_acknowledged("cs_test_1", MACHINE_ID, acked_at) is False  # Already final.
    assert ledger.undelivered() == []
    record = ledger.payment("cs_test_1")
    assert record is not None
    assert (record.state, record.awaiting_ack, record.acknowledged_at) == (
        PaymentState.ACKNOWLEDGED,
        False,
        NOON + timedelta(seconds=2),
    )
    # A late republish does not undo the acknowledgement.
    ledger.mark_published("cs_test_1", NOON + timedelta(minutes=1), awaiting_ack=True)
    assert ledger.state_of("cs_test_1") is PaymentState.ACKNOWLEDGED
    assert ledger.undelivered() == []
    assert ledger.count_by_state() == {"acknowledged": 1}


def test_a_pending_payment_can_be_acknowledged(ledger: PaymentLedger) -> None:
    ledger.record(make_payment())
    assert ledger.mark_acknowledged("cs_test_1", MACHINE_ID, NOON) is True
    assert ledger.state_of("cs_test_1") is PaymentState.ACKNOWLEDGED


# --- refunds and disputes -------------------------------------------------------------------------


def _stripe_payment(ledger: PaymentLedger, **overrides: object) -> None:
    assert ledger.record(make_payment(**overrides)) is True


def test_refund_of_an_unknown_payment(ledger: PaymentLedger) -> None:
    assert ledger.record_refund("pi_unknown", 100, "evt_r1") is None
    assert ledger.record_dispute("pi_unknown", 100, "evt_d1") is None


def test_partial_refund_of_a_delivered_payment(ledger: PaymentLedger, path: Path) -> None:
    _stripe_payment(ledger)
    ledger.mark_published("cs_test_1", NOON)
    before = ledger.payment("cs_test_1")
    assert ledger.record_refund("pi_1", 200, "evt_r1") == Adjustment(before, 200)
    record = ledger.payment("cs_test_1")
    assert record is not None
    # Delivered credits are not taken back; the revenue is.
    assert (record.state, record.refunded_amount) == (PaymentState.PUBLISHED, 200)
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 400, 1, 3, NOON)]
    assert ("evt_r1", "charge.refunded") in events_of(path, "cs_test_1")


def test_refunds_are_cumulative_and_idempotent(ledger: PaymentLedger) -> None:
    _stripe_payment(ledger)
    ledger.mark_published("cs_test_1", NOON)
    assert delta(ledger.record_refund("pi_1", 200, "evt_r1")) == 200
    # The same refund delivered again, and an older event arriving late: nothing more.
    assert delta(ledger.record_refund("pi_1", 200, "evt_r1")) == 0
    assert delta(ledger.record_refund("pi_1", 100, "evt_r0")) == 0
    # A second refund: the charge's cumulative total is now 500.
    assert delta(ledger.record_refund("pi_1", 500, "evt_r2")) == 300
    assert ledger.state_of("cs_test_1") is PaymentState.PUBLISHED
    # The rest, and more than was paid: only what was paid comes off.
    assert delta(ledger.record_refund("pi_1", 10_000, "evt_r3")) == 100
    assert ledger.state_of("cs_test_1") is PaymentState.REFUNDED
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 0, 1, 3, NOON)]
    record = ledger.payment("cs_test_1")
    assert record is not None
    assert record.refunded_amount == 600


@pytest.mark.parametrize("awaiting_ack", [None, True], ids=["pending", "awaiting-ack"])
def test_refund_of_an_undelivered_payment_stops_its_delivery(
    ledger: PaymentLedger, awaiting_ack: bool | None
) -> None:
    _stripe_payment(ledger)
    if awaiting_ack is not None:
        ledger.mark_published("cs_test_1", NOON, awaiting_ack=awaiting_ack)
    # A refund of everything; partial refunds: test_ledger_money.py.
    assert delta(ledger.record_refund("pi_1", 600, "evt_r1")) == 600
    assert ledger.state_of("cs_test_1") is PaymentState.REFUNDED
    assert ledger.undelivered() == []
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 0, 1, 3, NOON)]


def test_refund_of_free_credits_is_not_revenue(ledger: PaymentLedger) -> None:
    _stripe_payment(ledger)
    _stripe_payment(ledger, payment_id="manual_1", payment_intent="pi_manual", source=PaymentSource.MANUAL)
    assert delta(ledger.record_refund("pi_manual", 600, "evt_r1")) == 600
    assert ledger.state_of("manual_1") is PaymentState.REFUNDED
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 600, 1, 3, NOON)]


def test_dispute(ledger: PaymentLedger, path: Path) -> None:
    _stripe_payment(ledger)
    ledger.mark_published("cs_test_1", NOON, awaiting_ack=True)
    before = ledger.payment("cs_test_1")
    assert ledger.record_dispute("pi_1", 600, "evt_d1") == Adjustment(before, 600)
    record = ledger.payment("cs_test_1")
    assert record is not None
    assert (record.state, record.disputed_amount, record.awaiting_ack) == (PaymentState.DISPUTED, 600, False)
    assert ledger.undelivered() == []
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 0, 1, 3, NOON)]
    # A second dispute event for the same payment changes nothing.
    assert delta(ledger.record_dispute("pi_1", 600, "evt_d2")) == 0
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 0, 1, 3, NOON)]
    assert events_of(path, "cs_test_1") == [
        ("evt_1", "checkout.session.completed"),
        ("evt_d1", "charge.dispute.created"),
        ("evt_d2", "charge.dispute.created"),
    ]


def test_dispute_after_a_partial_refund_only_takes_what_is_left(ledger: PaymentLedger) -> None:
    _stripe_payment(ledger)
    ledger.mark_published("cs_test_1", NOON)
    ledger.record_refund("pi_1", 200, "evt_r1")
    assert delta(ledger.record_dispute("pi_1", 600, "evt_d1")) == 400
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 0, 1, 3, NOON)]


def test_dispute_of_nothing_is_still_remembered(ledger: PaymentLedger) -> None:
    _stripe_payment(ledger)
    assert delta(ledger.record_dispute("pi_1", 0, "evt_d1")) == 0
    assert ledger.state_of("cs_test_1") is PaymentState.DISPUTED
    assert delta(ledger.record_dispute("pi_1", 600, "evt_d2")) == 0
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 600, 1, 3, NOON)]


# --- per-cabinet memory ------------------------------------------------------------------------------


def test_cabinet_memory(path: Path) -> None:
    ledger = PaymentLedger(path)
    ledger.open()
    assert ledger.cabinet_memory(["cab_a", "cab_b"], 1000) == {
        "cab_a": CabinetMemory(acknowledges=False, reconciled_until=1000, paused=False),
        "cab_b": CabinetMemory(acknowledges=False, reconciled_until=1000, paused=False),
    }
    ledger.set_cabinet_acknowledges("cab_a")
    ledger.set_cabinet_paused("cab_b", True)
    ledger.close()

    ledger = PaymentLedger(path)
    ledger.open()
    try:
        # Known cabinets keep when they were first known (where reconciling a new link starts,
        # test_ledger_money.py); a new one starts at "now"; forgotten ones are not listed.
        assert ledger.cabinet_memory(["cab_a", "cab_b", "cab_c"], 5000) == {
            "cab_a": CabinetMemory(acknowledges=True, reconciled_until=1000, paused=False),
            "cab_b": CabinetMemory(acknowledges=False, reconciled_until=1000, paused=True),
            "cab_c": CabinetMemory(acknowledges=False, reconciled_until=5000, paused=False),
        }
        ledger.set_cabinet_paused("cab_b", False)
        assert ledger.cabinet_memory(["cab_b"], 6000) == {
            "cab_b": CabinetMemory(acknowledges=False, reconciled_until=1000, paused=False)
        }
    finally:
        ledger.close()


def test_cabinet_settings_before_memory(ledger: PaymentLedger) -> None:
    ledger.set_cabinet_acknowledges("cab_new")
    ledger.set_cabinet_paused("cab_other", True)
    assert ledger.cabinet_memory(["cab_new", "cab_other"], 1000) == {
        "cab_new": CabinetMemory(acknowledges=True, reconciled_until=1000, paused=False),
        "cab_other": CabinetMemory(acknowledges=False, reconciled_until=1000, paused=True),
    }


# --- export ------------------------------------------------------------------------------------------


def test_export_csv(ledger: PaymentLedger, tmp_path: Path) -> None:
    ledger.record(make_payment(payment_id="cs_b", received_at=NOON + timedelta(minutes=1)))
    ledger.record(make_payment(payment_id="cs_a", received_at=NOON + timedelta(minutes=1), amount=400))
    ledger.record(
        make_payment(payment_id="cs_yen", received_at=NOON + timedelta(minutes=3), amount=500, currency="jpy")
    )
    ledger.record(
        make_payment(
            payment_id="manual_1", source=PaymentSource.MANUAL, amount=0, payment_intent=None, event_id=None
        )
    )
    ledger.mark_published("cs_a", NOON + timedelta(minutes=2))
    target = tmp_path / "exports" / "ledger.csv"
    assert ledger.export_csv(target) == 4
    with target.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == [
        "payment_id",
        "machine_id",
        "credits",
        "amount",
        "currency",
        "payment_intent",
        "source",
        "state",
        "received_at",
        "published_at",
        "acknowledged_at",
        "attempts",
        "awaiting_ack",
        "refunded_amount",
        "disputed_amount",
        "withheld_credits",
        "payment_link",
        "note",
        "refund_started_at",  # an automatic refund under way (the payment is still pending)
        "unconfirmed",  # published, the broker never confirmed it: sent again after a restart
    ]
    by_column = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    # Oldest first, ties by payment id.
    assert [row["payment_id"] for row in by_column] == ["manual_1", "cs_a", "cs_b", "cs_yen"]
    assert by_column[1] == {
        "payment_id": "cs_a",
        "machine_id": MACHINE_ID,
        "credits": "3",
        "amount": "4.00",  # In dollars, as Stripe's dashboard shows it; the currency says which.
        "currency": "usd",
        "payment_intent": "pi_1",
        "source": "stripe",
        "state": "published",
        "received_at": "2024-07-01T12:01:00+00:00",
        "published_at": "2024-07-01T12:02:00+00:00",
        "acknowledged_at": "",
        "attempts": "1",
        "awaiting_ack": "0",
        "refunded_amount": "0.00",
        "disputed_amount": "0.00",
        "withheld_credits": "0",
        "payment_link": "",
        "note": "",
        "refund_started_at": "",
        "unconfirmed": "0",
    }
    assert (by_column[0]["source"], by_column[0]["payment_intent"]) == ("manual", "")
    assert (by_column[0]["amount"], by_column[3]["amount"], by_column[3]["currency"]) == (
        "0.00",
        "500",
        "jpy",
    )


def test_export_of_an_empty_ledger_has_just_the_header(ledger: PaymentLedger, tmp_path: Path) -> None:
    target = tmp_path / "empty.csv"
    assert ledger.export_csv(target) == 0
    assert target.read_text(encoding="utf-8").splitlines()[0].startswith("payment_id,machine_id,")
    assert len(target.read_text(encoding="utf-8").splitlines()) == 1


def test_new_methods_after_close_raise(ledger: PaymentLedger, tmp_path: Path) -> None:
    ledger.close()
    calls = [
        lambda: ledger.mark_acknowledged("cs_test_1", MACHINE_ID, NOON),
        ledger.undelivered,
        lambda: ledger.payment("cs_test_1"),
        lambda: ledger.record_refund("pi_1", 1, "evt_r"),
        lambda: ledger.record_dispute("pi_1", 1, "evt_d"),
        lambda: ledger.cabinet_memory(["cab_a"], 0),
        lambda: ledger.set_cabinet_acknowledges("cab_a"),
        lambda: ledger.set_cabinet_paused("cab_a", True),
        lambda: ledger.links_to_reconcile({"cab_a": "plink_a"}, 1),
        lambda: ledger.move_reconcile_cursor("plink_a", 1, False),
        lambda: ledger.known_payments(["cs_1"]),
        lambda: ledger.record_uncreditable(make_payment(credits=0), "why"),
        ledger.uncreditable,
        lambda: ledger.export_csv(tmp_path / "x.csv"),
    ]
    for call in calls:
        with pytest.raises(LedgerError):
            call()


# --- threads ---------------------------------------------------------------------------------------


def test_concurrent_records_of_one_payment_insert_it_once(ledger: PaymentLedger, path: Path) -> None:
    threads = 8
    barrier = threading.Barrier(threads)

    def record(index: int) -> bool:
        barrier.wait()
        return ledger.record(make_payment(event_id=f"evt_{index}"))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(record, range(threads)))

    assert sorted(results) == [False] * (threads - 1) + [True]
    assert ledger.totals() == [CabinetTotals(MACHINE_ID, "usd", 600, 1, 3, NOON)]
    assert ledger.count_by_state() == {"pending": 1}
    assert len(events_of(path, "cs_test_1")) == threads


def test_concurrent_records_of_many_payments(ledger: PaymentLedger) -> None:
    threads, per_thread = 8, 25
    barrier = threading.Barrier(threads)

    def record(index: int) -> list[bool]:
        barrier.wait()
        return [
            ledger.record(make_payment(payment_id=f"cs_{index}_{n}", event_id=f"evt_{index}_{n}", credits=1))
            for n in range(per_thread)
        ] + [ledger.record(make_payment(payment_id=f"cs_{index}_0", event_id=f"evt_{index}_dup"))]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = [flag for flags in pool.map(record, range(threads)) for flag in flags]

    assert results.count(True) == threads * per_thread
    assert results.count(False) == threads
    assert ledger.totals() == [
        CabinetTotals(
            MACHINE_ID, "usd", 600 * threads * per_thread, threads * per_thread, threads * per_thread, NOON
        )
    ]


# --- properties ---------------------------------------------------------------------------------------

payments = st.builds(
    Payment,
    payment_id=st.sampled_from([f"cs_{n}" for n in range(6)]),
    machine_id=st.sampled_from(["cab_a", "cab_b"]),
    credits=st.integers(min_value=1, max_value=50),
    amount=st.integers(min_value=0, max_value=10_000),
    currency=st.sampled_from(["usd", "eur"]),
    source=st.sampled_from(PaymentSource),
    received_at=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2024, 12, 31), timezones=st.just(UTC)
    ),
    event_id=st.none() | st.sampled_from([f"evt_{n}" for n in range(8)]),
    event_type=st.just("checkout.session.completed"),
)


def expected_totals(recorded: list[Payment]) -> list[CabinetTotals]:
    """Totals worked out by hand from the payments that were new."""
    totals: dict[tuple[str, str], CabinetTotals] = {}
    for payment in recorded:
        if payment.source is not PaymentSource.STRIPE:
            continue
        key = (payment.machine_id, payment.currency)
        before = totals.get(key, CabinetTotals(*key, 0, 0, 0, None))
        totals[key] = CabinetTotals(
            *key,
            before.revenue + payment.amount,
            before.payments + 1,
            before.credits + payment.credits,
            max(filter(None, [before.last_payment_at, payment.received_at])),
        )
    return [totals[key] for key in sorted(totals)]


@settings(max_examples=40, deadline=None)
@given(batch=st.lists(payments, max_size=20))
def test_record_is_idempotent_and_totals_add_up(batch: list[Payment]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        ledger = PaymentLedger(Path(directory) / "ledger.db")
        ledger.open()
        try:
            results = [ledger.record(payment) for payment in batch]
            first_of_each: dict[str, Payment] = {}
            for payment in batch:
                first_of_each.setdefault(payment.payment_id, payment)
            assert results.count(True) == len(first_of_each)
            assert [payment for payment, new in zip(batch, results, strict=True) if new] == list(
                first_of_each.values()
            )
            assert ledger.totals() == expected_totals(list(first_of_each.values()))
            assert sum(ledger.count_by_state().values()) == len(first_of_each)
        finally:
            ledger.close()


class LedgerMachine(RuleBasedStateMachine):
    """Records, publications, retries and restarts against a model of what must be true."""

    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory()
        self.ledger = PaymentLedger(Path(self.directory.name) / "ledger.db")
        self.ledger.open()
        self.recorded: dict[str, Payment] = {}
        self.published: set[str] = set()

    @initialize(
        target=ids, payment_ids=st.lists(st.text("abc_", min_size=1, max_size=4), min_size=1, max_size=4)
    )
    def payment_ids(self, payment_ids: list[str]) -> object:
        return multiple(*payment_ids)

    @rule(payment_id=ids, payment=payments)
    def record(self, payment_id: str, payment: Payment) -> None:
        payment = replace(payment, payment_id=payment_id)
        new = self.ledger.record(payment)
        assert new is (payment_id not in self.recorded)
        self.recorded.setdefault(payment_id, payment)

    @rule(payment_id=ids, seconds=st.integers(min_value=0, max_value=86_400))
    def mark_published(self, payment_id: str, seconds: int) -> None:
        self.ledger.mark_published(payment_id, NOON + timedelta(seconds=seconds))
        if payment_id in self.recorded:
            self.published.add(payment_id)

    @rule()
    def restart(self) -> None:
        self.ledger.close()
        self.ledger = PaymentLedger(self.ledger.path)
        self.ledger.open()

    @precondition(lambda self: bool(self.recorded))
    @invariant()
    def states_match(self) -> None:
        for payment_id in self.recorded:
            expected = PaymentState.PUBLISHED if payment_id in self.published else PaymentState.PENDING
            assert self.ledger.state_of(payment_id) is expected
        counts = {"pending": len(self.recorded) - len(self.published), "published": len(self.published)}
        assert self.ledger.count_by_state() == {state: n for state, n in counts.items() if n}

    @invariant()
    def totals_match(self) -> None:
        assert self.ledger.totals() == expected_totals(list(self.recorded.values()))

    def teardown(self) -> None:
        self.ledger.close()
        self.directory.cleanup()


LedgerMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
test_ledger_state_machine = LedgerMachine.TestCase


class _StatementLog:
    """Stands in for the ledger's connection and notes each statement with its parameters."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.statements: list[tuple[str, tuple[object, ...]]] = []

    def execute(self, sql: str, parameters: tuple[object, ...] = ()) -> sqlite3.Cursor:
        self.statements.append((sql, parameters))
        return self.db.execute(sql, parameters)


@pytest.mark.parametrize(
    ("read", "index"),
    [
        (PaymentLedger.undelivered, "payments_undelivered"),
        (PaymentLedger.uncreditable, "payments_uncreditable"),
    ],
)
def test_states_bound_as_parameters_still_use_their_partial_index(
    ledger: PaymentLedger, read: Callable[[PaymentLedger], object], index: str
) -> None:
    """The states are PaymentState values bound as parameters, not literals in the SQL; SQLite must
    still see that the partial index applies, or these reads would cost what the history holds."""
    real = ledger._db
    assert real is not None
    log = _StatementLog(real)
    ledger._db = log  # type: ignore[assignment]
    try:
        read(ledger)
    finally:
        ledger._db = real
    [(sql, parameters)] = log.statements
    assert "'" not in sql  # No literal state.
    assert set(parameters) <= {state.value for state in PaymentState}
    plan = " ".join(row[3] for row in real.execute(f"EXPLAIN QUERY PLAN {sql}", parameters))
    assert f"USING INDEX {index}" in plan

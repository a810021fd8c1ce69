"""Money after a payment in the ledger: schema 4, early refunds and disputes, partial refunds,
uncreditable payments, reconciliation cursors (issue 8, items 5, 6, 8 and 9)."""

from collections.abc import Generator
from contextlib import closing
from pathlib import Path
import sqlite3

import pytest

from custom_components.arcade_pay.ledger import (
    _MIGRATIONS,
    SCHEMA_VERSION,
    PaymentLedger,
    PaymentState,
)

from .test_ledger import MACHINE_ID, SCHEMA_V1, make_payment, query


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "arcade_pay" / "ledger.db"


@pytest.fixture
def ledger(path: Path) -> Generator[PaymentLedger]:
    ledger = PaymentLedger(path)
    ledger.open()
    yield ledger
    ledger.close()


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
            db.executescript(_MIGRATIONS[version] + f"; PRAGMA user_version = {version};")
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
            PaymentState.REFUNDED, 400, 2,
        )  # fmt: skip
        assert ledger.record(make_payment(payment_id="cs_old", event_id="evt_retry")) is False
        assert ledger.record(make_payment(payment_id="cs_new", payment_intent="pi_new")) is True
        assert [u.payment_id for u in ledger.undelivered()] == ["cs_new"]
    finally:
        ledger.close()
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(4,)]
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

"""Reconciliation's cursor: never past a session that may still be paid."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from custom_components.arcade_pay.core.ledger import PaymentLedger
from custom_components.arcade_pay.core.reconciliation import (
    DELAYED_PAYMENT_WINDOW,
    OPEN_WINDOW,
    CursorMove,
    LinkCursor,
    may_still_be_paid,
    move,
)

NOW = 1_720_000_000
LINK = LinkCursor("plink_a", "cab_a", NOW - 3600)


def session(created: Any, status: str = "complete", payment_status: str = "paid") -> dict[str, Any]:
    return {"id": f"cs_{created}", "created": created, "status": status, "payment_status": payment_status}


@pytest.mark.parametrize(
    ("listed", "waits"),
    [
        (session(NOW - 60, "open", "unpaid"), True),  # the player may still pay
        (session(NOW - 60, "complete", "unpaid"), True),  # a bank debit on its way
        (session(NOW - DELAYED_PAYMENT_WINDOW + 1, "complete", "unpaid"), True),
        (session(NOW - DELAYED_PAYMENT_WINDOW, "complete", "unpaid"), False),  # given up on
        (session(NOW - 60, "expired", "unpaid"), False),
        (session(NOW - 60), False),  # paid: credited (or skipped as recorded) now
        (session(NOW - 60, "complete", "no_payment_required"), False),
        (session(None, "open", "unpaid"), False),  # no time to hold the cursor at
        (session(True, "open", "unpaid"), False),
    ],
)
def test_which_sessions_may_still_be_paid(listed: dict[str, Any], waits: bool) -> None:
    assert may_still_be_paid(listed, NOW) is waits


def test_cursor_moves_to_the_newest_session_when_nothing_may_still_be_paid() -> None:
    listed = [session(NOW - 100), session(NOW - 50, "expired", "unpaid"), session(NOW - 10)]
    assert move(LINK, listed, NOW) == CursorMove(NOW - 10, done=False)
    assert move(LINK, [], NOW) == CursorMove(LINK.since, done=False)


def test_cursor_stops_at_the_oldest_session_that_may_still_be_paid() -> None:
    listed = [
        session(NOW - 900),
        session(NOW - 600, "complete", "unpaid"),
        session(NOW - 300, "open", "unpaid"),
        session(NOW - 10),
    ]
    assert move(LINK, listed, NOW) == CursorMove(NOW - 600, done=False)


def test_cursor_never_moves_back() -> None:
    assert move(LINK, [session(LINK.since - 500, "open", "unpaid")], NOW).since == LINK.since


def test_a_retired_link_is_done_a_day_after_it_was_retired_with_nothing_left_to_wait_for() -> None:
    retired = LinkCursor("plink_old", "cab_a", NOW - 7200, retired_at=NOW - OPEN_WINDOW + 60)
    assert move(retired, [session(NOW - 7000)], NOW).done is False  # a page may still be open
    later = NOW + 60
    assert move(retired, [session(NOW - 7000)], later).done is True
    assert move(retired, [session(NOW - 7000, "complete", "unpaid")], later).done is False
    assert move(LINK, [], later).done is False  # the current link is never done


# --- the cursors in the ledger ------------------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Generator[PaymentLedger]:
    ledger = PaymentLedger(tmp_path / "ledger.db")
    ledger.open()
    yield ledger
    ledger.close()


def test_each_link_has_its_cursor_and_retired_links_are_reconciled_until_done(ledger: PaymentLedger) -> None:
    ledger.cabinet_memory(["cab_a"], 1000)  # Arcade Pay first knew cab_a at 1000
    assert ledger.links_to_reconcile({"cab_a": "plink_1", "cab_b": "plink_b"}, 2000) == [
        LinkCursor("plink_1", "cab_a", 1000),  # sessions since the cabinet was known
        LinkCursor("plink_b", "cab_b", 2000),  # unknown cabinet: from now
    ]
    ledger.move_reconcile_cursor("plink_1", 1500, done=False)
    ledger.move_reconcile_cursor("plink_1", 1200, done=False)  # never back
    # A price change: cab_a has a new link; the old one is retired, still reconciled.
    assert ledger.links_to_reconcile({"cab_a": "plink_2", "cab_b": "plink_b"}, 3000) == [
        LinkCursor("plink_1", "cab_a", 1500, retired_at=3000),
        LinkCursor("plink_2", "cab_a", 1000),
        LinkCursor("plink_b", "cab_b", 2000),
    ]
    # Retired again later: it keeps when it was first retired.
    assert ledger.links_to_reconcile({"cab_a": "plink_2"}, 4000)[0] == LinkCursor(
        "plink_1", "cab_a", 1500, retired_at=3000
    )
    ledger.move_reconcile_cursor("plink_1", 1500, done=True)
    assert [c.link_id for c in ledger.links_to_reconcile({"cab_a": "plink_2"}, 5000)] == [
        "plink_2",
        "plink_b",
    ]
    # A link that becomes a cabinet's link again is not retired any more.
    assert ledger.links_to_reconcile({"cab_a": "plink_2", "cab_c": "plink_b"}, 6000)[1] == LinkCursor(
        "plink_b", "cab_c", 2000
    )

"""The live price in the ledger (schema 8): what a scan sells now survives a restart; older files migrate."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
import sqlite3

import pytest

from custom_components.arcade_pay.core.ledger import LedgerError, PaymentLedger

from .helpers import undo_migration_6

MACHINE_ID = "galaga"


def reopened(path: Path) -> PaymentLedger:
    ledger = PaymentLedger(path)
    ledger.open()
    return ledger


def test_the_price_now_is_remembered_across_a_restart(ledger: PaymentLedger, path: Path) -> None:
    assert ledger.cabinet_memory([MACHINE_ID], 0)[MACHINE_ID].unit_amount_now is None  # never set
    ledger.set_cabinet_price(MACHINE_ID, 150, "happy_hour_packs", "token usd 200")
    ledger.set_cabinet_paused(MACHINE_ID, True)  # the other memory stays as it was
    ledger.close()

    again = reopened(path)
    try:
        memory = again.cabinet_memory([MACHINE_ID], 0)[MACHINE_ID]
        assert (memory.unit_amount_now, memory.pack_set, memory.price_basis) == (
            150,
            "happy_hour_packs",
            "token usd 200",
        )
        assert memory.paused is True
        again.set_cabinet_price(MACHINE_ID, 200, "none", "token usd 200")
        assert again.cabinet_memory([MACHINE_ID], 0)[MACHINE_ID].unit_amount_now == 200
    finally:
        again.close()


def test_a_price_for_a_cabinet_the_ledger_never_saw(ledger: PaymentLedger) -> None:
    ledger.set_cabinet_price("new-one", 300, "packs", "t eur 300")
    memory = ledger.cabinet_memory(["new-one"], 1000)["new-one"]
    assert (memory.unit_amount_now, memory.pack_set) == (300, "packs")
    assert memory.reconciled_until == 1000  # as any cabinet first seen


def test_an_older_file_gets_the_price_columns(ledger: PaymentLedger, path: Path) -> None:
    ledger.set_cabinet_paused(MACHINE_ID, True)
    ledger.close()
    undo_migration_6(path)  # As schema 5 left it: before the price columns.

    again = reopened(path)
    try:
        memory = again.cabinet_memory([MACHINE_ID], 0)[MACHINE_ID]
        assert memory.paused is True
        assert (memory.unit_amount_now, memory.pack_set, memory.price_basis) == (None, None, None)
        again.set_cabinet_price(MACHINE_ID, 150, "none", "basis")
    finally:
        again.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 8
        columns = {row[1] for row in db.execute("PRAGMA table_info(cabinets)")}
    assert {"unit_amount_now", "pack_set", "price_basis"} <= columns


def test_a_price_the_ledger_cannot_write_raises(ledger: PaymentLedger) -> None:
    ledger.close()
    with pytest.raises(LedgerError):
        ledger.set_cabinet_price(MACHINE_ID, 150, "none", "basis")

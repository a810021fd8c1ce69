"""The entry's ledger file, read and written through connections of the test's own, and faults
injected on PaymentLedger (whatever instance the integration holds).

The ledger is a plain SQLite file (WAL: a second connection reads what was committed), so the
tests observe what survives a restart, not where the running integration keeps its ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import inspect
from pathlib import Path
import sqlite3
import threading
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.core import HomeAssistant

from custom_components.arcade_pay import ledger_path
from custom_components.arcade_pay.const import CONF_MACHINE_ID, CONF_PAYMENT_LINK_ID
from custom_components.arcade_pay.core.ledger import (
    LedgerError,
    PaymentLedger,
    PaymentRecord,
    PaymentState,
)


def remember_seen(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Write into the entry's ledger that its cabinets showed a sign of life and their links
    were last set active (as before a restart)."""
    ledger = PaymentLedger(ledger_path(hass, entry))
    ledger.open()
    try:
        for subentry in entry.subentries.values():
            machine_id = subentry.data[CONF_MACHINE_ID]
            ledger.set_cabinet_seen(machine_id)
            ledger.set_cabinet_link(machine_id, subentry.data[CONF_PAYMENT_LINK_ID], True, False)
    finally:
        ledger.close()


async def on_ledger_file[T](
    hass: HomeAssistant, entry: MockConfigEntry, read: Callable[[PaymentLedger], T]
) -> T:
    """Run ``read`` on the entry's ledger file through a connection of our own (to read what it
    durably holds, or to write what another process could have written)."""

    def run() -> T:
        ledger = PaymentLedger(ledger_path(hass, entry))
        ledger.open()
        try:
            return read(ledger)
        finally:
            ledger.close()

    return await hass.async_add_executor_job(run)


async def payment_state(hass: HomeAssistant, entry: MockConfigEntry, payment_id: str) -> PaymentState | None:
    """The payment's state in the entry's ledger file."""
    return await on_ledger_file(hass, entry, lambda ledger: ledger.state_of(payment_id))


async def payment_record(hass: HomeAssistant, entry: MockConfigEntry, payment_id: str) -> PaymentRecord:
    """The payment as the entry's ledger file holds it (it must be there)."""
    record = await on_ledger_file(hass, entry, lambda ledger: ledger.payment(payment_id))
    assert record is not None, f"{payment_id} is not in the ledger"
    return record


async def remembers_acknowledging(hass: HomeAssistant, entry: MockConfigEntry, machine_id: str) -> bool:
    """Whether the ledger remembers (across restarts) that the cabinet acknowledges pulses.

    Read-only, with a plain query: tests poll this, and a connection that writes (as
    ``cabinet_memory`` does) would hold the write lock against the integration's own writes.
    """

    def read() -> bool:
        uri = f"{Path(ledger_path(hass, entry)).as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            row = db.execute(
                "SELECT acknowledges FROM cabinets WHERE machine_id = ?", (machine_id,)
            ).fetchone()
        return bool(row and row[0])

    return await hass.async_add_executor_job(read)


def patch_ledger(monkeypatch: pytest.MonkeyPatch, name: str, replacement: Callable[..., Any]) -> None:
    """Replace a method of every PaymentLedger (the entry's included) until monkeypatch.undo()."""
    monkeypatch.setattr(PaymentLedger, name, replacement)


def failing_ledger(monkeypatch: pytest.MonkeyPatch, name: str, error: str) -> list[Any]:
    """Make one ledger method raise LedgerError(error); return the first argument of each call."""
    calls: list[Any] = []

    def fail(ledger: PaymentLedger, *args: Any) -> Any:
        calls.append(args[0] if args else None)
        raise LedgerError(error)

    patch_ledger(monkeypatch, name, fail)
    return calls


def ledger_uses_after_close(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every call of a ledger's public method between its close and its next open."""
    closed: set[int] = set()
    uses: list[str] = []

    def watched(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(ledger: PaymentLedger, *args: Any, **kwargs: Any) -> Any:
            if name == "close":
                closed.add(id(ledger))
            elif name == "open":
                closed.discard(id(ledger))
            elif id(ledger) in closed:
                uses.append(f"{name} after close")
            return method(ledger, *args, **kwargs)

        return call

    for name, method in inspect.getmembers(PaymentLedger, inspect.isfunction):
        if not name.startswith("_"):
            patch_ledger(monkeypatch, name, watched(name, method))
    return uses


def record_then_wait(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Let the ledger commit the payment, then keep its caller waiting until released."""
    real_record = PaymentLedger.record
    recorded, release = threading.Event(), threading.Event()

    def record(ledger: PaymentLedger, payment: Any) -> bool:
        result = real_record(ledger, payment)
        recorded.set()
        release.wait(5)
        return result

    patch_ledger(monkeypatch, "record", record)
    return recorded, release


async def wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 5)

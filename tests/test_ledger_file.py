"""A ledger file deleted or replaced while Home Assistant runs is noticed."""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
import shutil
from typing import Any
from unittest.mock import MagicMock

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.arcade_pay import ledger_path
from custom_components.arcade_pay.const import DOMAIN
from custom_components.arcade_pay.core.ledger import LedgerError, Payment, PaymentLedger, PaymentSource
from fake_stripe import FakeStripe

from .helpers import WEBHOOK_ID, published

URL = f"/api/webhook/{WEBHOOK_ID}"


def payment(payment_id: str) -> Payment:
    return Payment(
        payment_id=payment_id,
        machine_id="arcadeCabinet-123",
        credits=1,
        amount=200,
        currency="usd",
        source=PaymentSource.STRIPE,
        received_at=datetime(2024, 7, 1, tzinfo=UTC),
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "arcade_pay" / "ledger.sqlite3"


@pytest.fixture
def ledger(path: Path) -> Generator[PaymentLedger]:
    ledger = PaymentLedger(path)
    ledger.open()
    ledger.record(payment("cs_before"))
    yield ledger
    ledger.close()


def remove(path: Path) -> None:
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink(missing_ok=True)


def test_write_after_the_file_was_deleted_fails(ledger: PaymentLedger, path: Path) -> None:
    """Writes into a deleted file fail: going on would let the next start begin an empty ledger."""
    remove(path)
    with pytest.raises(LedgerError, match=r"was (deleted|replaced by another file) while"):
        ledger.record(payment("cs_after"))
    assert not path.exists()


def test_write_after_the_file_was_replaced_fails(ledger: PaymentLedger, path: Path, tmp_path: Path) -> None:
    """A file put in its place (another ledger, a backup) is not written behind its back."""
    other = PaymentLedger(tmp_path / "other.sqlite3")
    other.open()
    other.close()
    shutil.move(tmp_path / "other.sqlite3", path)
    with pytest.raises(LedgerError, match=r"was (deleted|replaced by another file) while"):
        ledger.set_cabinet_seen("arcadeCabinet-123")


def test_replacement_is_reported_once(ledger: PaymentLedger, path: Path) -> None:
    reported: list[str] = []
    ledger.file.on_replaced = reported.append
    remove(path)
    for payment_id in ("cs_1", "cs_2"):
        with pytest.raises(LedgerError):
            ledger.record(payment(payment_id))
    assert len(reported) == 1


async def test_deleted_ledger_answers_500_raises_a_repair_and_is_not_recreated(
    hass: HomeAssistant,
    hass_client_no_auth: Any,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    tmp_path: Path,
) -> None:
    """The webhook never credits into a deleted file, and a reload never begins an empty ledger."""
    path = Path(ledger_path(hass, setup_entry))
    backup = tmp_path / "backup.sqlite3"
    await hass.async_add_executor_job(shutil.copy, path, backup)
    await hass.async_add_executor_job(remove, path)

    client = await hass_client_no_auth()
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=2)
    resp = await client.post(URL, data=delivery.body, headers=delivery.headers)
    await hass.async_block_till_done()
    assert resp.status == 500  # Stripe delivers it again later.
    assert [t for t, *_ in published(mqtt_mock) if t.endswith("/coinpulse")] == []
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"ledger_replaced_{setup_entry.entry_id}")
    assert issue is not None
    assert issue.translation_key == "ledger_replaced"
    assert issue.translation_placeholders == {"account": "Fake Arcade", "path": str(path)}

    # A reload must not start an empty ledger in its place.
    assert not await hass.config_entries.async_reload(setup_entry.entry_id)
    assert setup_entry.state is ConfigEntryState.SETUP_ERROR
    assert setup_entry.reason is not None
    assert "restore" in setup_entry.reason.lower()
    assert not path.exists()

    # The owner restores the file: Arcade Pay takes it, and the payment Stripe delivers again.
    await hass.async_add_executor_job(shutil.copy, backup, path)
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"ledger_replaced_{setup_entry.entry_id}") is None
    resp = await client.post(URL, data=delivery.body, headers=delivery.headers)
    await hass.async_block_till_done()
    assert resp.status == 200
    assert len([t for t, *_ in published(mqtt_mock) if t.endswith("/coinpulse")]) == 1

"""Fixtures of the core's tests: a ledger file of the test's own."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from custom_components.arcade_pay.core.ledger import PaymentLedger


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the ledger's file is, in the test's own directory (not made yet)."""
    return tmp_path / "arcade_pay" / "ledger.db"


@pytest.fixture
def ledger(path: Path) -> Generator[PaymentLedger]:
    """An open ledger on ``path``, closed at the end."""
    ledger = PaymentLedger(path)
    ledger.open()
    yield ledger
    ledger.close()

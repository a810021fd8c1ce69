"""Opening an entry's ledger, and never an empty one in place of a ledger that went missing.

When the ledger's file is deleted or replaced while Home Assistant runs, the ledger refuses
to write (ledger_file.py) and a repair says so. The repair stays (across restarts) until the
file is back: until then the entry does not start, since a new, empty ledger would not know
which payments were credited, and reconciliation would credit them all again.
"""

from __future__ import annotations

from pathlib import Path

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .core.clock import clock_of
from .core.ledger import LedgerError, PaymentLedger
from .errors import ledger_unavailable


def ledger_issue_id(entry_id: str) -> str:
    """The repair of an entry whose ledger file was deleted or replaced."""
    return f"ledger_replaced_{entry_id}"


async def async_open_ledger(hass: HomeAssistant, entry: ConfigEntry, path: str) -> PaymentLedger:
    """Open the entry's ledger and watch its file; raise a translated ConfigEntryError if it cannot be."""
    issue_id = ledger_issue_id(entry.entry_id)
    lost = ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    if lost and not await hass.async_add_executor_job(Path(path).exists):
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="ledger_missing",
            translation_placeholders={"path": path},
        )
    ledger = PaymentLedger(path, clock_of(dt_util.utcnow))  # Home Assistant's clock (core/clock.py).
    try:
        await hass.async_add_executor_job(ledger.open)
    except LedgerError as err:
        raise ledger_unavailable(err) from err
    ir.async_delete_issue(hass, DOMAIN, issue_id)

    def replaced(reason: str) -> None:
        # Called once, from the executor thread whose write was refused.
        LOGGER.error("%s: Arcade Pay stopped writing to it; see Settings → Repairs", reason)
        hass.loop.call_soon_threadsafe(_raise_issue, hass, entry, path)

    ledger.file.on_replaced = replaced
    return ledger


def _raise_issue(hass: HomeAssistant, entry: ConfigEntry, path: str) -> None:
    ir.async_create_issue(
        hass,
        DOMAIN,
        ledger_issue_id(entry.entry_id),
        is_fixable=False,
        is_persistent=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key="ledger_replaced",
        translation_placeholders={"account": entry.title, "path": path},
    )

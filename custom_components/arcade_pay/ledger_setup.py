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
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .core.clock import clock_of
from .core.ledger import LedgerError, PaymentLedger
from .errors import ledger_unavailable
from .issues import delete_ledger_replaced, ledger_lost, raise_ledger_replaced


async def async_open_ledger(hass: HomeAssistant, entry: ConfigEntry, path: str) -> PaymentLedger:
    """Open the entry's ledger and watch its file; raise a translated ConfigEntryError if it cannot be."""
    if ledger_lost(hass, entry.entry_id) and not await hass.async_add_executor_job(Path(path).exists):
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
    delete_ledger_replaced(hass, entry.entry_id)

    def replaced(reason: str) -> None:
        # Called once, from the executor thread whose write was refused.
        LOGGER.error("%s: Arcade Pay stopped writing to it; see Settings → Repairs", reason)
        hass.loop.call_soon_threadsafe(raise_ledger_replaced, hass, entry, path)

    ledger.file.on_replaced = replaced
    return ledger

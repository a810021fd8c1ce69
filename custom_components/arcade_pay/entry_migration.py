"""Bring an entry stored by an earlier version to this one (``async_migrate_entry``).

1.2: each entry gets its player webhook id, each cabinet its scan token, and cabinets made before
keep their QR code on the payment link with nothing else on sale: their printed codes work on,
unchanged. Which keys mean what: const.py.
"""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .cabinet_settings import cabinet_settings
from .const import CONF_PLAYER_WEBHOOK_ID, LOGGER, SUBENTRY_CABINET
from .core.cabinet_config import QrTarget
from .stable_ids import new_player_webhook_id

VERSION = 1
MINOR_VERSION = 2


async def async_migrate(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Migrate ``entry`` in place; False for an entry from a newer version (it is not touched)."""
    if entry.version > VERSION:
        return False
    if entry.minor_version < 2:
        for subentry in entry.subentries.values():
            if subentry.subentry_type == SUBENTRY_CABINET:
                # What the cabinet already has wins: a migration run twice changes nothing.
                data = cabinet_settings(QrTarget.PAYMENT_LINK) | dict(subentry.data)
                hass.config_entries.async_update_subentry(entry, subentry, data=data)
        hass.config_entries.async_update_entry(
            entry,
            data={CONF_PLAYER_WEBHOOK_ID: new_player_webhook_id()} | dict(entry.data),
            minor_version=2,
        )
        LOGGER.debug("Migrated %s to version %s.%s", entry.title, VERSION, MINOR_VERSION)
    return True

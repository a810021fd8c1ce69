"""Arcade Pay: Stripe payments become arcade credits over MQTT.

Setting up, unloading and removing an entry; what an entry runs is built and started in runtime.py.
"""

from __future__ import annotations

from homeassistant.components import mqtt
from homeassistant.const import CONF_API_KEY, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .cabinet_roster import async_add_cabinets, remember_offline, remove_cabinets, roster_change
from .const import DOMAIN, LOGGER
from .core.ledger import LedgerError
from .data import ArcadePayConfigEntry, ArcadePayData, EntrySource
from .endpoint_keeper import async_delete_endpoint, async_keep_endpoint
from .entry_migration import async_migrate
from .game_over_webhook import async_register_game_over_webhook, async_unregister_game_over_webhook
from .helpers import create_gateway, ledger_path
from .issues import async_clear_new_qr_code_issues, delete_ledger_replaced, raise_links_left_active
from .link_keeper import async_retire_deleted
from .payment_links import async_retire_links
from .player_webhook import (
    async_ensure_player_cloudhook,
    async_register_player_webhook,
    async_unregister_player_webhook,
)
from .runtime import async_build, async_start
from .services import async_setup_services
from .subentries import cabinet_link_ids
from .webhook import async_delete_cloudhook, async_register_stripe_webhook, async_unregister_stripe_webhook

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.IMAGE,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, which exist whether or not an entry is loaded."""
    async_setup_services(hass)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: ArcadePayConfigEntry) -> bool:
    """Bring an entry stored by an earlier version to this one (entry_migration.py)."""
    return await async_migrate(hass, entry)


async def async_setup_entry(hass: HomeAssistant, entry: ArcadePayConfigEntry) -> bool:
    """Set up one Stripe account and its cabinets."""
    # First: a scan while the rest cannot start gets a page saying so (player_webhook.py).
    async_register_player_webhook(hass, entry)
    await async_ensure_player_cloudhook(hass, entry)
    if not await mqtt.async_wait_for_mqtt_client(hass):
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="mqtt_unavailable")
    entry.runtime_data = data = await async_build(hass, entry)
    async_clear_new_qr_code_issues(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # After the entities restored their state, so that retained cabinet state wins.
    await async_start(data, entry)
    async_register_stripe_webhook(hass, entry, data)
    async_register_game_over_webhook(hass, entry, data)
    async_keep_endpoint(hass, entry, data.gateway)
    data.source = EntrySource.of(entry)  # Set-up may have stored the game over webhook's id.
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ArcadePayConfigEntry) -> bool:
    """Stop taking webhooks and messages, finish or stop the work under way, then unload.

    Nothing the old entry does may outlive this: the next start (a reload) reads the ledger
    and sends what is owed, so a pulse the old one sent after that would be sent twice.
    """
    data = entry.runtime_data
    async_unregister_stripe_webhook(hass, entry)
    async_unregister_game_over_webhook(hass, entry)
    data.async_stop()
    remember_offline(hass, entry.entry_id, data)
    await data.async_drain()
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    await hass.async_add_executor_job(data.ledger.close)
    return unloaded


async def _async_update_listener(hass: HomeAssistant, entry: ArcadePayConfigEntry) -> None:
    """Cabinets added or deleted are run or stopped in place; any other change reloads the entry.

    A deleted cabinet's link is retired whichever way (cabinet_roster.py). One change at a time:
    two cabinets confirmed at once would otherwise both be seen as new by both listeners.
    """
    data = entry.runtime_data
    async with data.roster_lock:
        if entry.runtime_data is not data:
            return  # Reloaded meanwhile: that start read every change.
        await _async_apply_change(hass, entry, data)


async def _async_apply_change(hass: HomeAssistant, entry: ArcadePayConfigEntry, data: ArcadePayData) -> None:
    change = roster_change(entry, data.source)
    if change is None:
        deleted = [c for c in data.cabinets.values() if c.config.subentry_id not in entry.subentries]
    else:
        deleted = remove_cabinets(data, change.deleted)
        async_clear_new_qr_code_issues(hass, entry)
    await async_retire_deleted(data.gateway, deleted)
    await data.player_sessions.async_close_deleted(deleted)
    if change is None:
        await hass.config_entries.async_reload(entry.entry_id)
        return
    try:
        await async_add_cabinets(hass, entry, data, change.added)
    except LedgerError as err:  # The reload says so: the entry does not start without its ledger.
        LOGGER.warning("Could not add cabinets while running (%s); reloading Arcade Pay", err)
        await hass.config_entries.async_reload(entry.entry_id)
        return
    data.source = change.source


async def async_remove_entry(hass: HomeAssistant, entry: ArcadePayConfigEntry) -> None:
    """Stop every payment link of the entry taking money, delete the webhook endpoint and the cloudhook.

    Nobody would credit a payment made after this. A link Stripe cannot deactivate now is
    logged with its id and raised as a repair, for the owner to deactivate it by hand. The
    ledger is kept: it is the audit trail.
    """
    gateway = create_gateway(hass, entry.data[CONF_API_KEY])
    failed = await async_retire_links(gateway, cabinet_link_ids(entry))
    for link_id, error in failed.items():
        LOGGER.error(
            "Arcade Pay was removed but payment link %s could not be deactivated (%s); players can "
            "still pay on it and nobody credits them: deactivate it in the Stripe dashboard",
            link_id,
            error,
        )
    if failed:
        raise_links_left_active(hass, entry, failed)
    # The file is the owner's to restore or not; a repair of an entry that is gone helps nobody.
    delete_ledger_replaced(hass, entry.entry_id)
    await async_delete_endpoint(hass, entry)
    await async_delete_cloudhook(hass, entry)
    async_unregister_player_webhook(hass, entry)


__all__ = ["ArcadePayConfigEntry", "create_gateway", "ledger_path"]

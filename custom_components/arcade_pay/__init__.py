"""Arcade Pay: Stripe payments become arcade credits over MQTT."""

from __future__ import annotations

from contextlib import suppress
from functools import partial
import os

from aiohttp.hdrs import METH_POST

from homeassistant.components import cloud, mqtt, webhook
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .const import (
    CONF_ACKNOWLEDGES,
    CONF_CLOUDHOOK_URL,
    CONF_CREDITS_PER_GAME,
    CONF_CURRENCY,
    CONF_MACHINE_ID,
    CONF_MANAGED_LINK,
    CONF_MAX_QUANTITY,
    CONF_NEVER_REPORTS,
    CONF_OFFLINE_MINUTES,
    CONF_PAYMENT_LINK_ID,
    CONF_PAYMENT_LINK_URL,
    CONF_PRICE_ID,
    CONF_PRODUCT_ID,
    CONF_REFUND_MINUTES,
    CONF_REFUND_UNDELIVERED,
    CONF_TOPIC_PREFIX,
    CONF_UNIT_AMOUNT,
    CONF_WEBHOOK_SECRET,
    DEFAULT_CREDITS_PER_GAME,
    DEFAULT_MAX_QUANTITY,
    DEFAULT_OFFLINE_MINUTES,
    DEFAULT_REFUND_MINUTES,
    DEFAULT_TOPIC_PREFIX,
    DOMAIN,
    LOGGER,
    SUBENTRY_CABINET,
)
from .core.cabinet import CabinetConfig
from .core.ledger import LedgerError
from .core.stripe_gateway import ENV_API_BASE, StripeGateway
from .core.stripe_health import StripeHealth
from .core.stripe_scope import key_livemode
from .hub import ArcadePayHub, HubOptions
from .ledger_setup import async_open_ledger, ledger_issue_id
from .not_credited import async_raise_repairs as async_raise_not_credited_repairs
from .payment_links import async_retire_links
from .repairs import async_clear_new_qr_code_issues
from .services import async_setup_services
from .stripe_webhook import WebhookScope, async_handle_stripe_webhook

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.IMAGE,
    Platform.SENSOR,
    Platform.SWITCH,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

type ArcadePayConfigEntry = ConfigEntry[ArcadePayHub]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, which exist whether or not an entry is loaded."""
    async_setup_services(hass)
    return True


def create_gateway(hass: HomeAssistant, api_key: str) -> StripeGateway:
    """Return a Stripe client on Home Assistant's shared session."""
    return StripeGateway(api_key, async_get_clientsession(hass), os.environ.get(ENV_API_BASE))


def ledger_path(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The ledger belongs to the Stripe account, so it survives removing and re-adding the entry."""
    return hass.config.path(DOMAIN, f"ledger_{entry.unique_id}.sqlite3")


def cabinet_config(subentry: ConfigSubentry) -> CabinetConfig:
    """Turn a cabinet subentry into the cabinet's configuration."""
    data = subentry.data
    return CabinetConfig(
        subentry_id=subentry.subentry_id,
        machine_id=data[CONF_MACHINE_ID],
        name=subentry.title,
        currency=data[CONF_CURRENCY],
        max_quantity=data.get(CONF_MAX_QUANTITY, DEFAULT_MAX_QUANTITY),
        payment_link_id=data[CONF_PAYMENT_LINK_ID],
        payment_link_url=data[CONF_PAYMENT_LINK_URL],
        managed_link=data.get(CONF_MANAGED_LINK, False),
        unit_amount=data.get(CONF_UNIT_AMOUNT),
        price_id=data.get(CONF_PRICE_ID),
        product_id=data.get(CONF_PRODUCT_ID),
        never_reports=bool(data.get(CONF_NEVER_REPORTS, False)),
    )


def device_identifier(entry: ConfigEntry, machine_id: str) -> tuple[str, str]:
    """Device identifier: stable across re-adding the entry for the same Stripe account."""
    return (DOMAIN, f"{entry.unique_id}_{machine_id}")


async def async_setup_entry(hass: HomeAssistant, entry: ArcadePayConfigEntry) -> bool:
    """Set up one Stripe account and its cabinets."""
    if not await mqtt.async_wait_for_mqtt_client(hass):
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="mqtt_unavailable")

    ledger = await async_open_ledger(hass, entry, ledger_path(hass, entry))

    cabinets = [
        cabinet_config(subentry)
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_CABINET
    ]
    options = entry.options
    gateway = create_gateway(hass, entry.data[CONF_API_KEY])
    # Any call refused for its key, whoever made it, asks the owner for a new key.
    gateway.observer = StripeHealth(LOGGER, partial(entry.async_start_reauth, hass))
    hub = ArcadePayHub(
        hass,
        entry.entry_id,
        gateway,
        ledger,
        cabinets,
        HubOptions(
            topic_prefix=options.get(CONF_TOPIC_PREFIX, DEFAULT_TOPIC_PREFIX),
            credits_per_game=options.get(CONF_CREDITS_PER_GAME, DEFAULT_CREDITS_PER_GAME),
            offline_grace=60.0 * options.get(CONF_OFFLINE_MINUTES, DEFAULT_OFFLINE_MINUTES),
            refund_undelivered=options.get(CONF_REFUND_UNDELIVERED, False),
            refund_after=60.0 * options.get(CONF_REFUND_MINUTES, DEFAULT_REFUND_MINUTES),
        ),
    )
    explicit_acks = {
        subentry.data[CONF_MACHINE_ID]: subentry.data[CONF_ACKNOWLEDGES]
        for subentry in entry.subentries.values()
        if subentry.data.get(CONF_ACKNOWLEDGES) is not None
    }
    try:
        await hub.async_load(explicit_acks)
    except LedgerError as err:
        await hass.async_add_executor_job(ledger.close)
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="ledger_unavailable",
            translation_placeholders={"error": str(err)},
        ) from err
    entry.runtime_data = hub
    async_clear_new_qr_code_issues(hass, entry)

    device_registry = dr.async_get(hass)
    for cabinet in hub.cabinets.values():
        device = device_registry.async_get_or_create(
            config_entry_id=entry.entry_id,
            config_subentry_id=cabinet.config.subentry_id,
            identifiers={device_identifier(entry, cabinet.machine_id)},
            name=cabinet.config.name,
            manufacturer="Arcade Pay",
            model="Arcade cabinet",
            serial_number=cabinet.machine_id,
        )
        cabinet.device_id = device.id

    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # After the entities restored their state, so that retained cabinet state wins.
    await hub.async_start()
    # Repairs are not kept across restarts; the ledger knows which payments still need one.
    await async_raise_not_credited_repairs(hub)
    # Payments made while Home Assistant was down longer than Stripe retries.
    hub.work.hold(
        entry.async_create_background_task(hass, hub.async_reconcile(), f"{DOMAIN} reconcile {entry.title}"),
        cancellable=True,
    )

    webhook.async_register(
        hass,
        DOMAIN,
        entry.title,
        entry.data[CONF_WEBHOOK_ID],
        partial(
            async_handle_stripe_webhook,
            hub,
            entry.data[CONF_WEBHOOK_SECRET],
            WebhookScope(key_livemode(entry.data[CONF_API_KEY])),
        ),
        local_only=False,
        allowed_methods=[METH_POST],
    )
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ArcadePayConfigEntry) -> bool:
    """Stop taking webhooks and messages, finish or stop the work under way, then unload.

    Nothing the old hub does may outlive this: the next one (a reload) reads the ledger and
    sends what is owed, so a pulse the old one sent after that would be sent twice.
    """
    hub = entry.runtime_data
    webhook.async_unregister(hass, entry.data[CONF_WEBHOOK_ID])
    hub.async_stop()
    await hub.async_drain()
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    await hass.async_add_executor_job(hub.ledger.close)
    return unloaded


async def _async_update_listener(hass: HomeAssistant, entry: ArcadePayConfigEntry) -> None:
    """Options or cabinets changed: retire the links of deleted cabinets, then reload."""
    hub = entry.runtime_data
    deleted = [c for c in hub.cabinets.values() if c.config.subentry_id not in entry.subentries]
    failed = await async_retire_links(hub.gateway, [c.config.payment_link_id for c in deleted])
    for cabinet in deleted:
        link_id = cabinet.config.payment_link_id
        if link_id in failed:
            LOGGER.warning(
                "Cabinet %s was deleted but its payment link %s could not be deactivated: %s; "
                "deactivate it in the Stripe dashboard",
                cabinet.machine_id,
                link_id,
                failed[link_id],
            )
        else:
            LOGGER.info("Deactivated payment link %s of deleted cabinet %s", link_id, cabinet.machine_id)
    await hass.config_entries.async_reload(entry.entry_id)


async def async_remove_entry(hass: HomeAssistant, entry: ArcadePayConfigEntry) -> None:
    """Stop every payment link of the entry taking money, and delete the cloudhook.

    Nobody would credit a payment made after this. A link Stripe cannot deactivate now is
    logged with its id and raised as a repair, for the owner to deactivate it by hand. The
    ledger is kept: it is the audit trail.
    """
    link_ids = [
        subentry.data[CONF_PAYMENT_LINK_ID]
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_CABINET and subentry.data.get(CONF_PAYMENT_LINK_ID)
    ]
    failed = await async_retire_links(create_gateway(hass, entry.data[CONF_API_KEY]), link_ids)
    for link_id, error in failed.items():
        LOGGER.error(
            "Arcade Pay was removed but payment link %s could not be deactivated (%s); players can "
            "still pay on it and nobody credits them: deactivate it in the Stripe dashboard",
            link_id,
            error,
        )
    if failed:
        ir.async_create_issue(
            hass,
            DOMAIN,
            f"links_left_active_{entry.entry_id}",
            is_fixable=False,
            is_persistent=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key="links_left_active",
            translation_placeholders={"account": entry.title, "links": ", ".join(failed)},
        )
    # The file is the owner's to restore or not; a repair of an entry that is gone helps nobody.
    ir.async_delete_issue(hass, DOMAIN, ledger_issue_id(entry.entry_id))
    if entry.data.get(CONF_CLOUDHOOK_URL) and "cloud" in hass.config.components:
        with suppress(cloud.CloudNotAvailable):
            await cloud.async_delete_cloudhook(hass, entry.data[CONF_WEBHOOK_ID])

"""The entry's cabinet subentries: each one's configuration, device, and explicit settings.

Read at every start, and when a cabinet is added while running (cabinet_roster.py; a changed
subentry reloads the entry); runtime.py builds the cabinets from them, __init__.py finds the
links to retire when the entry is removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import (
    CONF_ACKNOWLEDGES,
    CONF_ALLOW_PROMOTION_CODES,
    CONF_CURRENCY,
    CONF_HAPPY_HOUR_PACKS,
    CONF_MACHINE_ID,
    CONF_MANAGED_LINK,
    CONF_MAX_QUANTITY,
    CONF_NEVER_REPORTS,
    CONF_PACKS,
    CONF_PAYMENT_LINK_ID,
    CONF_PAYMENT_LINK_URL,
    CONF_PRICE_ID,
    CONF_PRODUCT_ID,
    CONF_QR_TARGET,
    CONF_SCAN_TOKEN,
    CONF_UNIT_AMOUNT,
    DEFAULT_MAX_QUANTITY,
    DOMAIN,
    SUBENTRY_CABINET,
)
from .core.cabinet import Cabinet
from .core.cabinet_config import CabinetConfig, QrTarget
from .core.pricing import Pack


def packs_of(stored: Any) -> tuple[Pack, ...]:
    """Packs as a subentry stores them: ``[[credits, amount], …]`` (minor units)."""
    return tuple(Pack(int(credits), int(amount)) for credits, amount in stored or ())


def stored_packs(packs: Iterable[Pack]) -> list[list[int]]:
    """Packs as a subentry stores them (JSON: no tuples, no dataclasses)."""
    return [[pack.credits, pack.amount] for pack in packs]


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
        # Not migrated yet: the payment link, as before.
        qr_target=QrTarget(data.get(CONF_QR_TARGET, QrTarget.PAYMENT_LINK)),
        packs=packs_of(data.get(CONF_PACKS)),
        happy_hour_packs=packs_of(data.get(CONF_HAPPY_HOUR_PACKS)),
        allow_promotion_codes=bool(data.get(CONF_ALLOW_PROMOTION_CODES, False)),
        scan_token=data.get(CONF_SCAN_TOKEN),
    )


def cabinet_configs(entry: ConfigEntry) -> list[CabinetConfig]:
    """The configuration of every cabinet of the entry."""
    return [
        cabinet_config(subentry)
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_CABINET
    ]


def cabinet_link_ids(entry: ConfigEntry) -> list[str]:
    """The payment link of every cabinet of the entry."""
    return [
        subentry.data[CONF_PAYMENT_LINK_ID]
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_CABINET and subentry.data.get(CONF_PAYMENT_LINK_ID)
    ]


def explicit_acks(entry: ConfigEntry) -> dict[str, bool]:
    """Cabinets whose settings say whether they acknowledge (the others are learned)."""
    return {
        subentry.data[CONF_MACHINE_ID]: subentry.data[CONF_ACKNOWLEDGES]
        for subentry in entry.subentries.values()
        if subentry.data.get(CONF_ACKNOWLEDGES) is not None
    }


def device_identifier(entry: ConfigEntry, machine_id: str) -> tuple[str, str]:
    """Device identifier: stable across re-adding the entry for the same Stripe account."""
    return (DOMAIN, f"{entry.unique_id}_{machine_id}")


def register_devices(hass: HomeAssistant, entry: ConfigEntry, cabinets: Iterable[Cabinet]) -> None:
    """Create (or update) each cabinet's device, under its subentry, and remember its id."""
    device_registry = dr.async_get(hass)
    for cabinet in cabinets:
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

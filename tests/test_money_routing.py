"""Money never goes to the wrong place."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any
from unittest.mock import MagicMock

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir

from custom_components.arcade_pay.const import CONF_MANAGED_LINK, CONF_UNIT_AMOUNT, DOMAIN, SUBENTRY_CABINET
from custom_components.arcade_pay.core.cabinet import Cabinet
from custom_components.arcade_pay.core.cabinet_config import CabinetConfig
from custom_components.arcade_pay.core.routing import AmbiguousLink, LinkIndex
from fake_stripe import FakeStripe

from .helpers import WEBHOOK_ID, cabinet_subentry, managed_link, published

URL = f"/api/webhook/{WEBHOOK_ID}"

LEGACY = "legacy-1"


def coin_pulses(mqtt_mock: MagicMock) -> list[tuple[str, dict[str, Any]]]:
    return [(t, json.loads(p)) for t, p, *_ in published(mqtt_mock) if t.endswith("/coinpulse")]


async def add_second_cabinet(
    hass: HomeAssistant, entry: MockConfigEntry, link: dict[str, Any], machine_id: str, title: str
) -> None:
    """Add a cabinet subentry that adopted ``link`` (as Arcade Pay did before refusing it)."""
    template = cabinet_subentry(link, machine_id, title)
    data = dict(template["data"]) | {CONF_MANAGED_LINK: False, CONF_UNIT_AMOUNT: None}
    subentry = ConfigSubentry(
        data=MappingProxyType(data), subentry_type=SUBENTRY_CABINET, title=title, unique_id=machine_id
    )
    hass.config_entries.async_add_subentry(entry, subentry)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_adopted_link_of_another_cabinet_never_takes_its_money(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
) -> None:
    """Legacy adopted Pac-Man's link (at runtime); paying on it still credits Pac-Man."""
    await add_second_cabinet(hass, setup_entry, cabinet_link, LEGACY, "Legacy")
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), setup_entry.entry_id)
    assert {device.name for device in devices} == {"Pac-Man", "Legacy"}

    client = await hass_client_no_auth()
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=2)
    resp = await client.post(URL, data=delivery.body, headers=delivery.headers)
    assert resp.status == 200
    await hass.async_block_till_done()

    assert [(t, m["credits"]) for t, m in coin_pulses(mqtt_mock)] == [
        ("arcade/machine/arcadeCabinet-123/coinpulse", 2)
    ]


def _cabinet(machine_id: str, link_id: str, managed: bool) -> Cabinet:
    return Cabinet(
        CabinetConfig(
            subentry_id=machine_id,
            machine_id=machine_id,
            name=machine_id,
            currency="usd",
            max_quantity=10,
            payment_link_id=link_id,
            payment_link_url=f"https://pay/{link_id}",
            managed_link=managed,
        )
    )


def test_link_index_rules() -> None:
    """The decisions documented in routing.py: the paid link decides, metadata breaks ties."""
    pacman = _cabinet("pacman", "plink_a", managed=True)
    legacy = _cabinet("legacy-1", "plink_a", managed=False)
    galaga = _cabinet("galaga", "plink_g", managed=False)
    index = LinkIndex([pacman, legacy, galaga])
    # A current link wins over what the session's metadata says.
    assert index.cabinet_for("plink_g", "pacman") is galaga
    # A shared link: the cabinet its metadata names, else the one Arcade Pay created it for.
    assert index.cabinet_for("plink_a", "legacy-1") is legacy
    assert index.cabinet_for("plink_a", "someone-else") is pacman
    # Retired (price change) or no payment link at all: the metadata names the cabinet.
    assert index.cabinet_for("plink_retired", "galaga") is galaga
    assert index.cabinet_for(None, "pacman") is pacman
    assert index.cabinet_for("plink_unknown", "ghost") is None
    assert index.cabinet_for(None, None) is None
    shared = LinkIndex([_cabinet("x", "plink_s", False), _cabinet("y", "plink_s", False)])
    with pytest.raises(AmbiguousLink):
        shared.cabinet_for("plink_s", "z")


async def test_payment_on_a_link_nobody_owns_alone_is_not_credited(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    mqtt_mock: MagicMock,
) -> None:
    """Two adopted cabinets on one link, metadata naming neither: nobody is credited."""
    link = managed_link(fake_stripe, "old-name", 100)
    await add_second_cabinet(hass, setup_entry, link, "legacy-a", "Legacy A")
    await add_second_cabinet(hass, setup_entry, link, "legacy-b", "Legacy B")
    client = await hass_client_no_auth()
    delivery = fake_stripe.complete_checkout(link["id"])
    resp = await client.post(URL, data=delivery.body, headers=delivery.headers)
    assert (resp.status, (await resp.json())["outcome"]) == (200, "not_creditable")
    await hass.async_block_till_done()
    assert coin_pulses(mqtt_mock) == []
    session = delivery.event["data"]["object"]["id"]
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"not_credited_{session}") is not None

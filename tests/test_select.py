"""The Packs select: which packs the next scan of a Home Assistant QR code offers, without a reload."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .helpers import failing_ledger, on_ledger_file, stable_qr_entry, stable_qr_subentry
from .platform_snapshot import assert_on_cabinet_device

PACKS = "select.pac_man_packs"
PRICE = "number.pac_man_price_per_credit"


@pytest.fixture
def platform() -> Platform:
    return Platform.SELECT


@pytest.fixture
def config_entry(config_entry: MockConfigEntry, cabinet_link: dict[str, Any]) -> MockConfigEntry:
    return stable_qr_entry(config_entry, stable_qr_subentry(cabinet_link))


async def select(hass: HomeAssistant, option: str) -> None:
    await hass.services.async_call(
        "select", "select_option", {"entity_id": PACKS, "option": option}, blocking=True
    )


def state(hass: HomeAssistant, entity_id: str = PACKS) -> str:
    current = hass.states.get(entity_id)
    assert current is not None
    return current.state


async def remembered(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[Any, Any]:
    memory = await on_ledger_file(hass, entry, lambda ledger: ledger.cabinet_memory(["arcadeCabinet-123"], 0))
    return memory["arcadeCabinet-123"].pack_set, memory["arcadeCabinet-123"].unit_amount_now


async def test_selects(
    hass: HomeAssistant,
    platform_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    await snapshot_platform(hass, entity_registry, snapshot, platform_entry.entry_id)
    assert_on_cabinet_device(
        device_registry, entity_registry, platform_entry.entry_id, next(iter(platform_entry.subentries))
    )


async def test_a_pack_set_holds_from_the_next_scan_and_across_a_restart(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    assert state(hass) == "none"  # a new cabinet sells single credits only
    await select(hass, "happy_hour_packs")
    assert state(hass) == "happy_hour_packs"
    assert await remembered(hass, setup_entry) == ("happy_hour_packs", 200)  # with the price it kept

    await hass.services.async_call("number", "set_value", {"entity_id": PRICE, "value": 1}, blocking=True)
    assert await remembered(hass, setup_entry) == ("happy_hour_packs", 100)  # the price kept the packs

    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert (state(hass), state(hass, PRICE)) == ("happy_hour_packs", "1.0")


async def test_an_option_that_is_not_one_changes_nothing(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    with pytest.raises(ServiceValidationError):
        await select(hass, "weekend_packs")
    assert state(hass) == "none"
    assert await remembered(hass, setup_entry) == (None, None)


async def test_a_ledger_that_cannot_be_written_changes_nothing(
    hass: HomeAssistant, setup_entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_ledger(monkeypatch, "set_cabinet_price", "disk full")
    with pytest.raises(HomeAssistantError) as err:
        await select(hass, "packs")
    assert err.value.translation_key == "ledger_failed"
    assert state(hass) == "none"

"""Entries stored by an earlier version: their cabinets' printed codes keep working, and gains its ids."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock, patch

from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er

from custom_components.arcade_pay.const import (
    CONF_ALLOW_PROMOTION_CODES,
    CONF_HAPPY_HOUR_PACKS,
    CONF_PACKS,
    CONF_PAYMENT_LINK_URL,
    CONF_PLAYER_WEBHOOK_ID,
    CONF_QR_TARGET,
    CONF_SCAN_TOKEN,
    DOMAIN,
)
from fake_stripe import FakeStripe

from .helpers import API_KEY, remember_seen


async def start(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    remember_seen(hass, entry)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_an_entry_of_the_earlier_version_keeps_its_payment_links(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    cabinet_link: dict[str, Any],
    entity_registry: er.EntityRegistry,
) -> None:
    assert (config_entry.version, config_entry.minor_version) == (1, 1)
    before = dict(next(iter(config_entry.subentries.values())).data)
    data_before = dict(config_entry.data)

    await start(hass, config_entry)

    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.minor_version == 2
    cabinet = next(iter(config_entry.subentries.values()))
    token = cabinet.data[CONF_SCAN_TOKEN]
    assert isinstance(token, str)
    assert len(token) >= 16
    assert dict(cabinet.data) == before | {
        CONF_QR_TARGET: "payment_link",
        CONF_PACKS: [],
        CONF_HAPPY_HOUR_PACKS: [],
        CONF_ALLOW_PROMOTION_CODES: False,
        CONF_SCAN_TOKEN: token,
    }
    webhook_id = config_entry.data[CONF_PLAYER_WEBHOOK_ID]
    assert len(webhook_id) == 32
    assert int(webhook_id, 16) >= 0
    assert data_before.items() <= config_entry.data.items()  # nothing else changed
    # The printed code is the payment link, as before, and it still takes money.
    qr_code = hass.states.get("image.pac_man_payment_qr_code")
    assert qr_code.attributes["url"] == before[CONF_PAYMENT_LINK_URL] == cabinet_link["url"]
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    # Its price is the link's: nothing to set without a new link.
    entities = {e.domain for e in er.async_entries_for_config_entry(entity_registry, config_entry.entry_id)}
    assert entities.isdisjoint({"number", "select"})

    # Made once: a restart keeps both.
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert next(iter(config_entry.subentries.values())).data[CONF_SCAN_TOKEN] == token
    assert config_entry.data[CONF_PLAYER_WEBHOOK_ID] == webhook_id


async def test_an_entry_of_a_newer_version_is_not_touched(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe, config_entry: MockConfigEntry
) -> None:
    newer = MockConfigEntry(
        domain=DOMAIN,
        title=config_entry.title,
        unique_id=config_entry.unique_id,
        data=config_entry.data,
        options=config_entry.options,
        version=2,
    )
    await start(hass, newer)
    assert newer.state is ConfigEntryState.MIGRATION_ERROR
    assert dict(newer.data) == dict(config_entry.data)


async def test_a_new_entry_has_its_player_webhook_from_the_start(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    hass.config.external_url = "https://arcade.example.com"
    with patch("custom_components.arcade_pay.async_setup_entry", return_value=True):
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: API_KEY})
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert (entry.version, entry.minor_version) == (1, 2)  # nothing to migrate
    assert len(entry.data[CONF_PLAYER_WEBHOOK_ID]) == 32
    assert entry.data[CONF_PLAYER_WEBHOOK_ID] not in str(result["description_placeholders"])

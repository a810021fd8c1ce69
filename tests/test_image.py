"""The payment QR code: the cabinet's payment link as a PNG, and when it last changed."""

from __future__ import annotations

from http import HTTPStatus
import io
import re
from typing import Any
from unittest.mock import MagicMock

from PIL import Image
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache,
    snapshot_platform,
)
import segno
from syrupy.assertion import SnapshotAssertion
from syrupy.types import PropertyPath, SerializableData

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr, entity_registry as er

from fake_stripe import FakeStripe

from .platform_snapshot import assert_on_cabinet_device

QR_CODE = "image.pac_man_payment_qr_code"
EARLIER = "2026-01-01T12:00:00+00:00"


@pytest.fixture
def platform() -> Platform:
    return Platform.IMAGE


def random_parts(data: SerializableData, path: PropertyPath) -> SerializableData:
    """Hide what changes every run: Home Assistant's access token, the fake Stripe's port and link id.

    The link itself is checked exactly by test_qr_code_encodes_payment_link.
    """
    key = path[-1][0] if path else None
    if not isinstance(data, str):
        return data
    if key == "access_token":
        return "<random>"
    if key == "entity_picture":
        return re.sub(r"token=\w+", "token=<random>", data)
    if key == "url":
        return re.sub(r"^http://127\.0\.0\.1:\d+/pay/plink_\w+$", "<the fake Stripe's link>", data)
    return data


@pytest.fixture
def shown_since_earlier(hass: HomeAssistant, cabinet_link: dict[str, Any]) -> None:
    """As after a restart: the QR code's state, the time it last changed, is the one restored."""
    mock_restore_cache(hass, [State(QR_CODE, EARLIER, {"url": cabinet_link["url"]})])


async def test_images(
    hass: HomeAssistant,
    shown_since_earlier: None,
    platform_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    await snapshot_platform(
        hass, entity_registry, snapshot.with_defaults(matcher=random_parts), platform_entry.entry_id
    )
    assert_on_cabinet_device(
        device_registry, entity_registry, platform_entry.entry_id, next(iter(platform_entry.subentries))
    )


async def test_qr_code_encodes_payment_link(
    hass: HomeAssistant, hass_client: Any, platform_entry: MockConfigEntry, cabinet_link: dict[str, Any]
) -> None:
    state = hass.states.get(QR_CODE)
    assert state.attributes["url"] == cabinet_link["url"]
    client = await hass_client()
    resp = await client.get(f"/api/image_proxy/{QR_CODE}")
    assert resp.status == HTTPStatus.OK
    assert resp.content_type == "image/png"
    png = await resp.read()
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    # Scale 10 with a 4-module quiet zone: big enough to scan from a cabinet's screen.
    assert image.width == image.height >= 10 * (21 + 8)
    # Same bytes as segno makes for this URL: it really is the link.
    expected = io.BytesIO()
    segno.make(cabinet_link["url"], error="m", micro=False).save(expected, kind="png", scale=10, border=4)
    assert png == expected.getvalue()


async def test_qr_code_time_survives_a_restart_with_the_same_link(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    cabinet_link: dict[str, Any],
) -> None:
    mock_restore_cache(hass, [State(QR_CODE, EARLIER, {"url": cabinet_link["url"]})])
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(QR_CODE).state == EARLIER
    # Reloading (as adding another cabinet does) keeps it too.
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(QR_CODE).state == EARLIER


async def test_qr_code_time_changes_with_the_link(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe, config_entry: MockConfigEntry
) -> None:
    mock_restore_cache(hass, [State(QR_CODE, EARLIER, {"url": "https://buy.stripe.com/old"})])
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(QR_CODE).state > EARLIER


async def test_qr_code_names_its_link_and_price(
    hass: HomeAssistant, platform_entry: MockConfigEntry, cabinet_link: dict[str, Any]
) -> None:
    """The operator copies the link and sees what it sells (no secret: the link is public)."""
    attributes = hass.states.get(QR_CODE).attributes
    assert attributes["url"] == cabinet_link["url"]
    assert attributes["price_per_credit"] == "2.00 USD"  # UNIT_AMOUNT cents.

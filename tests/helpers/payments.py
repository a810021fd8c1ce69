"""Players paying: Stripe's webhook deliveries answered by Home Assistant's HTTP server."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS

from fake_stripe import Delivery, FakeStripe

from .entry import PREFIX, WEBHOOK_ID


async def settle(client: TestClient) -> None:
    """Let the work a webhook answer leaves behind (publishing the pulse) finish."""
    await client.app[KEY_HASS].async_block_till_done()


async def post_delivery(client: TestClient, delivery: Delivery) -> str:
    """Stripe delivers a paid checkout; return the session's id once its pulse went out."""
    resp = await client.post(f"/api/webhook/{WEBHOOK_ID}", data=delivery.body, headers=delivery.headers)
    assert resp.status == 200, await resp.text()
    await settle(client)
    return str(delivery.event["data"]["object"]["id"])


async def pay(client: TestClient, fake: FakeStripe, link: dict[str, Any], quantity: int = 1) -> str:
    """A player pays on ``link``; return the checkout session's id once its pulse went out."""
    return await post_delivery(client, fake.complete_checkout(link["id"], quantity=quantity))


async def refund_undelivered_of_an_offline_cabinet(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Refund-undelivered on (after 5 minutes, no offline rule), and the cabinet offline."""
    hass.config_entries.async_update_entry(
        entry, options=entry.options | {"refund_undelivered": True, "refund_minutes": 5, "offline_minutes": 0}
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await hass.async_block_till_done()

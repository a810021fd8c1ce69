"""Diagnostics: what helps to debug a report, with every secret redacted."""

from __future__ import annotations

from http import HTTPStatus
import json
from typing import Any

from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from fake_stripe import DEFAULT_WEBHOOK_SECRET, FakeStripe

from .helpers import API_KEY, MACHINE_ID, WEBHOOK_ID

# Different on every run: Home Assistant's ids and times (the last payment's too),
# and the fake Stripe's ids and random port.
VOLATILE = props(
    "entry_id",
    "subentry_id",
    "created_at",
    "modified_at",
    "last_payment",
    "payment_link_id",
    "payment_link_url",
    "price_id",
    "product_id",
)


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    snapshot: SnapshotAssertion,
) -> None:
    """After the cabinet reported and a player paid: what a bug report would carry."""
    # Before the first HTTP client freezes the router, which diagnostics adds a view to.
    assert await async_setup_component(hass, "diagnostics", {})
    prefix = f"arcade/machine/{MACHINE_ID}"
    async_fire_mqtt_message(hass, f"{prefix}/status", "online")
    async_fire_mqtt_message(hass, f"{prefix}/state", json.dumps({"credits": 3, "state": "playing"}))
    await hass.async_block_till_done()
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=2)
    client = await hass_client_no_auth()
    resp = await client.post(f"/api/webhook/{WEBHOOK_ID}", data=delivery.body, headers=delivery.headers)
    assert resp.status == HTTPStatus.OK
    await hass.async_block_till_done()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_entry)

    assert diagnostics == snapshot(exclude=VOLATILE)
    # Redacted, not merely left out of the snapshot: nothing here lets anyone take money.
    text = json.dumps(diagnostics)
    for secret in (API_KEY, DEFAULT_WEBHOOK_SECRET, WEBHOOK_ID):
        assert secret not in text

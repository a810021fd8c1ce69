"""Arcade Pay's webhook endpoint through Stripe's API, and restricted keys' permissions (the fake)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from custom_components.arcade_pay.core.payments import SUBSCRIBED_EVENTS
from custom_components.arcade_pay.core.stripe_endpoints import EVENTS_API_VERSION, METADATA_OWNER
from custom_components.arcade_pay.core.stripe_gateway import (
    RESTRICTED_KEY_PERMISSIONS,
    StripeAuthError,
    StripeGateway,
    StripeGatewayError,
)
from custom_components.arcade_pay.core.stripe_sdk import stripe
from fake_stripe import REJECTED_KEY, FakeStripe


@pytest.fixture
async def fake(socket_enabled: None) -> AsyncIterator[FakeStripe]:
    stripe_fake = FakeStripe()
    await stripe_fake.start()
    yield stripe_fake
    await stripe_fake.stop()


@pytest.fixture
async def session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_create_registers_exactly_what_arcade_pay_handles(
    fake: FakeStripe, session: aiohttp.ClientSession
) -> None:
    gateway = StripeGateway("sk_test_x", session, fake.url)
    endpoint = await gateway.create_webhook_endpoint("https://a.example/api/webhook/w1", "w1", "Main Street")
    stored = fake.webhook_endpoints[endpoint.id]
    assert endpoint.secret == stored["secret"]
    assert endpoint.secret.startswith("whsec_")
    assert stored["url"] == "https://a.example/api/webhook/w1"
    assert stored["enabled_events"] == list(SUBSCRIBED_EVENTS)
    assert stored["description"] == "Arcade Pay on Home Assistant Main Street"
    assert stored["metadata"] == {METADATA_OWNER: "w1"}
    assert stored["api_version"] == EVENTS_API_VERSION == stripe.api_version
    assert not endpoint.disabled


async def test_find_update_reenable_delete(fake: FakeStripe, session: aiohttp.ClientSession) -> None:
    gateway = StripeGateway("sk_test_x", session, fake.url)
    mine = await gateway.create_webhook_endpoint("https://a.example/h/w1", "w1", "Home")
    await gateway.create_webhook_endpoint("https://a.example/h/w2", "w2", "Home")
    fake.add_webhook_endpoint("https://by-hand.example/")
    assert [e.id for e in await gateway.own_webhook_endpoints("w1")] == [mine.id]
    assert await gateway.own_webhook_endpoints("w3") == []

    moved = await gateway.update_webhook_endpoint(mine.id, url="https://b.example/h/w1")
    assert moved.url == fake.webhook_endpoints[mine.id]["url"] == "https://b.example/h/w1"
    assert moved.secret is None  # Stripe shows the secret only once.

    fake.disable_endpoint(mine.id)
    assert (await gateway.webhook_endpoint(mine.id)).disabled
    assert not (await gateway.update_webhook_endpoint(mine.id, enabled=True)).disabled
    assert fake.webhook_endpoints[mine.id]["status"] == "enabled"

    await gateway.delete_webhook_endpoint(mine.id)
    assert mine.id not in fake.webhook_endpoints
    with pytest.raises(StripeGatewayError):
        await gateway.webhook_endpoint(mine.id)


async def test_live_key_needs_https(fake: FakeStripe, session: aiohttp.ClientSession) -> None:
    with pytest.raises(StripeGatewayError) as err:
        await StripeGateway("sk_live_x", session, fake.url).create_webhook_endpoint("http://a/h", "w", "")
    assert not isinstance(err.value, StripeAuthError)
    assert not fake.webhook_endpoints


@pytest.mark.parametrize(
    ("key", "missing"),
    [
        ("sk_test_x", []),
        ("rk_test_all", []),
        ("rk_test_no-webhook.endpoints_x", ["Webhook Endpoints"]),
        (
            "rk_test_no-refunds-no-checkout-no-payment.links_x",
            ["Payment Links", "Checkout Sessions", "Refunds"],
        ),
        ("rk_test_no-products-no-prices_x", ["Products", "Prices"]),
    ],
)
async def test_missing_permissions_are_named(
    fake: FakeStripe, session: aiohttp.ClientSession, key: str, missing: list[str]
) -> None:
    assert await StripeGateway(key, session, fake.url).missing_permissions() == missing
    every = {name for names in RESTRICTED_KEY_PERMISSIONS.values() for name in names}
    assert set(missing) <= every


async def test_missing_permissions_of_a_rejected_key_is_an_auth_error(
    fake: FakeStripe, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(StripeAuthError):
        await StripeGateway(REJECTED_KEY, session, fake.url).missing_permissions()

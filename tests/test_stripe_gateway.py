"""The Stripe client wrapper: calls against the fake, error mapping, nothing imported late."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import aiohttp
import pytest

from custom_components.arcade_pay.stripe_gateway import (
    StripeAuthError,
    StripeConnectionError,
    StripeGateway,
    StripeGatewayError,
)
from fake_stripe import REJECTED_KEY, FakeStripe


def test_no_stripe_module_is_imported_after_ours() -> None:
    """Stripe's SDK imports lazily; in Home Assistant's event loop that is a blocking call."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        import aiohttp
        from custom_components.arcade_pay.stripe_gateway import StripeGateway
        from custom_components.arcade_pay import payments
        from fake_stripe import FakeStripe, sign

        async def main():
            fake = FakeStripe()
            url = await fake.start()
            before = set(sys.modules)
            async with aiohttp.ClientSession() as session:
                gateway = StripeGateway("sk_test_x", session, url)
                await gateway.account()
                link = await gateway.create_cabinet_link("m1", "M", 100, "usd", 5)
                await gateway.payment_link(link.id)
                await gateway.update_cabinet_link(link.id, link.price_id, 3)
                await gateway.rename_product(link.product_id, "N")
                await gateway.set_link_active(link.id, False)
                delivery = fake.complete_checkout(link.id, 2)
                session_obj = delivery.event["data"]["object"]
                await gateway.session_items(session_obj["id"])
                await gateway.completed_sessions(link.id, 0)
                await gateway.refund(session_obj["payment_intent"])
                payments.verify_and_parse(delivery.body.encode(), delivery.headers["Stripe-Signature"],
                                          fake.webhook_secret)
            await fake.stop()
            print(sorted(m for m in set(sys.modules) - before if m.startswith("stripe")))

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


@pytest.fixture
async def session(socket_enabled: None) -> aiohttp.ClientSession:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_errors_are_translated(session: aiohttp.ClientSession) -> None:
    fake = FakeStripe()
    url = await fake.start()
    try:
        with pytest.raises(StripeAuthError):
            await StripeGateway(REJECTED_KEY, session, url).account()
        fake.fail_next, fake.fail_status = 1, 404
        with pytest.raises(StripeGatewayError) as err:
            await StripeGateway("sk_test_x", session, url).payment_link("plink_x")
        assert not isinstance(err.value, (StripeAuthError, StripeConnectionError))
    finally:
        await fake.stop()
    with pytest.raises(StripeConnectionError):
        await StripeGateway("sk_test_x", session, "http://127.0.0.1:1").account()


async def test_completed_sessions_pages_and_filters(session: aiohttp.ClientSession) -> None:
    fake = FakeStripe()
    url = await fake.start()
    try:
        gateway = StripeGateway("sk_test_x", session, url)
        link = await gateway.create_cabinet_link("m1", "M", 100, "usd", 5)
        other = await gateway.create_cabinet_link("m2", "N", 100, "usd", 5)
        ids = {fake.complete_checkout(link.id, 1).event["data"]["object"]["id"] for _ in range(150)}
        fake.complete_checkout(other.id, 1)
        old = fake.complete_checkout(link.id, 1).event["data"]["object"]
        old["created"] = 1000
        listed = await gateway.completed_sessions(link.id, 2000)
        assert {s["id"] for s in listed} == ids  # two pages of 100, other link and older ones left out
        assert len(fake.api_requests("GET", "/v1/checkout/sessions")) == 2
    finally:
        await fake.stop()

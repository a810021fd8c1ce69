"""The Stripe client wrapper: calls against the fake, error mapping, nothing imported late."""

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import subprocess
import sys
import textwrap

import aiohttp
import pytest

from custom_components.arcade_pay.core.stripe_gateway import (
    RESTRICTED_KEY_PERMISSIONS,
    StripeAuthError,
    StripeConnectionError,
    StripeGateway,
    StripeGatewayError,
)
from fake_stripe import REJECTED_KEY, FakeStripe

ROOT = Path(__file__).resolve().parents[2]


def test_no_stripe_module_is_imported_after_ours() -> None:
    """Stripe's SDK imports lazily; in Home Assistant's event loop that is a blocking call."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        import aiohttp
        from custom_components.arcade_pay.core.stripe_gateway import StripeGateway
        from custom_components.arcade_pay.core import payments
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
                await gateway.checkout_sessions(link.id, 0)
                await gateway.refund(session_obj["payment_intent"], "arcade_pay_refund_x")
                await gateway.refunded_amount(session_obj["payment_intent"])
                endpoint = await gateway.create_webhook_endpoint("https://x.example/h", "w1", "Home")
                await gateway.own_webhook_endpoints("w1")
                await gateway.update_webhook_endpoint(endpoint.id, url="https://y.example/h", enabled=True)
                await gateway.webhook_endpoint(endpoint.id)
                await gateway.delete_webhook_endpoint(endpoint.id)
                await StripeGateway("rk_test_no-refunds_x", session, url).missing_permissions()
                payments.verify_and_parse(delivery.body.encode(), delivery.headers["Stripe-Signature"],
                                          fake.webhook_secret)
            await fake.stop()
            print(sorted(m for m in set(sys.modules) - before if m.startswith("stripe")))

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(map(str, (ROOT, ROOT / "tools")))},
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


async def test_checkout_sessions_pages_and_filters(session: aiohttp.ClientSession) -> None:
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
        listed = await gateway.checkout_sessions(link.id, 2000)
        assert {s["id"] for s in listed} == ids  # two pages of 100, other link and older ones left out
        assert len(fake.api_requests("GET", "/v1/checkout/sessions")) == 2
    finally:
        await fake.stop()


async def test_refunded_amount_counts_refunds_that_give_money_back(session: aiohttp.ClientSession) -> None:
    fake = FakeStripe()
    url = await fake.start()
    try:
        gateway = StripeGateway("sk_test_x", session, url)
        link = await gateway.create_cabinet_link("m1", "M", 100, "usd", 5)
        paid = fake.complete_checkout(link.id, 5).event["data"]["object"]
        other = fake.complete_checkout(link.id, 1).event["data"]["object"]
        assert await gateway.refunded_amount(paid["payment_intent"]) == 0
        fake.refund_session(paid["id"], 100)
        fake.refund_session(paid["id"], 100, status="pending")  # on its way back: counts
        fake.refund_session(paid["id"], 100, status="failed")
        fake.refund_session(other["id"])
        assert await gateway.refunded_amount(paid["payment_intent"]) == 200
    finally:
        await fake.stop()


def test_restricted_key_permissions_are_documented_where_the_owner_reads_them() -> None:
    """Every permission the gateway's calls need is in the README and the setup form."""
    root = ROOT
    readme = next(
        line for line in (root / "README.md").read_text(encoding="utf-8").splitlines() if "`rk_…`" in line
    )
    strings = json.loads((root / "custom_components/arcade_pay/strings.json").read_text(encoding="utf-8"))
    form = strings["config"]["step"]["user"]["data_description"]["api_key"]
    for access, resources in RESTRICTED_KEY_PERMISSIONS.items():
        for resource in resources:
            assert re.search(rf"{access}:[^;)]*\b{resource}\b", readme), (access, resource, readme)
            assert re.search(rf"{access} access to [^.]*\b{resource}\b", form), (access, resource, form)
    # Refund-undelivered and reconciliation's refund check use the Refunds API.
    assert "Refunds" in RESTRICTED_KEY_PERMISSIONS["write"]


async def test_a_refund_asked_again_with_its_key_refunds_once(session: aiohttp.ClientSession) -> None:
    """A refund whose answer was lost is asked for again with the same key: Stripe answers with the
    first refund (undelivered_refunds.py relies on it)."""
    fake = FakeStripe()
    url = await fake.start()
    try:
        gateway = StripeGateway("sk_test_x", session, url)
        link = await gateway.create_cabinet_link("m1", "M", 100, "usd", 5)
        intent = fake.complete_checkout(link.id, 3).event["data"]["object"]["payment_intent"]
        await gateway.refund(intent, "arcade_pay_refund_cs_1")
        await gateway.refund(intent, "arcade_pay_refund_cs_1")  # The same key: the same refund.
        assert [r["amount"] for r in fake.refunds] == [300]
        assert await gateway.refunded_amount(intent) == 300
        assert fake.idempotency.replayed == ["arcade_pay_refund_cs_1"]
    finally:
        await fake.stop()

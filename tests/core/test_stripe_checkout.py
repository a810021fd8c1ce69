"""Checkout Sessions Arcade Pay opens for a scan, against the fake Stripe (tools/fake_stripe)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
import time

import aiohttp
import pytest

from custom_components.arcade_pay.core.stripe_gateway import StripeGateway, StripeGatewayError
from fake_stripe import FakeStripe


@pytest.fixture
async def fake(socket_enabled: None) -> AsyncGenerator[FakeStripe]:
    fake = FakeStripe()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def gateway(fake: FakeStripe) -> AsyncGenerator[StripeGateway]:
    async with aiohttp.ClientSession() as session:
        yield StripeGateway("sk_test_x", session, fake.url)


async def open_session(gateway: StripeGateway, lines: list[tuple[int, str]], **changes: object) -> str:
    params: dict[str, object] = {
        "machine_id": "galaga",
        "currency": "usd",
        "lines": lines,
        "max_quantity": 10,
        "metadata": {"arcade_pay_offer": "1x200,3x500"},
        "allow_promotion_codes": True,
        "client_reference_id": "arcade_pay-galaga",
        "success_url": "https://ha.test/api/webhook/p?c=tok&s={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://ha.test/api/webhook/p?c=tok&cancelled=1",
        "expires_at": int(time.time()) + 1800,
    } | changes
    created = await gateway.create_checkout_session(**params)  # type: ignore[arg-type]
    return created.id


async def test_a_session_sells_its_lines_and_carries_the_machine(
    fake: FakeStripe, gateway: StripeGateway
) -> None:
    session_id = await open_session(gateway, [(200, "Galaga: 1 credit"), (500, "Galaga: 3 credits")])
    session = await gateway.checkout_session(session_id)
    assert session["status"] == "open"
    assert session["payment_link"] is None
    assert session["metadata"] == {"machine_id": "galaga", "arcade_pay_offer": "1x200,3x500"}
    assert session["client_reference_id"] == "arcade_pay-galaga"
    assert fake.session_intent_metadata[session_id] == {"machine_id": "galaga"}
    items = fake.session_items[session_id]
    assert [
        (i["price"]["unit_amount"], i["quantity"], i["adjustable_quantity"]["minimum"]) for i in items
    ] == [
        (200, 1, 0),
        (500, 1, 0),
    ]

    fake.add_promotion_code("HALF", percent_off=50)
    fake.pay_session(session_id, [1, 2], "half")
    paid = await gateway.checkout_session(session_id)
    assert (paid["status"], paid["payment_status"]) == ("complete", "paid")
    assert (paid["amount_subtotal"], paid["amount_total"], paid["total_details"]["amount_discount"]) == (
        1200,
        600,
        600,
    )
    lines = await gateway.checkout_session_lines(session_id)
    assert [(line.unit_amount, line.quantity) for line in lines] == [(200, 1), (500, 2)]
    assert [s["id"] for s in await gateway.checkout_sessions_since(int(time.time()) - 60)] == [session_id]


async def test_expiring_closes_an_open_session_and_returns_a_paid_one_as_it_is(
    gateway: StripeGateway,
) -> None:
    open_id = await open_session(gateway, [(200, "1 credit")])
    assert (await gateway.expire_checkout_session(open_id))["status"] == "expired"
    assert (await gateway.expire_checkout_session(open_id))["status"] == "expired"  # Already: as it is.
    assert (await gateway.checkout_session(open_id))["status"] == "expired"


async def test_a_lifetime_stripe_refuses_is_a_gateway_error(gateway: StripeGateway) -> None:
    with pytest.raises(StripeGatewayError):
        await open_session(gateway, [(200, "1 credit")], expires_at=int(time.time()) + 60)


async def test_the_checkout_page_pays_and_sends_the_player_back(
    fake: FakeStripe, gateway: StripeGateway
) -> None:
    fake.add_promotion_code("TEN", amount_off=100)
    session_id = await open_session(gateway, [(200, "Galaga: 1 credit"), (500, "Galaga: 3 credits")])
    async with aiohttp.ClientSession() as browser:
        async with browser.get(f"{fake.url}/checkout/{session_id}") as page:
            text = await page.text()
        assert "Promotion code" in text
        assert "Cancel" in text
        form = aiohttp.FormData([("quantity", "0"), ("quantity", "1"), ("promotion_code", "NOPE")])
        async with browser.post(f"{fake.url}/checkout/{session_id}", data=form, allow_redirects=False) as bad:
            assert bad.status == 303
            assert "error=" in bad.headers["Location"]
        assert fake.sessions[session_id]["status"] == "open"  # An unknown code charges nothing.
        form = aiohttp.FormData([("quantity", "0"), ("quantity", "1"), ("promotion_code", "ten")])
        async with browser.post(
            f"{fake.url}/checkout/{session_id}", data=form, allow_redirects=False
        ) as paid:
            assert paid.status == 303
            assert paid.headers["Location"] == f"https://ha.test/api/webhook/p?c=tok&s={session_id}"
        assert (fake.sessions[session_id]["amount_subtotal"], fake.sessions[session_id]["amount_total"]) == (
            500,
            400,
        )
        async with browser.get(f"{fake.url}/checkout/{session_id}") as again:
            assert "cannot be paid" in await again.text()

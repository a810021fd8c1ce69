"""The fake Stripe's refunds, driven through the real ``stripe`` SDK: what is left is refunded, once
per idempotency key (tools/fake_stripe/idempotency.py), as Stripe does."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import ClientSession
import pytest
import stripe

from fake_stripe import FakeStripe


@pytest.fixture
async def fake(socket_enabled: None) -> AsyncIterator[FakeStripe]:
    fake = FakeStripe()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(fake: FakeStripe) -> AsyncIterator[stripe.StripeClient]:
    async with ClientSession() as session:
        yield stripe.StripeClient(
            "sk_test_x",
            http_client=stripe.AIOHTTPClient(session=session),
            base_addresses={"api": fake.url},
            max_network_retries=0,
        )


def paid_intent(fake: FakeStripe, quantity: int = 2) -> tuple[str, str]:
    """A paid session of 2.00 per credit: its id and payment intent."""
    link = fake.add_older_link("m1", 200)
    session = fake.complete_checkout(link["id"], quantity).event["data"]["object"]
    return session["id"], session["payment_intent"]


async def test_the_same_key_gets_the_same_refund_and_refunds_once(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    _, intent = paid_intent(fake)
    options: stripe.RequestOptions = {"idempotency_key": "arcade_pay_refund_cs_1"}
    first = await client.v1.refunds.create_async({"payment_intent": intent}, options)
    again = await client.v1.refunds.create_async({"payment_intent": intent}, options)
    assert again.id == first.id
    assert first.amount == 400
    assert [r["id"] for r in fake.refunds] == [first.id]  # Not a second refund, nor an error.
    assert fake.idempotency.replayed == ["arcade_pay_refund_cs_1"]


async def test_a_saved_refusal_is_replayed_and_other_parameters_are_refused(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    _, intent = paid_intent(fake)
    await client.v1.refunds.create_async({"payment_intent": intent})  # From the dashboard, say.
    options: stripe.RequestOptions = {"idempotency_key": "arcade_pay_refund_cs_2"}
    for _ in range(2):  # Stripe saves errors too: the retry gets the same answer.
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await client.v1.refunds.create_async({"payment_intent": intent}, options)
        assert refused.value.code == "charge_already_refunded"
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.refunds.create_async({"payment_intent": "pi_other"}, options)
    assert len(fake.refunds) == 1


async def test_a_refund_gives_back_what_is_left_and_a_disputed_charge_is_refused(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session_id, intent = paid_intent(fake)
    fake.refund_session(session_id, amount=150)  # Part of it, from the dashboard.
    refund = await client.v1.refunds.create_async({"payment_intent": intent})
    assert refund.amount == 250
    other_session, other_intent = paid_intent(fake)
    fake.dispute_event(other_session)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.refunds.create_async({"payment_intent": other_intent})
    assert refused.value.code == "charge_disputed"


async def test_a_simulated_outage_saves_nothing(fake: FakeStripe, client: stripe.StripeClient) -> None:
    """Stripe saves no answer for a request whose execution never began: the retry runs."""
    _, intent = paid_intent(fake)
    options: stripe.RequestOptions = {"idempotency_key": "arcade_pay_refund_cs_3"}
    fake.fail_next = 1
    with pytest.raises(stripe.APIError):
        await client.v1.refunds.create_async({"payment_intent": intent}, options)
    refund = await client.v1.refunds.create_async({"payment_intent": intent}, options)
    assert [r["id"] for r in fake.refunds] == [refund.id]

"""The fake Stripe's webhook endpoint API, driven through the real ``stripe`` SDK.

Arcade Pay's one-step setup creates, finds, updates and deletes its endpoint through
this API; the fake must answer as Stripe does (tools/fake_stripe/webhook_endpoints.py) and deliver
each event only where Stripe would, signed with that endpoint's secret.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from typing import Any

from aiohttp import ClientSession, web
import pytest
import stripe

from fake_stripe import FakeStripe, sign
from fake_stripe.webhook_endpoints import MAX_ENDPOINTS

EVENTS = ["checkout.session.completed", "charge.refunded"]


@pytest.fixture
async def fake(socket_enabled: None) -> AsyncIterator[FakeStripe]:
    fake = FakeStripe()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def session(socket_enabled: None) -> AsyncIterator[ClientSession]:
    async with ClientSession() as client:
        yield client


def client_for(fake: FakeStripe, session: ClientSession, key: str = "sk_test_x") -> stripe.StripeClient:
    return stripe.StripeClient(
        key, http_client=stripe.AIOHTTPClient(session=session), base_addresses={"api": fake.url}
    )


class Receiver:
    """A local HTTP server standing in for Home Assistant's webhook: it records what it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []  # (body, Stripe-Signature)
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append((await request.text(), request.headers["Stripe-Signature"]))
        return web.Response(status=200)


@pytest.fixture
async def receiver(socket_enabled: None) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def create(client: stripe.StripeClient, url: str, **extra: Any) -> stripe.WebhookEndpoint:
    params: dict[str, Any] = {"url": url, "enabled_events": EVENTS} | extra
    return await client.v1.webhook_endpoints.create_async(params)  # type: ignore[arg-type]


async def test_create_returns_its_own_secret_once(fake: FakeStripe, session: ClientSession) -> None:
    client = client_for(fake, session)
    first = await create(
        client,
        "https://ha.example/api/webhook/a",
        description="Arcade Pay (Home Assistant)",
        metadata={"arcade_pay_entry_id": "entry-1"},
        api_version="2025-03-31.basil",
    )
    second = await create(client, "https://ha.example/api/webhook/b")
    assert first.secret.startswith("whsec_")
    assert first.secret != second.secret != fake.webhook_secret
    assert (first.enabled_events, first.status, first.description) == (
        EVENTS,
        "enabled",
        "Arcade Pay (Home Assistant)",
    )
    assert (first.metadata.to_dict(), first.api_version) == (
        {"arcade_pay_entry_id": "entry-1"},
        "2025-03-31.basil",
    )
    retrieved = await client.v1.webhook_endpoints.retrieve_async(first.id)
    listed = await client.v1.webhook_endpoints.list_async()
    assert retrieved.url == "https://ha.example/api/webhook/a"
    assert "secret" not in retrieved
    assert [e.id for e in listed.data] == [first.id, second.id]
    assert all("secret" not in e for e in listed.data)


async def test_update_changes_what_it_names_and_delete_forgets(
    fake: FakeStripe, session: ClientSession
) -> None:
    client = client_for(fake, session)
    endpoint = await create(client, "https://old.example/hook", metadata={"a": "1", "b": "2"})
    updated = await client.v1.webhook_endpoints.update_async(
        endpoint.id,
        {"url": "https://new.example/hook", "disabled": True, "metadata": {"a": "", "c": "3"}},
    )
    assert (updated.url, updated.status, updated.enabled_events) == (
        "https://new.example/hook",
        "disabled",
        EVENTS,
    )
    assert updated.metadata.to_dict() == {"b": "2", "c": "3"}
    assert "secret" not in updated
    enabled = await client.v1.webhook_endpoints.update_async(endpoint.id, {"disabled": False})
    assert enabled.status == "enabled"
    deleted = await client.v1.webhook_endpoints.delete_async(endpoint.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.webhook_endpoints.retrieve_async(endpoint.id)
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    assert fake.webhook_endpoints == {}


@pytest.mark.parametrize(
    ("key", "params", "code"),
    [
        ("sk_test_x", {"enabled_events": EVENTS}, "parameter_missing"),
        ("sk_test_x", {"url": "https://ha.example/hook"}, "parameter_missing"),
        ("sk_test_x", {"url": "ftp://ha.example/hook", "enabled_events": EVENTS}, "url_invalid"),
        ("sk_live_x", {"url": "http://ha.example/hook", "enabled_events": EVENTS}, "url_invalid"),
        ("rk_live_x", {"url": "http://ha.example/hook", "enabled_events": EVENTS}, "url_invalid"),
    ],
    ids=["no url", "no events", "not http", "live key, http", "live restricted key, http"],
)
async def test_create_refuses_what_stripe_refuses(
    fake: FakeStripe, session: ClientSession, key: str, params: dict[str, Any], code: str
) -> None:
    client = client_for(fake, session, key)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.webhook_endpoints.create_async(params)  # type: ignore[arg-type]
    assert (refused.value.http_status, refused.value.code) == (400, code)
    assert fake.webhook_endpoints == {}


async def test_a_live_key_registers_https(fake: FakeStripe, session: ClientSession) -> None:
    endpoint = await create(client_for(fake, session, "sk_live_x"), "https://ha.example/hook")
    assert endpoint.url == "https://ha.example/hook"


async def test_no_more_than_stripes_limit_of_endpoints(fake: FakeStripe, session: ClientSession) -> None:
    client = client_for(fake, session)
    for index in range(MAX_ENDPOINTS):
        await create(client, f"https://ha.example/hook/{index}")
    with pytest.raises(stripe.InvalidRequestError):
        await create(client, "https://ha.example/one-too-many")
    assert len(fake.webhook_endpoints) == MAX_ENDPOINTS


async def test_events_go_where_stripe_sends_them_signed_with_each_secret(
    fake: FakeStripe, session: ClientSession, receiver: Receiver
) -> None:
    client = client_for(fake, session)
    ours = await create(client, receiver.url)  # checkout completed and refunds only
    disabled = await create(client, receiver.url + "?disabled")
    await client.v1.webhook_endpoints.update_async(disabled.id, {"disabled": True})
    by_hand = fake.add_webhook_endpoint(receiver.url + "?by-hand")  # every event, the shared secret
    link = fake.add_older_link("m1", 100)

    paid = fake.complete_checkout(link["id"], 2)
    assert await fake.deliver(paid) == [200, 200]  # ours and by hand; not the disabled one
    later = fake.complete_checkout(link["id"], 1, event_type="checkout.session.async_payment_succeeded")
    assert await fake.deliver(later) == [200]  # by hand only: ours did not ask for it

    (body, ours_signature), (_, by_hand_signature), (later_body, _) = receiver.received
    assert json.loads(body)["id"] == paid.event["id"]
    timestamp = int(ours_signature.split(",")[0].removeprefix("t="))
    assert ours_signature == sign(body, ours.secret, timestamp)
    assert by_hand_signature == paid.headers["Stripe-Signature"]  # signed with fake.webhook_secret
    assert by_hand["secret"] == fake.webhook_secret
    assert json.loads(later_body)["type"] == "checkout.session.async_payment_succeeded"


async def test_an_endpoint_stripe_disabled_receives_nothing(
    fake: FakeStripe, session: ClientSession, receiver: Receiver
) -> None:
    endpoint = await create(client_for(fake, session), receiver.url)
    fake.disable_endpoint(endpoint.id)
    retrieved = await client_for(fake, session).v1.webhook_endpoints.retrieve_async(endpoint.id)
    assert retrieved.status == "disabled"
    link = fake.add_older_link("m1", 100)
    assert await fake.deliver(fake.complete_checkout(link["id"], 1)) == []
    assert receiver.received == []

"""Setup, unload, reload, deleting cabinets, diagnostics and system health."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
import json
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    get_system_health_info,
)

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util

from custom_components.arcade_pay import ledger_path
from custom_components.arcade_pay.const import DOMAIN
from custom_components.arcade_pay.core.ledger import PaymentState
from custom_components.arcade_pay.core.stripe_gateway import StripeGateway
from custom_components.arcade_pay.diagnostics import async_get_config_entry_diagnostics
from fake_stripe import ACCOUNT_ID, FakeStripe

from .helpers import (
    API_KEY,
    MACHINE_ID,
    WEBHOOK_ID,
    cabinet_subentry,
    failing_ledger,
    ledger_uses_after_close,
    managed_link,
    payment_state,
    published,
    record_then_wait,
    wait_for,
)


def our_subscriptions(mqtt_mock: MagicMock) -> set[str]:
    """The topics Home Assistant's MQTT client is subscribed to for the cabinets.

    The harness's mock wraps the real client, which it also gives as its return_value.
    """
    client = mqtt_mock.return_value
    return {
        s.topic
        for s in client.subscriptions
        if s.topic.startswith("arcade/machine/") and not _is_mqtt_discovery(s.job.target)
    }


def _is_mqtt_discovery(target: Any) -> bool:
    """MQTT discovery's own subscription to the manifest's topics (it stays: it is not the entry's)."""
    # A partial of a partial (MQTT's error wrapper around its handler): its repr names the handler.
    return "async_integration_message_received" in repr(target)


async def test_unload_and_reload(
    hass: HomeAssistant, setup_entry: MockConfigEntry, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    assert WEBHOOK_ID in hass.data["webhook"]
    assert len(our_subscriptions(mqtt_mock)) == 5  # gameover, status, state, ack and info
    wal = Path(ledger_path(hass, setup_entry) + "-wal")
    assert await hass.async_add_executor_job(wal.exists)  # The ledger is open.
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.NOT_LOADED
    assert WEBHOOK_ID not in hass.data["webhook"]
    assert hass.states.get("sensor.pac_man_credits").state == "unavailable"
    assert our_subscriptions(mqtt_mock) == set()
    # No timer left: the hourly reconciliation does not ask Stripe any more.
    listings = len(fake_stripe.api_requests("GET", "/v1/checkout/sessions"))
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(hours=2))
    await hass.async_block_till_done()
    assert len(fake_stripe.api_requests("GET", "/v1/checkout/sessions")) == listings
    # The last connection to close folds SQLite's write-ahead log back into the file.
    assert not await hass.async_add_executor_job(wal.exists)  # The ledger is closed.
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.pac_man_credits").state == "0"


async def test_ledger_lives_in_config_dir_per_account(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    path = Path(hass.config.path("arcade_pay", f"ledger_{ACCOUNT_ID}.sqlite3"))
    assert path.exists()


async def test_not_ready_without_mqtt(
    hass: HomeAssistant, config_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    config_entry.add_to_hass(hass)
    with patch("homeassistant.components.mqtt.async_wait_for_mqtt_client", return_value=False):
        await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_unreadable_ledger_fails_setup(
    hass: HomeAssistant, mqtt_mock: MagicMock, config_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    # A directory where the ledger file should be: sqlite cannot open it.
    Path(hass.config.path("arcade_pay", f"ledger_{ACCOUNT_ID}.sqlite3")).mkdir(parents=True)
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_ERROR


async def test_deleting_cabinet_deactivates_link_and_removes_device(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> None:
    subentry_id = next(iter(setup_entry.subentries))
    assert hass.config_entries.async_remove_subentry(setup_entry, subentry_id)
    await hass.async_block_till_done()
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{ACCOUNT_ID}_{MACHINE_ID}")}) is None
    assert setup_entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.pac_man_credits") is None


async def test_deleting_cabinet_when_stripe_is_down_still_deletes(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_stripe.fail_next = 10
    hass.config_entries.async_remove_subentry(setup_entry, next(iter(setup_entry.subentries)))
    await hass.async_block_till_done()
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    assert "deactivate it in the Stripe dashboard" in caplog.text
    assert setup_entry.state is ConfigEntryState.LOADED


async def test_many_cabinets(hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe) -> None:
    links = [managed_link(fake_stripe, f"cab-{i}") for i in range(5)]
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=ACCOUNT_ID,
        data={"api_key": API_KEY, "webhook_secret": "whsec_x", "webhook_id": "w"},
        subentries_data=[cabinet_subentry(link, f"cab-{i}", f"Cab {i}") for i, link in enumerate(links)],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert {
        s.entity_id
        for s in hass.states.async_all("sensor")
        if s.entity_id.endswith("_credits") and "pending" not in s.entity_id
    } == {f"sensor.cab_{i}_credits" for i in range(5)}


async def test_remove_entry_deletes_cloudhook(
    hass: HomeAssistant, mqtt_mock: MagicMock, config_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, data=config_entry.data | {"cloudhook_url": "https://x"}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    hass.config.components.add("cloud")
    with patch("homeassistant.components.cloud.async_delete_cloudhook") as delete:
        await hass.config_entries.async_remove(config_entry.entry_id)
    assert delete.call_args.args[1] == WEBHOOK_ID


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    cabinet_link: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    diagnostics = await async_get_config_entry_diagnostics(hass, setup_entry)
    text = json.dumps(diagnostics, default=str)
    for secret in (setup_entry.data["api_key"], setup_entry.data["webhook_secret"], WEBHOOK_ID):
        assert secret not in text
    assert diagnostics["entry"]["data"]["api_key"] == "**REDACTED**"
    assert diagnostics["cabinets"][MACHINE_ID]["payment_link_id"] == cabinet_link["id"]
    assert diagnostics["cabinets"][MACHINE_ID]["credits"] == 0
    assert diagnostics["ledger"] == {"payments_by_state": {}}
    assert diagnostics["delivery"] == {
        "mqtt_connected": True,
        "outstanding_pulses": 0,
        "acknowledging_cabinets": [],
    }
    failing_ledger(monkeypatch, "count_by_state", "ledger is closed")
    diagnostics = await async_get_config_entry_diagnostics(hass, setup_entry)
    assert diagnostics["ledger"] == {"error": "ledger is closed"}


async def test_system_health(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    assert await async_setup_component(hass, "system_health", {})
    await hass.async_block_till_done()
    info = await get_system_health_info(hass, DOMAIN)
    for key, value in info.items():
        if hasattr(value, "__await__"):
            info[key] = await value
    assert info == {
        "mqtt_connected": True,
        "webhooks_registered": "1/1",
        "cabinets_online": "0/1",
        "stripe_reachable": "ok",
    }


# --- unload waits for, or stops, everything the entry started ---------------------------------


def pulses(mqtt_mock: MagicMock) -> list[str]:
    return [json.loads(p)["paymentId"] for t, p, _, _ in published(mqtt_mock) if t.endswith("/coinpulse")]


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - Home Assistant's state has no event to wait on
            await asyncio.sleep(0)


async def test_a_webhook_in_flight_during_a_reload_is_published_once(
    hass: HomeAssistant,
    hass_client_no_auth: Any,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Recorded while the entry reloads: published once, by the old hub or by the new one (reading
    the ledger), never by both."""
    client = await hass_client_no_auth()
    recorded, release = record_then_wait(monkeypatch)
    delivery = fake_stripe.complete_checkout(cabinet_link["id"], quantity=2)
    answer = hass.async_create_task(
        client.post(f"/api/webhook/{WEBHOOK_ID}", data=delivery.body, headers=delivery.headers)
    )
    await wait_for(recorded)
    reload = hass.async_create_task(hass.config_entries.async_reload(setup_entry.entry_id))
    await until(lambda: WEBHOOK_ID not in hass.data["webhook"])  # The unload has begun.
    release.set()
    assert (await answer).status == 200
    assert await reload
    await hass.async_block_till_done(wait_background_tasks=True)
    session = delivery.event["data"]["object"]["id"]
    assert pulses(mqtt_mock) == [session]  # Not by both hubs.
    assert await payment_state(hass, setup_entry, session) is PaymentState.PUBLISHED


async def test_unload_stops_a_reconciliation_in_progress(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hourly reconciliation, waiting for Stripe when the entry unloads, stops there: it must
    not go on afterwards and write to the closed ledger."""
    session = fake_stripe.complete_checkout(cabinet_link["id"]).event["data"]["object"]
    listing, answer = asyncio.Event(), asyncio.Event()

    async def slow_listing(gateway: StripeGateway, *args: Any) -> list[dict[str, Any]]:
        listing.set()
        await answer.wait()
        return [session]

    monkeypatch.setattr(StripeGateway, "checkout_sessions", slow_listing)
    closed_calls = ledger_uses_after_close(monkeypatch)
    freezer.tick(timedelta(hours=1))
    async_fire_time_changed(hass)
    async with asyncio.timeout(5):
        await listing.wait()
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    answer.set()
    await hass.async_block_till_done()
    assert closed_calls == []  # Nothing is recorded in the closed ledger.
    assert pulses(mqtt_mock) == []


async def test_nothing_is_sent_after_unload(
    hass: HomeAssistant,
    hass_client_no_auth: Any,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    mqtt_mock: MagicMock,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A re-send under way when the entry unloads finishes (and is noted) before the ledger
    closes, and leaves no timer behind to send again."""
    subentry = next(iter(setup_entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        setup_entry, subentry, data=subentry.data | {"acknowledges": True}
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    client = await hass_client_no_auth()
    delivery = fake_stripe.complete_checkout(cabinet_link["id"])
    assert (await client.post(f"/api/webhook/{WEBHOOK_ID}", data=delivery.body, headers=delivery.headers)).ok
    await hass.async_block_till_done()
    closed_calls = ledger_uses_after_close(monkeypatch)
    sending, release = asyncio.Event(), asyncio.Event()

    async def slow_publish(*args: Any, **kwargs: Any) -> None:
        sending.set()
        await release.wait()

    mqtt_mock.async_publish.side_effect = slow_publish
    freezer.tick(timedelta(seconds=2.5))
    async_fire_time_changed(hass)  # The re-send falls due.
    async with asyncio.timeout(5):
        await sending.wait()
    unload = hass.async_create_task(hass.config_entries.async_unload(setup_entry.entry_id))
    await until(lambda: WEBHOOK_ID not in hass.data["webhook"])
    release.set()
    assert await unload
    sent = len(pulses(mqtt_mock))
    for _ in range(5):
        freezer.tick(timedelta(seconds=61))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert len(pulses(mqtt_mock)) == sent  # No timer left behind sends it again.
    assert closed_calls == []

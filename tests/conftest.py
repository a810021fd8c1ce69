"""Fixtures: a fake Stripe on localhost, HA's MQTT mock, a set-up Arcade Pay entry; and helpers
for observing it from outside.

Tests observe through states, the entity, device and issue registries, services, MQTT, time
passing and the ledger's file, never through ``entry.runtime_data``: how the integration is
built inside may change without a test changing. Faults are injected on the public classes of
the core (PaymentLedger, StripeGateway), whatever instance the integration holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Generator
import contextlib
from datetime import timedelta
import inspect
import logging
from pathlib import Path
import sqlite3
import threading
from typing import Any
from unittest.mock import MagicMock

# Import ours before Home Assistant starts: the harness's own testing_config has a
# `custom_components` package that would otherwise hide this repository's.
import custom_components.arcade_pay  # noqa: F401  isort: skip

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.http import KEY_HASS

from custom_components.arcade_pay import ledger_path
from custom_components.arcade_pay.const import (
    CONF_ACCOUNT_NAME,
    CONF_ALLOW_PROMOTION_CODES,
    CONF_CREDITS_PER_GAME,
    CONF_CURRENCY,
    CONF_DEFAULT_CURRENCY,
    CONF_HAPPY_HOUR_PACKS,
    CONF_MACHINE_ID,
    CONF_MANAGED_LINK,
    CONF_MAX_QUANTITY,
    CONF_PACKS,
    CONF_PAYMENT_LINK_ID,
    CONF_PAYMENT_LINK_URL,
    CONF_PLAYER_WEBHOOK_ID,
    CONF_PRICE_ID,
    CONF_PRODUCT_ID,
    CONF_QR_TARGET,
    CONF_SCAN_TOKEN,
    CONF_TOPIC_PREFIX,
    CONF_UNIT_AMOUNT,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
    SUBENTRY_CABINET,
)
from custom_components.arcade_pay.core.ledger import (
    LedgerError,
    PaymentLedger,
    PaymentRecord,
    PaymentState,
)
from custom_components.arcade_pay.core.stripe_gateway import ENV_API_BASE
from fake_stripe import ACCOUNT_ID, DEFAULT_WEBHOOK_SECRET, FakeStripe

API_KEY = "sk_test_arcadepay_1234567890"
WEBHOOK_ID = "arcade_pay_test_webhook"
MACHINE_ID = "arcadeCabinet-123"
UNIT_AMOUNT = 200


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/arcade_pay."""


@pytest.fixture(autouse=True)
def isolated_config_dir(hass: HomeAssistant, tmp_path: Path) -> None:
    """Each test gets its own config directory, so that ledgers never leak between tests."""
    hass.config.config_dir = str(tmp_path)


@pytest.fixture(autouse=True)
def fail_on_deprecation_reports(caplog: pytest.LogCaptureFixture) -> Generator[None]:
    """Fail any test during which Home Assistant reports a deprecated use by us.

    Home Assistant warns (helpers.frame) a few releases before it breaks something;
    failing here keeps us working on releases we cannot test yet.
    """
    caplog.set_level(logging.WARNING)
    yield
    reports = [
        record.getMessage()
        for record in caplog.get_records("call") + caplog.get_records("setup")
        if record.levelno >= logging.WARNING
        and ("deprecat" in record.getMessage().lower() or record.name == "homeassistant.helpers.frame")
        and ("arcade_pay" in record.getMessage() or record.name.startswith("custom_components"))
    ]
    assert not reports, f"Home Assistant reported deprecated use: {reports}"


@pytest.fixture
async def mqtt_mock(hass: HomeAssistant, mqtt_mock: MagicMock) -> AsyncGenerator[MagicMock]:
    """Home Assistant's MQTT mock, minus the timers 2025.4's version leaves behind."""
    yield mqtt_mock
    # Unload ours first: unsubscribing at hass teardown would start new debounce timers.
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    await clean_mqtt_client(hass)


async def clean_mqtt_client(hass: HomeAssistant) -> None:
    """Cancel the debounce and misc timers Home Assistant 2025.4's MQTT client leaves behind."""
    client = getattr(hass.data.get("mqtt"), "client", None)
    for debouncer in ("_subscribe_debouncer", "_unsubscribe_debouncer"):
        if (pending := getattr(client, debouncer, None)) is not None:
            await pending.async_cleanup()
    if (timer := getattr(client, "_misc_timer", None)) is not None:
        timer.cancel()
        client._misc_timer = None  # type: ignore[union-attr]


@pytest.fixture
async def fake_stripe(socket_enabled: None, monkeypatch: pytest.MonkeyPatch) -> AsyncGenerator[FakeStripe]:
    """A fake Stripe on a free localhost port, used through ARCADE_PAY_STRIPE_API_BASE."""
    fake = FakeStripe()
    url = await fake.start()
    monkeypatch.setenv(ENV_API_BASE, url)
    yield fake
    await fake.stop()


def cabinet_device_id(hass: HomeAssistant, machine_id: str = MACHINE_ID) -> str:
    """The device registry's id of a cabinet of the test account."""
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{ACCOUNT_ID}_{machine_id}")})
    assert device is not None
    return device.id


def remember_seen(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Write into the entry's ledger that its cabinets showed a sign of life and their links
    were last set active (as before a restart)."""
    ledger = PaymentLedger(ledger_path(hass, entry))
    ledger.open()
    try:
        for subentry in entry.subentries.values():
            machine_id = subentry.data[CONF_MACHINE_ID]
            ledger.set_cabinet_seen(machine_id)
            ledger.set_cabinet_link(machine_id, subentry.data[CONF_PAYMENT_LINK_ID], True, False)
    finally:
        ledger.close()


async def settle(client: TestClient) -> None:
    """Let the work a webhook answer leaves behind (publishing the pulse) finish."""
    await client.app[KEY_HASS].async_block_till_done()


def published(mqtt_mock: MagicMock) -> list[tuple[str, str, int, bool]]:
    """Every (topic, payload, qos, retain) published through HA's MQTT integration so far."""
    return [tuple(c.args) for c in mqtt_mock.async_publish.call_args_list]


def cabinet_subentry(
    link: dict[str, Any], machine_id: str = MACHINE_ID, title: str = "Pac-Man"
) -> ConfigSubentryData:
    """A cabinet subentry for a link the integration created."""
    return ConfigSubentryData(
        data={
            CONF_MACHINE_ID: machine_id,
            CONF_CURRENCY: link["currency"],
            CONF_MAX_QUANTITY: 10,
            CONF_PAYMENT_LINK_ID: link["id"],
            CONF_PAYMENT_LINK_URL: link["url"],
            CONF_MANAGED_LINK: True,
            CONF_UNIT_AMOUNT: UNIT_AMOUNT,
            CONF_PRICE_ID: link["price_id"],
            CONF_PRODUCT_ID: link["product_id"],
        },
        subentry_type=SUBENTRY_CABINET,
        title=title,
        unique_id=machine_id,
    )


def managed_link(
    fake: FakeStripe, machine_id: str = MACHINE_ID, unit_amount: int = UNIT_AMOUNT
) -> dict[str, Any]:
    """Create in the fake what the integration creates for a new cabinet."""
    link = fake.add_older_link(machine_id, unit_amount)
    price = fake.link_items[link["id"]][0]["price"]
    return link | {"price_id": price["id"], "product_id": price["product"]}


@pytest.fixture
def cabinet_link(fake_stripe: FakeStripe) -> dict[str, Any]:
    """The payment link of the test cabinet."""
    return managed_link(fake_stripe)


@pytest.fixture
def config_entry(cabinet_link: dict[str, Any]) -> MockConfigEntry:
    """An Arcade Pay entry with one cabinet."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Fake Arcade",
        unique_id=ACCOUNT_ID,
        data={
            CONF_API_KEY: API_KEY,
            CONF_WEBHOOK_SECRET: DEFAULT_WEBHOOK_SECRET,
            CONF_WEBHOOK_ID: WEBHOOK_ID,
            CONF_ACCOUNT_NAME: "Fake Arcade",
            CONF_DEFAULT_CURRENCY: "usd",
        },
        options={CONF_TOPIC_PREFIX: "arcade/machine", CONF_CREDITS_PER_GAME: 1},
        subentries_data=[cabinet_subentry(cabinet_link)],
    )


def stable_qr_subentry(
    link: dict[str, Any], machine_id: str = MACHINE_ID, title: str = "Pac-Man"
) -> ConfigSubentryData:
    """A cabinet as this version makes one: its QR code on Home Assistant, packs and promotion codes.

    Packs: 3 credits for 5.00, 10 for 15.00; happy hour: 3 for 3.00.
    """
    subentry = cabinet_subentry(link, machine_id, title)
    settings = {
        CONF_QR_TARGET: "home_assistant",
        CONF_PACKS: [[3, 500], [10, 1500]],
        CONF_HAPPY_HOUR_PACKS: [[3, 300]],
        CONF_ALLOW_PROMOTION_CODES: True,
        CONF_SCAN_TOKEN: f"scan-{machine_id}",
    }
    return ConfigSubentryData(
        data={**subentry["data"], **settings},
        subentry_type=SUBENTRY_CABINET,
        title=title,
        unique_id=machine_id,
    )


def stable_qr_entry(entry: MockConfigEntry, *cabinets: ConfigSubentryData) -> MockConfigEntry:
    """``entry`` as this version stores it (1.2: nothing to migrate), with these cabinets.

    A test file of such cabinets defines ``config_entry`` to return it (``setup_entry`` sets it up).
    """
    return MockConfigEntry(
        domain=DOMAIN,
        title=entry.title,
        unique_id=entry.unique_id,
        data={**entry.data, CONF_PLAYER_WEBHOOK_ID: "player_webhook_test"},
        options=entry.options,
        subentries_data=list(cabinets),
        minor_version=2,
    )


@pytest.fixture
async def setup_entry(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
) -> MockConfigEntry:
    """Set up the entry with MQTT mocked and Stripe faked, its cabinets seen before.

    A cabinet that never showed a sign of life takes no payments and gets no pulses
    (issue 7, item 1.4); most tests are about a cabinet that is there, as after a restart.
    Tests of an unseen cabinet set up ``config_entry`` themselves.
    """
    remember_seen(hass, config_entry)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    # Including the start-up reconciliation with Stripe, so that tests start from a quiet state.
    await hass.async_block_till_done(wait_background_tasks=True)
    return config_entry


async def on_ledger_file[T](
    hass: HomeAssistant, entry: MockConfigEntry, read: Callable[[PaymentLedger], T]
) -> T:
    """Run ``use`` on the entry's ledger file through a connection of our own (to read what it
    durably holds, or to write what another process could have written).

    The ledger is a plain SQLite file (WAL: a second connection reads what was committed), so the
    tests observe what survives a restart, not where the running integration keeps its ledger.
    """

    def run() -> T:
        ledger = PaymentLedger(ledger_path(hass, entry))
        ledger.open()
        try:
            return read(ledger)
        finally:
            ledger.close()

    return await hass.async_add_executor_job(run)


async def payment_state(hass: HomeAssistant, entry: MockConfigEntry, payment_id: str) -> PaymentState | None:
    """The payment's state in the entry's ledger file."""
    return await on_ledger_file(hass, entry, lambda ledger: ledger.state_of(payment_id))


async def payment_record(hass: HomeAssistant, entry: MockConfigEntry, payment_id: str) -> PaymentRecord:
    """The payment as the entry's ledger file holds it (it must be there)."""
    record = await on_ledger_file(hass, entry, lambda ledger: ledger.payment(payment_id))
    assert record is not None, f"{payment_id} is not in the ledger"
    return record


async def remembers_acknowledging(hass: HomeAssistant, entry: MockConfigEntry, machine_id: str) -> bool:
    """Whether the ledger remembers (across restarts) that the cabinet acknowledges pulses.

    Read-only, with a plain query: tests poll this, and a connection that writes (as
    ``cabinet_memory`` does) would hold the write lock against the integration's own writes.
    """

    def read() -> bool:
        uri = f"{Path(ledger_path(hass, entry)).as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            row = db.execute(
                "SELECT acknowledges FROM cabinets WHERE machine_id = ?", (machine_id,)
            ).fetchone()
        return bool(row and row[0])

    return await hass.async_add_executor_job(read)


def patch_ledger(monkeypatch: pytest.MonkeyPatch, name: str, replacement: Callable[..., Any]) -> None:
    """Replace a method of every PaymentLedger (the entry's included) until monkeypatch.undo()."""
    monkeypatch.setattr(PaymentLedger, name, replacement)


def failing_ledger(monkeypatch: pytest.MonkeyPatch, name: str, error: str) -> list[Any]:
    """Make one ledger method raise LedgerError(error); return the first argument of each call."""
    calls: list[Any] = []

    def fail(ledger: PaymentLedger, *args: Any) -> Any:
        calls.append(args[0] if args else None)
        raise LedgerError(error)

    patch_ledger(monkeypatch, name, fail)
    return calls


def ledger_uses_after_close(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every call of a ledger's public method between its close and its next open."""
    closed: set[int] = set()
    uses: list[str] = []

    def watched(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(ledger: PaymentLedger, *args: Any, **kwargs: Any) -> Any:
            if name == "close":
                closed.add(id(ledger))
            elif name == "open":
                closed.discard(id(ledger))
            elif id(ledger) in closed:
                uses.append(f"{name} after close")
            return method(ledger, *args, **kwargs)

        return call

    for name, method in inspect.getmembers(PaymentLedger, inspect.isfunction):
        if not name.startswith("_"):
            patch_ledger(monkeypatch, name, watched(name, method))
    return uses


async def run_timers(hass: HomeAssistant, freezer: FrozenDateTimeFactory, elapsed: timedelta) -> None:
    """Let time pass: the timers due run (housekeeping every 30 s, reconciliation every hour),
    and the work they start, in the background too, is waited for.

    Work still under way goes first: firing the timers would also fire the time-outs of its
    Stripe requests in flight.
    """
    await hass.async_block_till_done(wait_background_tasks=True)
    freezer.tick(elapsed)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def reconcile(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """An hour passes: the hourly reconciliation with Stripe runs, and is waited for."""
    await run_timers(hass, freezer, timedelta(hours=1))


def record_then_wait(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Let the ledger commit the payment, then keep its caller waiting until released."""
    real_record = PaymentLedger.record
    recorded, release = threading.Event(), threading.Event()

    def record(ledger: PaymentLedger, payment: Any) -> bool:
        result = real_record(ledger, payment)
        recorded.set()
        release.wait(5)
        return result

    patch_ledger(monkeypatch, "record", record)
    return recorded, release


async def wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 5)


# --- platform snapshot tests
@pytest.fixture
async def platform_entry(
    hass: HomeAssistant,
    monkeypatch: pytest.MonkeyPatch,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    platform: str,
) -> AsyncGenerator[MockConfigEntry]:
    """``setup_entry`` with only ``platform`` (a fixture each platform's test file defines).

    ``snapshot_platform`` wants one platform's entities, so the entry forwards only that one.
    It is unloaded here, before the patch is undone, because unloading reads ``PLATFORMS`` too.
    """
    monkeypatch.setattr("custom_components.arcade_pay.PLATFORMS", [platform])
    remember_seen(hass, config_entry)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    yield config_entry
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
def snapshot(snapshot: Any) -> Any:
    """Syrupy's snapshot with the serializer that writes one set for both Home Assistant versions.

    Also needed because on 2025.4's harness syrupy's own ``snapshot`` fixture shadows Home
    Assistant's, which would write a different format to ``tests/__snapshots__/``.
    """
    # Imported here to keep this block self-contained at the end of the file.
    from .platform_snapshot import ArcadePaySnapshotExtension  # noqa: PLC0415

    return snapshot.use_extension(ArcadePaySnapshotExtension)

"""Fixtures: a fake Stripe on localhost, HA's MQTT mock, a set-up Arcade Pay entry.

The helpers the tests call are in ``tests/helpers``. Tests observe through states, the entity,
device and issue registries, services, MQTT, time passing and the ledger's file, never through
``entry.runtime_data``: how the integration is built inside may change without a test changing.
Faults are injected on the public classes of the core (PaymentLedger, StripeGateway), whatever
instance the integration holds.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
import logging
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

# Import ours before Home Assistant starts: the harness's own testing_config has a
# `custom_components` package that would otherwise hide this repository's.
import custom_components.arcade_pay  # noqa: F401  isort: skip

from aiohttp.test_utils import TestClient
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant

from custom_components.arcade_pay.const import (
    CONF_ACCOUNT_NAME,
    CONF_CREDITS_PER_GAME,
    CONF_DEFAULT_CURRENCY,
    CONF_TOPIC_PREFIX,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
)
from custom_components.arcade_pay.core.stripe_gateway import ENV_API_BASE
from fake_stripe import ACCOUNT_ID, DEFAULT_WEBHOOK_SECRET, FakeStripe

from .helpers import API_KEY, WEBHOOK_ID, cabinet_subentry, clean_mqtt_client, managed_link, remember_seen
from .platform_snapshot import ArcadePaySnapshotExtension


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


@pytest.fixture
async def fake_stripe(socket_enabled: None, monkeypatch: pytest.MonkeyPatch) -> AsyncGenerator[FakeStripe]:
    """A fake Stripe on a free localhost port, used through ARCADE_PAY_STRIPE_API_BASE."""
    fake = FakeStripe()
    url = await fake.start()
    monkeypatch.setenv(ENV_API_BASE, url)
    yield fake
    await fake.stop()


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


@pytest.fixture
async def setup_entry(
    hass: HomeAssistant,
    mqtt_mock: MagicMock,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
) -> MockConfigEntry:
    """Set up the entry with MQTT mocked and Stripe faked, its cabinets seen before.

    A cabinet that never showed a sign of life takes no payments and gets no pulses; most
    tests are about a cabinet that is there, as after a restart.
    Tests of an unseen cabinet set up ``config_entry`` themselves.
    """
    remember_seen(hass, config_entry)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    # Including the start-up reconciliation with Stripe, so that tests start from a quiet state.
    await hass.async_block_till_done(wait_background_tasks=True)
    return config_entry


@pytest.fixture
async def client(hass_client_no_auth: Any, setup_entry: MockConfigEntry) -> TestClient:
    """An HTTP client on Home Assistant (from 127.0.0.1: the local network), the entry set up."""
    return await hass_client_no_auth()


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
    return snapshot.use_extension(ArcadePaySnapshotExtension)

"""The webhook endpoint Arcade Pay made in Stripe: kept at the right URL, enabled, deleted on removal.

URL changes (external URL edited, Home Assistant Cloud connected and disconnected, changed while
Home Assistant was down), an endpoint Stripe disabled or that was deleted (repairs and their
fixes), removal, and rotating the secret from the entry's menu.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from homeassistant.components.cloud import SIGNAL_CLOUD_CONNECTION_STATE, CloudConnectionState
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.components.repairs.issue_handler import async_process_repairs_platforms
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util

from custom_components.arcade_pay.const import (
    CONF_ACCOUNT_NAME,
    CONF_CLOUDHOOK_URL,
    CONF_CREDITS_PER_GAME,
    CONF_DEFAULT_CURRENCY,
    CONF_TOPIC_PREFIX,
    CONF_WEBHOOK_ENDPOINT_ID,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
)
from custom_components.arcade_pay.core.payments import SUBSCRIBED_EVENTS
from custom_components.arcade_pay.core.stripe_endpoints import METADATA_OWNER
from fake_stripe import ACCOUNT_ID, FakeStripe
from fake_stripe.webhook_endpoints import new_endpoint

from .helpers import API_KEY, WEBHOOK_ID, cabinet_subentry, remember_seen

EXTERNAL = "https://arcade.example.com"
CLOUDHOOK = "https://hooks.nabu.casa/abc"
ENDPOINT_ID = "we_arcadepay_test"


def url_on(base: str) -> str:
    return f"{base}/api/webhook/{WEBHOOK_ID}"


@pytest.fixture
def config_entry(
    hass: HomeAssistant, fake_stripe: FakeStripe, cabinet_link: dict[str, Any]
) -> MockConfigEntry:
    """An entry whose endpoint Arcade Pay made in Stripe, on the external URL."""
    hass.config.external_url = EXTERNAL
    params = {
        "url": url_on(EXTERNAL),
        "enabled_events": list(SUBSCRIBED_EVENTS),
        "metadata": {METADATA_OWNER: WEBHOOK_ID},
    }
    endpoint = new_endpoint(ENDPOINT_ID, params, API_KEY, 0)
    fake_stripe.webhook_endpoints[ENDPOINT_ID] = endpoint
    return MockConfigEntry(
        domain=DOMAIN,
        title="Fake Arcade (test mode)",
        unique_id=ACCOUNT_ID,
        data={
            CONF_API_KEY: API_KEY,
            CONF_WEBHOOK_SECRET: endpoint["secret"],
            CONF_WEBHOOK_ENDPOINT_ID: ENDPOINT_ID,
            CONF_WEBHOOK_ID: WEBHOOK_ID,
            CONF_ACCOUNT_NAME: "Fake Arcade",
            CONF_DEFAULT_CURRENCY: "usd",
        },
        options={CONF_TOPIC_PREFIX: "arcade/machine", CONF_CREDITS_PER_GAME: 1},
        subentries_data=[cabinet_subentry(cabinet_link)],
    )


@contextmanager
def cloud(connected: bool) -> Iterator[None]:
    with (
        patch("homeassistant.components.cloud.async_active_subscription", return_value=True),
        patch("homeassistant.components.cloud.async_is_connected", return_value=connected),
        patch("homeassistant.components.cloud.async_create_cloudhook", return_value=CLOUDHOOK),
    ):
        yield


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """What the setup_entry fixture does, after the test changed Stripe or Home Assistant."""
    remember_seen(hass, entry)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    return entry


def issue(hass: HomeAssistant, kind: str, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"{kind}_{entry.entry_id}")


async def fix(hass: HomeAssistant, kind: str, entry: MockConfigEntry) -> dict[str, Any]:
    assert await async_setup_component(hass, "repairs", {})
    await async_process_repairs_platforms(hass)
    manager = repairs_flow_manager(hass)
    assert manager is not None
    flow = await manager.async_init(DOMAIN, data={"issue_id": f"{kind}_{entry.entry_id}"})
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["endpoint"] == ENDPOINT_ID
    result = await manager.async_configure(flow["flow_id"], {})
    await hass.async_block_till_done()
    return dict(result)


async def test_start_up_with_the_right_url_changes_nothing(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    assert fake_stripe.api_requests("GET", f"/v1/webhook_endpoints/{ENDPOINT_ID}")
    assert not fake_stripe.api_requests("POST", "/v1/webhook_endpoints")
    assert issue(hass, "webhook_endpoint_disabled", setup_entry) is None


async def test_edited_external_url_updates_the_endpoint(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    await hass.config.async_update(external_url="https://new.example.com")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fake_stripe.webhook_endpoints[ENDPOINT_ID]["url"] == url_on("https://new.example.com")


async def test_url_changed_while_home_assistant_was_down(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    mqtt_mock: Any,
) -> None:
    hass.config.external_url = "https://moved.example.com"
    await set_up(hass, config_entry)
    assert fake_stripe.webhook_endpoints[ENDPOINT_ID]["url"] == url_on("https://moved.example.com")


async def test_cloud_connected_then_disconnected(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    mqtt_mock: Any,
) -> None:
    hass.config.components.add("cloud")
    with cloud(connected=False):
        await set_up(hass, config_entry)
        assert fake_stripe.webhook_endpoints[ENDPOINT_ID]["url"] == url_on(EXTERNAL)
    with cloud(connected=True):
        async_dispatcher_send(hass, SIGNAL_CLOUD_CONNECTION_STATE, CloudConnectionState.CLOUD_CONNECTED)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert fake_stripe.webhook_endpoints[ENDPOINT_ID]["url"] == CLOUDHOOK
        assert config_entry.data[CONF_CLOUDHOOK_URL] == CLOUDHOOK
    with cloud(connected=False):
        async_dispatcher_send(hass, SIGNAL_CLOUD_CONNECTION_STATE, CloudConnectionState.CLOUD_DISCONNECTED)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert fake_stripe.webhook_endpoints[ENDPOINT_ID]["url"] == url_on(EXTERNAL)


async def test_no_url_any_more_keeps_the_endpoint_and_says_why(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await hass.config.async_update(external_url=None)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fake_stripe.webhook_endpoints[ENDPOINT_ID]["url"] == url_on(EXTERNAL)
    assert "Settings → System → Network" in caplog.text


async def test_disabled_endpoint_is_a_repair_whose_fix_enables_it(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    mqtt_mock: Any,
) -> None:
    fake_stripe.disable_endpoint(ENDPOINT_ID)
    entry = await set_up(hass, config_entry)
    assert issue(hass, "webhook_endpoint_disabled", entry) is not None
    fake_stripe.fail_next, fake_stripe.fail_status = 10, 500
    result = await fix(hass, "webhook_endpoint_disabled", entry)
    assert result["errors"] == {"base": "stripe_failed"}
    fake_stripe.fail_next = 0
    manager = repairs_flow_manager(hass)
    assert manager is not None
    result = dict(await manager.async_configure(result["flow_id"], {}))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert fake_stripe.webhook_endpoints[ENDPOINT_ID]["status"] == "enabled"
    assert issue(hass, "webhook_endpoint_disabled", entry) is None


async def test_endpoint_disabled_later_is_found_by_the_hourly_check(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    fake_stripe.disable_endpoint(ENDPOINT_ID)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(hours=1, seconds=1))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert issue(hass, "webhook_endpoint_disabled", setup_entry) is not None


async def test_deleted_endpoint_is_a_repair_whose_fix_makes_a_new_one(
    hass: HomeAssistant,
    fake_stripe: FakeStripe,
    config_entry: MockConfigEntry,
    mqtt_mock: Any,
) -> None:
    del fake_stripe.webhook_endpoints[ENDPOINT_ID]
    entry = await set_up(hass, config_entry)
    assert issue(hass, "webhook_endpoint_deleted", entry) is not None
    result = await fix(hass, "webhook_endpoint_deleted", entry)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (new,) = fake_stripe.webhook_endpoints.values()
    assert entry.data[CONF_WEBHOOK_ENDPOINT_ID] == new["id"]
    assert entry.data[CONF_WEBHOOK_SECRET] == new["secret"]
    assert new["url"] == url_on(EXTERNAL)
    assert issue(hass, "webhook_endpoint_deleted", entry) is None


async def test_deleted_endpoint_without_a_url_says_what_to_set(
    hass: HomeAssistant, fake_stripe: FakeStripe, config_entry: MockConfigEntry, mqtt_mock: Any
) -> None:
    del fake_stripe.webhook_endpoints[ENDPOINT_ID]
    entry = await set_up(hass, config_entry)
    await hass.config.async_update(external_url=None)
    result = await fix(hass, "webhook_endpoint_deleted", entry)
    assert result["errors"] == {"base": "no_public_url"}
    assert not fake_stripe.webhook_endpoints


async def test_removal_deletes_the_endpoint(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    await hass.config_entries.async_remove(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert ENDPOINT_ID not in fake_stripe.webhook_endpoints


async def test_endpoint_left_behind_on_removal_is_logged_and_a_repair(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_stripe.fail_next, fake_stripe.fail_status = 100, 500
    await hass.config_entries.async_remove(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert ENDPOINT_ID in fake_stripe.webhook_endpoints
    assert ENDPOINT_ID in caplog.text
    left = issue(hass, "webhook_endpoint_left", setup_entry)
    assert left is not None
    assert left.translation_placeholders == {"account": setup_entry.title, "endpoint": ENDPOINT_ID}


async def test_rotate_secret_from_the_entrys_menu(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    old_secret = setup_entry.data[CONF_WEBHOOK_SECRET]
    result = await setup_entry.start_reconfigure_flow(hass)
    assert result["menu_options"] == ["reconfigure_key", "rotate_secret"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "rotate_secret"}
    )
    assert result["step_id"] == "rotate_secret"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["reason"] == "secret_rotated"
    await hass.async_block_till_done(wait_background_tasks=True)
    (new,) = fake_stripe.webhook_endpoints.values()
    assert new["id"] != ENDPOINT_ID
    assert setup_entry.data[CONF_WEBHOOK_ENDPOINT_ID] == new["id"]
    assert setup_entry.data[CONF_WEBHOOK_SECRET] == new["secret"] != old_secret
    assert setup_entry.data[CONF_API_KEY] == API_KEY


async def test_rotate_secret_without_a_url_is_a_form_error(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    hass.config.external_url = None
    result = await setup_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "rotate_secret"}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["errors"] == {"base": "no_public_url"}
    assert list(fake_stripe.webhook_endpoints) == [ENDPOINT_ID]


async def test_rotate_secret_when_stripe_fails_keeps_the_old_endpoint(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    old_secret = setup_entry.data[CONF_WEBHOOK_SECRET]
    result = await setup_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "rotate_secret"}
    )
    fake_stripe.fail_next, fake_stripe.fail_status = 10, 400
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["errors"] == {"base": "stripe_error"}
    assert list(fake_stripe.webhook_endpoints) == [ENDPOINT_ID]
    assert setup_entry.data[CONF_WEBHOOK_SECRET] == old_secret


async def test_stripe_down_during_a_check_changes_nothing(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    fake_stripe.fail_next, fake_stripe.fail_status = 100, 500
    await hass.config.async_update(external_url="https://new.example.com")
    await hass.async_block_till_done(wait_background_tasks=True)
    fake_stripe.fail_next = 0
    assert fake_stripe.webhook_endpoints[ENDPOINT_ID]["url"] == url_on(EXTERNAL)
    assert issue(hass, "webhook_endpoint_deleted", setup_entry) is None
    assert issue(hass, "webhook_endpoint_disabled", setup_entry) is None


async def test_url_stripe_refuses_is_logged_and_kept(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with patch("fake_stripe.webhook_endpoints._check_url", side_effect=_refuse):
        await hass.config.async_update(external_url="https://new.example.com")
        await hass.async_block_till_done(wait_background_tasks=True)
    assert fake_stripe.webhook_endpoints[ENDPOINT_ID]["url"] == url_on(EXTERNAL)
    assert f"Could not point the webhook endpoint {ENDPOINT_ID}" in caplog.text


def _refuse(url: str, api_key: str) -> None:
    from fake_stripe.webhook_endpoints import EndpointError  # noqa: PLC0415

    raise EndpointError(400, f"Invalid URL: {url}", "url_invalid")

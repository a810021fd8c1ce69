"""Connecting Stripe in one step: the API key only; the webhook endpoint made through Stripe's API.

Every URL case (cloud, external, none, live without https), the manual path, restricted keys'
permissions, the test-mode title, reauthentication and reconfiguration.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import MagicMock, patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.arcade_pay.const import (
    CONF_CLOUDHOOK_URL,
    CONF_WEBHOOK_ENDPOINT_ID,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
)
from custom_components.arcade_pay.core.payments import SUBSCRIBED_EVENTS
from custom_components.arcade_pay.core.stripe_endpoints import METADATA_OWNER
from custom_components.arcade_pay.core.stripe_gateway import StripeAccount
from fake_stripe import ACCOUNT_ID, REJECTED_KEY, FakeStripe

from .helpers import API_KEY

EXTERNAL = "https://arcade.example.com"
SECRET = "whsec_pasted_by_hand"
CLOUDHOOK = "https://hooks.nabu.casa/abc"


@contextmanager
def no_setup() -> Iterator[MagicMock]:
    with (
        patch("custom_components.arcade_pay.async_setup_entry", return_value=True) as setup,
        patch("custom_components.arcade_pay.async_unload_entry", return_value=True),
    ):
        yield setup


@contextmanager
def cloud(connected: bool = True, **create: Any) -> Iterator[MagicMock]:
    with (
        patch("homeassistant.components.cloud.async_active_subscription", return_value=True),
        patch("homeassistant.components.cloud.async_is_connected", return_value=connected),
        patch("homeassistant.components.cloud.async_create_cloudhook", **create) as create_cloudhook,
    ):
        yield create_cloudhook


async def submit_key(hass: HomeAssistant, api_key: str = API_KEY) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["step_id"] == "user"
    assert set(result["data_schema"].schema) == {CONF_API_KEY}  # The key, nothing else.
    return await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: api_key})


def only_endpoint(fake: FakeStripe) -> dict[str, Any]:
    assert len(fake.webhook_endpoints) == 1
    return next(iter(fake.webhook_endpoints.values()))


async def test_external_url_one_step(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    hass.config.external_url = EXTERNAL
    hass.config.location_name = "Main Street Arcade"
    with no_setup() as setup:
        result = await submit_key(hass, f"  {API_KEY}\n")
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["description"] == "connected"
    assert result["title"] == "Fake Arcade (test mode)"
    entry = result["result"]
    assert entry.unique_id == ACCOUNT_ID
    assert entry.data[CONF_API_KEY] == API_KEY
    endpoint = only_endpoint(fake_stripe)
    assert entry.data[CONF_WEBHOOK_ENDPOINT_ID] == endpoint["id"]
    assert entry.data[CONF_WEBHOOK_SECRET] == endpoint["secret"]
    assert endpoint["url"] == f"{EXTERNAL}/api/webhook/{entry.data[CONF_WEBHOOK_ID]}"
    assert endpoint["enabled_events"] == list(SUBSCRIBED_EVENTS)
    assert endpoint["metadata"] == {METADATA_OWNER: entry.data[CONF_WEBHOOK_ID]}
    assert "Main Street Arcade" in endpoint["description"]
    assert "Arcade Pay" in endpoint["description"]
    assert endpoint["secret"] not in str(result["description_placeholders"])  # Never shown.
    assert len(setup.mock_calls) == 1


async def test_live_key_title_has_no_test_mode(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    hass.config.external_url = EXTERNAL
    with no_setup():
        result = await submit_key(hass, "sk_live_arcadepay")
    assert result["title"] == "Fake Arcade"
    assert only_endpoint(fake_stripe)["url"].startswith(EXTERNAL)


async def test_cloudhook_when_home_assistant_cloud_is_connected(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    hass.config.components.add("cloud")
    hass.config.external_url = EXTERNAL  # The cloudhook wins.
    with no_setup(), cloud(return_value=CLOUDHOOK) as create:
        result = await submit_key(hass, "rk_test_all_permissions")
    entry = result["result"]
    assert entry.title == "Fake Arcade (test mode)"
    assert entry.data[CONF_CLOUDHOOK_URL] == CLOUDHOOK
    assert create.call_args.args[1] == entry.data[CONF_WEBHOOK_ID]
    assert only_endpoint(fake_stripe)["url"] == CLOUDHOOK


async def test_cloud_not_connected_uses_the_external_url(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    hass.config.components.add("cloud")
    hass.config.external_url = EXTERNAL
    with no_setup(), cloud(connected=False) as create:
        result = await submit_key(hass)
    assert not create.called
    assert CONF_CLOUDHOOK_URL not in result["result"].data
    assert only_endpoint(fake_stripe)["url"].startswith(EXTERNAL)


async def test_cloudhook_failure_is_a_form_error(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    from homeassistant.components.cloud import CloudNotConnected  # noqa: PLC0415

    hass.config.components.add("cloud")
    with cloud(side_effect=CloudNotConnected):
        result = await submit_key(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cloudhook_failed"}
    assert not fake_stripe.webhook_endpoints
    with no_setup(), cloud(return_value=CLOUDHOOK):
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: API_KEY})
    assert result["result"].data[CONF_CLOUDHOOK_URL] == CLOUDHOOK


async def test_no_url_says_what_to_set_then_tries_again(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    hass.config.internal_url = "http://192.168.1.5:8123"  # Stripe cannot reach it: never used.
    result = await submit_key(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "no_public_url"
    assert result["menu_options"] == ["connect", "manual"]
    assert result["description_placeholders"]["network"] == "/config/network"
    assert not fake_stripe.webhook_endpoints
    hass.config.external_url = EXTERNAL
    with no_setup():
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "connect"}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert only_endpoint(fake_stripe)["url"].startswith(EXTERNAL)


async def test_live_key_needs_an_https_url(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    hass.config.external_url = "http://arcade.example.com"
    result = await submit_key(hass, "sk_live_arcadepay")
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "no_public_url_live"
    assert not fake_stripe.webhook_endpoints


async def test_manual_path_keeps_todays_flow(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    result = await submit_key(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "manual"})
    assert result["step_id"] == "manual"
    assert set(result["data_schema"].schema) == {CONF_WEBHOOK_SECRET}
    assert "checkout.session.completed" in result["description_placeholders"]["events"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_WEBHOOK_SECRET: "secret"}
    )
    assert result["errors"] == {CONF_WEBHOOK_SECRET: "invalid_webhook_secret"}
    with no_setup():
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_WEBHOOK_SECRET: f"\t{SECRET} "}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    data = result["result"].data
    assert data[CONF_WEBHOOK_SECRET] == SECRET
    assert CONF_WEBHOOK_ENDPOINT_ID not in data
    assert result["description_placeholders"]["webhook_url"].endswith(f"/api/webhook/{data[CONF_WEBHOOK_ID]}")
    assert not fake_stripe.webhook_endpoints


@pytest.mark.parametrize(
    ("api_key", "errors"),
    [
        ("pk_test_123", {CONF_API_KEY: "invalid_api_key"}),
        (REJECTED_KEY, {"base": "invalid_auth"}),
    ],
)
async def test_key_errors_then_recovers(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe, api_key: str, errors: dict[str, str]
) -> None:
    hass.config.external_url = EXTERNAL
    result = await submit_key(hass, api_key)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    with no_setup():
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: API_KEY})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_cannot_connect(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCADE_PAY_STRIPE_API_BASE", "http://127.0.0.1:1")
    result = await submit_key(hass)
    assert result["errors"] == {"base": "cannot_connect"}


async def test_stripe_error(hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe) -> None:
    fake_stripe.fail_next, fake_stripe.fail_status = 10, 400
    result = await submit_key(hass)
    assert result["errors"] == {"base": "stripe_error"}


async def test_endpoint_refused_is_a_form_error(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    hass.config.external_url = EXTERNAL
    with patch("fake_stripe.webhook_endpoints.MAX_ENDPOINTS", 0):
        result = await submit_key(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "stripe_error"}
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_same_account_aborts(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    result = await submit_key(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_restricted_key_names_the_missing_permissions(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    hass.config.external_url = EXTERNAL
    result = await submit_key(hass, "rk_test_no-refunds-no-prices_x")
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "missing_permissions"}
    assert result["description_placeholders"]["missing"] == "Prices, Refunds"
    assert not fake_stripe.webhook_endpoints


async def test_restricted_key_without_endpoint_permission_offers_the_manual_path(
    hass: HomeAssistant, mqtt_mock: MagicMock, fake_stripe: FakeStripe
) -> None:
    hass.config.external_url = EXTERNAL
    result = await submit_key(hass, "rk_test_no-webhook.endpoints_x")
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "no_endpoint_permission"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "manual"})
    with no_setup():
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_WEBHOOK_SECRET: SECRET}
        )
    assert result["result"].data[CONF_WEBHOOK_SECRET] == SECRET
    assert result["title"] == "Fake Arcade (test mode)"


async def test_reauth_asks_for_the_key_only(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    secret = setup_entry.data[CONF_WEBHOOK_SECRET]
    result = await setup_entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert set(result["data_schema"].schema) == {CONF_API_KEY}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: REJECTED_KEY})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: "rk_test_new"})
    assert result["reason"] == "reauth_successful"
    assert setup_entry.data[CONF_API_KEY] == "rk_test_new"
    assert setup_entry.data[CONF_WEBHOOK_SECRET] == secret


async def test_reconfigure_key_of_another_account_is_refused(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    result = await setup_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["reconfigure_key", "reconfigure_secret"]  # Made by hand.
    # The menu's description names the account (its title cannot: test_translations.py).
    assert result["description_placeholders"] == {"account": setup_entry.title}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reconfigure_key"}
    )
    with patch("custom_components.arcade_pay.core.stripe_gateway.StripeGateway.account") as account:
        account.return_value = StripeAccount("acct_other", "Other", "usd")
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: API_KEY})
    assert result["reason"] == "wrong_account"


async def test_reconfigure_key_keeps_the_secret_and_says_the_mode(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    secret = setup_entry.data[CONF_WEBHOOK_SECRET]
    result = await setup_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reconfigure_key"}
    )
    assert set(result["data_schema"].schema) == {CONF_API_KEY}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: "pk_live_x"})
    assert result["errors"] == {CONF_API_KEY: "invalid_api_key"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "sk_test_rolled"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert setup_entry.data[CONF_API_KEY] == "sk_test_rolled"
    assert setup_entry.data[CONF_WEBHOOK_SECRET] == secret
    assert setup_entry.title == "Fake Arcade (test mode)"


async def test_reconfigure_pasted_secret(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    result = await setup_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reconfigure_secret"}
    )
    assert set(result["data_schema"].schema) == {CONF_WEBHOOK_SECRET}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_WEBHOOK_SECRET: "x"})
    assert result["errors"] == {CONF_WEBHOOK_SECRET: "invalid_webhook_secret"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_WEBHOOK_SECRET: "whsec_rolled"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert setup_entry.data[CONF_WEBHOOK_SECRET] == "whsec_rolled"

"""The config flow's Stripe connection: one step (the endpoint made through Stripe's API) or by hand.

After the API key is checked, Arcade Pay finds the URL Stripe can reach (stripe_connection.py)
and creates the webhook endpoint itself, storing the signing secret Stripe returns; the operator
never sees it. When Home Assistant has no such URL, or a restricted key may not manage webhook
endpoints, a menu says what to change and offers the manual path: an endpoint made by hand in
Stripe's dashboard, whose secret the operator pastes. An HA form cannot offer another step, so
that choice is a menu, whose description names the setting. The steps are ArcadePayConfigFlow's
(config_flow.py); StripeConnection does their work.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from homeassistant.components import webhook
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID

from .const import (
    CONF_ACCOUNT_NAME,
    CONF_CLOUDHOOK_URL,
    CONF_DEFAULT_CURRENCY,
    CONF_PLAYER_WEBHOOK_ID,
    CONF_WEBHOOK_ENDPOINT_ID,
    CONF_WEBHOOK_SECRET,
)
from .core.payments import SUBSCRIBED_EVENTS
from .core.stripe_gateway import StripeAccount, StripeGatewayError
from .core.stripe_scope import key_livemode
from .data import EntryOptions
from .errors import stripe_form_error
from .flow_helpers import PASSWORD
from .helpers import create_gateway, webhook_url
from .stable_ids import new_player_webhook_id
from .stripe_connection import (
    CLOUD_SETTINGS,
    NETWORK_SETTINGS,
    CloudhookFailed,
    async_new_endpoint,
    async_public_url,
)

WEBHOOK_PERMISSION = "Webhook Endpoints"
API_KEY_SCHEMA = vol.Schema({vol.Required(CONF_API_KEY): PASSWORD})
SECRET_SCHEMA = vol.Schema({vol.Required(CONF_WEBHOOK_SECRET): PASSWORD})


def entry_title(account_name: str, api_key: str) -> str:
    """The entry's title: the account's name, and "(test mode)" for a test key."""
    return f"{account_name} (test mode)" if key_livemode(api_key) is False else account_name


class StripeConnection:
    """What the main flow's connection steps (config_flow.py) do once the key is checked.

    The user step stores the key as typed and the account it opens; these build the entry.
    """

    def __init__(self, flow: ConfigFlow) -> None:
        """Show forms and create the entry through ``flow``."""
        self._flow = flow
        self.api_key = ""
        self.account: StripeAccount | None = None
        self._webhook_id: str | None = None
        self._player_webhook_id: str | None = None

    def _entry_data(self) -> dict[str, Any]:
        assert self.account is not None  # The user step opened it before any of these steps.
        if self._webhook_id is None:
            self._webhook_id = webhook.async_generate_id()
            self._player_webhook_id = new_player_webhook_id()
        return {
            CONF_API_KEY: self.api_key,
            CONF_WEBHOOK_ID: self._webhook_id,
            CONF_PLAYER_WEBHOOK_ID: self._player_webhook_id,
            CONF_ACCOUNT_NAME: self.account.name,
            CONF_DEFAULT_CURRENCY: self.account.default_currency or "usd",
        }

    def _title(self) -> str:
        assert self.account is not None
        return entry_title(self.account.name, self.api_key)

    @property
    def live(self) -> bool:
        """Whether the key is a live mode key (Stripe then needs https)."""
        return key_livemode(self.api_key) is True

    async def async_connect(self) -> ConfigFlowResult | None:
        """Create the webhook endpoint through Stripe's API on the URL Stripe can reach.

        None when Stripe cannot reach this Home Assistant: the flow's menus say what to set.
        """
        flow = self._flow
        data = self._entry_data()
        try:
            url, cloudhook = await async_public_url(flow.hass, data[CONF_WEBHOOK_ID], self.api_key)
        except CloudhookFailed:
            return self.key_form({"base": "cloudhook_failed"})
        if url is None:
            return None
        try:
            endpoint = await async_new_endpoint(
                flow.hass, create_gateway(flow.hass, self.api_key), data[CONF_WEBHOOK_ID], url
            )
        except StripeGatewayError as err:
            return self.key_form({"base": stripe_form_error(err)})
        assert endpoint.secret is not None  # Stripe's answer to create carries it.
        data |= {CONF_WEBHOOK_ENDPOINT_ID: endpoint.id, CONF_WEBHOOK_SECRET: endpoint.secret}
        if cloudhook:
            data[CONF_CLOUDHOOK_URL] = cloudhook
        return flow.async_create_entry(
            title=self._title(),
            data=data,
            options=EntryOptions().as_options(),
            description="connected",
            description_placeholders={"webhook_url": url},
        )

    def no_url_menu(self, step_id: str) -> ConfigFlowResult:
        """The menu ``step_id``: what to set so that Stripe reaches Home Assistant, or the manual way."""
        return self._flow.async_show_menu(
            step_id=step_id,
            menu_options=["connect", "manual"],
            description_placeholders={"network": NETWORK_SETTINGS, "cloud": CLOUD_SETTINGS},
        )

    def manual(self, user_input: dict[str, Any] | None) -> ConfigFlowResult:
        """The endpoint made by hand in Stripe's dashboard: paste its signing secret."""
        flow = self._flow
        data = self._entry_data()
        errors: dict[str, str] = {}
        if user_input is not None:
            secret = str(user_input[CONF_WEBHOOK_SECRET]).strip()
            if secret.startswith("whsec_"):
                return flow.async_create_entry(
                    title=self._title(),
                    data=data | {CONF_WEBHOOK_SECRET: secret},
                    options=EntryOptions().as_options(),
                    description_placeholders={
                        "webhook_url": webhook_url(flow.hass, data),
                        "events": ", ".join(SUBSCRIBED_EVENTS),
                    },
                )
            errors[CONF_WEBHOOK_SECRET] = "invalid_webhook_secret"
        return flow.async_show_form(
            step_id="manual",
            data_schema=SECRET_SCHEMA,
            errors=errors,
            description_placeholders={
                "webhook_url": webhook_url(flow.hass, data),
                "events": ", ".join(SUBSCRIBED_EVENTS),
            },
        )

    def key_form(self, errors: dict[str, str], missing: str = "") -> ConfigFlowResult:
        """The key form (again, with what went wrong)."""
        return self._flow.async_show_form(
            step_id="user",
            data_schema=self._flow.add_suggested_values_to_schema(
                API_KEY_SCHEMA, {CONF_API_KEY: self.api_key}
            ),
            errors=errors,
            description_placeholders={"missing": missing},
        )

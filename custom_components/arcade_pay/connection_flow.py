"""The config flow's Stripe connection: one step (the endpoint made through Stripe's API) or by hand.

After the API key is checked, Arcade Pay finds the URL Stripe can reach (stripe_connection.py)
and creates the webhook endpoint itself, storing the signing secret Stripe returns; the operator
never sees it. When Home Assistant has no such URL, or a restricted key may not manage webhook
endpoints, a menu says what to change and offers the manual path: an endpoint made by hand in
Stripe's dashboard, whose secret the operator pastes. An HA form cannot offer another step, so
that choice is a menu, whose description names the setting.
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
from .errors import stripe_form_error
from .flow_helpers import PASSWORD
from .runtime import EntryOptions, create_gateway
from .stable_ids import new_player_webhook_id
from .stripe_connection import (
    CLOUD_SETTINGS,
    NETWORK_SETTINGS,
    CloudhookFailed,
    async_new_endpoint,
    async_public_url,
)
from .webhook import webhook_url

WEBHOOK_PERMISSION = "Webhook Endpoints"
API_KEY_SCHEMA = vol.Schema({vol.Required(CONF_API_KEY): PASSWORD})
SECRET_SCHEMA = vol.Schema({vol.Required(CONF_WEBHOOK_SECRET): PASSWORD})


def entry_title(account_name: str, api_key: str) -> str:
    """The entry's title: the account's name, and "(test mode)" for a test key."""
    return f"{account_name} (test mode)" if key_livemode(api_key) is False else account_name


class StripeConnectionFlow(ConfigFlow):
    """The steps after the key: connect through Stripe's API, or by hand."""

    _api_key: str
    _account: StripeAccount
    _webhook_id: str | None = None
    _player_webhook_id: str | None = None

    def _entry_data(self) -> dict[str, Any]:
        if self._webhook_id is None:
            self._webhook_id = webhook.async_generate_id()
            self._player_webhook_id = new_player_webhook_id()
        return {
            CONF_API_KEY: self._api_key,
            CONF_WEBHOOK_ID: self._webhook_id,
            CONF_PLAYER_WEBHOOK_ID: self._player_webhook_id,
            CONF_ACCOUNT_NAME: self._account.name,
            CONF_DEFAULT_CURRENCY: self._account.default_currency or "usd",
        }

    async def async_step_connect(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Create the webhook endpoint through Stripe's API on the URL Stripe can reach."""
        data = self._entry_data()
        try:
            url, cloudhook = await async_public_url(self.hass, data[CONF_WEBHOOK_ID], self._api_key)
        except CloudhookFailed:
            return self._async_key_form({"base": "cloudhook_failed"})
        if url is None:
            if key_livemode(self._api_key) is True:
                return await self.async_step_no_public_url_live()
            return await self.async_step_no_public_url()
        try:
            endpoint = await async_new_endpoint(
                self.hass, create_gateway(self.hass, self._api_key), data[CONF_WEBHOOK_ID], url
            )
        except StripeGatewayError as err:
            return self._async_key_form({"base": stripe_form_error(err)})
        assert endpoint.secret is not None  # Stripe's answer to create carries it.
        data |= {CONF_WEBHOOK_ENDPOINT_ID: endpoint.id, CONF_WEBHOOK_SECRET: endpoint.secret}
        if cloudhook:
            data[CONF_CLOUDHOOK_URL] = cloudhook
        return self.async_create_entry(
            title=entry_title(self._account.name, self._api_key),
            data=data,
            options=EntryOptions().as_options(),
            description="connected",
            description_placeholders={"webhook_url": url},
        )

    async def async_step_no_public_url(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Stripe cannot reach this Home Assistant: say what to set, or go the manual way."""
        return self._async_no_url_menu("no_public_url")

    async def async_step_no_public_url_live(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The same for a live key, which needs https."""
        return self._async_no_url_menu("no_public_url_live")

    def _async_no_url_menu(self, step_id: str) -> ConfigFlowResult:
        return self.async_show_menu(
            step_id=step_id,
            menu_options=["connect", "manual"],
            description_placeholders={"network": NETWORK_SETTINGS, "cloud": CLOUD_SETTINGS},
        )

    async def async_step_no_endpoint_permission(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A restricted key that may do everything but manage webhook endpoints."""
        return self.async_show_menu(step_id="no_endpoint_permission", menu_options=["user", "manual"])

    async def async_step_manual(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The endpoint made by hand in Stripe's dashboard: paste its signing secret."""
        data = self._entry_data()
        errors: dict[str, str] = {}
        if user_input is not None:
            secret = str(user_input[CONF_WEBHOOK_SECRET]).strip()
            if secret.startswith("whsec_"):
                return self.async_create_entry(
                    title=entry_title(self._account.name, self._api_key),
                    data=data | {CONF_WEBHOOK_SECRET: secret},
                    options=EntryOptions().as_options(),
                    description_placeholders={
                        "webhook_url": webhook_url(self.hass, data),
                        "events": ", ".join(SUBSCRIBED_EVENTS),
                    },
                )
            errors[CONF_WEBHOOK_SECRET] = "invalid_webhook_secret"
        return self.async_show_form(
            step_id="manual",
            data_schema=SECRET_SCHEMA,
            errors=errors,
            description_placeholders={
                "webhook_url": webhook_url(self.hass, data),
                "events": ", ".join(SUBSCRIBED_EVENTS),
            },
        )

    def _async_key_form(self, errors: dict[str, str], missing: str = "") -> ConfigFlowResult:
        """The key form (again, with what went wrong)."""
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                API_KEY_SCHEMA, {CONF_API_KEY: getattr(self, "_api_key", "")}
            ),
            errors=errors,
            description_placeholders={"missing": missing},
        )

"""Reauthentication and reconfiguration of the Stripe connection: each asks only for what changes.

* reauth and "Change the API key": the key only (the webhook endpoint and its secret stay);
* "New signing secret" (an endpoint Arcade Pay made): a new endpoint is made, its secret stored,
  then the old one deleted; nothing to type;
* "Paste a new signing secret" (an endpoint made by hand): the secret only.
The entry's update listener reloads it with what changed. The steps are ArcadePayConfigFlow's
(config_flow.py); AccountChanges does their work.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID

from .connection_flow import API_KEY_SCHEMA, SECRET_SCHEMA, entry_title
from .const import CONF_ACCOUNT_NAME, CONF_WEBHOOK_ENDPOINT_ID, CONF_WEBHOOK_SECRET
from .core.stripe_gateway import StripeGatewayError
from .errors import stripe_form_error
from .helpers import create_gateway
from .stripe_connection import CloudhookFailed, async_new_endpoint, async_public_url


class AccountChanges:
    """What the main flow's reauth and reconfigure steps (config_flow.py) do to the entry."""

    def __init__(self, flow: ConfigFlow) -> None:
        """Show forms and abort through ``flow``."""
        self._flow = flow

    def menu(self, entry: ConfigEntry) -> ConfigFlowResult:
        """Offer what can change: the key, or the webhook signing secret."""
        secret_step = "rotate_secret" if CONF_WEBHOOK_ENDPOINT_ID in entry.data else "reconfigure_secret"
        return self._flow.async_show_menu(
            step_id="reconfigure",
            menu_options=["reconfigure_key", secret_step],
            description_placeholders={"account": entry.title},
        )

    async def async_key(
        self, step_id: str, entry: ConfigEntry, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Ask for a new key for the same account (reauth, or "Change the API key")."""
        flow = self._flow
        errors: dict[str, str] = {}
        if user_input is not None:
            api_key = str(user_input[CONF_API_KEY]).strip()
            if not api_key.startswith(("sk_", "rk_")):
                errors[CONF_API_KEY] = "invalid_api_key"
            else:
                try:
                    account = await create_gateway(flow.hass, api_key).account()
                except StripeGatewayError as err:
                    errors["base"] = stripe_form_error(err)
                else:
                    await flow.async_set_unique_id(account.id)
                    flow._abort_if_unique_id_mismatch(reason="wrong_account")
                    self._update(entry, {CONF_API_KEY: api_key}, api_key)
                    return flow.async_abort(
                        reason="reauth_successful"
                        if step_id == "reauth_confirm"
                        else "reconfigure_successful"
                    )
        return flow.async_show_form(
            step_id=step_id,
            data_schema=API_KEY_SCHEMA,
            errors=errors,
            description_placeholders={"account": entry.title},
        )

    async def async_rotate_secret(
        self, entry: ConfigEntry, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Replace the endpoint Arcade Pay made by a new one with a new secret."""
        hass = self._flow.hass
        errors: dict[str, str] = {}
        if user_input is not None:
            api_key = entry.data[CONF_API_KEY]
            try:
                url, _ = await async_public_url(hass, entry.data[CONF_WEBHOOK_ID], api_key, entry.data)
                if url is None:
                    errors["base"] = "no_public_url"
                else:
                    gateway = create_gateway(hass, api_key)
                    new = await async_new_endpoint(hass, gateway, entry.data[CONF_WEBHOOK_ID], url)
                    self._update(entry, {CONF_WEBHOOK_ENDPOINT_ID: new.id, CONF_WEBHOOK_SECRET: new.secret})
                    return self._flow.async_abort(reason="secret_rotated")
            except CloudhookFailed:
                errors["base"] = "cloudhook_failed"
            except StripeGatewayError as err:
                errors["base"] = stripe_form_error(err)
        return self._flow.async_show_form(
            step_id="rotate_secret", errors=errors, description_placeholders={"account": entry.title}
        )

    def new_secret(self, entry: ConfigEntry, user_input: dict[str, Any] | None) -> ConfigFlowResult:
        """Paste the new secret of an endpoint made by hand."""
        errors: dict[str, str] = {}
        if user_input is not None:
            secret = str(user_input[CONF_WEBHOOK_SECRET]).strip()
            if secret.startswith("whsec_"):
                self._update(entry, {CONF_WEBHOOK_SECRET: secret})
                return self._flow.async_abort(reason="reconfigure_successful")
            errors[CONF_WEBHOOK_SECRET] = "invalid_webhook_secret"
        return self._flow.async_show_form(
            step_id="reconfigure_secret",
            data_schema=SECRET_SCHEMA,
            errors=errors,
            description_placeholders={"account": entry.title},
        )

    def _update(self, entry: ConfigEntry, changes: dict[str, Any], api_key: str | None = None) -> None:
        # async_update_and_abort is 2025.5+; the entry's update listener reloads it.
        title = entry.title
        if api_key is not None and CONF_ACCOUNT_NAME in entry.data:
            title = entry_title(entry.data[CONF_ACCOUNT_NAME], api_key)
        self._flow.hass.config_entries.async_update_entry(entry, title=title, data=entry.data | changes)

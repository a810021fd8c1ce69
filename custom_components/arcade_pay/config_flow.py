"""Set up Arcade Pay from the UI: the Stripe account, options, and cabinets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import ClientError
import voluptuous as vol

from homeassistant.components import cloud, mqtt, webhook
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID
from homeassistant.core import callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)

from .cabinet_discovery_flow import CabinetDiscoveryFlow
from .cabinet_flow import CabinetSubentryFlow
from .const import (
    CONF_ACCOUNT_NAME,
    CONF_CLOUDHOOK_URL,
    CONF_CREDITS_PER_GAME,
    CONF_DEFAULT_CURRENCY,
    CONF_OFFLINE_MINUTES,
    CONF_REFUND_MINUTES,
    CONF_REFUND_UNDELIVERED,
    CONF_TOPIC_PREFIX,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
    LOGGER,
    SUBENTRY_CABINET,
)
from .core.payments import SUBSCRIBED_EVENTS
from .core.protocol import is_valid_topic_prefix
from .core.stripe_gateway import StripeAccount, StripeGatewayError
from .errors import stripe_form_error
from .flow_helpers import PASSWORD, TEXT, machine_ids_of, same_topics, whole_number
from .runtime import EntryOptions, create_gateway
from .webhook import webhook_url

MAX_CREDITS_PER_GAME = 100
MAX_MINUTES = 1440  # A day.
# Unit shown by the box; no min or max, so that range errors are ours and translated.
MINUTES = NumberSelector(NumberSelectorConfig(step=1, mode=NumberSelectorMode.BOX, unit_of_measurement="min"))
WHOLE_NUMBER = NumberSelector(NumberSelectorConfig(step=1, mode=NumberSelectorMode.BOX))
CREDENTIALS = vol.Schema({vol.Required(CONF_API_KEY): PASSWORD, vol.Required(CONF_WEBHOOK_SECRET): PASSWORD})


def _credentials_errors(user_input: Mapping[str, Any]) -> dict[str, str]:
    """Catch pasted keys of the wrong kind before asking Stripe."""
    errors: dict[str, str] = {}
    if not user_input[CONF_API_KEY].startswith(("sk_", "rk_")):
        errors[CONF_API_KEY] = "invalid_api_key"
    if not user_input[CONF_WEBHOOK_SECRET].startswith("whsec_"):
        errors[CONF_WEBHOOK_SECRET] = "invalid_webhook_secret"
    return errors


class ArcadePayConfigFlow(CabinetDiscoveryFlow, domain=DOMAIN):
    """Connect a Stripe account; discovered cabinets join one (cabinet_discovery_flow.py)."""

    VERSION = 1

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Cabinets are subentries of the Stripe account."""
        return {SUBENTRY_CABINET: CabinetSubentryFlow}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> ArcadePayOptionsFlow:
        """Options: MQTT topic prefix and credits per game."""
        return ArcadePayOptionsFlow()

    async def _async_check_key(
        self, user_input: Mapping[str, Any]
    ) -> tuple[StripeAccount | None, dict[str, str]]:
        errors = _credentials_errors(user_input)
        if errors:
            return None, errors
        try:
            return await create_gateway(self.hass, user_input[CONF_API_KEY]).account(), {}
        except StripeGatewayError as err:
            return None, {"base": stripe_form_error(err)}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the Stripe keys and check them."""
        if not self.hass.config_entries.async_loaded_entries(mqtt.DOMAIN):
            return self.async_abort(reason="mqtt_not_configured")
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input = _stripped_credentials(user_input)
            account, errors = await self._async_check_key(user_input)
            if account is not None:
                await self.async_set_unique_id(account.id)
                self._abort_if_unique_id_configured()
                webhook_id = webhook.async_generate_id()
                data: dict[str, Any] = {
                    CONF_API_KEY: user_input[CONF_API_KEY],
                    CONF_WEBHOOK_SECRET: user_input[CONF_WEBHOOK_SECRET],
                    CONF_WEBHOOK_ID: webhook_id,
                    CONF_ACCOUNT_NAME: account.name,
                    CONF_DEFAULT_CURRENCY: account.default_currency or "usd",
                }
                if "cloud" in self.hass.config.components and cloud.async_active_subscription(self.hass):
                    try:
                        data[CONF_CLOUDHOOK_URL] = await cloud.async_create_cloudhook(self.hass, webhook_id)
                    except (HomeAssistantError, ClientError, TimeoutError, ValueError) as err:
                        # Home Assistant Cloud not connected or refusing: say so, keep the form.
                        LOGGER.warning("Home Assistant Cloud could not make a webhook URL: %s", err)
                        errors = {"base": "cloudhook_failed"}
                if not errors:
                    return self._async_create_account_entry(account, data)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(CREDENTIALS, user_input),
            errors=errors,
        )

    def _async_create_account_entry(self, account: StripeAccount, data: dict[str, Any]) -> ConfigFlowResult:
        return self.async_create_entry(
            title=account.name,
            data=data,
            options=EntryOptions().as_options(),
            description_placeholders={
                "webhook_url": webhook_url(self.hass, data),
                "events": ", ".join(SUBSCRIBED_EVENTS),
            },
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Stripe refused the stored key."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for a new key (and secret) for the same account."""
        return await self._async_step_credentials("reauth_confirm", user_input)

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Change the key or the webhook secret (for example after rolling them)."""
        return await self._async_step_credentials("reconfigure", user_input)

    async def _async_step_credentials(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        entry = self._get_reauth_entry() if step_id == "reauth_confirm" else self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input = _stripped_credentials(user_input)
            account, errors = await self._async_check_key(user_input)
            if account is not None:
                await self.async_set_unique_id(account.id)
                self._abort_if_unique_id_mismatch(reason="wrong_account")
                # The entry's update listener reloads it (async_update_and_abort is 2025.5+).
                self.hass.config_entries.async_update_entry(
                    entry,
                    data=entry.data
                    | {
                        CONF_API_KEY: user_input[CONF_API_KEY],
                        CONF_WEBHOOK_SECRET: user_input[CONF_WEBHOOK_SECRET],
                    },
                )
                reason = "reauth_successful" if step_id == "reauth_confirm" else "reconfigure_successful"
                return self.async_abort(reason=reason)
        return self.async_show_form(
            step_id=step_id,
            data_schema=CREDENTIALS,
            errors=errors,
            description_placeholders={"account": entry.title},
        )


class ArcadePayOptionsFlow(OptionsFlow):
    """MQTT topic prefix, credits per game, what to do when cabinets are away."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show and change the options."""
        errors: dict[str, str] = {}
        clash = {"account": "", "machine_id": ""}  # Another entry's cabinet on the same topics.
        if user_input is not None:
            user_input[CONF_TOPIC_PREFIX] = prefix = user_input[CONF_TOPIC_PREFIX].strip().rstrip("/")
            ranges = {
                CONF_CREDITS_PER_GAME: MAX_CREDITS_PER_GAME,
                CONF_OFFLINE_MINUTES: MAX_MINUTES,
                CONF_REFUND_MINUTES: MAX_MINUTES,
            }
            for key, high in ranges.items():
                if (number := whole_number(user_input, key, 0, high, errors)) is not None:
                    user_input[key] = number
            if not is_valid_topic_prefix(prefix):
                errors[CONF_TOPIC_PREFIX] = "invalid_topic_prefix"
            elif other := same_topics(
                self.hass, self.config_entry.entry_id, prefix, machine_ids_of(self.config_entry)
            ):
                errors[CONF_TOPIC_PREFIX] = "topic_prefix_taken"
                clash = {"account": other[0], "machine_id": other[1]}
            if not errors and user_input[CONF_REFUND_UNDELIVERED] and user_input[CONF_REFUND_MINUTES] < 1:
                errors[CONF_REFUND_MINUTES] = "refund_too_soon"
            if not errors:
                return self.async_create_entry(data=user_input)
        current = EntryOptions.of(self.config_entry.options).as_options()
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_TOPIC_PREFIX): TEXT,
                        vol.Required(CONF_CREDITS_PER_GAME): WHOLE_NUMBER,
                        vol.Required(CONF_OFFLINE_MINUTES): MINUTES,
                        vol.Required(CONF_REFUND_UNDELIVERED): BooleanSelector(),
                        vol.Required(CONF_REFUND_MINUTES): MINUTES,
                    }
                ),
                user_input or current,
            ),
            errors=errors,
            description_placeholders={
                "webhook_url": webhook_url(self.hass, self.config_entry.data),
                "max_credits_per_game": str(MAX_CREDITS_PER_GAME),
                "max_minutes": str(MAX_MINUTES),
            }
            | clash,
        )


def _stripped_credentials(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Keys pasted from Stripe's dashboard often carry a space or newline at either end."""
    return {key: str(value).strip() for key, value in user_input.items()}

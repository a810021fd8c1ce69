"""Set up Arcade Pay from the UI: the Stripe account, options, and cabinets."""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from homeassistant.components import mqtt
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.const import CONF_API_KEY
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)

from . import entry_migration
from .cabinet_discovery_flow import CabinetDiscoveryFlow
from .cabinet_flow import CabinetSubentryFlow
from .connection_flow import WEBHOOK_PERMISSION
from .const import (
    CONF_CREDITS_PER_GAME,
    CONF_OFFLINE_MINUTES,
    CONF_REFUND_MINUTES,
    CONF_REFUND_UNDELIVERED,
    CONF_TOPIC_PREFIX,
    DOMAIN,
    SUBENTRY_CABINET,
)
from .core.protocol import is_valid_topic_prefix
from .core.stripe_gateway import StripeGatewayError
from .errors import stripe_form_error
from .flow_helpers import TEXT, machine_ids_of, same_topics, whole_number
from .game_over_webhook import game_over_url
from .reconfigure_flow import ReconfigureSteps
from .runtime import EntryOptions, create_gateway
from .webhook import webhook_url

MAX_CREDITS_PER_GAME = 100
MAX_MINUTES = 1440  # A day.
# Unit shown by the box; no min or max, so that range errors are ours and translated.
MINUTES = NumberSelector(NumberSelectorConfig(step=1, mode=NumberSelectorMode.BOX, unit_of_measurement="min"))
WHOLE_NUMBER = NumberSelector(NumberSelectorConfig(step=1, mode=NumberSelectorMode.BOX))


class ArcadePayConfigFlow(CabinetDiscoveryFlow, ReconfigureSteps, domain=DOMAIN):
    """Connect a Stripe account; discovered cabinets join one (cabinet_discovery_flow.py)."""

    VERSION = entry_migration.VERSION
    MINOR_VERSION = entry_migration.MINOR_VERSION  # Older entries are brought to it there.

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

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the API key only, check it (and a restricted key's permissions), then connect."""
        if not self.hass.config_entries.async_loaded_entries(mqtt.DOMAIN):
            return self.async_abort(reason="mqtt_not_configured")
        if user_input is None:
            return self._async_key_form({})
        self._api_key = api_key = str(user_input[CONF_API_KEY]).strip()
        if not api_key.startswith(("sk_", "rk_")):
            return self._async_key_form({CONF_API_KEY: "invalid_api_key"})
        gateway = create_gateway(self.hass, api_key)
        try:
            account = await gateway.account()
            missing = await gateway.missing_permissions() if api_key.startswith("rk_") else []
        except StripeGatewayError as err:
            return self._async_key_form({"base": stripe_form_error(err)})
        await self.async_set_unique_id(account.id)
        self._abort_if_unique_id_configured()
        self._account = account
        if missing == [WEBHOOK_PERMISSION]:
            # Everything else works: the endpoint can be made by hand.
            return await self.async_step_no_endpoint_permission()
        if missing:
            return self._async_key_form({"base": "missing_permissions"}, ", ".join(missing))
        return await self.async_step_connect()


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
                "game_over_url": game_over_url(self.hass, self.config_entry),
                "max_credits_per_game": str(MAX_CREDITS_PER_GAME),
                "max_minutes": str(MAX_MINUTES),
            }
            | clash,
        )

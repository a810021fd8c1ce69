"""Set up Arcade Pay from the UI: the Stripe account, options, and cabinets.

Every step of the main flow is a method of ArcadePayConfigFlow here. The work of each group of
steps is done by a helper the flow holds: the connection after the key (connection_flow.py),
reauthentication and reconfiguration (reconfigure_flow.py), cabinets found on MQTT
(cabinet_discovery_flow.py). Cabinets are subentries with their own flow (cabinet_flow.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol

from homeassistant.components import mqtt
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
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
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo

from . import entry_migration
from .cabinet_discovery_flow import CabinetDiscovery
from .cabinet_flow import CabinetSubentryFlow
from .connection_flow import WEBHOOK_PERMISSION, StripeConnection
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
from .data import EntryOptions
from .errors import stripe_form_error
from .flow_helpers import TEXT, machine_ids_of, same_topics, whole_number
from .game_over_webhook import game_over_url
from .helpers import create_gateway, webhook_url
from .reconfigure_flow import AccountChanges

MAX_CREDITS_PER_GAME = 100
MAX_MINUTES = 1440  # A day.
# Unit shown by the box; no min or max, so that range errors are ours and translated.
MINUTES = NumberSelector(NumberSelectorConfig(step=1, mode=NumberSelectorMode.BOX, unit_of_measurement="min"))
WHOLE_NUMBER = NumberSelector(NumberSelectorConfig(step=1, mode=NumberSelectorMode.BOX))


class ArcadePayConfigFlow(ConfigFlow, domain=DOMAIN):
    """Connect a Stripe account, change its key or secret, add a cabinet found on MQTT to one."""

    VERSION = entry_migration.VERSION
    MINOR_VERSION = entry_migration.MINOR_VERSION  # Older entries are brought to it there.

    def __init__(self) -> None:
        """Hold the helpers that do the work of each group of steps."""
        super().__init__()
        self._connection = StripeConnection(self)
        self._changes = AccountChanges(self)
        self._discovery = CabinetDiscovery(self)

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

    # --- a new Stripe account (connection_flow.py) ----------------------------------------------

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the API key only, check it (and a restricted key's permissions), then connect."""
        if not self.hass.config_entries.async_loaded_entries(mqtt.DOMAIN):
            return self.async_abort(reason="mqtt_not_configured")
        connection = self._connection
        if user_input is None:
            return connection.key_form({})
        connection.api_key = api_key = str(user_input[CONF_API_KEY]).strip()
        if not api_key.startswith(("sk_", "rk_")):
            return connection.key_form({CONF_API_KEY: "invalid_api_key"})
        gateway = create_gateway(self.hass, api_key)
        try:
            account = await gateway.account()
            missing = await gateway.missing_permissions() if api_key.startswith("rk_") else []
        except StripeGatewayError as err:
            return connection.key_form({"base": stripe_form_error(err)})
        await self.async_set_unique_id(account.id)
        self._abort_if_unique_id_configured()
        connection.account = account
        if missing == [WEBHOOK_PERMISSION]:
            # Everything else works: the endpoint can be made by hand.
            return await self.async_step_no_endpoint_permission()
        if missing:
            return connection.key_form({"base": "missing_permissions"}, ", ".join(missing))
        return await self.async_step_connect()

    async def async_step_connect(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Create the webhook endpoint through Stripe's API on the URL Stripe can reach."""
        if (result := await self._connection.async_connect()) is not None:
            return result
        if self._connection.live:
            return await self.async_step_no_public_url_live()
        return await self.async_step_no_public_url()

    async def async_step_no_public_url(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Stripe cannot reach this Home Assistant: say what to set, or go the manual way."""
        return self._connection.no_url_menu("no_public_url")

    async def async_step_no_public_url_live(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The same for a live key, which needs https."""
        return self._connection.no_url_menu("no_public_url_live")

    async def async_step_no_endpoint_permission(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A restricted key that may do everything but manage webhook endpoints."""
        return self.async_show_menu(step_id="no_endpoint_permission", menu_options=["user", "manual"])

    async def async_step_manual(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The endpoint made by hand in Stripe's dashboard: paste its signing secret."""
        return self._connection.manual(user_input)

    # --- the account's key and secret (reconfigure_flow.py) --------------------------------------

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Stripe refused the stored key."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for a new key for the same account."""
        return await self._changes.async_key("reauth_confirm", self._get_reauth_entry(), user_input)

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Offer what can change: the key, or the webhook signing secret."""
        return self._changes.menu(self._get_reconfigure_entry())

    async def async_step_reconfigure_key(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Change the API key (for example after rolling it in Stripe)."""
        return await self._changes.async_key("reconfigure_key", self._get_reconfigure_entry(), user_input)

    async def async_step_rotate_secret(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Replace the endpoint Arcade Pay made by a new one with a new secret."""
        return await self._changes.async_rotate_secret(self._get_reconfigure_entry(), user_input)

    async def async_step_reconfigure_secret(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Paste the new secret of an endpoint made by hand."""
        return self._changes.new_secret(self._get_reconfigure_entry(), user_input)

    # --- a cabinet found on MQTT (cabinet_discovery_flow.py) -------------------------------------

    async def async_step_mqtt(self, discovery_info: MqttServiceInfo) -> ConfigFlowResult:
        """A cabinet announced itself (or published its status) on MQTT."""
        return await self._discovery.async_discovered(discovery_info)

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm a cabinet that announced itself, with the name it gave."""
        return await self._discovery.async_confirm("discovery_confirm", user_input)

    async def async_step_discovery_confirm_status(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm a cabinet seen only by its status: it gave no name, its form says so."""
        return await self._discovery.async_confirm("discovery_confirm_status", user_input)


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

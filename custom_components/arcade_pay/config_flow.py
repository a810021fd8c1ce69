"""Set up Arcade Pay from the UI: the Stripe account, options, and cabinets."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import voluptuous as vol

from homeassistant.components import cloud, mqtt, webhook
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_API_KEY, CONF_NAME, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from . import create_gateway
from .const import (
    CONF_ACCOUNT_NAME,
    CONF_ACKNOWLEDGES,
    CONF_CLOUDHOOK_URL,
    CONF_CREDITS_PER_GAME,
    CONF_CURRENCY,
    CONF_DEFAULT_CURRENCY,
    CONF_MACHINE_ID,
    CONF_MANAGED_LINK,
    CONF_MAX_QUANTITY,
    CONF_OFFLINE_MINUTES,
    CONF_PAYMENT_LINK_ID,
    CONF_PAYMENT_LINK_URL,
    CONF_PRICE,
    CONF_PRICE_ID,
    CONF_PRODUCT_ID,
    CONF_REFUND_MINUTES,
    CONF_REFUND_UNDELIVERED,
    CONF_TOPIC_PREFIX,
    CONF_UNIT_AMOUNT,
    CONF_WEBHOOK_SECRET,
    DEFAULT_CREDITS_PER_GAME,
    DEFAULT_MAX_QUANTITY,
    DEFAULT_OFFLINE_MINUTES,
    DEFAULT_REFUND_MINUTES,
    DEFAULT_TOPIC_PREFIX,
    DOMAIN,
    SUBENTRY_CABINET,
)
from .payment_links import async_retire_links
from .payments import SUBSCRIBED_EVENTS, from_minor_units, to_minor_units
from .protocol import is_valid_machine_id, is_valid_topic_prefix
from .stripe_gateway import (
    MAX_ADJUSTABLE_QUANTITY,
    PaymentLink,
    StripeAccount,
    StripeAuthError,
    StripeConnectionError,
    StripeGateway,
    StripeGatewayError,
)

PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
TEXT = TextSelector()
PRICE = NumberSelector(NumberSelectorConfig(min=0.01, step="any", mode=NumberSelectorMode.BOX))
QUANTITY = NumberSelector(
    NumberSelectorConfig(min=1, max=MAX_ADJUSTABLE_QUANTITY, step=1, mode=NumberSelectorMode.BOX)
)


def _stripe_error(err: StripeGatewayError) -> str:
    """Form error key for a failed Stripe call."""
    if isinstance(err, StripeAuthError):
        return "invalid_auth"
    if isinstance(err, StripeConnectionError):
        return "cannot_connect"
    return "stripe_error"


def _credentials_errors(user_input: Mapping[str, Any]) -> dict[str, str]:
    """Catch pasted keys of the wrong kind before asking Stripe."""
    errors: dict[str, str] = {}
    if not user_input[CONF_API_KEY].startswith(("sk_", "rk_")):
        errors[CONF_API_KEY] = "invalid_api_key"
    if not user_input[CONF_WEBHOOK_SECRET].startswith("whsec_"):
        errors[CONF_WEBHOOK_SECRET] = "invalid_webhook_secret"
    return errors


def webhook_url(hass: HomeAssistant, entry_data: Mapping[str, Any]) -> str:
    """The URL to give Stripe: the cloudhook, else the external URL, else the path."""
    if url := entry_data.get(CONF_CLOUDHOOK_URL):
        return str(url)
    try:
        return webhook.async_generate_url(hass, entry_data[CONF_WEBHOOK_ID])
    except NoURLAvailableError:
        return webhook.async_generate_path(entry_data[CONF_WEBHOOK_ID])


class ArcadePayConfigFlow(ConfigFlow, domain=DOMAIN):
    """Connect a Stripe account."""

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
            return None, {"base": _stripe_error(err)}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the Stripe keys and check them."""
        if not self.hass.config_entries.async_loaded_entries(mqtt.DOMAIN):
            return self.async_abort(reason="mqtt_not_configured")
        errors: dict[str, str] = {}
        if user_input is not None:
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
                    data[CONF_CLOUDHOOK_URL] = await cloud.async_create_cloudhook(self.hass, webhook_id)
                return self.async_create_entry(
                    title=account.name,
                    data=data,
                    options={
                        CONF_TOPIC_PREFIX: DEFAULT_TOPIC_PREFIX,
                        CONF_CREDITS_PER_GAME: DEFAULT_CREDITS_PER_GAME,
                        CONF_OFFLINE_MINUTES: DEFAULT_OFFLINE_MINUTES,
                        CONF_REFUND_UNDELIVERED: False,
                        CONF_REFUND_MINUTES: DEFAULT_REFUND_MINUTES,
                    },
                    description_placeholders={
                        "webhook_url": webhook_url(self.hass, data),
                        "events": ", ".join(SUBSCRIBED_EVENTS),
                    },
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_API_KEY): PASSWORD,
                        vol.Required(CONF_WEBHOOK_SECRET): PASSWORD,
                    }
                ),
                user_input,
            ),
            errors=errors,
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
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_API_KEY): PASSWORD,
                    vol.Required(CONF_WEBHOOK_SECRET): PASSWORD,
                }
            ),
            errors=errors,
            description_placeholders={"account": entry.title},
        )


MINUTES = NumberSelector(
    NumberSelectorConfig(min=0, max=1440, step=1, mode=NumberSelectorMode.BOX, unit_of_measurement="min")
)


class ArcadePayOptionsFlow(OptionsFlow):
    """MQTT topic prefix, credits per game, what to do when cabinets are away."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show and change the options."""
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input[CONF_TOPIC_PREFIX] = user_input[CONF_TOPIC_PREFIX].strip().rstrip("/")
            for key in (CONF_CREDITS_PER_GAME, CONF_OFFLINE_MINUTES, CONF_REFUND_MINUTES):
                user_input[key] = int(user_input[key])
            if not is_valid_topic_prefix(user_input[CONF_TOPIC_PREFIX]):
                errors[CONF_TOPIC_PREFIX] = "invalid_topic_prefix"
            elif user_input[CONF_REFUND_UNDELIVERED] and user_input[CONF_REFUND_MINUTES] < 1:
                errors[CONF_REFUND_MINUTES] = "refund_too_soon"
            else:
                return self.async_create_entry(data=user_input)
        current = {
            CONF_TOPIC_PREFIX: DEFAULT_TOPIC_PREFIX,
            CONF_CREDITS_PER_GAME: DEFAULT_CREDITS_PER_GAME,
            CONF_OFFLINE_MINUTES: DEFAULT_OFFLINE_MINUTES,
            CONF_REFUND_UNDELIVERED: False,
            CONF_REFUND_MINUTES: DEFAULT_REFUND_MINUTES,
        } | dict(self.config_entry.options)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_TOPIC_PREFIX): TEXT,
                        vol.Required(CONF_CREDITS_PER_GAME): NumberSelector(
                            NumberSelectorConfig(min=0, max=100, step=1, mode=NumberSelectorMode.BOX)
                        ),
                        vol.Required(CONF_OFFLINE_MINUTES): MINUTES,
                        vol.Required(CONF_REFUND_UNDELIVERED): BooleanSelector(),
                        vol.Required(CONF_REFUND_MINUTES): MINUTES,
                    }
                ),
                user_input or current,
            ),
            errors=errors,
            description_placeholders={"webhook_url": webhook_url(self.hass, self.config_entry.data)},
        )


class CabinetSubentryFlow(ConfigSubentryFlow):
    """Add or change a cabinet: a device with its own Stripe payment link."""

    def _gateway(self) -> StripeGateway:
        return create_gateway(self.hass, self._get_entry().data[CONF_API_KEY])

    def _machine_id_errors(self, machine_id: str) -> dict[str, str]:
        if not is_valid_machine_id(machine_id):
            return {CONF_MACHINE_ID: "invalid_machine_id"}
        taken = {s.data.get(CONF_MACHINE_ID) for s in self._get_entry().subentries.values()}
        if machine_id in taken:
            return {CONF_MACHINE_ID: "machine_id_taken"}
        return {}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """New payment link, or one made before (for example by the seed system)."""
        return self.async_show_menu(step_id="user", menu_options=["new_link", "existing_link"])

    async def async_step_new_link(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Create product, price and payment link in Stripe."""
        errors: dict[str, str] = {}
        default_currency = self._get_entry().data.get(CONF_DEFAULT_CURRENCY, "usd")
        if user_input is not None:
            machine_id = user_input[CONF_MACHINE_ID].strip()
            currency = user_input.get(CONF_CURRENCY, default_currency).strip().lower()
            max_quantity = int(user_input[CONF_MAX_QUANTITY])
            errors = self._machine_id_errors(machine_id)
            unit_amount = _unit_amount(user_input[CONF_PRICE], currency, errors)
            if not errors and unit_amount is not None:
                try:
                    link = await self._gateway().create_cabinet_link(
                        machine_id, user_input[CONF_NAME], unit_amount, currency, max_quantity
                    )
                except StripeGatewayError as err:
                    errors["base"] = _stripe_error(err)
                else:
                    return self.async_create_entry(
                        title=user_input[CONF_NAME],
                        data=_link_data(machine_id, link, max_quantity, managed=True),
                        unique_id=machine_id,
                    )
        return self.async_show_form(
            step_id="new_link",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_MACHINE_ID): TEXT,
                        vol.Required(CONF_NAME): TEXT,
                        vol.Required(CONF_PRICE): PRICE,
                        vol.Required(CONF_CURRENCY, default=default_currency): TEXT,
                        vol.Required(CONF_MAX_QUANTITY, default=DEFAULT_MAX_QUANTITY): QUANTITY,
                    }
                ),
                user_input,
            ),
            errors=errors,
        )

    async def async_step_existing_link(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Adopt a payment link that already exists in Stripe."""
        errors: dict[str, str] = {}
        if user_input is not None:
            machine_id = user_input[CONF_MACHINE_ID].strip()
            errors = self._machine_id_errors(machine_id)
            if not errors:
                try:
                    link = await self._gateway().payment_link(user_input[CONF_PAYMENT_LINK_ID].strip())
                except StripeGatewayError as err:
                    errors["base"] = _stripe_error(err)
                    if errors["base"] == "stripe_error":
                        errors = {CONF_PAYMENT_LINK_ID: "payment_link_not_found"}
                else:
                    if link.currency is None:
                        link = _with_currency(link, self._get_entry().data.get(CONF_DEFAULT_CURRENCY, "usd"))
                    return self.async_create_entry(
                        title=user_input[CONF_NAME],
                        data=_link_data(machine_id, link, DEFAULT_MAX_QUANTITY, managed=False),
                        unique_id=machine_id,
                    )
        return self.async_show_form(
            step_id="existing_link",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_MACHINE_ID): TEXT,
                        vol.Required(CONF_NAME): TEXT,
                        vol.Required(CONF_PAYMENT_LINK_ID): TEXT,
                    }
                ),
                user_input,
            ),
            errors=errors,
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Rename a cabinet, or change its price or quantity limit.

        Stripe does not let a payment link change its price, so a new price gets a new
        link (and QR code) and the old link is deactivated.
        """
        subentry = self._get_reconfigure_subentry()
        data = dict(subentry.data)
        managed = bool(data.get(CONF_MANAGED_LINK))
        currency = data[CONF_CURRENCY]
        errors: dict[str, str] = {}
        if user_input is not None:
            name = user_input[CONF_NAME]
            try:
                if managed:
                    data = await self._async_update_managed_link(data, name, user_input, errors)
            except StripeGatewayError as err:
                errors["base"] = _stripe_error(err)
            data[CONF_ACKNOWLEDGES] = user_input[CONF_ACKNOWLEDGES]
            if not errors:
                return self.async_update_and_abort(self._get_entry(), subentry, title=name, data=data)
        schema: dict[vol.Marker, Any] = {vol.Required(CONF_NAME): TEXT}
        suggested: dict[str, Any] = {
            CONF_NAME: subentry.title,
            CONF_ACKNOWLEDGES: await self._async_acknowledges(data),
        }
        if managed:
            schema[vol.Required(CONF_PRICE)] = PRICE
            schema[vol.Required(CONF_MAX_QUANTITY)] = QUANTITY
            suggested[CONF_PRICE] = float(from_minor_units(data[CONF_UNIT_AMOUNT], currency))
            suggested[CONF_MAX_QUANTITY] = data.get(CONF_MAX_QUANTITY, DEFAULT_MAX_QUANTITY)
        schema[vol.Required(CONF_ACKNOWLEDGES)] = BooleanSelector()
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(vol.Schema(schema), user_input or suggested),
            errors=errors,
            description_placeholders={"currency": currency.upper(), "machine_id": data[CONF_MACHINE_ID]},
        )

    async def _async_acknowledges(self, data: Mapping[str, Any]) -> bool:
        """The cabinet's setting, or what the ledger learned when it is not set."""
        if data.get(CONF_ACKNOWLEDGES) is not None:
            return bool(data[CONF_ACKNOWLEDGES])
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return False
        return bool(entry.runtime_data.dispatcher.planner.acknowledges.get(data[CONF_MACHINE_ID], False))

    async def _async_update_managed_link(
        self, data: dict[str, Any], name: str, user_input: Mapping[str, Any], errors: dict[str, str]
    ) -> dict[str, Any]:
        """Apply a reconfigure to a link Arcade Pay created; return the new subentry data."""
        unit_amount = _unit_amount(user_input[CONF_PRICE], data[CONF_CURRENCY], errors)
        max_quantity = int(user_input[CONF_MAX_QUANTITY])
        if unit_amount is None:
            return data
        gateway = self._gateway()
        if name != self._get_reconfigure_subentry().title and data.get(CONF_PRODUCT_ID):
            await gateway.rename_product(data[CONF_PRODUCT_ID], name)
        if unit_amount != data[CONF_UNIT_AMOUNT]:
            link = await gateway.create_cabinet_link(
                data[CONF_MACHINE_ID], name, unit_amount, data[CONF_CURRENCY], max_quantity
            )
            # The old link and its QR code must stop taking money (payment_links.py, the one place).
            if failed := await async_retire_links(gateway, [data[CONF_PAYMENT_LINK_ID]]):
                raise StripeGatewayError(next(iter(failed.values())))
            return _link_data(data[CONF_MACHINE_ID], link, max_quantity, managed=True)
        if max_quantity != data.get(CONF_MAX_QUANTITY):
            await gateway.update_cabinet_link(data[CONF_PAYMENT_LINK_ID], data[CONF_PRICE_ID], max_quantity)
        return data | {CONF_MAX_QUANTITY: max_quantity}


def _unit_amount(price: Any, currency: str, errors: dict[str, str]) -> int | None:
    """Price in minor units, or None with a form error."""
    if len(currency) != 3 or not currency.isalpha():
        errors[CONF_CURRENCY] = "invalid_currency"
        return None
    try:
        # Through str so that 2.1 stays 2.1 and does not become 2.100000000000000088817841970012523.
        return to_minor_units(Decimal(str(price)), currency)
    except ValueError:
        errors[CONF_PRICE] = "invalid_price"
        return None


def _with_currency(link: PaymentLink, currency: str) -> PaymentLink:
    return PaymentLink(
        link.id,
        link.url,
        link.active,
        link.machine_id,
        link.price_id,
        link.product_id,
        link.unit_amount,
        currency,
    )


def _link_data(machine_id: str, link: PaymentLink, max_quantity: int, managed: bool) -> dict[str, Any]:
    return {
        CONF_MACHINE_ID: machine_id,
        CONF_CURRENCY: link.currency,
        CONF_MAX_QUANTITY: max_quantity,
        CONF_PAYMENT_LINK_ID: link.id,
        CONF_PAYMENT_LINK_URL: link.url,
        CONF_MANAGED_LINK: managed,
        CONF_UNIT_AMOUNT: link.unit_amount,
        CONF_PRICE_ID: link.price_id,
        CONF_PRODUCT_ID: link.product_id,
    }

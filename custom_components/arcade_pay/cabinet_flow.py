"""Add or change a cabinet (a config subentry): a device with its own Stripe payment link.

Every form strips what was typed, refuses what Stripe or MQTT would with a translated error, and
states the result in words: price, currency, limit per payment, whether the QR code changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import voluptuous as vol

from homeassistant.config_entries import ConfigEntryState, ConfigSubentryFlow, SubentryFlowResult
from homeassistant.const import CONF_API_KEY, CONF_NAME
from homeassistant.helpers.selector import BooleanSelector

from .cabinet_discovery import withdraw_offer
from .cabinet_settings import cabinet_settings, settings_of, settings_schema, settings_shown
from .const import (
    CONF_ACKNOWLEDGES,
    CONF_CURRENCY,
    CONF_DEFAULT_CURRENCY,
    CONF_MACHINE_ID,
    CONF_MANAGED_LINK,
    CONF_MAX_QUANTITY,
    CONF_NEVER_REPORTS,
    CONF_PAYMENT_LINK_ID,
    CONF_PRICE,
    CONF_PRICE_ID,
    CONF_PRODUCT_ID,
    CONF_QR_TARGET,
    CONF_UNIT_AMOUNT,
    DEFAULT_MAX_QUANTITY,
)
from .core.cabinet_config import QrTarget
from .core.currencies import format_amount, normalize_currency
from .core.pricing import pack_placeholders
from .core.stripe_gateway import MAX_ADJUSTABLE_QUANTITY, StripeGateway, StripeGatewayError
from .errors import stripe_form_error
from .flow_helpers import (
    QUANTITY,
    TEXT,
    async_new_cabinet_link,
    cabinet_errors,
    link_data,
    price_placeholders,
    price_selector,
    stripped,
    summary,
    topic_prefix_of,
    unit_amount_or_error,
    whole_number,
    with_limit,
)
from .helpers import create_gateway
from .issues import async_create_new_qr_code_issue
from .payment_links import async_retire_links


class CabinetSubentryFlow(ConfigSubentryFlow):
    """Add or change a cabinet."""

    _shown_currency: str | None = None  # The price field was last shown in it (new cabinets).

    def _gateway(self) -> StripeGateway:
        return create_gateway(self.hass, self._get_entry().data[CONF_API_KEY])

    def _default_currency(self) -> str:
        return str(self._get_entry().data.get(CONF_DEFAULT_CURRENCY, "usd"))

    def _cabinet_using_link(self, link_id: str) -> str | None:
        """The name of the cabinet of this entry whose payment link is ``link_id``, if any."""
        return next(
            (
                s.title
                for s in self._get_entry().subentries.values()
                if s.data.get(CONF_PAYMENT_LINK_ID) == link_id
            ),
            None,
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """New payment link, or one made before (for example by the earlier system)."""
        return self.async_show_menu(step_id="user", menu_options=["new_link", "existing_link"])

    async def async_step_new_link(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Create product, price and payment link in Stripe."""
        errors: dict[str, str] = {}
        shown = self._shown_currency or self._default_currency()
        clash = {"account": ""}  # The other Stripe account whose cabinet has this machine ID.
        if user_input is not None:
            user_input = stripped(user_input)
            errors = cabinet_errors(self.hass, self._get_entry(), user_input, clash)
            # Packs typed next to another currency's code are read with the price, once shown in it.
            same_currency = normalize_currency(user_input[CONF_CURRENCY]) == shown
            settings = settings_of(user_input, shown, errors if same_currency else {}, clash)
            name, machine_id = user_input[CONF_NAME], user_input[CONF_MACHINE_ID]
            data, shown = await async_new_cabinet_link(
                self._gateway(), machine_id, name, user_input, shown, errors
            )
            self._shown_currency = shown
            if data is not None:
                data |= settings | {CONF_NEVER_REPORTS: user_input[CONF_NEVER_REPORTS]}
                withdraw_offer(self.hass, topic_prefix_of(self._get_entry()), machine_id)
                return self.async_create_entry(
                    title=name,
                    data=data,
                    unique_id=machine_id,
                    description=with_limit("new_link", data[CONF_MAX_QUANTITY]),
                    description_placeholders=summary(name, data),
                )
        return self.async_show_form(
            step_id="new_link",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_MACHINE_ID): TEXT,
                        vol.Required(CONF_NAME): TEXT,
                        vol.Required(CONF_CURRENCY, default=shown.upper()): TEXT,
                        vol.Required(CONF_PRICE): price_selector(shown),
                        vol.Required(CONF_MAX_QUANTITY, default=DEFAULT_MAX_QUANTITY): QUANTITY,
                        vol.Required(CONF_NEVER_REPORTS, default=False): BooleanSelector(),
                    }
                    | settings_schema()
                ),
                user_input,
            ),
            errors=errors,
            description_placeholders=price_placeholders(shown) | pack_placeholders(shown) | clash,
        )

    async def async_step_existing_link(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Adopt a payment link that already exists in Stripe.

        Refused: a link that a cabinet of this entry already uses (compared by link id),
        and a link whose ``metadata.machine_id`` names another machine ID than the one
        entered (payments on it would be credited to that machine, not this one). A link
        without ``machine_id`` metadata is accepted: it is matched by its id alone.
        """
        errors: dict[str, str] = {}
        placeholders = {"owner": "", "link_machine_id": "", "account": ""}  # Who holds the link.
        if user_input is not None:
            user_input = stripped(user_input)
            errors = cabinet_errors(self.hass, self._get_entry(), user_input, placeholders)
            link_id, machine_id = user_input[CONF_PAYMENT_LINK_ID], user_input[CONF_MACHINE_ID]
            if owner := self._cabinet_using_link(link_id):
                errors[CONF_PAYMENT_LINK_ID] = "payment_link_taken"
                placeholders["owner"] = owner
            link = None
            if not errors:
                try:
                    link = await self._gateway().payment_link(link_id)
                except StripeGatewayError as err:
                    errors["base"] = stripe_form_error(err)
                    if errors["base"] == "stripe_error":
                        errors = {CONF_PAYMENT_LINK_ID: "payment_link_not_found"}
            if link is not None and link.machine_id not in (None, machine_id):
                errors[CONF_PAYMENT_LINK_ID] = "payment_link_other_machine"
                placeholders["link_machine_id"] = str(link.machine_id)
            elif link is not None and not errors:
                if link.currency is None:
                    link = replace(link, currency=self._default_currency())
                # Its QR code stays on the link it was adopted for (Stripe holds its prices).
                data = link_data(machine_id, link, DEFAULT_MAX_QUANTITY, managed=False)
                data |= cabinet_settings(QrTarget.PAYMENT_LINK)
                data[CONF_NEVER_REPORTS] = user_input[CONF_NEVER_REPORTS]
                withdraw_offer(self.hass, topic_prefix_of(self._get_entry()), machine_id)
                return self.async_create_entry(
                    title=user_input[CONF_NAME],
                    data=data,
                    unique_id=machine_id,
                    description="existing_link" if link.unit_amount else "existing_link_no_price",
                    description_placeholders=summary(user_input[CONF_NAME], data),
                )
        return self.async_show_form(
            step_id="existing_link",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_MACHINE_ID): TEXT,
                        vol.Required(CONF_NAME): TEXT,
                        vol.Required(CONF_PAYMENT_LINK_ID): TEXT,
                        vol.Required(CONF_NEVER_REPORTS, default=False): BooleanSelector(),
                    }
                ),
                user_input,
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Rename a cabinet, or change its price or quantity limit.

        Stripe does not let a payment link change its price, so a new price gets a new
        link (and QR code), the old link is deactivated, and a repair reminds the operator
        to print the new QR code until they confirm it.
        """
        subentry = self._get_reconfigure_subentry()
        data = dict(subentry.data)
        managed = bool(data.get(CONF_MANAGED_LINK))
        currency = data[CONF_CURRENCY]
        errors: dict[str, str] = {}
        placeholders = {"name": subentry.title, "machine_id": data[CONF_MACHINE_ID]}
        placeholders |= price_placeholders(currency) | pack_placeholders(currency)
        if user_input is not None:
            user_input = stripped(user_input)
            name = user_input[CONF_NAME]
            if not name:
                errors[CONF_NAME] = "name_required"
            old_link = data[CONF_PAYMENT_LINK_ID]
            settings: dict[str, Any] = {}
            if managed:  # Checked before Stripe is asked for anything.
                settings = settings_of(user_input, currency, errors, placeholders)
            try:
                if managed and not errors:
                    data = await self._async_update_managed_link(data, name, user_input, errors) | settings
            except StripeGatewayError as err:
                errors["base"] = stripe_form_error(err)
            if not errors:
                data[CONF_ACKNOWLEDGES] = user_input[CONF_ACKNOWLEDGES]
                data[CONF_NEVER_REPORTS] = user_input[CONF_NEVER_REPORTS]
                self.hass.config_entries.async_update_subentry(
                    self._get_entry(), subentry, title=name, data=data
                )
                if not managed:
                    return self.async_abort(
                        reason="reconfigure_successful_adopted", description_placeholders={"name": name}
                    )
                reason = "reconfigure_successful"
                if data[CONF_PAYMENT_LINK_ID] != old_link:  # A code on Home Assistant stays as printed.
                    reason = "reconfigure_new_qr_code"
                    if data.get(CONF_QR_TARGET) == QrTarget.HOME_ASSISTANT:
                        reason = "reconfigure_same_qr_code"
                    else:
                        async_create_new_qr_code_issue(
                            self.hass, self._get_entry().entry_id, subentry.subentry_id, name
                        )
                return self.async_abort(
                    reason=with_limit(reason, data[CONF_MAX_QUANTITY]),
                    description_placeholders=summary(name, data),
                )
        schema: dict[vol.Marker, Any] = {vol.Required(CONF_NAME): TEXT}
        suggested: dict[str, Any] = {
            CONF_NAME: subentry.title,
            CONF_ACKNOWLEDGES: await self._async_acknowledges(data),
            CONF_NEVER_REPORTS: bool(data.get(CONF_NEVER_REPORTS, False)),
        }
        if managed:
            schema[vol.Required(CONF_PRICE)] = price_selector(currency)
            schema[vol.Required(CONF_MAX_QUANTITY)] = QUANTITY
            suggested[CONF_PRICE] = format_amount(data[CONF_UNIT_AMOUNT], currency)
            suggested[CONF_MAX_QUANTITY] = data.get(CONF_MAX_QUANTITY, DEFAULT_MAX_QUANTITY)
            shown = settings_shown(data, currency)
            schema |= settings_schema(shown)
            suggested |= shown
        schema[vol.Required(CONF_ACKNOWLEDGES)] = BooleanSelector()
        schema[vol.Required(CONF_NEVER_REPORTS)] = BooleanSelector()
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(vol.Schema(schema), user_input or suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_acknowledges(self, data: Mapping[str, Any]) -> bool:
        """The cabinet's setting, or what the ledger learned when it is not set."""
        if data.get(CONF_ACKNOWLEDGES) is not None:
            return bool(data[CONF_ACKNOWLEDGES])
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return False
        return bool(entry.runtime_data.courier.acknowledges(data[CONF_MACHINE_ID]))

    async def _async_update_managed_link(
        self, data: dict[str, Any], name: str, user_input: Mapping[str, Any], errors: dict[str, str]
    ) -> dict[str, Any]:
        """Apply a reconfigure to a link Arcade Pay created; return the new subentry data."""
        unit_amount = unit_amount_or_error(user_input[CONF_PRICE], data[CONF_CURRENCY], errors)
        max_quantity = whole_number(user_input, CONF_MAX_QUANTITY, 1, MAX_ADJUSTABLE_QUANTITY, errors)
        if unit_amount is None or max_quantity is None:
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
                # The cabinet keeps its old link: the new one must not stay behind taking money.
                await async_retire_links(gateway, [link.id])
                raise StripeGatewayError(next(iter(failed.values())))
            return data | link_data(data[CONF_MACHINE_ID], link, max_quantity, managed=True)
        if max_quantity != data.get(CONF_MAX_QUANTITY):
            await gateway.update_cabinet_link(data[CONF_PAYMENT_LINK_ID], data[CONF_PRICE_ID], max_quantity)
        return data | {CONF_MAX_QUANTITY: max_quantity}

"""A discovered cabinet becomes a cabinet of a Stripe account: the work of the config flow's discovery steps.

MQTT discovery (the manifest's topics, default prefix) and each entry's own subscription
(cabinet_discovery.offer_cabinet, any prefix) start it with a cabinet's announcement or its
retained status. It shows up as "Arcade cabinet <name>" under Discovered; its unique id is the
cabinet's topics, so Ignore is remembered and each cabinet is offered once. An announcement
replaces an offer made from the status alone (it has the cabinet's name). Confirming asks only
for the price, currency and limit, then adds the cabinet exactly as the cabinet form does
(flow_helpers.async_new_cabinet_link) as a subentry of the account the user picks. The steps
are ArcadePayConfigFlow's (config_flow.py); CabinetDiscovery does their work.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import voluptuous as vol

from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult, ConfigSubentry
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import SelectOptionDict, SelectSelector, SelectSelectorConfig
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo

from .cabinet_discovery import FoundCabinet, found_cabinet
from .const import (
    CONF_CURRENCY,
    CONF_DEFAULT_CURRENCY,
    CONF_MAX_QUANTITY,
    CONF_NEVER_REPORTS,
    CONF_PAYMENT_LINK_ID,
    CONF_PRICE,
    DEFAULT_MAX_QUANTITY,
    DOMAIN,
    SUBENTRY_CABINET,
)
from .flow_helpers import (
    QUANTITY,
    TEXT,
    async_new_cabinet_link,
    machine_ids_of,
    price_placeholders,
    price_selector,
    stripped,
    summary,
    topic_prefix_of,
    with_limit,
)
from .helpers import create_gateway
from .payment_links import async_retire_links

CONF_ACCOUNT = "account"


class CabinetDiscovery:
    """What the main flow's discovery steps (config_flow.py) do with a cabinet found on MQTT."""

    def __init__(self, flow: ConfigFlow) -> None:
        """Show forms and abort through ``flow``."""
        self._flow = flow
        self._found: FoundCabinet | None = None
        self._shown_currency: str | None = None

    @property
    def hass(self) -> HomeAssistant:
        """Home Assistant, the flow's."""
        return self._flow.hass

    async def async_discovered(self, discovery_info: MqttServiceInfo) -> ConfigFlowResult:
        """A cabinet announced itself (or published its status) on MQTT: offer it, or not."""
        flow = self._flow
        found = found_cabinet(discovery_info.topic, discovery_info.payload)
        if found is None:
            return flow.async_abort(reason="not_a_cabinet")
        if found.announced:
            # The announcement names the cabinet: it replaces an offer made from its status.
            for other in flow._async_in_progress(include_uninitialized=True):
                context = other["context"]
                if context.get("unique_id") == found.unique_id and not context.get("announced"):
                    self.hass.config_entries.flow.async_abort(other["flow_id"])
        flow.context["announced"] = found.announced  # type: ignore[typeddict-unknown-key]
        await flow.async_set_unique_id(found.unique_id)
        flow._abort_if_unique_id_configured()  # Ignored before.
        if self._account_of(found) is not None:
            return flow.async_abort(reason="already_configured")
        self._found = found
        flow.context["title_placeholders"] = {"name": found.name}
        step_id = "discovery_confirm" if found.announced else "discovery_confirm_status"
        return await self.async_confirm(step_id, None)

    def _accounts(self, found: FoundCabinet) -> list[ConfigEntry]:
        """The Stripe accounts whose cabinets use the found cabinet's topics."""
        return [
            entry
            for entry in self.hass.config_entries.async_entries(DOMAIN, include_ignore=False)
            if topic_prefix_of(entry) == found.prefix
        ]

    def _account_of(self, found: FoundCabinet) -> ConfigEntry | None:
        """The account that has this cabinet already, if any."""
        return next(
            (
                entry
                for entry in self.hass.config_entries.async_entries(DOMAIN, include_ignore=False)
                if topic_prefix_of(entry) == found.prefix and found.machine_id in machine_ids_of(entry)
            ),
            None,
        )

    async def async_confirm(self, step_id: str, user_input: dict[str, Any] | None) -> ConfigFlowResult:
        """Price, currency and limit (and the account, when there are several) of the found cabinet.

        ``discovery_confirm`` for a cabinet that announced itself, with the name it gave;
        ``discovery_confirm_status`` for one seen only by its status (its form says it gave none).
        """
        flow = self._flow
        found = self._found
        assert found is not None  # Only the step that found it shows these forms.
        placeholders = {"name": found.name, "machine_id": found.machine_id, "prefix": found.prefix}
        if not self.hass.config_entries.async_entries(DOMAIN, include_ignore=False):
            return flow.async_abort(reason="no_account", description_placeholders=placeholders)
        if not (accounts := self._accounts(found)):
            return flow.async_abort(reason="no_account_on_prefix", description_placeholders=placeholders)
        if owner := self._account_of(found):
            return flow.async_abort(
                reason="cabinet_already_added",
                description_placeholders=placeholders | {"account": owner.title},
            )
        errors: dict[str, str] = {}
        entry = accounts[0]
        if user_input is not None:
            user_input = stripped(user_input)
            entry = next((e for e in accounts if e.entry_id == user_input.get(CONF_ACCOUNT)), entry)
        shown = self._shown_currency or str(entry.data.get(CONF_DEFAULT_CURRENCY, "usd"))
        if user_input is not None:
            gateway = create_gateway(self.hass, entry.data[CONF_API_KEY])
            data, self._shown_currency = await async_new_cabinet_link(
                gateway, found.machine_id, found.name, user_input, shown, errors
            )
            shown = self._shown_currency
            if data is not None:
                if owner := self._account_of(found):
                    # Added meanwhile (by hand, or from another window): the new link must not take money.
                    await async_retire_links(gateway, [data[CONF_PAYMENT_LINK_ID]])
                    return flow.async_abort(
                        reason="cabinet_already_added",
                        description_placeholders=placeholders | {"account": owner.title},
                    )
                data[CONF_NEVER_REPORTS] = False  # It published on MQTT: it reports.
                self.hass.config_entries.async_add_subentry(
                    entry,
                    ConfigSubentry(
                        data=MappingProxyType(data),
                        subentry_type=SUBENTRY_CABINET,
                        title=found.name,
                        unique_id=found.machine_id,
                    ),
                )
                return flow.async_abort(
                    reason=with_limit("cabinet_added", data[CONF_MAX_QUANTITY]),
                    description_placeholders=summary(found.name, data) | {"account": entry.title},
                )
        self._shown_currency = shown  # A price is read in the currency the form showed.
        schema: dict[vol.Marker, Any] = {}
        if len(accounts) > 1:
            options = [SelectOptionDict(value=e.entry_id, label=e.title) for e in accounts]
            schema[vol.Required(CONF_ACCOUNT, default=entry.entry_id)] = SelectSelector(
                SelectSelectorConfig(options=options)
            )
        schema[vol.Required(CONF_CURRENCY, default=shown.upper())] = TEXT
        schema[vol.Required(CONF_PRICE)] = price_selector(shown)
        schema[vol.Required(CONF_MAX_QUANTITY, default=DEFAULT_MAX_QUANTITY)] = QUANTITY
        return flow.async_show_form(
            step_id=step_id,
            data_schema=flow.add_suggested_values_to_schema(vol.Schema(schema), user_input),
            errors=errors,
            description_placeholders=placeholders | price_placeholders(shown),
        )

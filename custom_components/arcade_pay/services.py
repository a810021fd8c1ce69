"""Actions: add_credit, create_payment_link (the earlier system's /create-payment-link) and export_ledger.

add_credit gives credits away and export_ledger writes every payment to a file: like Home
Assistant's own admin services, they refuse a user who is not an administrator. Calls
without a user (automations, scripts) are allowed, as they are for admin services: an
administrator wrote them. create_payment_link is open to every user: it never turns a link
on that a reason keeps off (payment_links.py), so it changes nothing a user could not see.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import wraps
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.util import dt as dt_util

from .const import ATTR_CREDITS, DOMAIN, LOGGER
from .errors import export_errors, translated_errors

if TYPE_CHECKING:
    from .core.cabinet import Cabinet
    from .data import ArcadePayData
    from .intake import ManualCredit

SERVICE_ADD_CREDIT = "add_credit"
SERVICE_CREATE_PAYMENT_LINK = "create_payment_link"
SERVICE_EXPORT_LEDGER = "export_ledger"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"

MAX_MANUAL_CREDITS = 100

ADD_CREDIT_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_DEVICE_ID): cv.string,
        # The range is checked by the handler, which says so in words: the schema's own
        # message ("value must be at least 1 for dictionary value") is not translated.
        vol.Required(ATTR_CREDITS): vol.Coerce(int),
    }
)
CREATE_PAYMENT_LINK_SCHEMA = vol.Schema({vol.Required(ATTR_DEVICE_ID): cv.string})
EXPORT_LEDGER_SCHEMA = vol.Schema({vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string})


type ServiceHandler = Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]


class AdminRequired(Unauthorized):
    """Unauthorized (as Home Assistant's admin services raise it), with a translated message."""

    def __init__(self, call: ServiceCall) -> None:
        """Refuse ``call``, naming the action."""
        super().__init__(context=call.context)  # Who was refused, as Unauthorized records it.
        # Unauthorized takes no translation: give it one, as HomeAssistantError does.
        HomeAssistantError.__init__(
            self,
            translation_domain=DOMAIN,
            translation_key="admin_required",
            translation_placeholders={"action": f"{call.domain}.{call.service}"},
        )


def _admin_only(handler: ServiceHandler) -> ServiceHandler:
    """Run ``handler`` only for an administrator, or without a user (as admin services do).

    Not ``async_register_admin_service``: Home Assistant 2025.4's cannot return a response.
    """

    @wraps(handler)
    async def check(call: ServiceCall) -> ServiceResponse:
        if call.context.user_id:
            user = await call.hass.auth.async_get_user(call.context.user_id)
            if user is None or not user.is_admin:
                raise AdminRequired(call)
        return await handler(call)

    return check


def _cabinet_for_device(hass: HomeAssistant, device_id: str) -> tuple[ArcadePayData, Cabinet]:
    """Find the loaded entry and cabinet a device belongs to."""
    device = dr.async_get(hass).async_get(device_id)
    if device is not None:
        for entry_id in device.config_entries:
            entry = hass.config_entries.async_get_entry(entry_id)
            if entry is None or entry.domain != DOMAIN:
                continue
            if entry.state is not ConfigEntryState.LOADED:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="entry_not_loaded",
                    translation_placeholders={"device": device.name or device_id},
                )
            data: ArcadePayData = entry.runtime_data
            if (cabinet := data.cabinet_for_device(device_id)) is not None:
                return data, cabinet
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="unknown_cabinet",
        translation_placeholders={"device_id": device_id},
    )


async def async_add_credit(data: ArcadePayData, cabinet: Cabinet, credits: int) -> ManualCredit:
    """Record free credits and publish them; raise a translated error if they could not be recorded.

    Recorded, they are delivered like a payment, now or later (a cabinet that has not sent any
    message yet, one offline, MQTT down). That is no failure: an error would invite a second
    press (a second gift). So the call succeeds, the log says why they wait, and the cabinet's
    Pending credits (and Payments) sensors show it (README, "Insert credit").
    """
    with translated_errors():
        credit = await data.intake.async_add_manual_credit(cabinet, credits)
    if credit.waits_for_cabinet:
        LOGGER.warning(
            "%s has not sent any MQTT message yet, so the free credits just given to it (%d) wait in "
            "its Pending credits and are sent as soon as it does. If it never publishes anything, "
            'turn on "Cabinet never reports on MQTT" in its Reconfigure to send them at once',
            cabinet.config.name,
            credits,
        )
    elif not credit.sent:
        LOGGER.warning(
            "The free credits just given to %s (%d) are recorded but could not be sent now (the "
            "cabinet is offline, or MQTT is down): they wait in its Pending credits and are sent "
            "when it can take them",
            cabinet.config.name,
            credits,
        )
    return credit


@_admin_only
async def _async_handle_add_credit(call: ServiceCall) -> ServiceResponse:
    credits: int = call.data[ATTR_CREDITS]
    if not 1 <= credits <= MAX_MANUAL_CREDITS:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="credits_out_of_range",
            translation_placeholders={"credits": str(credits), "min": "1", "max": str(MAX_MANUAL_CREDITS)},
        )
    data, cabinet = _cabinet_for_device(call.hass, call.data[ATTR_DEVICE_ID])
    credit = await async_add_credit(data, cabinet, credits)
    if not call.return_response:
        return None
    return {
        "payment_id": credit.payment_id,
        "sent": credit.sent,
        "waits_for_cabinet": credit.waits_for_cabinet,
    }


async def _async_handle_create_payment_link(call: ServiceCall) -> ServiceResponse:
    """The link to show players, and whether it takes money: it never overrides a pause or a rule."""
    data, cabinet = _cabinet_for_device(call.hass, call.data[ATTR_DEVICE_ID])
    with translated_errors():
        link = await data.links.payment_links.async_link_for_players(cabinet)
    return {
        "url": link.url,
        "payment_link_id": link.payment_link_id,
        "accepting_payments": link.accepting_payments,
        "payments": cabinet.payments_state.value,
    }


@_admin_only
async def _async_handle_export_ledger(call: ServiceCall) -> ServiceResponse:
    entry_id = call.data[ATTR_CONFIG_ENTRY_ID]
    entry = call.hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"config_entry_id": entry_id},
        )
    data: ArcadePayData = entry.runtime_data
    stamp = dt_util.utcnow().strftime("%Y%m%dT%H%M%SZ")
    path = call.hass.config.path(DOMAIN, "exports", f"ledger_{entry.unique_id}_{stamp}.csv")
    with export_errors():
        rows = await call.hass.async_add_executor_job(data.ledger.export_csv, path)
    return {"path": path, "rows": rows}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions once for all entries."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_ADD_CREDIT,
        _async_handle_add_credit,
        schema=ADD_CREDIT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CREATE_PAYMENT_LINK,
        _async_handle_create_payment_link,
        schema=CREATE_PAYMENT_LINK_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_EXPORT_LEDGER,
        _async_handle_export_ledger,
        schema=EXPORT_LEDGER_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )

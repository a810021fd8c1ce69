"""What a cabinet's scans sell, in its forms: where its QR code points, its packs, promotion codes.

The new-cabinet form and a managed cabinet's Reconfigure show these fields; a discovered cabinet
gets the defaults of a new one, an adopted link keeps its QR code on the link (both can change
in Reconfigure once Arcade Pay made the link). Packs are typed as "3=2.50, 10=7.00" and stored
in minor units (subentries.py); a typo gets a translated error naming the pack, and nothing is
saved. The price a scan sells at now is the Price per credit entity's (number.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol

from homeassistant.helpers.selector import (
    BooleanSelector,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)

from .const import (
    CONF_ALLOW_PROMOTION_CODES,
    CONF_HAPPY_HOUR_PACKS,
    CONF_PACKS,
    CONF_QR_TARGET,
    CONF_SCAN_TOKEN,
)
from .core.cabinet_config import QrTarget
from .core.pricing import PackError, format_packs, parse_packs
from .stable_ids import new_scan_token
from .subentries import packs_of, stored_packs

QR_TARGET = SelectSelector(
    SelectSelectorConfig(
        options=[target.value for target in QrTarget],
        translation_key=CONF_QR_TARGET,
        mode=SelectSelectorMode.LIST,
    )
)
PACK_FIELDS = (CONF_PACKS, CONF_HAPPY_HOUR_PACKS)


def cabinet_settings(qr_target: QrTarget) -> dict[str, Any]:
    """A new cabinet's settings: single credits only, no promotion codes, and its scan token."""
    return {
        CONF_QR_TARGET: qr_target.value,
        CONF_PACKS: [],
        CONF_HAPPY_HOUR_PACKS: [],
        CONF_ALLOW_PROMOTION_CODES: False,
        CONF_SCAN_TOKEN: new_scan_token(),
    }


# A new cabinet's QR code points to Home Assistant: the code it prints never has to change.
NEW_CABINET: Mapping[str, Any] = {
    CONF_QR_TARGET: QrTarget.HOME_ASSISTANT.value,
    CONF_ALLOW_PROMOTION_CODES: False,
}


def settings_schema(current: Mapping[str, Any] = NEW_CABINET) -> dict[vol.Marker, Any]:
    """The fields, defaulting to ``current`` (a submit without one keeps it).

    The packs are optional text: the frontend leaves an emptied field out, which means no packs.
    """
    return {
        vol.Required(CONF_QR_TARGET, default=current[CONF_QR_TARGET]): QR_TARGET,
        vol.Optional(CONF_PACKS): TextSelector(),
        vol.Optional(CONF_HAPPY_HOUR_PACKS): TextSelector(),
        vol.Required(
            CONF_ALLOW_PROMOTION_CODES, default=current[CONF_ALLOW_PROMOTION_CODES]
        ): BooleanSelector(),
    }


def settings_shown(data: Mapping[str, Any], currency: str) -> dict[str, Any]:
    """The fields' values for a cabinet's data (a new cabinet's: ``cabinet_settings``)."""
    return {
        CONF_QR_TARGET: data.get(CONF_QR_TARGET, QrTarget.PAYMENT_LINK.value),
        CONF_ALLOW_PROMOTION_CODES: bool(data.get(CONF_ALLOW_PROMOTION_CODES, False)),
    } | {key: format_packs(packs_of(data.get(key)), currency) for key in PACK_FIELDS}


def settings_of(
    user_input: Mapping[str, Any], currency: str, errors: dict[str, str], placeholders: dict[str, str]
) -> dict[str, Any]:
    """The settings entered, as stored; a pack that cannot be sold sets the error of its field.

    Only the first bad pack is named: the errors of a form share one set of placeholders.
    """
    settings: dict[str, Any] = {
        CONF_QR_TARGET: QrTarget(user_input[CONF_QR_TARGET]).value,
        CONF_ALLOW_PROMOTION_CODES: bool(user_input[CONF_ALLOW_PROMOTION_CODES]),
    }
    for key in PACK_FIELDS:
        try:
            settings[key] = stored_packs(parse_packs(str(user_input.get(key, "")), currency))
        except PackError as err:
            if not any(field in errors for field in PACK_FIELDS):
                errors[key] = err.key
                placeholders.update(err.placeholders)
    return settings

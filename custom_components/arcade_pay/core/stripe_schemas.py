"""The shapes of the Stripe events and objects Arcade Pay reads (voluptuous schemas).

No Home Assistant import. payments.py checks every event against these after its signature
check and before it believes a single field: what does not fit is refused (HTTP 400), so a
forged or broken event changes nothing. Extra fields are allowed (Stripe adds fields).
"""

from __future__ import annotations

from typing import Any, Final

import voluptuous as vol


def strict_int(minimum: int, maximum: int) -> vol.All:
    """An int that is really an int: JSON ``true`` and ``1.0`` are rejected."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid("expected an integer")
        return value

    return vol.All(check, vol.Range(min=minimum, max=maximum))


def _optional(schema: Any) -> Any:
    return vol.Any(None, schema)


def _encodable(value: str) -> str:
    # JSON can carry lone surrogates ("\udc00"); no Stripe id holds one, and the ledger cannot.
    try:
        value.encode()
    except UnicodeEncodeError as err:
        raise vol.Invalid("not valid Unicode text") from err
    return value


_ID = vol.All(str, vol.Length(min=1, max=255), _encodable)


# Stripe's largest amount is 8 digits; far beyond is forged or broken (and beyond SQLite's range).
MAX_AMOUNT: Final = 10**12
_AMOUNT = strict_int(0, MAX_AMOUNT)

EVENT_SCHEMA: Final = vol.Schema(
    {
        vol.Required("id"): _ID,
        vol.Required("type"): _ID,
        vol.Required("data"): vol.Schema({vol.Required("object"): dict}, extra=vol.ALLOW_EXTRA),
    },
    extra=vol.ALLOW_EXTRA,
)

SESSION_SCHEMA: Final = vol.Schema(
    {
        vol.Required("id"): vol.All(_ID, vol.Match(r"^cs_")),
        vol.Required("object"): "checkout.session",
        vol.Required("payment_status"): str,
        vol.Optional("payment_link"): _optional(_ID),
        vol.Optional("metadata"): _optional({str: vol.Any(str, None)}),
        vol.Optional("amount_subtotal"): _optional(_AMOUNT),
        vol.Required("amount_total"): _AMOUNT,
        vol.Required("currency"): vol.All(str, vol.Length(min=3, max=3), vol.Lower),
        vol.Optional("payment_intent"): _optional(_ID),
        vol.Optional("client_reference_id"): _optional(str),
        # A promotion code's discount (in the currency the player paid in).
        vol.Optional("total_details"): _optional(
            vol.Schema({vol.Optional("amount_discount"): _optional(_AMOUNT)}, extra=vol.ALLOW_EXTRA)
        ),
        vol.Optional("currency_conversion"): _optional(
            vol.Schema(
                {
                    vol.Required("amount_subtotal"): _AMOUNT,
                    vol.Required("amount_total"): _AMOUNT,
                    vol.Required("source_currency"): vol.All(str, vol.Length(min=3, max=3), vol.Lower),
                },
                extra=vol.ALLOW_EXTRA,
            )
        ),
    },
    extra=vol.ALLOW_EXTRA,
)


CHARGE_SCHEMA: Final = vol.Schema(
    {
        vol.Required("id"): _ID,
        vol.Required("object"): "charge",
        vol.Required("amount_refunded"): _AMOUNT,
        vol.Required("payment_intent"): _optional(_ID),
    },
    extra=vol.ALLOW_EXTRA,
)

DISPUTE_SCHEMA: Final = vol.Schema(
    {
        vol.Required("id"): _ID,
        vol.Required("object"): "dispute",
        vol.Required("amount"): _AMOUNT,
        vol.Required("payment_intent"): _optional(_ID),
        vol.Optional("reason"): _optional(str),
    },
    extra=vol.ALLOW_EXTRA,
)

"""What the Stripe-account, options and cabinet forms share: selectors, checks, result wording."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.helpers.selector import TextSelector, TextSelectorConfig, TextSelectorType

from .const import (
    CONF_CURRENCY,
    CONF_MACHINE_ID,
    CONF_MANAGED_LINK,
    CONF_MAX_QUANTITY,
    CONF_PAYMENT_LINK_ID,
    CONF_PAYMENT_LINK_URL,
    CONF_PRICE,
    CONF_PRICE_ID,
    CONF_PRODUCT_ID,
    CONF_UNIT_AMOUNT,
    DEFAULT_MAX_QUANTITY,
)
from .currencies import PriceError, format_amount, parse_price, price_example
from .payments import currency_exponent
from .stripe_gateway import (
    MAX_ADJUSTABLE_QUANTITY,
    PaymentLink,
    StripeAuthError,
    StripeConnectionError,
    StripeGatewayError,
)

PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
TEXT = TextSelector()


def stripe_error(err: StripeGatewayError) -> str:
    """Form error key for a failed Stripe call."""
    if isinstance(err, StripeAuthError):
        return "invalid_auth"
    if isinstance(err, StripeConnectionError):
        return "cannot_connect"
    return "stripe_error"


def whole_number(
    user_input: Mapping[str, Any], key: str, low: int, high: int, errors: dict[str, str]
) -> int | None:
    """The whole number entered for ``key`` within [low, high], or None and the error ``<key>_range``.

    Checked here rather than by the number selector, whose own messages are not translated.
    """
    value = user_input[key]
    if isinstance(value, (int, float)) and value == int(value) and low <= value <= high:
        return int(value)
    errors[key] = f"{key}_range"
    return None


def stripped(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Pasted text often carries spaces or a newline at either end."""
    return {key: value.strip() if isinstance(value, str) else value for key, value in user_input.items()}


def unit_amount_or_error(price: Any, currency: str, errors: dict[str, str]) -> int | None:
    """Price in minor units, or None with a form error."""
    try:
        return parse_price(str(price), currency)
    except PriceError:
        errors[CONF_PRICE] = "invalid_price"
        return None


def price_placeholders(currency: str) -> dict[str, str]:
    """What the price field and its error say about the currency."""
    return {
        "currency": currency.upper(),
        "decimals": str(currency_exponent(currency)),
        "example": price_example(currency),
        "max_quantity_limit": str(MAX_ADJUSTABLE_QUANTITY),
    }


def with_limit(key: str, max_quantity: int) -> str:
    """The result's translation key for this limit.

    "up to 1 credits" reads wrong and hassfest refuses ICU plurals: a key per case.
    """
    return f"{key}_one" if max_quantity == 1 else key


def summary(name: str, data: Mapping[str, Any]) -> dict[str, str]:
    """The placeholders of a result: "Galaga: 1.50 USD per credit, up to 10 credits per payment"."""
    currency = data[CONF_CURRENCY]
    unit_amount = data.get(CONF_UNIT_AMOUNT)
    return {
        "name": name,
        "price": format_amount(unit_amount, currency) if unit_amount else "",
        "currency": currency.upper(),
        "max_quantity": str(data.get(CONF_MAX_QUANTITY, DEFAULT_MAX_QUANTITY)),
        "payment_link": data[CONF_PAYMENT_LINK_ID],
    }


def link_data(machine_id: str, link: PaymentLink, max_quantity: int, managed: bool) -> dict[str, Any]:
    """A cabinet subentry's data for its payment link."""
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

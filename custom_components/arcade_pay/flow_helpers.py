"""What the Stripe-account, options and cabinet forms share: selectors, checks, result wording."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .cabinet_settings import cabinet_settings
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
    DOMAIN,
)
from .core.cabinet_config import QrTarget
from .core.currencies import (
    STRIPE_MAX_AMOUNT,
    PriceError,
    PriceTooHigh,
    format_amount,
    normalize_currency,
    parse_price,
    price_example,
)
from .core.payments import currency_exponent
from .core.protocol import is_valid_machine_id, is_valid_new_machine_id
from .core.stripe_gateway import (
    MAX_ADJUSTABLE_QUANTITY,
    PaymentLink,
    StripeGateway,
    StripeGatewayError,
)
from .data import EntryOptions
from .errors import stripe_form_error

PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
TEXT = TextSelector()
# No min or max: the form checks the range itself and says so in words (a selector's own
# check would show Home Assistant's untranslated "Value 0.0 is too small").
QUANTITY = NumberSelector(NumberSelectorConfig(step=1, mode=NumberSelectorMode.BOX))


def price_selector(currency: str) -> TextSelector:
    """The price field, with the currency's code beside it."""
    # Text, not a number box: a browser's number box turns "1,50" into 150 without a word.
    return TextSelector(TextSelectorConfig(suffix=currency.upper()))


def topic_prefix_of(entry: ConfigEntry) -> str:
    """The MQTT topic prefix an entry's cabinets use."""
    return EntryOptions.of(entry.options).topic_prefix.rstrip("/")


def machine_ids_of(entry: ConfigEntry) -> set[str]:
    """The machine ids of an entry's cabinets."""
    return {str(s.data[CONF_MACHINE_ID]) for s in entry.subentries.values() if CONF_MACHINE_ID in s.data}


def same_topics(
    hass: HomeAssistant, entry_id: str, prefix: str, machine_ids: Iterable[str]
) -> tuple[str, str] | None:
    """(account, machine id) of another entry's cabinet that would share topics with one of these.

    Two entries with a cabinet of the same machine id under the same prefix would both publish
    its coin pulses and both take its acknowledgements: one cabinet, two ledgers.
    """
    wanted = set(machine_ids)
    for other in hass.config_entries.async_entries(DOMAIN):
        if other.entry_id == entry_id or topic_prefix_of(other) != prefix:
            continue
        if clash := wanted & machine_ids_of(other):
            return other.title, min(clash)
    return None


def cabinet_errors(
    hass: HomeAssistant, entry: ConfigEntry, user_input: Mapping[str, Any], placeholders: dict[str, str]
) -> dict[str, str]:
    """Errors of a new cabinet's name and machine ID; the account in the way goes into ``placeholders``."""
    errors: dict[str, str] = {}
    if not user_input[CONF_NAME]:
        errors[CONF_NAME] = "name_required"
    machine_id = user_input[CONF_MACHINE_ID]
    if not is_valid_machine_id(machine_id):
        errors[CONF_MACHINE_ID] = "invalid_machine_id"
    elif not is_valid_new_machine_id(machine_id):
        errors[CONF_MACHINE_ID] = "machine_id_first_character"
    elif machine_id in machine_ids_of(entry):
        errors[CONF_MACHINE_ID] = "machine_id_taken"
    elif clash := same_topics(hass, entry.entry_id, topic_prefix_of(entry), [machine_id]):
        errors[CONF_MACHINE_ID] = "machine_id_other_account"
        placeholders["account"] = clash[0]
    return errors


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
    """Pasted text often carries spaces or a newline at either end.

    A currency code is shown again in upper case, as codes are written ("eur" came back as
    typed); Stripe's lower case is what is stored (normalize_currency).
    """
    cleaned = {key: value.strip() if isinstance(value, str) else value for key, value in user_input.items()}
    if isinstance(cleaned.get(CONF_CURRENCY), str):
        cleaned[CONF_CURRENCY] = cleaned[CONF_CURRENCY].upper()
    return cleaned


def unit_amount_or_error(price: Any, currency: str, errors: dict[str, str]) -> int | None:
    """Price in minor units, or None with a form error (the error key: ``price_error``)."""
    try:
        return parse_price(str(price), currency)
    except PriceError as err:
        errors[CONF_PRICE] = price_error(err)
        return None


def price_error(err: PriceError) -> str:
    """The translation key of a price the price field (or the Price per credit entity) refuses."""
    return "price_too_high" if isinstance(err, PriceTooHigh) else "invalid_price"


def price_placeholders(currency: str) -> dict[str, str]:
    """What the price field and its error say about the currency.

    The example shows the decimals and both separators ("1.50 or 1,50"), or none ("100"):
    words about decimals would be wrong for a currency without them. Three decimals get no
    comma form: "1,500" reads as a thousand.
    """
    example = price_example(currency)
    if currency_exponent(currency) == 2:
        example = f"{example} or {example.replace('.', ',')}"
    return {
        "currency": currency.upper(),
        "example": example,
        "max_price": format_amount(STRIPE_MAX_AMOUNT, currency),
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


async def async_new_cabinet_link(
    gateway: StripeGateway,
    machine_id: str,
    name: str,
    user_input: Mapping[str, Any],
    shown_currency: str,
    errors: dict[str, str],
) -> tuple[dict[str, Any] | None, str]:
    """Check the price, currency and limit entered, then create the cabinet's payment link in Stripe.

    The one way a new cabinet gets its link, typed in or discovered. Nothing is created while
    ``errors`` holds any (the caller's own checks included). Returns the subentry's data (None,
    with ``errors`` set, when nothing was created) and the currency the price field shows next:
    a price typed next to another currency's code is not taken but shown again in the new one.
    """
    max_quantity = whole_number(user_input, CONF_MAX_QUANTITY, 1, MAX_ADJUSTABLE_QUANTITY, errors)
    currency = normalize_currency(user_input[CONF_CURRENCY])
    unit_amount = None
    if currency is None:
        errors[CONF_CURRENCY] = "invalid_currency"
    elif currency != shown_currency:
        errors[CONF_PRICE] = "price_currency_changed"
        shown_currency = currency
    else:
        unit_amount = unit_amount_or_error(user_input[CONF_PRICE], currency, errors)
    if errors or not (currency and unit_amount and max_quantity):
        return None, shown_currency
    try:
        link = await gateway.create_cabinet_link(machine_id, name, unit_amount, currency, max_quantity)
    except StripeGatewayError as err:
        errors["base"] = stripe_form_error(err)
        return None, shown_currency
    data = link_data(machine_id, link, max_quantity, managed=True) | cabinet_settings(QrTarget.HOME_ASSISTANT)
    return data, shown_currency

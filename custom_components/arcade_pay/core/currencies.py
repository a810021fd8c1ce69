"""Currencies Stripe takes, and prices as an operator types and reads them.

Standard library only (no Home Assistant, no Stripe SDK), so the forms, the sensors, the
ledger and payments.py share one rule for minor units, what a typed price means and how an
amount is written.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
import re
from typing import Final

# Stripe's presentment currencies (https://docs.stripe.com/currencies, November 2026),
# lower case as Stripe's API writes them. A code outside this set is a typo.
_STRIPE_CODES: Final = """
    aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd
    cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq
    gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd
    lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk
    php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs tnd top
    try ttd twd tzs uah ugx usd uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw
"""
STRIPE_CURRENCIES: Final = frozenset(_STRIPE_CODES.split())

# Stripe's currencies without minor units, and with three (which Stripe wants as
# multiples of ten): https://docs.stripe.com/currencies#special-cases
ZERO_DECIMAL_CURRENCIES: Final = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL_CURRENCIES: Final = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])

# Stripe's largest amount: eight digits of minor units (999,999.99 USD). Stripe refuses a price
# above it with an error the operator cannot act on: the forms say it first.
STRIPE_MAX_AMOUNT: Final = 99_999_999


def currency_exponent(currency: str) -> int:
    """Return the number of minor-unit digits Stripe uses for ``currency``."""
    code = currency.lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def smallest_amount(currency: str) -> int:
    """The smallest step of an amount Stripe takes, in minor units (10 for three decimals)."""
    return 10 if currency_exponent(currency) == 3 else 1


def to_minor_units(amount: Decimal | str | float, currency: str) -> int:
    """Convert a decimal amount to Stripe's integer amount, refusing to round money."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation as err:
        raise ValueError(f"not an amount: {amount!r}") from err
    if not value.is_finite() or value <= 0:
        raise ValueError("amount must be a positive number")
    exponent = currency_exponent(currency)
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise ValueError(f"{currency.upper()} amounts have at most {exponent} decimals")
    result = int(minor)
    if result % smallest_amount(currency):
        raise ValueError(f"{currency.upper()} amounts must be multiples of 0.010")
    return result


def from_minor_units(amount: int, currency: str) -> Decimal:
    """Convert Stripe's integer amount back to a decimal amount."""
    return Decimal(amount).scaleb(-currency_exponent(currency))


# Digits with at most one decimal separator, which may be a point or a comma.
_PRICE = re.compile(r"^\d+(?:[.,]\d+)?$|^[.,]\d+$")


class PriceError(ValueError):
    """A typed price that is not an amount Stripe can charge in its currency."""


class PriceTooHigh(PriceError):
    """A typed price above STRIPE_MAX_AMOUNT."""


def normalize_currency(text: str) -> str | None:
    """Return the currency as Stripe writes it (``eur``), or None when Stripe does not take it."""
    code = text.strip().lower()
    return code if code in STRIPE_CURRENCIES else None


def parse_price(text: str, currency: str) -> int:
    """Turn a typed price (``1.50``, ``1,50``, `` 2 ``) into Stripe's minor units.

    A comma is a decimal separator, as typed in most of Europe. Thousands separators
    and spaces inside the number are refused rather than guessed: ``1,500`` in dollars
    has too many decimals and is refused, it never becomes 1500 or 1.5.
    """
    cleaned = text.strip()
    if not _PRICE.match(cleaned):
        raise PriceError(f"not a price: {text!r}")
    _, _, decimals = cleaned.replace(",", ".").partition(".")
    if len(decimals) > currency_exponent(currency):
        # Even as zeros: "1,500" is more likely fifteen hundred than one and a half.
        raise PriceError(f"{currency.upper()} amounts have at most {currency_exponent(currency)} decimals")
    try:
        amount = to_minor_units(Decimal(cleaned.replace(",", ".")), currency)
    except (InvalidOperation, ValueError) as err:
        raise PriceError(str(err)) from err
    if amount > STRIPE_MAX_AMOUNT:
        raise PriceTooHigh(f"Stripe takes at most {format_amount(STRIPE_MAX_AMOUNT, currency)}")
    return amount


def format_amount(minor_units: int, currency: str) -> str:
    """Write an amount with exactly the currency's decimals: ``1.50``, ``500`` (yen)."""
    return f"{from_minor_units(minor_units, currency):.{currency_exponent(currency)}f}"


def price_example(currency: str) -> str:
    """A well-formed price in ``currency`` to show next to an error (``1.50``, ``100``)."""
    exponent = currency_exponent(currency)
    return "100" if exponent == 0 else f"{Decimal('1.5'):.{exponent}f}"

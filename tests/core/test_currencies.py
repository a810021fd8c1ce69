"""Typed prices and currency codes, as the cabinet forms read them."""

from __future__ import annotations

import pytest

from custom_components.arcade_pay.core.currencies import (
    STRIPE_CURRENCIES,
    THREE_DECIMAL_CURRENCIES,
    ZERO_DECIMAL_CURRENCIES,
    PriceError,
    format_amount,
    normalize_currency,
    parse_price,
    price_example,
)


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1.50", "usd", 150),
        ("1,50", "eur", 150),
        (" 2 ", "usd", 200),
        (",5", "eur", 50),
        ("500", "jpy", 500),
        ("1.250", "kwd", 1250),
    ],
)
def test_parse_price(text: str, currency: str, minor: int) -> None:
    assert parse_price(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("1,500", "usd"),  # a thousands separator is never guessed
        ("1.000,50", "eur"),
        ("1 000", "usd"),
        ("1,5", "jpy"),
        ("0", "usd"),
        ("0,00", "eur"),
        ("-1", "usd"),
        ("1e3", "usd"),
        ("", "usd"),
        ("$1", "usd"),
        ("1.555", "usd"),
    ],
)
def test_parse_price_refuses(text: str, currency: str) -> None:
    with pytest.raises(PriceError):
        parse_price(text, currency)


def test_currencies_are_stripes() -> None:
    assert normalize_currency(" EUR ") == "eur"
    assert normalize_currency("xyz") is None
    assert normalize_currency("euro") is None
    # Every currency with special decimals that currencies.py knows is one Stripe takes.
    assert ZERO_DECIMAL_CURRENCIES | THREE_DECIMAL_CURRENCIES <= STRIPE_CURRENCIES


def test_amounts_follow_the_currency_exponent() -> None:
    assert format_amount(150, "usd") == "1.50"
    assert format_amount(500, "jpy") == "500"
    assert format_amount(1250, "kwd") == "1.250"
    assert price_example("usd") == "1.50"
    assert price_example("jpy") == "100"
    assert price_example("kwd") == "1.500"

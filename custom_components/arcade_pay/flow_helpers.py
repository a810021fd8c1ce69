"""What the Stripe-account, options and cabinet forms share: selectors and error keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.helpers.selector import TextSelector, TextSelectorConfig, TextSelectorType

from .stripe_gateway import StripeAuthError, StripeConnectionError, StripeGatewayError

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

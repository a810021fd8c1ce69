"""Stripe and ledger failures as the translated errors an action or entity raises: one mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN
from .core.ledger import LedgerError
from .core.stripe_gateway import StripeGatewayError


@contextmanager
def translated_errors() -> Iterator[None]:
    """Raise a Stripe or ledger failure inside the block as a translated HomeAssistantError.

    A key Stripe refused has already started reauthentication (stripe_health.py).
    """
    try:
        yield
    except StripeGatewayError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="stripe_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    except LedgerError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="ledger_failed",
            translation_placeholders={"error": str(err)},
        ) from err

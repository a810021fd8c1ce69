"""Stripe, ledger and delivery failures as the errors Home Assistant shows: the one mapping.

Actions and entities raise translated HomeAssistantErrors (``translated_errors``,
``export_errors``), forms show an error key (``stripe_form_error``), and setting up an entry
raises a translated ConfigEntryError (``ledger_unavailable``). Nobody else turns a
StripeGatewayError or a LedgerError into something Home Assistant shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from homeassistant.exceptions import ConfigEntryError, HomeAssistantError

from .const import DOMAIN
from .core.ledger_records import LedgerError  # Not .ledger: the flows need no SQLite ledger.
from .core.stripe_gateway import StripeAuthError, StripeConnectionError, StripeGatewayError


@contextmanager
def translated_errors() -> Iterator[None]:
    """Raise a Stripe, ledger or delivery failure inside the block as a translated HomeAssistantError.

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


@contextmanager
def export_errors() -> Iterator[None]:
    """Raise a failure to write the ledger's export as a translated HomeAssistantError."""
    try:
        yield
    except (OSError, LedgerError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="export_failed",
            translation_placeholders={"error": str(err)},
        ) from err


def ledger_unavailable(err: LedgerError) -> ConfigEntryError:
    """The entry cannot start: its ledger cannot be opened or read."""
    return ConfigEntryError(
        translation_domain=DOMAIN,
        translation_key="ledger_unavailable",
        translation_placeholders={"error": str(err)},
    )


def stripe_form_error(err: StripeGatewayError) -> str:
    """Form error key for a failed Stripe call."""
    if isinstance(err, StripeAuthError):
        return "invalid_auth"
    if isinstance(err, StripeConnectionError):
        return "cannot_connect"
    return "stripe_error"

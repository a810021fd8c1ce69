"""The Stripe webhook: its registration and cloudhook, and each delivery verified and answered.

The first stop of a payment: a verified event goes to intake.py, run by the entry's work
(entry_work.py), and the answer says what intake did.

Home Assistant's webhook component answers 200 when a handler raises, which Stripe
reads as "delivered". So every path here returns its own status: 400 for what is not
a genuine Stripe event, 413 for oversized bodies, 500 when the payment could not be
recorded (Stripe then retries), 200 otherwise.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.hdrs import METH_POST

from homeassistant.components import cloud, webhook
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_API_KEY, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant, callback

from .const import (
    CONF_CLOUDHOOK_URL,
    CONF_PLAYER_CLOUDHOOK_URL,
    CONF_PLAYER_WEBHOOK_ID,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
    LOGGER,
)
from .core.ledger import LedgerError
from .core.payments import (
    MAX_BODY_BYTES,
    IgnoredEvent,
    PaidSession,
    RefundNotice,
    WebhookRejected,
    verify_and_parse,
)
from .core.stripe_gateway import StripeGatewayError
from .core.stripe_scope import key_livemode
from .entry_work import Unloading

if TYPE_CHECKING:
    from .data import ArcadePayData


async def _read_body(request: web.Request) -> bytes | None:
    """Read at most MAX_BODY_BYTES; None if the body is larger.

    Cloudhook requests are not aiohttp requests: they have ``content`` (a new reader
    on every access) but no ``read()``, so take the reader once.
    """
    declared = request.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    stream = request.content
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(MAX_BODY_BYTES + 1 - size):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _event_id(body: bytes) -> str:
    """The id of an event that passed the signature and shape checks, for the log."""
    event_id: str = json.loads(body)["id"]
    return event_id


def _answer(status: HTTPStatus, **body: Any) -> web.Response:
    return web.json_response(body, status=status)


@dataclass(slots=True)
class WebhookScope:
    """What one entry's webhook accepts besides a good signature, and the refusals it logged."""

    livemode: bool | None  # The API key's mode (stripe_scope.key_livemode); None: not checked.
    logged: set[str] = field(default_factory=set)

    def log_refusal(self, event_id: str, reason: str) -> None:
        """Warn once per cause: Stripe retries each event for days, and the cause is one setting."""
        if reason in self.logged:
            LOGGER.debug("Refused Stripe event %s: %s", event_id, reason)
            return
        self.logged.add(reason)
        LOGGER.warning(
            "Refused Stripe event %s: %s; nothing was credited (further events refused for this "
            "reason are logged at debug level)",
            event_id,
            reason,
        )


async def async_handle_stripe_webhook(
    data: ArcadePayData,
    secret: str,
    scope: WebhookScope,
    hass: HomeAssistant,
    webhook_id: str,
    request: web.Request,
) -> web.Response:
    """Handle one delivery from Stripe."""
    body = await _read_body(request)
    if body is None:
        LOGGER.warning("Rejected a webhook delivery larger than %d bytes", MAX_BODY_BYTES)
        return _answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, error="body too large")
    try:
        notice = verify_and_parse(body, request.headers.get("Stripe-Signature"), secret, scope.livemode)
    except WebhookRejected as err:
        if err.foreign:
            scope.log_refusal(_event_id(body), str(err))
            return _answer(HTTPStatus.BAD_REQUEST, error="event is not for this account and mode")
        # The reason never contains the secret or the signature, only what was wrong.
        LOGGER.warning("Rejected a webhook delivery from %s: %s", request.remote, err)
        if err.signature_failed:
            data.signatures.note_failure()
        return _answer(HTTPStatus.BAD_REQUEST, error=str(err))
    data.signatures.note_verified()
    if isinstance(notice, IgnoredEvent):
        LOGGER.info("Ignoring Stripe event %s (%s): %s", notice.event_id, notice.event_type, notice.reason)
        return _answer(HTTPStatus.OK, received=True, outcome="ignored")
    if isinstance(notice, PaidSession):
        work = data.intake.async_handle_paid_session(notice)
    elif isinstance(notice, RefundNotice):
        work = data.intake.async_handle_refund(notice)
    else:
        work = data.intake.async_handle_dispute(notice)
    try:
        # Run by the entry: if the client goes away (Home Assistant then cancels this handler), the
        # payment is still recorded and tracked, or not at all; never recorded and forgotten.
        outcome = await data.work.run(work)
    except Unloading:
        LOGGER.info(
            "Stripe event %s arrived while Arcade Pay reloads; Stripe delivers it again", notice.event_id
        )
        return _answer(HTTPStatus.SERVICE_UNAVAILABLE, error="reloading, try again")
    except (LedgerError, StripeGatewayError) as err:
        LOGGER.error(
            "Could not process Stripe event %s now, Stripe will deliver it again: %s", notice.event_id, err
        )
        return _answer(HTTPStatus.INTERNAL_SERVER_ERROR, error="temporarily unable to process")
    except Exception:  # Never let Home Assistant turn a failure into a 200.
        LOGGER.exception("Unexpected error processing Stripe event %s", notice.event_id)
        return _answer(HTTPStatus.INTERNAL_SERVER_ERROR, error="internal error")
    return _answer(HTTPStatus.OK, received=True, outcome=outcome.value)


@callback
def async_register_stripe_webhook(hass: HomeAssistant, entry: ConfigEntry, data: ArcadePayData) -> None:
    """Take Stripe's deliveries for this entry from now on (from the internet: Stripe sends them)."""
    webhook.async_register(
        hass,
        DOMAIN,
        entry.title,
        entry.data[CONF_WEBHOOK_ID],
        partial(
            async_handle_stripe_webhook,
            data,
            entry.data[CONF_WEBHOOK_SECRET],
            WebhookScope(key_livemode(entry.data[CONF_API_KEY])),
        ),
        local_only=False,
        allowed_methods=[METH_POST],
    )


@callback
def async_unregister_stripe_webhook(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Take no more deliveries: Stripe's retries reach the next start."""
    webhook.async_unregister(hass, entry.data[CONF_WEBHOOK_ID])


async def async_delete_cloudhook(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Delete the entry's Home Assistant Cloud webhook URLs (Stripe's, the players'), if it has them."""
    for url_key, id_key in (
        (CONF_CLOUDHOOK_URL, CONF_WEBHOOK_ID),
        (CONF_PLAYER_CLOUDHOOK_URL, CONF_PLAYER_WEBHOOK_ID),
    ):
        if entry.data.get(url_key) and "cloud" in hass.config.components:
            with suppress(cloud.CloudNotAvailable):
                await cloud.async_delete_cloudhook(hass, entry.data[id_key])

"""The earlier system's HTTP game over: ``POST {"machine_id": "…"}`` to the entry's second webhook.

The earlier system's cabinets could end a game with this request instead of an MQTT message. A
valid one is an MQTT game over in every way (cabinet_messages.py: the same path, then the
earlier system's message published on ``<prefix>/<machine_id>/gameover``, as it did).

Decisions:

* The webhook id is generated the first time an entry is set up (new and older entries alike)
  and stored in the entry's data with ``async_update_entry``; it survives reloads and restarts,
  so the URL programmed into a cabinet keeps working. Not a config entry migration: a version
  bump would make an older Arcade Pay refuse the entry after a downgrade. One function here is
  the one place the id is made.
* Local network only (``local_only=True``). The earlier system ran in the cloud, so its
  cabinets called the internet; Arcade Pay runs in the arcade, on the network the cabinets
  already use for MQTT. The URL is the only secret, and a game over runs automations, so
  nothing from the internet reaches it (no cloudhook is made for it). Home Assistant's webhook
  component answers such a request 200 and drops it; that answer is not ours to choose.
* Explicit answers, because Home Assistant turns a handler's exception into 200: 200 with
  ``{"received": true, …}``; 400 with ``{"error": …}`` for a body that is not a JSON object
  with a known cabinet's ``machine_id`` (over 4 KiB included), which changes and publishes
  nothing; 405 (Home Assistant's) for a method other than POST; 503 while the entry reloads.
  Any ``Content-Type`` is read as JSON (``curl -d`` sends a form type); other keys are ignored.
"""

from __future__ import annotations

from functools import partial
from http import HTTPStatus
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.hdrs import METH_POST

from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback

from .const import CONF_GAME_OVER_WEBHOOK_ID, DOMAIN, LOGGER
from .core.protocol import MAX_MESSAGE_BYTES, is_valid_machine_id
from .entry_work import Unloading
from .webhook import local_webhook_url

if TYPE_CHECKING:
    from .runtime import ArcadePayData


class BadGameOver(ValueError):
    """A request body that is not the earlier system's game over; the message says why."""


def machine_id_of(body: bytes) -> str:
    """The ``machine_id`` of a game over request body; raise BadGameOver when it has none."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise BadGameOver(f"body is larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as err:  # ValueError includes bytes that are not UTF-8.
        raise BadGameOver("body is not JSON") from err
    if not isinstance(data, dict):
        raise BadGameOver('body is not a JSON object like {"machine_id": "arcadeCabinet-123"}')
    if "machine_id" not in data:
        raise BadGameOver("machine_id is missing")
    machine_id = data["machine_id"]
    if not isinstance(machine_id, str) or not is_valid_machine_id(machine_id):
        raise BadGameOver("machine_id must be a string of 1 to 64 letters, digits, '-' or '_'")
    return machine_id


async def _read_body(request: web.Request) -> bytes:
    """Read at most one byte more than a game over may have: enough to refuse a larger body.

    Cloudhook requests have no ``read()`` (webhook.py), so read the stream.
    """
    stream = request.content
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_MESSAGE_BYTES and (chunk := await stream.read(MAX_MESSAGE_BYTES + 1 - size)):
        size += len(chunk)
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status: HTTPStatus, **body: Any) -> web.Response:
    return web.json_response(body, status=status)


def _refuse(warned: set[str], remote: str | None, reason: str) -> web.Response:
    """Warn once per reason: a misconfigured cabinet repeats the same mistake every game."""
    if reason in warned:
        LOGGER.debug("Refused an HTTP game over from %s: %s", remote, reason)
    else:
        warned.add(reason)
        LOGGER.warning(
            "Refused an HTTP game over from %s: %s (further ones refused for this reason are logged at "
            "debug level)",
            remote,
            reason,
        )
    return _answer(HTTPStatus.BAD_REQUEST, error=reason)


async def async_handle_game_over(
    data: ArcadePayData, warned: set[str], hass: HomeAssistant, webhook_id: str, request: web.Request
) -> web.Response:
    """Handle one HTTP game over."""
    try:
        machine_id = machine_id_of(await _read_body(request))
    except BadGameOver as err:
        return _refuse(warned, request.remote, str(err))
    if (cabinet := data.cabinets.get(machine_id)) is None:
        return _refuse(warned, request.remote, f"no cabinet with machine_id {machine_id} in this account")
    try:
        # Run by the entry: counted and published, or not at all, if the client goes away meanwhile.
        published = await data.work.run(data.messages.async_http_game_over(cabinet))
    except Unloading:
        return _answer(HTTPStatus.SERVICE_UNAVAILABLE, error="reloading, try again")
    except Exception:  # Never let Home Assistant turn a failure into a 200.
        LOGGER.exception("Unexpected error handling the HTTP game over of %s", machine_id)
        return _answer(HTTPStatus.INTERNAL_SERVER_ERROR, error="internal error")
    return _answer(HTTPStatus.OK, received=True, machine_id=machine_id, published=published)


@callback
def async_game_over_webhook_id(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The entry's game over webhook id; made and stored the first time it is asked for."""
    if (webhook_id := entry.data.get(CONF_GAME_OVER_WEBHOOK_ID)) is None:
        webhook_id = webhook.async_generate_id()
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_GAME_OVER_WEBHOOK_ID: webhook_id}
        )
    return str(webhook_id)


@callback
def game_over_url(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The URL cabinets post their game over to: Home Assistant's local network URL."""
    return local_webhook_url(hass, async_game_over_webhook_id(hass, entry))


@callback
def async_register_game_over_webhook(hass: HomeAssistant, entry: ConfigEntry, data: ArcadePayData) -> None:
    """Take the earlier system's HTTP game overs for this entry from now on (local network only)."""
    webhook.async_register(
        hass,
        DOMAIN,
        f"{entry.title} game over",
        async_game_over_webhook_id(hass, entry),
        partial(async_handle_game_over, data, set()),
        local_only=True,
        allowed_methods=[METH_POST],
    )


@callback
def async_unregister_game_over_webhook(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Take no more HTTP game overs (the id stays in the entry for the next start)."""
    webhook.async_unregister(hass, entry.data[CONF_GAME_OVER_WEBHOOK_ID])

"""The cabinet's stable public URL: a scan becomes a Stripe Checkout Session, and the player's page.

One webhook per entry (``player_webhook_id`` in its data, made once, never changed), GET and
HEAD, reachable from the internet (a player's phone). A cabinet's QR code is that URL with the
cabinet's ``scan_token``; it outlives every price, currency, link and secret change. Routes by
query (the webhook id is the whole path Home Assistant gives us):

* ``?c=<token>``: a scan. When the cabinet takes money, a Checkout Session at the price that
  holds now is created and the player redirected to it; otherwise a page says why, and no
  session is made. HEAD never creates one.
* ``?c=<token>&s=<session>``: the player page Stripe's success_url lands on (and its live
  status with ``&format=json``). The session id is the capability: the page shows that
  session's cabinet, credits and state, nothing else.
* ``?c=<token>&cancelled=1``: Stripe's cancel_url.

Decisions:

* Registered when the entry first sets up and kept across unloads (removed with the entry):
  a scan while Arcade Pay is not running gets a page saying payments are unavailable, not
  Home Assistant's empty 200 for an unknown webhook.
* A Home Assistant Cloud relay passes a response's status, body and Content-Type only, so a
  redirect's Location is lost there: every redirect is a 303 with Location *and* a page that
  redirects itself (meta refresh) with a button.
* Explicit statuses: 404 for a token or session that is not ours, 410 for a deleted cabinet's
  token, 429 over the scan limits (core/rate_limit.py), 503 when the cabinet takes no money.
"""

from __future__ import annotations

from contextlib import suppress
from http import HTTPStatus
from ipaddress import ip_address
import json
import re
from typing import TYPE_CHECKING, Final

from aiohttp import ClientError, web
from aiohttp.hdrs import METH_GET, METH_HEAD

from homeassistant.components import cloud, webhook
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from .const import CONF_PLAYER_CLOUDHOOK_URL, CONF_PLAYER_WEBHOOK_ID, DOMAIN, LOGGER
from .player import pages
from .player_sessions import PlayerSessions, ScanRefused
from .stripe_connection import cloud_connected

if TYPE_CHECKING:
    from .data import ArcadePayData

TOKEN_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{8,64}")
SESSION_PATTERN: Final = re.compile(r"cs_[A-Za-z0-9_]{1,250}")
_SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # The URL holds the session id: never pass it on.
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


def _html(status: HTTPStatus, body: str, head_only: bool, **headers: str) -> web.Response:
    return web.Response(
        status=status,
        text=None if head_only else body,
        content_type="text/html",
        charset="utf-8",
        headers={**_SECURITY_HEADERS, **headers},
    )


def _json(status: HTTPStatus, body: dict[str, object]) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=_SECURITY_HEADERS,
    )


def _client_address(request: web.Request) -> str:
    """Who scanned: the peer (Home Assistant resolved trusted proxies), else what a Cloud relay forwarded."""
    with suppress(ValueError, TypeError):
        return str(ip_address(request.remote or ""))
    forwarded = request.headers.get("X-Forwarded-For", "")
    return forwarded.split(",")[0].strip() or "relayed"


def _runtime(hass: HomeAssistant, entry_id: str) -> ArcadePayData | None:
    entry: ConfigEntry[ArcadePayData] | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.state is not ConfigEntryState.LOADED:
        return None
    return entry.runtime_data


async def async_handle_player_request(
    entry_id: str, hass: HomeAssistant, webhook_id: str, request: web.Request
) -> web.Response:
    """Answer one scan, player page or status poll."""
    language = pages.negotiate(request.headers.get("Accept-Language"))
    head_only = request.method == METH_HEAD
    token = request.query.get("c", "")
    session_id = request.query.get("s")
    if not TOKEN_PATTERN.fullmatch(token) or (
        session_id is not None and not SESSION_PATTERN.fullmatch(session_id)
    ):
        return _not_found(language, head_only)
    data = _runtime(hass, entry_id)
    if data is None:
        message = pages.text(language, "refused_unavailable", cabinet=pages.text(language, "title"))
        return _html(
            HTTPStatus.SERVICE_UNAVAILABLE, pages.page(language, message, state="refused"), head_only
        )
    sessions: PlayerSessions = data.player_sessions
    try:
        cabinet = await sessions.async_cabinet_for_token(token)
    except LookupError as gone:
        if gone.args and gone.args[0] == "retired":
            message = pages.text(language, "gone")
            return _html(HTTPStatus.GONE, pages.page(language, message, state="refused"), head_only)
        return _not_found(language, head_only)
    name = cabinet.config.name
    if session_id is not None:
        view = await sessions.async_view(cabinet, session_id)
        if view is None:
            return _not_found(language, head_only)
        message = pages.status_message(language, view.state, name, view.credits)
        final = view.state in pages.FINAL_STATES
        if request.query.get("format") == "json":
            return _json(HTTPStatus.OK, {"state": view.state, "message": message, "final": final})
        return _html(
            HTTPStatus.OK, pages.page(language, message, state=view.state, poll=not final), head_only
        )
    scan_url = str(request.url.with_query({"c": token}))
    if request.query.get("cancelled"):
        message = pages.text(language, "cancelled")
        link = (pages.text(language, "scan_again", cabinet=name), scan_url)
        return _html(HTTPStatus.OK, pages.page(language, message, state="cancelled", link=link), head_only)
    if head_only:  # A link preview or a crawler: never a session.
        return _html(HTTPStatus.OK, "", head_only)
    try:
        checkout_url = await sessions.async_scan(cabinet, _client_address(request), scan_url, language)
    except ScanRefused as refused:
        message = pages.text(language, refused.reason, cabinet=name)
        status = (
            HTTPStatus.TOO_MANY_REQUESTS if refused.reason == "too_many" else HTTPStatus.SERVICE_UNAVAILABLE
        )
        extra = {"Retry-After": str(refused.retry_after)} if refused.retry_after else {}
        return _html(status, pages.page(language, message, state="refused"), head_only, **extra)
    except Exception:  # Never let Home Assistant turn a failure into an empty 200.
        LOGGER.exception("Could not open a checkout for %s", cabinet.machine_id)
        message = pages.text(language, "refused_unavailable", cabinet=name)
        return _html(
            HTTPStatus.SERVICE_UNAVAILABLE, pages.page(language, message, state="refused"), head_only
        )
    message = pages.text(language, "opening", cabinet=name)
    body = pages.page(
        language,
        message,
        state="opening",
        link=(pages.text(language, "opening_button"), checkout_url),
        refresh_to=checkout_url,
    )
    return _html(HTTPStatus.SEE_OTHER, body, head_only, Location=checkout_url)


def _not_found(language: str, head_only: bool) -> web.Response:
    message = pages.text(language, "not_found")
    return _html(HTTPStatus.NOT_FOUND, pages.page(language, message, state="refused"), head_only)


@callback
def async_player_webhook_id(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The entry's player webhook id; made and stored the first time it is asked for."""
    if (webhook_id := entry.data.get(CONF_PLAYER_WEBHOOK_ID)) is None:
        webhook_id = webhook.async_generate_id()
        hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_PLAYER_WEBHOOK_ID: webhook_id})
    return str(webhook_id)


@callback
def async_register_player_webhook(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Answer scans for this entry from now on, from the internet; a second call does nothing."""
    webhook_id = async_player_webhook_id(hass, entry)
    registered: set[str] = hass.data.setdefault(f"{DOMAIN}_player_webhooks", set())
    if webhook_id in registered:
        return
    webhook.async_register(
        hass,
        DOMAIN,
        f"{entry.title} players",
        webhook_id,
        lambda hass, webhook_id, request: async_handle_player_request(
            entry.entry_id, hass, webhook_id, request
        ),
        local_only=False,
        allowed_methods=[METH_GET, METH_HEAD],
    )
    registered.add(webhook_id)


async def async_ensure_player_cloudhook(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """With Home Assistant Cloud connected, make the players' webhook a Cloud URL once, and keep it.

    Kept in the entry for good: printed codes hold it, so it never changes afterwards (not when
    Cloud disconnects: the code then waits for it, as a player would wait for the arcade's Wi-Fi).
    """
    if entry.data.get(CONF_PLAYER_CLOUDHOOK_URL) or not cloud_connected(hass):
        return
    try:
        url = await cloud.async_create_cloudhook(hass, async_player_webhook_id(hass, entry))
    except (HomeAssistantError, ClientError, TimeoutError, ValueError) as err:
        LOGGER.warning("Home Assistant Cloud could not make the players' webhook URL: %s", err)
        return
    hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_PLAYER_CLOUDHOOK_URL: url})


@callback
def async_unregister_player_webhook(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """The entry is gone: its codes answer nothing of ours any more."""
    webhook_id = entry.data.get(CONF_PLAYER_WEBHOOK_ID)
    registered: set[str] = hass.data.setdefault(f"{DOMAIN}_player_webhooks", set())
    if webhook_id in registered:
        webhook.async_unregister(hass, webhook_id)
        registered.discard(webhook_id)

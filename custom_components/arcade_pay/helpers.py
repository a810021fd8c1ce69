"""What the parts of an entry share before anything runs: its Stripe client, ledger file, webhook URLs.

Flows, repairs and the running entry alike call these; they build nothing of a running entry.
"""

from __future__ import annotations

from collections.abc import Mapping
import os
from typing import Any
from urllib.parse import urlencode

from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.network import NoURLAvailableError

from .const import CONF_CLOUDHOOK_URL, CONF_PLAYER_CLOUDHOOK_URL, CONF_PLAYER_WEBHOOK_ID, DOMAIN
from .core.stripe_gateway import ENV_API_BASE, StripeGateway


def create_gateway(hass: HomeAssistant, api_key: str) -> StripeGateway:
    """Return a Stripe client on Home Assistant's shared session."""
    return StripeGateway(api_key, async_get_clientsession(hass), os.environ.get(ENV_API_BASE))


def ledger_path(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The ledger belongs to the Stripe account, so it survives removing and re-adding the entry."""
    return hass.config.path(DOMAIN, f"ledger_{entry.unique_id}.sqlite3")


def webhook_url(hass: HomeAssistant, entry_data: Mapping[str, Any]) -> str:
    """The URL to give Stripe: the cloudhook, else the external URL, else the path."""
    if url := entry_data.get(CONF_CLOUDHOOK_URL):
        return str(url)
    return _url_or_path(hass, entry_data[CONF_WEBHOOK_ID], prefer_external=True)


def player_url(hass: HomeAssistant, entry_data: Mapping[str, Any], scan_token: str) -> str:
    """A cabinet's stable QR code: the player webhook (its cloudhook, else the external URL) and token.

    A Home Assistant Cloud webhook URL is kept in the entry once made, so the code stays the same
    whether Cloud is connected at the moment or not.
    """
    base = entry_data.get(CONF_PLAYER_CLOUDHOOK_URL) or _url_or_path(
        hass, entry_data[CONF_PLAYER_WEBHOOK_ID], prefer_external=True
    )
    return f"{base}?{urlencode({'c': scan_token})}"


def local_webhook_url(hass: HomeAssistant, webhook_id: str) -> str:
    """The URL of a webhook for devices on the local network: the internal URL, else the path."""
    return _url_or_path(hass, webhook_id, prefer_external=False)


def _url_or_path(hass: HomeAssistant, webhook_id: str, *, prefer_external: bool) -> str:
    """The webhook's whole URL, or only its path when Home Assistant knows no URL of itself."""
    try:
        return webhook.async_generate_url(hass, webhook_id, prefer_external=prefer_external)
    except NoURLAvailableError:
        return webhook.async_generate_path(webhook_id)

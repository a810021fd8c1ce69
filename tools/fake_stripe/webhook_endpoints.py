"""The fake's webhook endpoints, as Stripe's ``/v1/webhook_endpoints`` API keeps them.

What Arcade Pay's one-step setup relies on, and what the fake therefore enforces:
* create needs ``url`` and ``enabled_events``; the signing secret (``whsec_…``, one per endpoint)
  is in the create answer only, never in retrieve, update or list;
* a live-mode key (``sk_live_``/``rk_live_``) only registers ``https`` URLs;
* at most 16 endpoints per account (Stripe's limit);
* update changes ``url``, ``enabled_events``, ``description``, ``metadata`` (merged; an empty value
  removes a key) and ``disabled`` (``status`` becomes ``disabled``/``enabled``);
* delete answers ``{"id", "object", "deleted": true}``; an unknown id is a 404 ``resource_missing``;
* events go only to enabled endpoints whose ``enabled_events`` name them (or ``*``), each signed
  with that endpoint's own secret.

Endpoints added by hand (the fake's home page, ``add_webhook_endpoint``: the manual path where
the operator pastes the secret) use the fake's shared ``webhook_secret`` and receive every event.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

MAX_ENDPOINTS = 16
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")


class EndpointError(Exception):
    """A request Stripe would refuse: an HTTP status, a message and Stripe's error code."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _events(value: Any) -> list[str]:
    """``enabled_events`` from the form: a list (``enabled_events[0]=…``) or a dict of indexes."""
    events = list(value.values()) if isinstance(value, dict) else list(value or [])
    return [str(event) for event in events if event]


def public(endpoint: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as retrieve, update and list show it: without its secret."""
    return {key: value for key, value in endpoint.items() if key != "secret"}


def receives(endpoint: dict[str, Any], event_type: str) -> bool:
    """Whether Stripe sends ``event_type`` to ``endpoint``."""
    events = endpoint.get("enabled_events", ["*"])
    return endpoint.get("status", "enabled") == "enabled" and ("*" in events or event_type in events)


def new_endpoint(
    endpoint_id: str, params: dict[str, Any], api_key: str, count: int, livemode: bool = False
) -> dict[str, Any]:
    """Check create's parameters as Stripe does; return the endpoint with its new secret."""
    url = str(params.get("url", "")).strip()
    events = _events(params.get("enabled_events"))
    if not url:
        raise EndpointError(400, "Missing required param: url.", "parameter_missing")
    if not events:
        raise EndpointError(400, "Missing required param: enabled_events.", "parameter_missing")
    _check_url(url, api_key)
    if count >= MAX_ENDPOINTS:
        raise EndpointError(
            400, f"You have reached the maximum of {MAX_ENDPOINTS} test webhook endpoints.", ""
        )
    return {
        "id": endpoint_id,
        "object": "webhook_endpoint",
        "api_version": params.get("api_version"),
        "application": None,
        "created": int(time.time()),
        "description": params.get("description"),
        "enabled_events": events,
        "livemode": livemode,
        "metadata": {k: str(v) for k, v in (params.get("metadata") or {}).items() if v != ""},
        "secret": "whsec_" + secrets.token_hex(16),
        "status": "enabled",
        "url": url,
    }


def apply_update(endpoint: dict[str, Any], params: dict[str, Any], api_key: str) -> None:
    """Change ``endpoint`` as ``POST /v1/webhook_endpoints/{id}`` does."""
    if "url" in params:
        url = str(params["url"]).strip()
        _check_url(url, api_key)
        endpoint["url"] = url
    if "enabled_events" in params:
        events = _events(params["enabled_events"])
        if not events:
            raise EndpointError(400, "enabled_events cannot be empty.", "parameter_invalid_empty")
        endpoint["enabled_events"] = events
    if "description" in params:
        endpoint["description"] = params["description"] or None
    if "disabled" in params:
        endpoint["status"] = "disabled" if str(params["disabled"]).lower() == "true" else "enabled"
    metadata = params.get("metadata")
    if metadata == "":
        endpoint["metadata"] = {}
    elif isinstance(metadata, dict):
        for key, value in metadata.items():
            if value == "":
                endpoint["metadata"].pop(key, None)
            else:
                endpoint["metadata"][key] = str(value)


def _check_url(url: str, api_key: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise EndpointError(400, f"Invalid URL: {url}", "url_invalid")
    if api_key.startswith(LIVE_KEY_PREFIXES) and not url.startswith("https://"):
        raise EndpointError(400, "Invalid URL: URL must be publicly accessible and use HTTPS.", "url_invalid")

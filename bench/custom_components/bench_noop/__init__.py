"""A webhook that reads the body and answers 200: the floor Home Assistant's HTTP stack sets.

Only for bench/bench.py, which compares Arcade Pay's webhook with it in the same Home Assistant.
"""

from __future__ import annotations

from aiohttp import web

from homeassistant.components import webhook
from homeassistant.core import HomeAssistant
from homeassistant.helpers.typing import ConfigType

DOMAIN = "bench_noop"
WEBHOOK_ID = "bench_noop"


async def _handle(hass: HomeAssistant, webhook_id: str, request: web.Request) -> web.Response:
    await request.content.read()
    return web.json_response({"received": True})


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the webhook."""
    webhook.async_register(
        hass, DOMAIN, "Benchmark no-op", WEBHOOK_ID, _handle, local_only=False, allowed_methods=["POST"]
    )
    return True

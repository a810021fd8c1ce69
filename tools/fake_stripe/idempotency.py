"""The fake's idempotent requests: a POST retried with the same ``Idempotency-Key`` is answered, not run.

As Stripe does (https://docs.stripe.com/idempotency): the first request with a key runs and its
answer (status and body, an error too) is saved; a later request with that key gets the saved
answer and changes nothing, or a 400 ``idempotency_error`` if its parameters differ. Requests
the fake refuses before running them (a bad key, a simulated outage) save nothing, as Stripe
saves nothing for a request whose execution never began. Keys are kept for the fake's lifetime
(Stripe: at least 24 hours).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class _Saved:
    path: str
    params: dict[str, Any]
    status: int
    body: bytes


class IdempotentRequests:
    """Saved answers of POSTs, by idempotency key."""

    def __init__(self) -> None:
        self._saved: dict[str, _Saved] = {}
        self.replayed: list[str] = []  # Keys answered from what was saved (for tests).

    async def answer(
        self,
        request: web.Request,
        params: dict[str, Any],
        run: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Run a request once per key; replay the saved answer to a retry."""
        key = request.headers.get(HEADER)
        if request.method != "POST" or not key:
            return await run(request)
        saved = self._saved.get(key)
        if saved is None:
            response = await run(request)
            if isinstance(response, web.Response) and response.body is not None:
                body = response.body if isinstance(response.body, bytes) else str(response.body).encode()
                self._saved[key] = _Saved(request.path, params, response.status, body)
            return response
        if (saved.path, saved.params) != (request.path, params):
            message = f"Keys for idempotent requests can only be used with the same parameters: {key}"
            error = {"error": {"type": "idempotency_error", "message": message}}
            return web.json_response(error, status=400)
        self.replayed.append(key)
        return web.Response(
            body=saved.body,
            status=saved.status,
            content_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )

"""Everything a loaded entry starts, so that unloading it waits for it or stops it first.

Unloading an entry (a reload too: Reconfigure, a new cabinet) closes the ledger, and the next
start reads what is owed from it. Work of the old one still running then would publish what the
new one publishes again, or write to the closed ledger. So every task the entry starts is held
here: on unload nothing new starts, work that may be cut anywhere is cancelled (reconciliation,
housekeeping, changes of payment links: all done again after the next start), and the rest (a
publish and its ledger note, recording a payment, a refund) is waited for.

And Home Assistant cancels a webhook handler whose client went away: ``run`` lets the handler
wait for its work without the work being cancelled with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from homeassistant.core import HomeAssistant, callback

from .const import DOMAIN, LOGGER


class Unloading(Exception):
    """The entry is unloading: no new work starts (Stripe delivers the event again)."""


class EntryWork:
    """The tasks of one loaded entry (shared by its collaborators, runtime.py)."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Hold tasks created on ``hass``."""
        self._hass = hass
        self.stopping = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self._cancellable: set[asyncio.Future[Any]] = set()

    @callback
    def spawn(
        self, work: Coroutine[Any, Any, Any], *, cancellable: bool = False, background: bool = False
    ) -> None:
        """Run ``work`` now (eagerly) unless the entry is unloading.

        ``cancellable``: unloading cancels it rather than waiting. ``background``: Home
        Assistant's start-up does not wait for it.
        """
        if self.stopping:
            work.close()
            return
        name = _name(work)
        if background:
            task = self._hass.async_create_background_task(work, name, eager_start=True)
        else:
            task = self._hass.async_create_task(work, name, eager_start=True)
        self.hold(task, cancellable=cancellable)

    @callback
    def hold(self, task: asyncio.Future[Any], *, cancellable: bool = False) -> None:
        """Keep hold of a task started elsewhere until it is done."""
        if task.done():
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if cancellable:
            self._cancellable.add(task)
            task.add_done_callback(self._cancellable.discard)

    async def run[T](self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end, even if the caller is cancelled meanwhile; return its result.

        Raises Unloading (without running it) while the entry unloads.
        """
        if self.stopping:
            work.close()
            raise Unloading
        task = self._hass.async_create_task(work, _name(work), eager_start=True)
        self.hold(task)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():  # The caller went away; the work goes on, and says how it ended.
                task.add_done_callback(_log_failure)
            raise

    @callback
    def stop(self) -> None:
        """Start nothing more, and cancel what may be cut anywhere."""
        self.stopping = True
        for task in self._cancellable:
            task.cancel()

    async def async_wait(self) -> None:
        """Wait until every task is done (those that started others included)."""
        # Only the unfinished ones: a task seen finished here before its done callback let go
        # of it (seen on Python 3.13.0 under the tests' frozen clock) made this loop spin.
        while pending := [task for task in self._tasks if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()


def _name(work: Coroutine[Any, Any, Any]) -> str:
    return f"{DOMAIN} {getattr(work, '__qualname__', 'work')}"


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        LOGGER.warning("Work of a request whose client went away failed: %s", error)

"""Trying again when Stripe refused to change a payment link, less and less often.

A link that should stop taking money (the offline rule, a cabinet never seen) and cannot be
switched off takes payments that wait for a cabinet that may not come back: soon after the
first failure it is tried again, then after twice as long each time, up to every five
minutes; and after a few failures a repair tells the owner which link still takes money.
It goes away when the link is in line again (switched off, or the cabinet is back).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, Final

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later

from .core.cabinet import Cabinet
from .issues import delete_link_still_on, raise_link_still_on

FIRST_RETRY: Final = 10.0  # seconds
LONGEST_WAIT: Final = 300.0
# One failure is often a blip; three in a row (about 30 s) are worth the owner's attention.
FAILURES_BEFORE_REPAIR: Final = 3

type Retry = Callable[[Cabinet], Coroutine[Any, Any, None]]


def retry_delay(failures: int) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: 10, 20, 40 … up to 300."""
    return min(FIRST_RETRY * 2.0 ** (failures - 1), LONGEST_WAIT)


class LinkRetries:
    """The pending retries of one entry's link changes (link_keeper.py)."""

    def __init__(self, hass: HomeAssistant, retry: Retry) -> None:
        """Call ``retry`` with the cabinet when its time comes."""
        self._hass = hass
        self._retry = retry
        self._failures: dict[str, int] = {}
        self._timers: dict[str, CALLBACK_TYPE] = {}

    def waiting(self, cabinet: Cabinet) -> bool:
        """Whether a retry is scheduled (others leave the cabinet's link alone until then)."""
        return cabinet.machine_id in self._timers

    @callback
    def failed(self, cabinet: Cabinet) -> None:
        """Stripe refused the change: schedule the next try; a repair if money is still taken."""
        machine_id = cabinet.machine_id
        failures = self._failures[machine_id] = self._failures.get(machine_id, 0) + 1
        self._cancel_timer(machine_id)
        self._timers[machine_id] = async_call_later(
            self._hass,
            retry_delay(failures),
            HassJob(partial(self._async_retry, cabinet), cancel_on_shutdown=True),
        )
        if failures >= FAILURES_BEFORE_REPAIR and cabinet.accepting_payments and not cabinet.wants_payments:
            raise_link_still_on(self._hass, cabinet)

    @callback
    def succeeded(self, cabinet: Cabinet) -> None:
        """Stripe has what the cabinet wants: no retry, no repair."""
        self._cancel_timer(cabinet.machine_id)
        if self._failures.pop(cabinet.machine_id, None) is not None:
            delete_link_still_on(self._hass, cabinet.machine_id)

    @callback
    def cancel(self, machine_id: str | None = None) -> None:
        """The entry stops (or one cabinet was deleted): no more retries, and the repairs go.

        The next start checks again; a deleted cabinet's link was retired.
        """
        machines = list(self._timers | self._failures) if machine_id is None else [machine_id]
        for machine in machines:
            self._cancel_timer(machine)
            if self._failures.pop(machine, None) is not None:
                delete_link_still_on(self._hass, machine)

    def _cancel_timer(self, machine_id: str) -> None:
        if (cancel := self._timers.pop(machine_id, None)) is not None:
            cancel()

    async def _async_retry(self, cabinet: Cabinet, _: object) -> None:
        self._timers.pop(cabinet.machine_id, None)
        await self._retry(cabinet)

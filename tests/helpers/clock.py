"""Letting (frozen) time pass for a set-up entry, and waiting for the work it starts."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from homeassistant.core import HomeAssistant


async def advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """Let ``seconds`` pass: the timers due run; the background work they start may still run."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def run_timers(hass: HomeAssistant, freezer: FrozenDateTimeFactory, elapsed: timedelta) -> None:
    """Let time pass: the timers due run (housekeeping every 30 s, reconciliation every hour),
    and the work they start, in the background too, is waited for.

    Work still under way goes first: firing the timers would also fire the time-outs of its
    Stripe requests in flight.
    """
    await hass.async_block_till_done(wait_background_tasks=True)
    freezer.tick(elapsed)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def housekeeping(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """Let time pass: the 30-second housekeeping runs once, and is waited for."""
    await run_timers(hass, freezer, timedelta(seconds=seconds))


async def reconcile(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """An hour passes: the hourly reconciliation with Stripe runs, and is waited for."""
    await run_timers(hass, freezer, timedelta(hours=1))

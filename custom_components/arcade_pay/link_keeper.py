"""When payment links change: the offline rule's timer, a first sign of life, housekeeping.

payment_links.py decides what Stripe should have (and stays free of Home Assistant); this
module runs its changes in the background, retries what Stripe refused (link_retry.py) and
times the offline rule. cabinet_messages.py tells it what cabinets say, the switch and the
create_payment_link action use ``payment_links`` directly, housekeeping calls
``async_sync_links``. It calls nothing but payment_links.py and link_retry.py.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Mapping
from functools import partial
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .const import LOGGER
from .core.cabinet import Cabinet
from .core.ledger import LedgerError
from .core.stripe_gateway import StripeGatewayError
from .entry_work import EntryWork
from .link_retry import LinkRetries
from .payment_links import LinkGateway, PaymentLinks, async_retire_links


async def async_retire_deleted(gateway: LinkGateway, cabinets: Iterable[Cabinet]) -> set[str]:
    """Deactivate the links of deleted cabinets, saying what happened; return the ones that failed."""
    cabinets = list(cabinets)
    failed = await async_retire_links(gateway, [c.config.payment_link_id for c in cabinets])
    for cabinet in cabinets:
        link_id = cabinet.config.payment_link_id
        if link_id in failed:
            LOGGER.warning(
                "Cabinet %s was deleted but its payment link %s could not be deactivated: %s; "
                "deactivate it in the Stripe dashboard",
                cabinet.machine_id,
                link_id,
                failed[link_id],
            )
        else:
            LOGGER.info("Deactivated payment link %s of deleted cabinet %s", link_id, cabinet.machine_id)
    return set(failed)


class LinkKeeper:
    """Keeps one entry's payment links in line with its cabinets, in the background."""

    def __init__(
        self,
        hass: HomeAssistant,
        payment_links: PaymentLinks,
        cabinets: Mapping[str, Cabinet],
        offline_grace: float,
        work: EntryWork,
    ) -> None:
        """Stop a link ``offline_grace`` seconds after its cabinet went offline (0: never)."""
        self._hass = hass
        self.payment_links = payment_links
        self._cabinets = cabinets
        self._offline_grace = offline_grace
        self._work = work
        self._retries = LinkRetries(hass, self._async_sync_link)
        self._offline_timers: dict[str, CALLBACK_TYPE] = {}
        # When each cabinet went offline (epoch seconds), kept across a reload (cabinet_roster.py).
        self.offline_since: dict[str, float] = {}

    def start(self) -> None:
        """Ask Stripe what it has before changing anything, then sync every link in the background."""
        self.payment_links.read_from_stripe_first(self._cabinets.values())
        # A Stripe call per cabinet: in the background, since Home Assistant's start waits for
        # ordinary tasks (with hundreds of cabinets that would hold it up).
        self._work.spawn(self.async_sync_links(), cancellable=True, background=True)

    async def async_sync_links(self) -> None:
        """Put every cabinet's link in Stripe in line with why it should (not) take money."""
        # A copy: cabinets may be added or deleted while Stripe answers.
        for cabinet in list(self._cabinets.values()):
            # A cabinet waiting for its retry (link_retry.py) is left alone until then: backoff.
            if cabinet.removed:
                continue  # Its link was retired.
            if self.payment_links.out_of_line(cabinet) and not self._retries.waiting(cabinet):
                await self._async_sync_link(cabinet)

    @callback
    def add(self, cabinet: Cabinet) -> None:
        """A cabinet added while the entry runs: ask Stripe about its link, then sync it."""
        self.payment_links.read_from_stripe_first([cabinet])
        self._work.spawn(self._async_sync_link(cabinet), cancellable=True, background=True)

    @callback
    def remove(self, cabinet: Cabinet) -> None:
        """A deleted cabinet (``cabinet.removed``): no offline timer, no retry for its link."""
        if (cancel := self._offline_timers.pop(cabinet.machine_id, None)) is not None:
            cancel()
        self.offline_since.pop(cabinet.machine_id, None)
        self._retries.cancel(cabinet.machine_id)

    async def _async_sync_link(self, cabinet: Cabinet) -> None:
        await self._async_link_change(cabinet, self.payment_links.async_sync(cabinet))

    async def _async_link_change(self, cabinet: Cabinet, change: Coroutine[Any, Any, None]) -> None:
        """Run a change of a cabinet's link in the background; Stripe refusing it is retried."""
        was = cabinet.accepting_payments
        try:
            await change
        except StripeGatewayError as err:  # Logged once per outage by StripeHealth.
            LOGGER.debug("Payment link of %s not updated yet: %s", cabinet.machine_id, err)
            self._retries.failed(cabinet)
            return
        except LedgerError as err:
            LOGGER.warning("Could not remember the payment link state of %s: %s", cabinet.machine_id, err)
            return
        if cabinet.removed and cabinet.accepting_payments:
            # Deleted while this update of its link was on its way to Stripe: its link was
            # retired, and a late "on" must not win.
            await self._async_retire_late(cabinet)
            return
        self._retries.succeeded(cabinet)
        if cabinet.accepting_payments != was:
            LOGGER.info("Payment link of cabinet %s: %s", cabinet.machine_id, cabinet.payments_state.value)

    async def _async_retire_late(self, cabinet: Cabinet) -> None:
        if not await async_retire_deleted(self.payment_links.gateway, [cabinet]):
            cabinet.set_accepting_payments(False)

    @callback
    def first_sign_of_life(self, cabinet: Cabinet) -> None:
        """The cabinet exists: remember it, and let its link take money if nothing else stops it."""
        change = self.payment_links.async_first_sign_of_life(cabinet)
        self._work.spawn(self._async_link_change(cabinet, change), cancellable=True)

    @callback
    def cabinet_offline(self, machine_id: str) -> None:
        """The cabinet went offline: its link stops after the grace period, unless it is back.

        Counted from when it went offline, also when that was before a reload.
        """
        since = self.offline_since.setdefault(machine_id, dt_util.utcnow().timestamp())
        if self._offline_grace > 0 and machine_id not in self._offline_timers:
            left = max(0.0, self._offline_grace - (dt_util.utcnow().timestamp() - since))
            self._offline_timers[machine_id] = async_call_later(
                self._hass,
                left,
                HassJob(partial(self._offline_too_long, machine_id), cancel_on_shutdown=True),
            )

    @callback
    def _offline_too_long(self, machine_id: str, _: object) -> None:
        self._work.spawn(self._async_offline_too_long(machine_id), cancellable=True)

    async def _async_offline_too_long(self, machine_id: str) -> None:
        self._offline_timers.pop(machine_id, None)
        cabinet = self._cabinets.get(machine_id)
        if cabinet is None or cabinet.online is not False:
            return
        LOGGER.warning("Cabinet %s is offline: its payment link stops taking payments", machine_id)
        await self._async_link_change(cabinet, self.payment_links.async_offline_rule(cabinet, True))

    @callback
    def cabinet_back(self, cabinet: Cabinet) -> None:
        """The cabinet is online again: no offline rule; its link may take money again."""
        if (cancel := self._offline_timers.pop(cabinet.machine_id, None)) is not None:
            cancel()
        self.offline_since.pop(cabinet.machine_id, None)
        self._work.spawn(self._async_back_online(cabinet), cancellable=True)

    async def _async_back_online(self, cabinet: Cabinet) -> None:
        if cabinet.offline_stopped:
            LOGGER.info("Cabinet %s is back: its payment link may take payments again", cabinet.machine_id)
        await self._async_link_change(cabinet, self.payment_links.async_offline_rule(cabinet, False))

    @callback
    def stop(self) -> None:
        """No more offline timers or retries."""
        for cancel in self._offline_timers.values():
            cancel()
        self._offline_timers.clear()
        self._retries.cancel()

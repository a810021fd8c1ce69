"""The one place that turns cabinets' payment links on and off in Stripe.

Plain Python (no Home Assistant import). Every path that activates or deactivates a link
goes through here: the "Accepting payments" switch, the create_payment_link action, the
offline rule, a cabinet's first sign of life, a price change, deleting a cabinet and
removing the entry. So the switch (``Cabinet.accepting_payments``), the ledger's memory
and Stripe agree, and the reason a link is off is kept:

* the operator paused it (the switch) — only the operator turns it on again;
* the cabinet never showed a sign of life on its topics (status, state, ack, game over),
  unless its settings say it never reports anything;
* the cabinet has been offline longer than the grace period (the offline rule).

A link takes money only when none of these holds. Nothing here overrides them: asking for
the link to show players (the action) puts Stripe back in line with them, no more.

After a start, what Stripe has is read from Stripe before anything is decided: the ledger
may be behind it (Home Assistant stopped between a call to Stripe and the ledger write, or the
write failed), and someone may have changed the link in Stripe's dashboard meanwhile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .core.cabinet import Cabinet
from .core.stripe_gateway import PaymentLink, StripeGatewayError

if TYPE_CHECKING:
    from .core.ledger import PaymentLedger

type RunBlocking = Callable[..., Awaitable[Any]]


class LinkGateway(Protocol):
    """The two Stripe calls this module needs."""

    async def set_link_active(self, link_id: str, active: bool) -> None:
        """Activate or deactivate a payment link."""

    async def payment_link(self, link_id: str) -> PaymentLink:
        """Retrieve a payment link."""


@dataclass(frozen=True, slots=True)
class LinkForPlayers:
    """What the create_payment_link action answers."""

    url: str
    payment_link_id: str
    accepting_payments: bool


async def async_retire_links(gateway: LinkGateway, link_ids: Iterable[str]) -> dict[str, str]:
    """Deactivate links no cabinet uses any more; return the ones that failed, with why."""
    failed: dict[str, str] = {}
    for link_id in dict.fromkeys(link_ids):
        try:
            await gateway.set_link_active(link_id, False)
        except StripeGatewayError as err:
            failed[link_id] = str(err)
    return failed


class PaymentLinks:
    """Keeps each cabinet's link in Stripe in line with why it should (not) take money."""

    def __init__(self, gateway: LinkGateway, ledger: PaymentLedger, run_blocking: RunBlocking) -> None:
        """Wire to Stripe and to the ledger, whose calls run through ``run_blocking``."""
        self.gateway = gateway
        self.ledger = ledger
        self._run = run_blocking
        # Cabinets whose link Stripe has not been asked about since the start.
        self._unread: set[str] = set()

    def read_from_stripe_first(self, cabinets: Iterable[Cabinet]) -> None:
        """Before the next change of these cabinets' links, ask Stripe what it has (at start-up)."""
        self._unread.update(cabinet.machine_id for cabinet in cabinets)

    def out_of_line(self, cabinet: Cabinet) -> bool:
        """Whether Stripe may not have what the cabinet wants."""
        # Never told about this link (a new link after a price change, or an upgrade): say it once.
        return (
            cabinet.machine_id in self._unread
            or not cabinet.link_state_known
            or cabinet.accepting_payments != cabinet.wants_payments
        )

    async def async_sync(self, cabinet: Cabinet) -> None:
        """Tell Stripe what the cabinet wants, if it may not have it; raise StripeGatewayError."""
        if cabinet.machine_id in self._unread:
            link = await self.gateway.payment_link(cabinet.config.payment_link_id)
            self._unread.discard(cabinet.machine_id)
            cabinet.set_accepting_payments(link.active)
        if self.out_of_line(cabinet):
            await self._async_set(cabinet, cabinet.wants_payments)

    async def _async_set(self, cabinet: Cabinet, active: bool) -> None:
        config = cabinet.config
        await self.gateway.set_link_active(config.payment_link_id, active)
        # Stripe has it now, whatever the ledger write below does: the switch shows what Stripe has.
        cabinet.set_accepting_payments(active)
        await self._run(
            self.ledger.set_cabinet_link,
            config.machine_id,
            config.payment_link_id,
            active,
            cabinet.offline_stopped,
        )

    async def async_pause(self, cabinet: Cabinet, paused: bool) -> None:
        """The operator switched payments off (or on again): remembered, then applied.

        If Stripe cannot be told, nothing changes (the error says so) and the operator retries.
        """
        was = cabinet.paused
        await self._run(self.ledger.set_cabinet_paused, cabinet.machine_id, paused)
        cabinet.paused = paused
        try:
            await self.async_sync(cabinet)
        except StripeGatewayError:
            cabinet.paused = was
            await self._run(self.ledger.set_cabinet_paused, cabinet.machine_id, was)
            raise
        finally:
            cabinet.changed()

    async def async_offline_rule(self, cabinet: Cabinet, stopped: bool) -> None:
        """The cabinet has been offline too long (``stopped``), or is back."""
        if cabinet.offline_stopped == stopped:
            await self.async_sync(cabinet)
            return
        cabinet.set_offline_stopped(stopped)
        if not self.out_of_line(cabinet):
            # Nothing to tell Stripe (the link is off for another reason too): remember why.
            await self._run(
                self.ledger.set_cabinet_link,
                cabinet.machine_id,
                cabinet.config.payment_link_id,
                cabinet.accepting_payments,
                stopped,
            )
            return
        await self.async_sync(cabinet)

    async def async_first_sign_of_life(self, cabinet: Cabinet) -> None:
        """The cabinet exists: remember it for good, then let its link take money if nothing else stops it."""
        await self._run(self.ledger.set_cabinet_seen, cabinet.machine_id)
        await self.async_sync(cabinet)

    async def async_link_for_players(self, cabinet: Cabinet) -> LinkForPlayers:
        """Fetch the link to show players, putting Stripe in line first (never overriding a reason)."""
        link = await self.gateway.payment_link(cabinet.config.payment_link_id)
        self._unread.discard(cabinet.machine_id)
        if link.active != cabinet.wants_payments:
            await self._async_set(cabinet, cabinet.wants_payments)
        else:
            cabinet.set_accepting_payments(link.active)
        return LinkForPlayers(link.url, link.id, cabinet.accepting_payments)

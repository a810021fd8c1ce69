"""Credits out: coin pulses published over MQTT until each cabinet has its credits.

The one door to delivery, its methods named for what happened: it wraps core's CreditDispatcher
(delivery.py) and its planner, which nothing else touches (tests/core/test_courier_door.py), with
what needs Home Assistant (pulses_out.py), pending credits and the repairs of credits stuck on
their way. Arrows point one way: intake, catch_up, cabinet_roster and cabinet_messages call it; it
calls only core, pulses_out.py and issues.py; entities and diagnostics only read its queries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from homeassistant.core import HomeAssistant, callback
from homeassistant.util import dt as dt_util

from .const import LOGGER
from .core.cabinet import Cabinet
from .core.clock import clock_of, moment
from .core.delivery import AckResult, CreditDispatcher, PublishResult, Pulse, Withdrawn
from .core.ledger import Adjustment, Payment, PaymentLedger
from .core.money_rules import refund_due
from .core.mqtt_connection import MqttConnection
from .core.stripe_gateway import StripeGateway
from .core.undelivered_refunds import UndeliveredRefunds
from .entry_work import EntryWork
from .issues import sync_unacknowledged_issue, sync_undelivered_issue
from .mqtt_client_watch import ClientWatch, remember_held, take_held
from .pulses_out import PulsePublisher, Wakeup, credits_added

# Credits on their way longer than this raise a repair (housekeeping checks every 30 seconds).
ALERT_AFTER = 600.0  # seconds


class Courier:
    """The coin pulses of one entry's cabinets."""

    def __init__(
        self,
        hass: HomeAssistant,
        ledger: PaymentLedger,
        cabinets: Mapping[str, Cabinet],
        topic_prefix: str,
        work: EntryWork,
        mqtt: MqttConnection,
    ) -> None:
        """Deliver to ``cabinets`` under ``topic_prefix``; ``work`` holds every task."""
        self._hass = hass
        self._cabinets = cabinets
        self._work = work
        self.mqtt = mqtt
        self._clock = clock_of(dt_util.utcnow)  # Home Assistant's, which its tests freeze.
        self._dispatcher = CreditDispatcher(
            ledger,
            self._async_publish_pulse,
            clock=self._clock,
            run_blocking=hass.async_add_executor_job,
            delivered=self._on_first_delivery,
            mqtt=mqtt,
        )
        self._publisher = PulsePublisher(hass, topic_prefix)
        self._wakeup = Wakeup(hass, self.flush_soon)
        self._client_watch = ClientWatch(hass)

    # --- read-only queries -------------------------------------------------------------

    @property
    def mqtt_connected(self) -> bool:
        """Whether MQTT takes pulses now."""
        return self.mqtt.connected

    @property
    def outstanding_pulses(self) -> int:
        """How many pulses are on their way."""
        return len(self._dispatcher.planner)

    def acknowledging_cabinets(self) -> list[str]:
        """The machine ids of the cabinets that acknowledge, sorted."""
        return self._dispatcher.planner.acknowledging_cabinets()

    def acknowledges(self, machine_id: str) -> bool:
        """Whether the cabinet was seen acknowledging its pulses (or is set to)."""
        return self._dispatcher.planner.acknowledges(machine_id)

    # --- what MQTT and the cabinets say (cabinet_messages.py) ----------------------------

    @callback
    def subscribed(self, connected: bool) -> None:
        """Subscribed to the cabinets' topics: MQTT is ``connected`` or not; retained statuses are due."""
        self._dispatcher.planner.set_mqtt_connected(connected)
        self._dispatcher.planner.expect_statuses(self._clock())  # core/delivery_planner.py

    @callback
    def mqtt_connection_changed(self, connected: bool) -> None:
        """MQTT connected or lost its broker: hold or resume pulses, update availability."""
        planner = self._dispatcher.planner
        if connected == planner.mqtt_connected:
            return
        planner.set_mqtt_connected(connected)
        for cabinet in self._cabinets.values():
            cabinet.mqtt_changed()
        if not connected:
            LOGGER.info("MQTT is disconnected: coin pulses wait until it is back")
            self.schedule_wakeup()
            return
        LOGGER.info("MQTT is back: sending the coin pulses that waited")
        planner.expect_statuses(self._clock())  # Subscribed again.
        planner.hurry()
        self.flush_soon()

    @callback
    def cabinet_status(self, machine_id: str, online: bool, *, changed: bool) -> None:
        """A cabinet's retained status said ``online`` (or offline); ``changed``: not what it said before."""
        planner = self._dispatcher.planner
        planner.set_cabinet_online(machine_id, online)
        if not online:
            if changed:
                self.schedule_wakeup()
            return
        # Every "online" is a (re)connect: pulses given up on get another round (resend.py).
        resumed = planner.resume(machine_id)
        if changed:
            planner.hurry(machine_id)
        if changed or resumed:
            self.flush_soon()

    @callback
    def first_sign_of_life(self, machine_id: str) -> None:
        """The cabinet published for the first time: its pulses are no longer held, and go now."""
        self._dispatcher.planner.first_sign_seen(machine_id)
        self._dispatcher.planner.hurry(machine_id)
        self.flush_soon()

    async def async_acknowledged(self, machine_id: str, payment_id: str) -> AckResult:
        """A cabinet acknowledged a pulse; raises LedgerError if that could not be noted."""
        result = await self._dispatcher.acknowledge(machine_id, payment_id)
        if result not in (AckResult.UNKNOWN, AckResult.NOT_SENT):
            self.after_delivery_change(machine_id)
        return result

    # --- the cabinets the entry runs (cabinet_roster.py) ---------------------------------

    @callback
    def cabinet_restored(
        self, machine_id: str, *, acknowledges: bool, by_owner: bool, unseen: bool, was_offline: bool
    ) -> None:
        """What is known of a cabinet before its pulses are read: remembered, or set ``by_owner``.

        ``unseen``: it never showed a sign of life; ``was_offline``: last known offline.
        """
        planner = self._dispatcher.planner
        planner.set_acknowledges(machine_id, acknowledges, by_owner=by_owner)
        if unseen:
            planner.wait_for_first_sign(machine_id)
        if was_offline:
            planner.was_offline(machine_id)

    async def async_load(self, known_cabinets: set[str]) -> None:
        """Read the pulses still owed from the ledger (core/delivery.py), knowing what MQTT holds."""
        await self._dispatcher.load(known_cabinets, take_held(self._hass))

    async def async_load_cabinet(self, machine_id: str) -> None:
        """Read the pulses still owed to a cabinet added while the entry runs."""
        await self._dispatcher.load(cabinet=machine_id)

    @callback
    def cabinet_removed(self, cabinet: Cabinet) -> None:
        """A deleted cabinet: nothing more is sent to it, and its delivery repairs go."""
        self._dispatcher.planner.drop_cabinet(cabinet.machine_id)
        sync_undelivered_issue(self._hass, cabinet, False)
        sync_unacknowledged_issue(self._hass, cabinet, 0)
        self.schedule_wakeup()

    # --- payments in (intake.py) and refunds of what was not delivered (catch_up.py) -----------

    async def async_accept(self, payment: Payment, recorded: Callable[[Adjustment | None], None]) -> bool:
        """Record a payment (``recorded``: see delivery.py), sent by ``deliver_soon``; False if known."""
        return await self._dispatcher.accept(payment, recorded=recorded, deliver=False)

    async def async_accept_now(self, payment: Payment) -> bool:
        """Record free credits and send them now; return whether MQTT took the pulse."""
        await self._dispatcher.accept(payment)
        self.after_delivery_change(payment.machine_id)
        return self._dispatcher.published_once(payment.payment_id)

    @callback
    def adjust(self, payment_id: str, credits_left: int) -> None:
        """Money given back: only ``credits_left`` of the pulse are still sent (0: none)."""
        self._dispatcher.adjust(payment_id, credits_left)

    def outstanding_payments(self) -> list[str]:
        """The payment ids of the pulses still owed, oldest first."""
        return [outstanding.payment_id for outstanding in self._dispatcher.planner.outstanding()]

    @callback
    def withdraw_overdue(self, payment_id: str, now: float, after: float) -> Withdrawn | None:
        """Take a Stripe payment's pulse paid ``after`` seconds ago or more out of delivery, to refund it.

        None if not, or in flight: it may be on the cabinet in a moment (never refund what was delivered).
        """
        pulse = self._dispatcher.pulse(payment_id)
        if pulse is None or not refund_due(pulse.source, pulse.timestamp, now, after):
            return None
        return self._dispatcher.withdraw(payment_id)

    def undelivered_refunds(
        self, gateway: Callable[[], StripeGateway], applied: Callable[[Adjustment], None]
    ) -> UndeliveredRefunds:
        """Refunds of withdrawn pulses through ``gateway`` (core/undelivered_refunds.py)."""
        return UndeliveredRefunds(
            self._dispatcher, gateway, self._hass.async_add_executor_job, applied, self.after_delivery_change
        )

    async def _async_publish_pulse(self, pulse: Pulse) -> PublishResult:
        """Publish one coin pulse; REFUSED while the entry unloads (the next start sends it)."""
        if self._work.stopping:
            return PublishResult.REFUSED
        self._check_mqtt_client()
        return await self._publisher.async_publish(pulse)

    def _check_mqtt_client(self) -> None:
        """A new MQTT client (the MQTT integration reloaded) never had what the old one held."""
        if self._client_watch.replaced() and self._dispatcher.planner.mqtt_client_replaced():
            LOGGER.warning("The MQTT client was replaced: coin pulses it held unconfirmed are sent again")

    @callback
    def _on_first_delivery(self, pulse: Pulse) -> None:
        if (cabinet := self._cabinets.get(pulse.machine_id)) is not None:
            credits_added(self._hass, cabinet, pulse)

    @callback
    def deliver_soon(self, payment_id: str, machine_id: str) -> None:
        """Send an accepted payment's pulse now, in a task of its own."""
        self._work.spawn(self._async_deliver(payment_id, machine_id))

    async def _async_deliver(self, payment_id: str, machine_id: str) -> None:
        # A confirmed publish may prove unconfirmed pulses of other cabinets delivered too.
        cabinets = {machine_id} | {pulse.machine_id for pulse in self._dispatcher.awaiting_broker()}
        try:
            await self._dispatcher.deliver(payment_id)
        finally:
            for cabinet in cabinets:
                self.refresh_pending(cabinet)
            self.schedule_wakeup()

    async def async_flush(self) -> None:
        """Publish what is due, then sleep until the next pulse falls due (whatever went wrong)."""
        self._check_mqtt_client()  # MQTT (re)connected: maybe through a new client.
        try:
            await self._dispatcher.flush()
        finally:
            self.after_delivery_change()

    @callback
    def flush_soon(self) -> None:
        """Publish what is due, in a task of its own."""
        self._work.spawn(self.async_flush())

    @callback
    def after_delivery_change(self, machine_id: str | None = None) -> None:
        """Update pending credits (of one cabinet, or all) and the next wake-up."""
        self.refresh_pending(machine_id)
        self.schedule_wakeup()

    @callback
    def refresh_pending(self, machine_id: str | None = None) -> None:
        """Show each cabinet's credits still on their way, and raise the repair of unacknowledged ones."""
        # One cabinet on the payment path: with 500 cabinets, all of them per payment adds up.
        if machine_id is None:
            cabinets = self._cabinets
        else:  # A refund may be for a cabinet that was deleted since.
            cabinets = {machine_id: c} if (c := self._cabinets.get(machine_id)) else {}
        for machine, cabinet in cabinets.items():
            cabinet.set_pending_credits(self._dispatcher.outstanding_credits(machine))
            sync_unacknowledged_issue(self._hass, cabinet, self._dispatcher.given_up_credits(machine))

    @callback
    def schedule_wakeup(self) -> None:
        """Sleep until the next pulse falls due (none while the entry unloads)."""
        wake_at = None if self._work.stopping else self._dispatcher.next_wakeup()
        self._wakeup.set(None if wake_at is None else wake_at - self._clock())

    @callback
    def sync_overdue_issues(self) -> None:
        """Raise a repair for each cabinet whose credits are on their way too long (housekeeping)."""
        now = moment(self._clock)
        for machine_id, cabinet in self._cabinets.items():
            oldest = self._dispatcher.oldest_outstanding(machine_id)
            age = (now - oldest.timestamp).total_seconds() if oldest else 0.0
            sync_undelivered_issue(self._hass, cabinet, oldest is not None and age >= ALERT_AFTER)

    async def async_write_notes(self) -> None:
        """Write the publish notes the ledger still owes (the entry unloads, its work done)."""
        await self._dispatcher.write_notes()

    @callback
    def stop(self) -> None:
        """No more wake-ups; what MQTT holds unconfirmed is known to the next load (an entry reload)."""
        self._wakeup.cancel()
        remember_held(self._hass, (pulse.payment_id for pulse in self._dispatcher.awaiting_broker()))

"""Credits out: coin pulses published over MQTT until each cabinet has its credits.

The courier wraps core's CreditDispatcher (delivery.py) with what needs Home Assistant: the
MQTT publish, the wake-up when the next pulse falls due, the cabinets' pending credits and
the repairs of credits stuck on their way. It learns which cabinets acknowledge from their
acks (cabinet_messages.py tells it).

Arrows point one way: intake.py and cabinet_messages.py call the courier; the courier calls
only core and issues.py. Entities and diagnostics read its queries (``mqtt_connected``,
``acknowledges`` …) and change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
import time

from homeassistant.components import mqtt
from homeassistant.components.mqtt import client as mqtt_client
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .const import (
    ATTR_CREDITS,
    ATTR_MACHINE_ID,
    ATTR_PAYMENT_ID,
    ATTR_SOURCE,
    EVENT_CREDIT_ADDED,
    EVENT_TYPE_CREDIT_ADDED,
    LOGGER,
)
from .core.cabinet import Cabinet, CabinetEvent
from .core.delivery import AckResult, CreditDispatcher, PublishResult, Pulse
from .core.delivery_planner import DeliveryPlanner
from .core.ledger import PaymentLedger
from .core.payments import utcnow
from .core.protocol import TOPIC_COIN_PULSE, CoinPulse, topic
from .entry_work import EntryWork
from .issues import sync_unacknowledged_issue, sync_undelivered_issue
from .mqtt_client_watch import ClientWatch, remember_held, take_held

# Credits on their way longer than this raise a repair (housekeeping checks every 30 seconds).
ALERT_AFTER = 600.0  # seconds
# Home Assistant's wait for a PUBACK (mqtt/client.py TIMEOUT_ACK), if it ever stops saying.
PUBACK_WAIT_FALLBACK = 10.0  # seconds
# A publish that took this share of that wait or more was not confirmed: Home Assistant's timer
# fires at the wait, measured from a moment just after ours began, so the margin only absorbs
# clock rounding; a PUBACK that came in that last 5 % counts as missing (sent again after a
# restart, at worst a doubled credit, never a lost one).
UNCONFIRMED_SHARE = 0.95


def puback_wait() -> float:
    """Seconds Home Assistant waits for a PUBACK before it returns from a publish anyway.

    Read at each publish: tests shorten it, and a future Home Assistant may change or drop it.
    """
    wait = getattr(mqtt_client, "TIMEOUT_ACK", None)
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
        return float(wait)
    return PUBACK_WAIT_FALLBACK


def event_data(cabinet: Cabinet) -> dict[str, str | None]:
    """Bus event data naming the cabinet."""
    return {ATTR_MACHINE_ID: cabinet.machine_id, "device_id": cabinet.device_id}


class Courier:
    """The coin pulses of one entry's cabinets."""

    def __init__(
        self,
        hass: HomeAssistant,
        ledger: PaymentLedger,
        cabinets: Mapping[str, Cabinet],
        topic_prefix: str,
        work: EntryWork,
    ) -> None:
        """Deliver to ``cabinets`` under ``topic_prefix``; every task is held by ``work``."""
        self._hass = hass
        self._cabinets = cabinets
        self._topic_prefix = topic_prefix
        self._work = work
        self.dispatcher = CreditDispatcher(
            ledger,
            self._async_publish_pulse,
            clock=lambda: dt_util.utcnow().timestamp(),
            run_blocking=hass.async_add_executor_job,
            delivered=self._on_first_delivery,
        )
        self._wakeup: CALLBACK_TYPE | None = None
        self._publish_failing = False
        self._client_watch = ClientWatch(hass)

    # --- read-only queries -------------------------------------------------------------

    @property
    def planner(self) -> DeliveryPlanner:
        """Who is online, who acknowledges, what is outstanding (delivery_planner.py)."""
        return self.dispatcher.planner

    @property
    def mqtt_connected(self) -> bool:
        """Whether MQTT takes pulses now."""
        return self.dispatcher.planner.mqtt_connected

    @property
    def outstanding_pulses(self) -> int:
        """How many pulses are on their way."""
        return len(self.dispatcher.planner)

    def acknowledging_cabinets(self) -> list[str]:
        """The machine ids of the cabinets that acknowledge, sorted."""
        return self.dispatcher.planner.acknowledging_cabinets()

    def acknowledges(self, machine_id: str) -> bool:
        """Whether the cabinet was seen acknowledging its pulses (or is set to)."""
        return self.dispatcher.planner.acknowledges(machine_id)

    # --- pulses out ----------------------------------------------------------------------

    async def _async_publish_pulse(self, pulse: Pulse) -> PublishResult:
        """Publish one coin pulse; REFUSED when MQTT refused it, or the entry is unloading.

        Home Assistant returns normally when no PUBACK came within its wait (it only logs "No ACK
        from MQTT server"): a publish that took that long is UNCONFIRMED (core/delivery.py).
        """
        if self._work.stopping:  # The next start sends it, after reading the ledger.
            return PublishResult.REFUSED
        self._check_mqtt_client()
        message = CoinPulse(pulse.machine_id, pulse.credits, pulse.timestamp, pulse.payment_id)
        started = time.monotonic()
        try:
            await mqtt.async_publish(
                self._hass,
                topic(self._topic_prefix, pulse.machine_id, TOPIC_COIN_PULSE),
                message.to_json(),
                qos=1,
                retain=False,
            )
        except HomeAssistantError as err:
            if not self._publish_failing:
                LOGGER.warning(
                    "Coin pulses cannot be sent (%s); they wait and are sent when MQTT is back", err
                )
                self._publish_failing = True
            return PublishResult.REFUSED
        if self._publish_failing:
            LOGGER.info("Coin pulses are being sent again")
            self._publish_failing = False
        if time.monotonic() - started >= UNCONFIRMED_SHARE * puback_wait():
            LOGGER.warning(
                "The MQTT broker did not confirm coin pulse %s for cabinet %s; its credits stay pending"
                " until a later pulse is confirmed (the MQTT client sends it when it reconnects)",
                pulse.payment_id,
                pulse.machine_id,
            )
            return PublishResult.UNCONFIRMED
        return PublishResult.CONFIRMED

    def _check_mqtt_client(self) -> None:
        """A new MQTT client (the MQTT integration reloaded) never had what the old one held."""
        if self._client_watch.replaced() and self.planner.mqtt_client_replaced():
            LOGGER.warning("The MQTT client was replaced: coin pulses it held unconfirmed are sent again")

    @callback
    def _on_first_delivery(self, pulse: Pulse) -> None:
        """A pulse reached MQTT for the first time: tell the entities and the bus."""
        cabinet = self._cabinets.get(pulse.machine_id)
        if cabinet is None:
            return
        attributes = {
            ATTR_CREDITS: pulse.credits,
            ATTR_PAYMENT_ID: pulse.payment_id,
            ATTR_SOURCE: pulse.source.value,
        }
        cabinet.credit(pulse.credits, CabinetEvent(EVENT_TYPE_CREDIT_ADDED, attributes))
        self._hass.bus.async_fire(EVENT_CREDIT_ADDED, event_data(cabinet) | attributes)

    @callback
    def deliver_soon(self, payment_id: str, machine_id: str) -> None:
        """Send an accepted payment's pulse now, in a task of its own."""
        self._work.spawn(self._async_deliver(payment_id, machine_id))

    async def _async_deliver(self, payment_id: str, machine_id: str) -> None:
        # A confirmed publish may prove unconfirmed pulses of other cabinets delivered too.
        cabinets = {machine_id} | {pulse.machine_id for pulse in self.dispatcher.awaiting_broker()}
        try:
            await self.dispatcher.deliver(payment_id)
        finally:
            for cabinet in cabinets:
                self.refresh_pending(cabinet)
            self.schedule_wakeup()

    async def async_flush(self) -> None:
        """Publish what is due, then sleep until the next pulse falls due (whatever went wrong)."""
        self._check_mqtt_client()  # MQTT (re)connected: maybe through a new client.
        try:
            await self.dispatcher.flush()
        finally:
            self.after_delivery_change()

    @callback
    def flush_soon(self) -> None:
        """Publish what is due, in a task of its own."""
        self._work.spawn(self.async_flush())

    async def async_acknowledged(self, machine_id: str, payment_id: str) -> AckResult:
        """A cabinet acknowledged a pulse; raises LedgerError if that could not be noted."""
        result = await self.dispatcher.acknowledge(machine_id, payment_id)
        if result not in (AckResult.UNKNOWN, AckResult.NOT_SENT):
            self.after_delivery_change(machine_id)
        return result

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
            cabinet.set_pending_credits(self.dispatcher.outstanding_credits(machine))
            sync_unacknowledged_issue(self._hass, cabinet, self.dispatcher.given_up_credits(machine))

    @callback
    def schedule_wakeup(self) -> None:
        """Sleep until the next pulse falls due (none while the entry unloads)."""
        self._cancel_wakeup()
        wake_at = self.dispatcher.next_wakeup()
        if wake_at is None or self._work.stopping:
            return
        delay = max(0.0, wake_at - dt_util.utcnow().timestamp())
        self._wakeup = async_call_later(self._hass, delay, HassJob(self._wakeup_due, cancel_on_shutdown=True))

    @callback
    def _wakeup_due(self, _: object) -> None:
        self._wakeup = None
        self.flush_soon()

    def _cancel_wakeup(self) -> None:
        if self._wakeup is not None:
            self._wakeup()
            self._wakeup = None

    @callback
    def sync_overdue_issues(self) -> None:
        """Raise a repair for each cabinet whose credits are on their way too long (housekeeping)."""
        now = utcnow()
        for machine_id, cabinet in self._cabinets.items():
            oldest = self.dispatcher.oldest_outstanding(machine_id)
            age = (now - oldest.timestamp).total_seconds() if oldest else 0.0
            sync_undelivered_issue(self._hass, cabinet, oldest is not None and age >= ALERT_AFTER)

    async def async_load(self, known_cabinets: set[str]) -> None:
        """Read the pulses still owed from the ledger (core/delivery.py), knowing what MQTT holds."""
        await self.dispatcher.load(known_cabinets, take_held(self._hass))

    @callback
    def cabinet_removed(self, cabinet: Cabinet) -> None:
        """A deleted cabinet: nothing more is sent to it, and its delivery repairs go."""
        self.dispatcher.planner.drop_cabinet(cabinet.machine_id)
        sync_undelivered_issue(self._hass, cabinet, False)
        sync_unacknowledged_issue(self._hass, cabinet, 0)
        self.schedule_wakeup()

    @callback
    def stop(self) -> None:
        """No more wake-ups; what MQTT holds unconfirmed is known to the next load (an entry reload)."""
        self._cancel_wakeup()
        remember_held(self._hass, (pulse.payment_id for pulse in self.dispatcher.awaiting_broker()))

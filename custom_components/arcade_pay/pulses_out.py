"""Coin pulses out, the Home Assistant side the courier (courier.py) drives, deciding nothing here.

* The publish: Home Assistant returns normally when no PUBACK came within its wait (it only logs
  "No ACK from MQTT server"): a publish that took that long is UNCONFIRMED (core/delivery.py).
* The wake-up when the next pulse falls due.
* The bus event and the cabinet's credits when a pulse first reaches MQTT.
"""

from __future__ import annotations

from collections.abc import Callable
import time

from homeassistant.components import mqtt
from homeassistant.components.mqtt import client as mqtt_client
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_call_later

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
from .core.delivery import PublishResult, Pulse
from .core.protocol import TOPIC_COIN_PULSE, CoinPulse, topic

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


class PulsePublisher:
    """Publishes the coin pulses of one entry under its topic prefix."""

    def __init__(self, hass: HomeAssistant, topic_prefix: str) -> None:
        """Publish under ``topic_prefix``."""
        self._hass = hass
        self._topic_prefix = topic_prefix
        self._failing = False

    async def async_publish(self, pulse: Pulse) -> PublishResult:
        """Publish one coin pulse (QoS 1); REFUSED when MQTT refused it.

        The time it took is measured on the monotonic clock, as Home Assistant's MQTT client
        times its wait: it is a duration, not a time of day (core/clock.py).
        """
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
            if not self._failing:
                LOGGER.warning(
                    "Coin pulses cannot be sent (%s); they wait and are sent when MQTT is back", err
                )
                self._failing = True
            return PublishResult.REFUSED
        if self._failing:
            LOGGER.info("Coin pulses are being sent again")
            self._failing = False
        if time.monotonic() - started >= UNCONFIRMED_SHARE * puback_wait():
            LOGGER.warning(
                "The MQTT broker did not confirm coin pulse %s for cabinet %s; its credits stay pending"
                " until a later pulse is confirmed (the MQTT client sends it when it reconnects)",
                pulse.payment_id,
                pulse.machine_id,
            )
            return PublishResult.UNCONFIRMED
        return PublishResult.CONFIRMED


class Wakeup:
    """One timer: calls ``due`` when the next pulse falls due."""

    def __init__(self, hass: HomeAssistant, due: Callable[[], None]) -> None:
        """Call ``due`` (in the event loop) when the time set comes."""
        self._hass = hass
        self._due = due
        self._cancel: CALLBACK_TYPE | None = None

    @callback
    def set(self, delay: float | None) -> None:
        """Wake in ``delay`` seconds (now if negative), replacing any wake-up set; None: not at all."""
        self.cancel()
        if delay is not None:
            job = HassJob(self._fire, cancel_on_shutdown=True)
            self._cancel = async_call_later(self._hass, max(0.0, delay), job)

    @callback
    def _fire(self, _: object) -> None:
        self._cancel = None
        self._due()

    @callback
    def cancel(self) -> None:
        """No wake-up."""
        if self._cancel is not None:
            self._cancel()
            self._cancel = None


def event_data(cabinet: Cabinet) -> dict[str, str | None]:
    """Bus event data naming the cabinet."""
    return {ATTR_MACHINE_ID: cabinet.machine_id, "device_id": cabinet.device_id}


@callback
def credits_added(hass: HomeAssistant, cabinet: Cabinet, pulse: Pulse) -> None:
    """A pulse reached MQTT for the first time: tell the cabinet's entities and the bus."""
    attributes = {
        ATTR_CREDITS: pulse.credits,
        ATTR_PAYMENT_ID: pulse.payment_id,
        ATTR_SOURCE: pulse.source.value,
    }
    cabinet.credit(pulse.credits, CabinetEvent(EVENT_TYPE_CREDIT_ADDED, attributes))
    hass.bus.async_fire(EVENT_CREDIT_ADDED, event_data(cabinet) | attributes)

"""What cabinets publish over MQTT (game over, status, state, acks) and MQTT's own state.

Split from hub.py: each handler checks the message, then tells the cabinet, the delivery
planner or payment_links.py (through the hub) what it means.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from homeassistant.components import mqtt
from homeassistant.core import HassJob, callback
from homeassistant.helpers.event import async_call_later

from .const import ATTR_MACHINE_ID, EVENT_GAME_OVER, EVENT_TYPE_GAME_OVER, LOGGER
from .core.cabinet import Cabinet, CabinetEvent
from .core.delivery import AckResult
from .core.ledger import LedgerError
from .core.protocol import Ack, CabinetState, GameOver, ProtocolError, machine_id_from_topic, parse_status

if TYPE_CHECKING:
    from .hub import ArcadePayHub


class CabinetMessages:
    """The MQTT handlers of one hub."""

    def __init__(self, hub: ArcadePayHub) -> None:
        """Handle messages for ``hub``'s cabinets."""
        self._hub = hub
        self._warned_topics: set[str] = set()

    def event_data(self, cabinet: Cabinet) -> dict[str, str | None]:
        """Bus event data naming the cabinet."""
        return {ATTR_MACHINE_ID: cabinet.machine_id, "device_id": cabinet.device_id}

    def _cabinet_for_topic(self, message_topic: str) -> Cabinet | None:
        machine_id = machine_id_from_topic(self._hub.topic_prefix, message_topic)
        return None if machine_id is None else self._hub.cabinets.get(machine_id)

    def _warn_once(self, message_topic: str, err: ProtocolError) -> None:
        """Warn once per topic about malformed messages; a chatty cabinet must not flood the log."""
        if message_topic in self._warned_topics:
            LOGGER.debug("Ignoring malformed message on %s: %s", message_topic, err)
            return
        self._warned_topics.add(message_topic)
        LOGGER.warning(
            "Ignoring malformed message on %s: %s (further ones on this topic are logged at debug level)",
            message_topic,
            err,
        )

    @callback
    def on_mqtt_connection(self, connected: bool) -> None:
        """MQTT connected or lost its broker: hold or resume pulses, update availability."""
        planner = self._hub.dispatcher.planner
        if connected == planner.connected:
            return
        planner.connected = connected
        for cabinet in self._hub.cabinets.values():
            cabinet.mqtt_connected = connected
            cabinet.changed()
        if not connected:
            LOGGER.info("MQTT is disconnected: coin pulses wait until it is back")
            self._hub._schedule_wakeup()
            return
        LOGGER.info("MQTT is back: sending the coin pulses that waited")
        planner.hurry()
        self._hub.work.spawn(self._hub.async_flush())

    @callback
    def on_game_over(self, msg: mqtt.ReceiveMessage) -> None:
        """A game ended on a cabinet."""
        if (cabinet := self._cabinet_for_topic(msg.topic)) is None:
            return
        try:
            game_over = GameOver.from_payload(msg.payload)
            if game_over.machine_id != cabinet.machine_id:
                raise ProtocolError(f"machineId {game_over.machine_id!r} does not match the topic")
        except ProtocolError as err:
            self._warn_once(msg.topic, err)
            return
        self._hub._note_sign_of_life(cabinet)
        cabinet.game_over(self._hub.options.credits_per_game, CabinetEvent(EVENT_TYPE_GAME_OVER))
        self._hub.hass.bus.async_fire(EVENT_GAME_OVER, self.event_data(cabinet))

    @callback
    def on_status(self, msg: mqtt.ReceiveMessage) -> None:
        """A cabinet's retained status (its last will): online or offline."""
        if (cabinet := self._cabinet_for_topic(msg.topic)) is None:
            return
        if not msg.payload:
            return  # A cleared retained status says nothing.
        try:
            online = parse_status(msg.payload)
        except ProtocolError as err:
            self._warn_once(msg.topic, err)
            return
        self._hub._note_sign_of_life(cabinet)
        was = cabinet.online
        cabinet.set_online(online)
        planner = self._hub.dispatcher.planner
        planner.online[cabinet.machine_id] = online
        machine_id = cabinet.machine_id
        # Every "online" is a (re)connect: pulses given up on get another round (resend.py).
        if online and planner.resume(machine_id) and online == was:
            self._hub.work.spawn(self._hub.async_flush())
        if online == was:
            return
        if not online:
            LOGGER.info("Cabinet %s went offline; credits for it wait until it is back", machine_id)
            self._hub._schedule_wakeup()
            if self._hub.options.offline_grace > 0 and machine_id not in self._hub._offline_timers:
                self._hub._offline_timers[machine_id] = async_call_later(
                    self._hub.hass,
                    self._hub.options.offline_grace,
                    HassJob(partial(self._offline_too_long, machine_id), cancel_on_shutdown=True),
                )
            return
        if was is False:
            LOGGER.info("Cabinet %s is back online", machine_id)
        if (cancel := self._hub._offline_timers.pop(machine_id, None)) is not None:
            cancel()
        self._hub.dispatcher.planner.hurry(machine_id)
        self._hub.work.spawn(self._hub._async_back_online(cabinet), cancellable=True)
        self._hub.work.spawn(self._hub.async_flush())

    @callback
    def _offline_too_long(self, machine_id: str, _: object) -> None:
        self._hub.work.spawn(self._hub._async_offline_too_long(machine_id), cancellable=True)

    @callback
    def on_state(self, msg: mqtt.ReceiveMessage) -> None:
        """A cabinet reported its own credits and game state."""
        if (cabinet := self._cabinet_for_topic(msg.topic)) is None:
            return
        if not msg.payload:
            return
        try:
            state = CabinetState.from_payload(msg.payload)
        except ProtocolError as err:
            self._warn_once(msg.topic, err)
            return
        self._hub._note_sign_of_life(cabinet)
        # Its "acknowledges" is no proof (resend.py): only an ack of a pulse sent to it is.
        cabinet.report_state(state)

    @callback
    def on_ack(self, msg: mqtt.ReceiveMessage) -> None:
        """A cabinet acknowledged a coin pulse."""
        if (cabinet := self._cabinet_for_topic(msg.topic)) is None:
            return
        try:
            ack = Ack.from_payload(msg.payload)
        except ProtocolError as err:
            self._warn_once(msg.topic, err)
            return
        self._hub._note_sign_of_life(cabinet)
        self._hub.work.spawn(self._async_acknowledged(cabinet, ack.payment_id))

    async def _async_acknowledged(self, cabinet: Cabinet, payment_id: str) -> None:
        try:
            result = await self._hub.dispatcher.acknowledge(cabinet.machine_id, payment_id)
        except LedgerError as err:  # Re-sent until acknowledged: the next ack is noted instead.
            LOGGER.warning("Could not note the acknowledgement of %s: %s", payment_id, err)
            return
        if result in (AckResult.UNKNOWN, AckResult.NOT_SENT):
            what = "not a payment of this cabinet" if result is AckResult.UNKNOWN else "not sent to it yet"
            self._warn_once(
                f"{cabinet.machine_id}/ack/{result.value}",
                ProtocolError(f"acknowledgement for {payment_id[:64]!r}, which is {what}"),
            )
            return
        self._hub._after_delivery_change(cabinet.machine_id)

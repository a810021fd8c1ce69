"""What cabinets publish over MQTT (game over, status, state, acks, announcements) and MQTT's own state.

MQTT in: each handler checks the message, then tells the cabinet, the courier (MQTT's state, the
status, first sign of life and acks) or the link keeper (first sign, the offline rule); neither
calls back. The earlier system's HTTP game over (game_over_webhook.py) takes the MQTT game over's
path, then is published as it did; ``PublishedEchoes`` keeps that message, coming back, from
counting twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util.dt import utcnow

from .cabinet_discovery import offer_cabinet, show_announcement
from .const import EVENT_GAME_OVER, EVENT_TYPE_GAME_OVER, LOGGER
from .core.announcement import Announcement
from .core.cabinet import Cabinet, CabinetEvent
from .core.clock import clock_of
from .core.delivery import AckResult
from .core.ledger import LedgerError
from .core.protocol import (
    TOPIC_ACK,
    TOPIC_GAME_OVER,
    TOPIC_INFO,
    TOPIC_STATE,
    TOPIC_STATUS,
    Ack,
    CabinetState,
    GameOver,
    ProtocolError,
    machine_id_from_topic,
    parse_status,
    subscription,
    topic,
)
from .core.published_echoes import PublishedEchoes
from .core.unclaimed import UnclaimedMessages
from .courier import Courier
from .entry_work import EntryWork
from .link_keeper import LinkKeeper
from .pulses_out import event_data

type Handler = Callable[[mqtt.ReceiveMessage], None]


class CabinetMessages:
    """The MQTT handlers of one entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        cabinets: Mapping[str, Cabinet],
        topic_prefix: str,
        credits_per_game: int,
        courier: Courier,
        links: LinkKeeper,
        work: EntryWork,
    ) -> None:
        """Handle messages for ``cabinets`` under ``topic_prefix``."""
        self._hass = hass
        self._cabinets = cabinets
        self._topic_prefix = topic_prefix
        self._credits_per_game = credits_per_game
        self._courier = courier
        self._links = links
        self._work = work
        self._warned_topics: set[str] = set()
        self._echoes = PublishedEchoes(clock_of(utcnow))
        self._offered_topics: set[str] = set()
        self._unclaimed: UnclaimedMessages[mqtt.ReceiveMessage] = UnclaimedMessages()
        # Each kind cabinets publish (protocol.py), its handler and QoS: what is subscribed to, and
        # how cabinet_added replays what a cabinet said before (the retained kinds' handlers keep it).
        self._handlers: dict[str, tuple[Handler, int]] = {
            TOPIC_GAME_OVER: (self.on_game_over, 1),
            TOPIC_STATUS: (self.on_status, 1),
            TOPIC_STATE: (self.on_state, 1),
            # QoS 0: a lost ack costs a re-sent pulse; a PUBACK per ack stalls the next pulse 40 ms
            # behind Nagle's algorithm (Home Assistant's MQTT socket does not set TCP_NODELAY).
            TOPIC_ACK: (self.on_ack, 0),
            TOPIC_INFO: (self.on_info, 1),
        }

    async def async_subscribe(self) -> list[Callable[[], None]]:
        """Subscribe to what cabinets publish and to MQTT's state; return the unsubscribers."""
        unsubscribe = []
        for kind, (handler, qos) in self._handlers.items():
            unsubscribe.append(
                await mqtt.async_subscribe(
                    self._hass, subscription(self._topic_prefix, kind), handler, qos=qos, encoding=None
                )
            )
        watch = self._courier.mqtt_connection_changed
        unsubscribe.append(mqtt.async_subscribe_connection_status(self._hass, watch))
        self._courier.subscribed(mqtt.is_connected(self._hass))
        return unsubscribe

    def _cabinet_for_topic(self, message_topic: str) -> Cabinet | None:
        machine_id = machine_id_from_topic(self._topic_prefix, message_topic)
        return None if machine_id is None else self._cabinets.get(machine_id)

    def _keep_unclaimed(self, msg: mqtt.ReceiveMessage, kind: str) -> None:
        """A message of a cabinet the entry does not have: kept in case it is added while running."""
        if (machine_id := machine_id_from_topic(self._topic_prefix, msg.topic)) is not None:
            self._unclaimed.keep(machine_id, kind, msg, cleared=not msg.payload)

    @callback
    def cabinet_added(self, cabinet: Cabinet) -> None:
        """A cabinet added while the entry runs hears what it said before (see core/unclaimed.py)."""
        for msg in self._unclaimed.claim(cabinet.machine_id):
            handler, _ = self._handlers[msg.topic.rsplit("/", 1)[1]]
            handler(msg)

    def _warn_once(self, message_topic: str, err: ProtocolError) -> None:
        """Warn once per topic about malformed messages; a chatty cabinet must not flood the log."""
        if message_topic in self._warned_topics:
            LOGGER.debug("Ignoring malformed message on %s: %s", message_topic, err)
            return
        self._warned_topics.add(message_topic)
        LOGGER.warning(
            "Ignoring malformed message on %s: %s (further ones at debug level)", message_topic, err
        )

    @callback
    def on_game_over(self, msg: mqtt.ReceiveMessage) -> None:
        """A game ended on a cabinet."""
        if (cabinet := self._cabinet_for_topic(msg.topic)) is None:
            return
        if self._echoes.is_echo(msg.topic, msg.payload):
            return  # Published by async_http_game_over, which counted it already.
        try:
            game_over = GameOver.from_payload(msg.payload)
            if game_over.machine_id != cabinet.machine_id:
                raise ProtocolError(f"machineId {game_over.machine_id!r} does not match the topic")
        except ProtocolError as err:
            self._warn_once(msg.topic, err)
            return
        self._game_over(cabinet)

    async def async_http_game_over(self, cabinet: Cabinet) -> bool:
        """The earlier system's HTTP game over: counted as the MQTT one, then published as it did.

        Return whether MQTT took the message (the game over counts either way).
        """
        self._game_over(cabinet)
        message_topic = topic(self._topic_prefix, cabinet.machine_id, TOPIC_GAME_OVER)
        message = GameOver(cabinet.machine_id, utcnow()).to_json()
        self._echoes.expect(message_topic, message.encode())
        try:
            await mqtt.async_publish(self._hass, message_topic, message, qos=1, retain=False)
        except HomeAssistantError as err:
            # Still expected back: the MQTT client keeps a QoS 1 message and sends it once connected.
            LOGGER.warning(
                "The game over of %s was counted but could not be published on %s now: %s",
                cabinet.machine_id,
                message_topic,
                err,
            )
            return False
        return True

    @callback
    def _game_over(self, cabinet: Cabinet) -> None:
        self._note_sign_of_life(cabinet)
        cabinet.game_over(self._credits_per_game, CabinetEvent(EVENT_TYPE_GAME_OVER))
        self._hass.bus.async_fire(EVENT_GAME_OVER, event_data(cabinet))

    @callback
    def on_status(self, msg: mqtt.ReceiveMessage) -> None:
        """A cabinet's retained status (its last will): online or offline."""
        if (cabinet := self._cabinet_for_topic(msg.topic)) is None:
            self._keep_unclaimed(msg, TOPIC_STATUS)
            self._offer_once(msg)
            return
        if not msg.payload:
            return  # A cleared retained status says nothing.
        try:
            online = parse_status(msg.payload)
        except ProtocolError as err:
            self._warn_once(msg.topic, err)
            return
        self._note_sign_of_life(cabinet)
        was, machine_id = cabinet.online, cabinet.machine_id
        cabinet.set_online(online)
        changed = online != was
        if changed and online:  # Its link first, then its pulses (courier.py).
            if was is False:
                LOGGER.info("Cabinet %s is back online", machine_id)
            self._links.cabinet_back(cabinet)
        self._courier.cabinet_status(machine_id, online, changed=changed)
        if changed and not online:
            LOGGER.info("Cabinet %s went offline; credits for it wait until it is back", machine_id)
            self._links.cabinet_offline(machine_id)

    @callback
    def on_state(self, msg: mqtt.ReceiveMessage) -> None:
        """A cabinet reported its own credits and game state."""
        if (cabinet := self._cabinet_for_topic(msg.topic)) is None:
            self._keep_unclaimed(msg, TOPIC_STATE)
            return
        if not msg.payload:
            return
        try:
            state = CabinetState.from_payload(msg.payload)
        except ProtocolError as err:
            self._warn_once(msg.topic, err)
            return
        self._note_sign_of_life(cabinet)
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
        self._note_sign_of_life(cabinet)
        self._work.spawn(self._async_acknowledged(cabinet, ack.payment_id))

    @callback
    def on_info(self, msg: mqtt.ReceiveMessage) -> None:
        """A cabinet's retained announcement: its device shows the model and software version."""
        if (cabinet := self._cabinet_for_topic(msg.topic)) is None:
            self._keep_unclaimed(msg, TOPIC_INFO)
            self._offer_once(msg)
            return
        if not msg.payload:
            return  # A cleared announcement says nothing.
        try:
            announcement = Announcement.from_payload(msg.payload, cabinet.machine_id)
        except ProtocolError as err:
            self._warn_once(msg.topic, err)
            return
        self._note_sign_of_life(cabinet)
        show_announcement(self._hass, cabinet, announcement)

    @callback
    def _offer_once(self, msg: mqtt.ReceiveMessage) -> None:
        """A cabinet no entry has: offer it as discovered, once per topic while the entry runs."""
        if msg.payload and msg.topic not in self._offered_topics:
            self._offered_topics.add(msg.topic)
            offer_cabinet(self._hass, msg)

    async def _async_acknowledged(self, cabinet: Cabinet, payment_id: str) -> None:
        try:
            result = await self._courier.async_acknowledged(cabinet.machine_id, payment_id)
        except LedgerError as err:  # Re-sent until acknowledged: the next ack is noted instead.
            LOGGER.warning("Could not note the acknowledgement of %s: %s", payment_id, err)
            return
        if result in (AckResult.UNKNOWN, AckResult.NOT_SENT):
            what = "not a payment of this cabinet" if result is AckResult.UNKNOWN else "not sent to it yet"
            self._warn_once(
                f"{cabinet.machine_id}/ack/{result.value}",
                ProtocolError(f"acknowledgement for {payment_id[:64]!r}, which is {what}"),
            )

    @callback
    def _note_sign_of_life(self, cabinet: Cabinet) -> None:
        """The cabinet published on its topics: it exists, so credits and payments can flow."""
        if not cabinet.note_sign_of_life():
            return
        LOGGER.info("Cabinet %s showed its first sign of life", cabinet.machine_id)
        self._links.first_sign_of_life(cabinet)
        self._courier.first_sign_of_life(cabinet.machine_id)

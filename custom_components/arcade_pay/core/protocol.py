"""The MQTT wire protocol that cabinets speak.

Standard library only (tests/core/test_layers.py): the cabinet agent runs this very file (its
symlink cabinet/arcade_cabinet/protocol.py), so messages are checked by hand, not with voluptuous.
Topics and JSON are the earlier system's, so its cabinets keep working (they ignore ``paymentId``).

Topic layout, under a configurable prefix (default ``arcade/machine``):

==========================  =========  ========  =====================================
topic                       direction  retained  payload
==========================  =========  ========  =====================================
``<prefix>/<id>/coinpulse``  HA → cab   no        ``{"machineId", "credits", "timestamp", "paymentId"}``
``<prefix>/<id>/gameover``   cab → HA   no        ``{"machineId", "status": "game_over", "timestamp"?}``
``<prefix>/<id>/status``     cab → HA   yes       ``online`` / ``offline`` (last will)
``<prefix>/<id>/state``      cab → HA   yes       ``{"credits", "state", "acknowledges"?}``
``<prefix>/<id>/ack``        cab → HA   no        ``{"paymentId"}`` once the credits are applied
``<prefix>/<id>/info``       cab → HA   yes       announcement.py (newer cabinets only)
==========================  =========  ========  =====================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
import json
import re
from typing import Any, Final

DEFAULT_TOPIC_PREFIX: Final = "arcade/machine"

TOPIC_COIN_PULSE: Final = "coinpulse"
TOPIC_GAME_OVER: Final = "gameover"
TOPIC_STATUS: Final = "status"
TOPIC_STATE: Final = "state"
TOPIC_ACK: Final = "ack"
TOPIC_INFO: Final = "info"  # announcement.py
# Every topic of the table above, in its order (the agent's, and Home Assistant's but coinpulse).
TOPICS: Final = (TOPIC_COIN_PULSE, TOPIC_GAME_OVER, TOPIC_STATUS, TOPIC_STATE, TOPIC_ACK, TOPIC_INFO)

STATUS_ONLINE: Final = "online"
STATUS_OFFLINE: Final = "offline"

# Cabinet messages are a few dozen bytes; anything far larger is not one of ours.
MAX_MESSAGE_BYTES: Final = 4096
# Credits a cabinet may say it holds (its state message), or one pulse may carry.
MAX_CABINET_CREDITS: Final = 1_000_000
MAX_CREDITS_PER_PULSE: Final = 1000
MAX_PAYMENT_ID_LENGTH: Final = 255

MACHINE_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# What MQTT hands us: bytes, or text when a subscriber asked for decoding.
type Payload = bytes | bytearray | str


class GameState(StrEnum):
    """What a cabinet is doing."""

    ATTRACT = "attract"
    PLAYING = "playing"


class ProtocolError(ValueError):
    """A message on one of our topics that is not what the protocol says."""


def is_valid_machine_id(machine_id: str) -> bool:
    """Return whether a machine id can be used as a single MQTT topic level."""
    return MACHINE_ID_PATTERN.fullmatch(machine_id) is not None


def is_valid_new_machine_id(machine_id: str) -> bool:
    """Return whether a new cabinet may be given this machine id: it also starts with a letter or digit.

    A leading ``-`` reads as an option to command-line tools (``mosquitto_passwd``, ``mosquitto_sub``,
    ``arcade-cabinet``), where the id also serves as the cabinet's broker user name. Ids configured
    before this rule keep working: only forms apply it.
    """
    return is_valid_machine_id(machine_id) and machine_id[0].isascii() and machine_id[0].isalnum()


def is_valid_topic_prefix(prefix: str) -> bool:
    """Whether we can publish and subscribe under a prefix: no wildcards, empty levels, leading ``$``."""
    if not prefix or prefix.startswith("$") or len(prefix) > 200 or any(c in prefix for c in "+#\x00"):
        return False
    return all(prefix.split("/"))


def topic(prefix: str, machine_id: str, kind: str) -> str:
    """Return ``<prefix>/<machine_id>/<kind>``."""
    return f"{prefix}/{machine_id}/{kind}"


def subscription(prefix: str, kind: str) -> str:
    """Return the wildcard topic that matches ``kind`` messages of every cabinet."""
    return f"{prefix}/+/{kind}"


def machine_id_from_topic(prefix: str, message_topic: str) -> str | None:
    """Return the machine id level of a topic under ``prefix``, or None."""
    head = prefix + "/"
    if not message_topic.startswith(head):
        return None
    levels = message_topic[len(head) :].split("/")
    if len(levels) != 2 or not is_valid_machine_id(levels[0]):
        return None
    return levels[0]


def format_timestamp(moment: datetime) -> str:
    """Format as the earlier system did: ISO 8601, UTC, whole seconds, ``Z`` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(value: Any) -> datetime:
    """Parse an ISO 8601 timestamp; naive ones are taken as UTC."""
    if not isinstance(value, str):
        raise ProtocolError("timestamp must be a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise ProtocolError(f"not an ISO 8601 timestamp: {value[:40]!r}") from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _machine_id(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_machine_id(value):
        raise ProtocolError("machineId must be letters, digits, '-' or '_'")
    return value


def _payment_id(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_PAYMENT_ID_LENGTH:
        raise ProtocolError(f"paymentId must be a string of 1 to {MAX_PAYMENT_ID_LENGTH} characters")
    return value


def _whole_number(value: Any, minimum: int, maximum: int) -> int:
    """An int that is really an int (JSON ``true`` and ``1.0`` are not), within bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("expected an integer")
    if not minimum <= value <= maximum:
        raise ProtocolError(f"expected an integer from {minimum} to {maximum}")
    return value


def _field[T](data: dict[str, Any], key: str, check: Callable[[Any], T]) -> T:
    """The checked value of a required field; the error names the field (``check`` may raise ValueError)."""
    if key not in data:
        raise ProtocolError(f"message does not match the protocol: {key} is missing")
    try:
        return check(data[key])
    except (ValueError, TypeError) as err:  # TypeError: GameState([]) and the like
        raise ProtocolError(f"message does not match the protocol: {key}: {err}") from None


def _optional_field[T](data: dict[str, Any], key: str, check: Callable[[Any], T]) -> T | None:
    return _field(data, key, check) if key in data else None


@dataclass(frozen=True, slots=True)
class CoinPulse:
    """Tells a cabinet to add credits."""

    machine_id: str
    credits: int
    timestamp: datetime
    payment_id: str | None = None

    def to_json(self) -> str:
        """Serialize exactly as the earlier system did, plus ``paymentId``."""
        message: dict[str, Any] = {
            "machineId": self.machine_id,
            "credits": self.credits,
            "timestamp": format_timestamp(self.timestamp),
        }
        if self.payment_id is not None:
            message["paymentId"] = self.payment_id
        return json.dumps(message, separators=(",", ":"))

    @classmethod
    def from_payload(cls, payload: Payload) -> CoinPulse:
        """Parse a coin pulse, raising ProtocolError when it is not one."""
        data = _json_object(payload)
        return cls(
            _field(data, "machineId", _machine_id),
            _field(data, "credits", lambda value: _whole_number(value, 1, MAX_CREDITS_PER_PULSE)),
            _field(data, "timestamp", _timestamp),
            _optional_field(data, "paymentId", _payment_id),
        )


@dataclass(frozen=True, slots=True)
class GameOver:
    """A cabinet reports that a game has ended."""

    machine_id: str
    timestamp: datetime | None

    def to_json(self) -> str:
        """Serialize as the earlier system's cabinets do."""
        message: dict[str, Any] = {"machineId": self.machine_id, "status": "game_over"}
        if self.timestamp is not None:
            message["timestamp"] = format_timestamp(self.timestamp)
        return json.dumps(message, separators=(",", ":"))

    @classmethod
    def from_payload(cls, payload: Payload) -> GameOver:
        """Parse a game over message, raising ProtocolError when it is not one."""
        data = _json_object(payload)
        if data.get("status") != "game_over":
            raise ProtocolError("message does not match the protocol: status must be 'game_over'")
        return cls(_field(data, "machineId", _machine_id), _optional_field(data, "timestamp", _timestamp))


@dataclass(frozen=True, slots=True)
class CabinetState:
    """What a cabinet that reports its own state says it has."""

    credits: int
    state: GameState
    acknowledges: bool = False

    def to_json(self) -> str:
        """Serialize for the retained state topic."""
        message: dict[str, Any] = {"credits": self.credits, "state": self.state.value}
        if self.acknowledges:
            message["acknowledges"] = True
        return json.dumps(message, separators=(",", ":"))

    @classmethod
    def from_payload(cls, payload: Payload) -> CabinetState:
        """Parse a state message, raising ProtocolError when it is not one."""
        data = _json_object(payload)
        return cls(
            _field(data, "credits", lambda value: _whole_number(value, 0, MAX_CABINET_CREDITS)),
            _field(data, "state", GameState),
            # Cabinets that acknowledge pulses say so here, so that Home Assistant knows it before
            # the first payment (the state is retained; the first ack may come too late).
            _optional_field(data, "acknowledges", _boolean) or False,
        )


@dataclass(frozen=True, slots=True)
class Ack:
    """A cabinet applied the credits of a coin pulse."""

    payment_id: str

    def to_json(self) -> str:
        """Serialize for the ack topic."""
        return json.dumps({"paymentId": self.payment_id}, separators=(",", ":"))

    @classmethod
    def from_payload(cls, payload: Payload) -> Ack:
        """Parse an acknowledgement, raising ProtocolError when it is not one."""
        return cls(_field(_json_object(payload), "paymentId", _payment_id))


def parse_status(payload: Payload) -> bool:
    """Return True for ``online``, False for ``offline``; raise ProtocolError otherwise."""
    text = _decode(payload).strip().lower()
    if text in (STATUS_ONLINE, STATUS_OFFLINE):
        return text == STATUS_ONLINE
    raise ProtocolError("status must be 'online' or 'offline'")


def _decode(payload: Payload) -> str:
    try:
        raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    except UnicodeEncodeError as err:  # A str with lone surrogates.
        raise ProtocolError("message is not UTF-8 text") from err
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(raw)} bytes is larger than {MAX_MESSAGE_BYTES}")
    try:
        return raw.decode()
    except UnicodeDecodeError as err:
        raise ProtocolError("message is not UTF-8 text") from err


def _json_object(payload: Payload) -> dict[str, Any]:
    text = _decode(payload)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:  # RecursionError: "[[[[…" nested deeper than json allows
        raise ProtocolError("message is not JSON") from err
    if not isinstance(data, dict):
        raise ProtocolError("message is not a JSON object")
    return data


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError("expected true or false")
    return value
